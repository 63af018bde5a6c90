"""Export wall time and peak memory, next to a floor measured in the same run.

    .venv/bin/python bench/export.py [--sizes 683,10000] [--fresh]

Data (own databases, kept between runs and rebuilt with --fresh or when incomplete):
- ``busreview_bench_export683``: the 683 generated BUS-UCLM-layout scans (bench/dataset.py)
  imported with the app's own ``import_dataset`` (so through ``workflow.create_imported``): 683
  approved images of 856x606 with their consensus layers, ~280 lesions.
- ``busreview_bench_export10000``: 10,000 approved images bulk-inserted with the same rows
  (bench/dataset.py ``insert_approved``), cycling over the 683 distinct scans under new names.

Each measurement runs in a fresh subprocess that reports its wall time and its peak RSS (VmHWM),
with RSS samples every 5 % of the images:
- app: ``annotator.exporting.write_zip`` into a file, as ``manage.py export_dataset`` does;
- floor: no Django; plain psycopg2 reads the same rows (a server-side cursor, 16 rows a fetch),
  cv2.fillPoly rasterises the same masks, cv2.imencode encodes them with the app's settings, and
  zipfile writes the same entries with the same compression. For ``bus-uclm`` the two ZIPs are
  checked to hold the same entries with the same CRCs.

Two variants: ``bus-uclm`` (images/, masks/, INFO.csv: the floor does the same work) and the
default ``bus-uclm,coco`` (the floor's COCO is built from the stored outlines: each lesion's
polygon, its pixel area and box from a fillPoly of the lesion).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
    CACHE,
    PY,
    bench_env,
    cpu_seconds_self,
    database_url,
    peak_rss_mb,
    prepare_database,
    print_machine,
    rss_mb,
    run_child,
    run_watched,
    verdict,
    wait_quiet,
    write_json,
)

TARGET_RATIO = 1.5
TARGET_PEAK_MB = 300
VARIANTS = ["bus-uclm", "bus-uclm,coco"]


def run_figures(images: int, started: float, cpu0: float, baseline: float, sampler, out) -> dict:
    """What one export run (the app's or the floor's) reports."""
    return {
        "images": images,
        "wall_s": time.perf_counter() - started,
        "cpu_s": cpu_seconds_self() - cpu0,
        "baseline_rss_mb": baseline,
        "peak_rss_mb": peak_rss_mb(),
        "samples": sampler.samples,
        "zip_mb": os.path.getsize(out) / 1e6,
    }


def db_name(size: int) -> str:
    return f"busreview_bench_export{size}"


# --- children ---------------------------------------------------------------------------------


def child_setup(db: str, size: int) -> dict:
    """Build the dataset in ``db`` (already migrated and empty)."""
    from bench import dataset
    from bench.common import django_setup

    django_setup(db)
    folder = dataset.uclm_folder()
    started = time.perf_counter()
    if size == dataset.UCLM["images"]:
        from annotator import importing

        report = importing.import_dataset(importing.folder_source(folder), actor=importing.importer_user())
        if report.failed:
            raise RuntimeError(f"import failed for {report.failed[:5]}")
    else:
        dataset.insert_approved(size, dataset.load_pool(folder))
    return {"seconds": time.perf_counter() - started}


def dataset_counts(db: str) -> dict:
    import psycopg2

    try:
        conn = psycopg2.connect(database_url(db))
    except psycopg2.OperationalError:
        return {}
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT count(*), count(consensus_id) FROM annotator_image WHERE status = 'approved'"
                " UNION ALL SELECT count(*), 0 FROM annotator_imagedata"
                " UNION ALL SELECT count(*), 0 FROM annotator_lesion l JOIN annotator_image i"
                " ON i.consensus_id = l.layer_id"
            )
            (approved, consensus), (data, _), (lesions, _) = cur.fetchall()
    except psycopg2.Error:
        return {}
    finally:
        conn.close()
    return {"approved": approved, "consensus": consensus, "data": data, "lesions": lesions}


class RssSampler:
    def __init__(self) -> None:
        self.samples: list[tuple[int, float]] = []

    def __call__(self, done: int, total: int) -> None:
        step = max(1, total // 20)
        if done % step == 0 or done == total:
            self.samples.append((done, round(rss_mb(), 1)))


def child_app(db: str, out: str, formats: str) -> dict:
    from bench.common import django_setup

    django_setup(db)
    from annotator.exporting import ExportOptions, write_zip

    baseline = rss_mb()
    sampler = RssSampler()
    cpu0 = cpu_seconds_self()
    started = time.perf_counter()
    with open(out, "wb") as fh:
        count = write_zip(fh, ExportOptions(formats=formats.split(",")), progress=sampler)
    return run_figures(count, started, cpu0, baseline, sampler, out)


FLOOR_SQL = """
SELECT i.name, i.width, i.height, i.doppler, i.marks, i.combined, d.png,
       (SELECT coalesce(json_agg(json_build_array(l.label, l.points, l.holes) ORDER BY l.index), '[]')
          FROM annotator_lesion l WHERE l.layer_id = i.consensus_id)
  FROM annotator_image i JOIN annotator_imagedata d ON d.image_id = i.id
 WHERE i.status = 'approved' AND i.consensus_id IS NOT NULL
 ORDER BY i.name
"""


def child_floor(db: str, out: str, formats: str) -> dict:
    """The same ZIP with no Django: psycopg2, cv2.fillPoly, cv2.imencode, zipfile."""
    import cv2
    import numpy as np
    import psycopg2

    bgr = {"benign": (0, 255, 0), "malignant": (0, 0, 255)}
    coco = "coco" in formats.split(",")
    baseline = rss_mb()
    cpu0 = cpu_seconds_self()
    started = time.perf_counter()
    conn = psycopg2.connect(database_url(db))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM annotator_image WHERE status = 'approved' AND consensus_id IS NOT NULL")
        total = cur.fetchone()[0]
    sampler = RssSampler()
    rows_csv: list[str] = []
    coco_images: list[dict] = []
    coco_annotations: list[dict] = []

    def ring(points) -> np.ndarray:
        return np.rint(np.asarray(points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)

    def lesion_pixels(points, holes, h, w) -> np.ndarray:
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [ring(points)], 1, lineType=cv2.LINE_8)
        if holes:
            outer = m.copy()
            rings = [ring(r) for r in holes]
            cv2.fillPoly(m, rings, 0, lineType=cv2.LINE_8)
            cv2.polylines(m, rings, isClosed=True, color=1, thickness=1, lineType=cv2.LINE_8)
            m &= outer
        return m

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6) as zf:
        cur = conn.cursor(name="export")
        cur.itersize = 16
        cur.execute(FLOOR_SQL)
        for done, (name, w, h, doppler, marks, combined, png, lesions) in enumerate(cur, start=1):
            zf.writestr(f"images/{name}", bytes(png), compress_type=zipfile.ZIP_STORED)
            canvas = np.zeros((h, w, 3), np.uint8)
            for label in ("benign", "malignant"):
                for les_label, points, holes in lesions:
                    if les_label != label:
                        continue
                    if holes:
                        canvas[lesion_pixels(points, holes, h, w).astype(bool)] = bgr[label]
                    else:
                        cv2.fillPoly(canvas, [ring(points)], bgr[label], lineType=cv2.LINE_8)
            ok, buf = cv2.imencode(".png", canvas, [cv2.IMWRITE_PNG_COMPRESSION, 3])
            assert ok
            zf.writestr(f"masks/{name}", buf.tobytes(), compress_type=zipfile.ZIP_STORED)
            labels = {les[0] for les in lesions}
            label = "Malignant" if "malignant" in labels else "Benign" if "benign" in labels else "Normal"
            yn = {True: "Yes", False: "No"}
            rows_csv.append(f"{name};{w}x{h};{label};{yn[doppler]};{yn[marks]};{yn[combined]}")
            if coco:
                image_id = len(coco_images) + 1
                coco_images.append({"id": image_id, "file_name": name, "width": w, "height": h})
                for les_label, points, holes in lesions:
                    pixels = lesion_pixels(points, holes, h, w)
                    x, y, bw, bh = cv2.boundingRect(pixels)
                    coco_annotations.append(
                        {
                            "id": len(coco_annotations) + 1,
                            "image_id": image_id,
                            "category_id": 1 if les_label == "benign" else 2,
                            "segmentation": [[float(v) for p in points for v in p]],
                            "area": int(cv2.countNonZero(pixels)),
                            "bbox": [x, y, bw, bh],
                            "iscrowd": 0,
                        }
                    )
            sampler(done, total)
        cur.close()
        text = "\n".join(["Image;Resolution;Label;Doppler;Marks;Combined", *sorted(rows_csv)]) + "\n"
        zf.writestr("INFO.csv", "\ufeff".encode() + text.encode("utf-8"))
        if coco:
            doc = {
                "info": {"description": "BUS Review consensus export", "version": "1.0"},
                "licenses": [],
                "categories": [{"id": 1, "name": "Benign"}, {"id": 2, "name": "Malignant"}],
                "images": coco_images,
                "annotations": coco_annotations,
            }
            zf.writestr("annotations/instances.json", json.dumps(doc, separators=(",", ":")))
    conn.close()
    return run_figures(total, started, cpu0, baseline, sampler, out)


def child_profile(db: str, out: str, formats: str, top: int = 35) -> dict:
    """cProfile of the app's export (printed to stderr)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = child_app(db, out, formats)
    profiler.disable()
    for key in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(key).print_stats(top)
        sys.stderr.write(f"\n--- export profile, top {top} by {key} ---\n")
        sys.stderr.write("\n".join(line for line in text.getvalue().splitlines() if line.strip()) + "\n")
    return result


# --- parent -----------------------------------------------------------------------------------


def same_entries(a: str, b: str) -> tuple[bool, list[str]]:
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        ea = {i.filename: (i.CRC, i.file_size) for i in za.infolist()}
        eb = {i.filename: (i.CRC, i.file_size) for i in zb.infolist()}
    differ = sorted(name for name in ea.keys() | eb.keys() if ea.get(name) != eb.get(name))
    return not differ, differ


def ensure_dataset(size: int, fresh: bool) -> dict:
    db = db_name(size)
    counts = dataset_counts(db)
    complete = counts and counts["approved"] == size == counts["consensus"] == counts["data"]
    if fresh or not complete:
        prepare_database(db)
        took = run_child([PY, __file__, "--child", "setup", db, str(size)], bench_env(db, debug=False), timeout=1800)
        counts = dataset_counts(db)
        print(f"  built {db} in {took['seconds']:.0f} s: {counts}")
    else:
        print(f"  reusing {db}: {counts}")
    return counts


def variants_for(size: int, option: str) -> list[str]:
    if option != "auto":
        return option.split(";")
    return VARIANTS if size <= 683 else ["bus-uclm,coco"]


def fmt_samples(samples: list) -> str:
    picks = [samples[i] for i in sorted({0, len(samples) // 4, len(samples) // 2, 3 * len(samples) // 4})]
    picks.append(samples[-1])
    return " ".join(f"{done}:{mb:.0f}" for done, mb in picks)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="683,10000")
    parser.add_argument(
        "--variants",
        default="auto",
        help="';'-separated format lists (default: both variants at 683 images, bus-uclm,coco beyond, for time)",
    )
    parser.add_argument("--fresh", action="store_true", help="rebuild the datasets")
    parser.add_argument("--profile", action="store_true", help="also cProfile the app's export (bus-uclm,coco)")
    parser.add_argument("--debug", choices=["0", "1"], default="0", help="the app's DEBUG (default 0, production)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        fn = {"setup": child_setup, "app": child_app, "floor": child_floor, "profile": child_profile}[kind]
        if kind == "setup":
            result = fn(rest[0], int(rest[1]))
        else:
            result = fn(*rest)
        print(json.dumps(result))
        return 0

    print_machine()
    print(f"app settings: DEBUG={args.debug}")
    CACHE.mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for size in [int(s) for s in args.sizes.split(",")]:
        db = db_name(size)
        print(f"\n== {size} images ({db})")
        counts = ensure_dataset(size, args.fresh)
        results[size] = {"counts": counts}
        for formats in variants_for(size, args.variants):
            wait_quiet()
            env = bench_env(db, debug=args.debug == "1")
            outs = {side: str(CACHE / f"export-{size}-{side}.zip") for side in ("floor", "app")}
            runs = {}
            for side in ("floor", "app"):
                runs[side] = run_watched([PY, __file__, "--child", side, db, outs[side], formats], env, db, label=side)
            same, differ = same_entries(outs["floor"], outs["app"])
            for path in outs.values():
                Path(path).unlink(missing_ok=True)
            ratio = runs["app"]["wall_s"] / runs["floor"]["wall_s"]
            results[size][formats] = {**runs, "ratio": ratio, "same_entries": same, "differing": differ[:10]}
            print(f"  formats {formats}:")
            for side in ("floor", "app"):
                r = runs[side]
                print(
                    f"    {side:<5} {r['images']:>6} images  {r['wall_s']:7.1f} s wall  "
                    f"{r['cpu_s']:7.1f} s cpu (+ db {r['db_cpu_s']:4.1f} s)  "
                    f"peak RSS {r['peak_rss_mb']:6.0f} MB (after start-up {r['baseline_rss_mb']:.0f} MB)  "
                    f"ZIP {r['zip_mb']:.0f} MB"
                )
                print(f"          RSS MB by images done: {fmt_samples(r['samples'])}")
            note = "identical entries (name, CRC, size)" if same else f"entries differ: {', '.join(differ[:5])}"
            cpu_ratio = runs["app"]["cpu_s"] / runs["floor"]["cpu_s"]
            results[size][formats]["cpu_ratio"] = cpu_ratio
            print(f"    app/floor wall time: {ratio:.2f}x (cpu time {cpu_ratio:.2f}x); ZIPs: {note}")
        if args.profile:
            out = str(CACHE / f"export-{size}-profile.zip")
            env = bench_env(db, debug=args.debug == "1")
            import subprocess

            proc = subprocess.run(
                [PY, __file__, "--child", "profile", db, out, "bus-uclm,coco"], env=env, capture_output=True, text=True
            )
            Path(out).unlink(missing_ok=True)
            print(proc.stderr)

    print("\ntargets (on this machine):")
    for size, res in results.items():
        for formats in variants_for(size, args.variants):
            r = res[formats]
            print(
                f"  {size} images, {formats}: wall {r['ratio']:.2f}x floor (<= {TARGET_RATIO}x)  "
                f"{verdict(r['ratio'] <= TARGET_RATIO)}; peak RSS {r['app']['peak_rss_mb']:.0f} MB"
                f" (< {TARGET_PEAK_MB} MB) {verdict(r['app']['peak_rss_mb'] < TARGET_PEAK_MB)}"
            )
    write_json(args.json, {str(k): v for k, v in results.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
