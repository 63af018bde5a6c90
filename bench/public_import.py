"""BUSI-layout import throughput (images/s), next to a floor measured in the same run.

    .venv/bin/python bench/public_import.py [--images 300] [--json FILE]

Data: bench/dataset.py's generated BUS-UCLM scans (cached under $BENCH_CACHE) laid out as BUSI is
published: ``Dataset_BUSI_with_GT/{benign,malignant,normal}/<class> (N).png`` with a 0/255
greyscale ``<class> (N)_mask.png`` (the class read from the scan's mask colour; normal scans get
an empty mask). Own database ``busreview_bench_public``, recreated and migrated each run; each side
in a fresh subprocess, the timer covering the import only.

- app: ``importing.import_dataset(folder_source(path))`` with the layout recognised (auto): each
  image and mask decoded and checked, the mask thresholded and traced (numpy/OpenCV, no per-pixel
  Python), duplicates looked for, a pseudo-patient per image (hash -> code), one transaction per
  image with its approved layer, lesions and audit event.
- floor: no Django; for each image, read the PNG and its mask, decode both (cv2.imdecode), and
  insert the PNG bytes with plain psycopg2 into a scratch table, one commit per image.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
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
    run_watched,
    verdict,
    wait_quiet,
    write_json,
)

DB = "busreview_bench_public"
TARGET_RATIO = 0.5


def busi_folder(n: int) -> Path:
    """The BUSI-layout copy of ``n`` generated scans (made on first use, cached)."""
    import cv2
    import numpy as np

    from bench import dataset

    root = CACHE / f"busi-{n}"
    done = root / ".complete"
    if done.exists():
        return root
    source = dataset.uclm_folder(n)
    counters = {"benign": 0, "malignant": 0, "normal": 0}
    for image in sorted((source / "images").glob("*.png")):
        mask = cv2.imread(str(source / "masks" / image.name), cv2.IMREAD_COLOR)  # BGR
        red, green = (mask[..., 2] == 255) & (mask[..., 1] == 0), (mask[..., 1] == 255) & (mask[..., 2] == 0)
        cls = "malignant" if red.any() else "benign" if green.any() else "normal"
        counters[cls] += 1
        folder = root / "Dataset_BUSI_with_GT" / cls
        folder.mkdir(parents=True, exist_ok=True)
        stem = f"{cls} ({counters[cls]})"
        (folder / f"{stem}.png").write_bytes(image.read_bytes())
        cv2.imwrite(str(folder / f"{stem}_mask.png"), ((red | green) * 255).astype(np.uint8))
    done.write_text("ok")
    return root


def child_app(folder: str) -> dict:
    from bench.common import django_setup

    django_setup(DB)
    from annotator import importing

    actor = importing.importer_user()
    cpu0 = cpu_seconds_self()
    started = time.perf_counter()
    report = importing.import_dataset(importing.folder_source(Path(folder)), actor=actor)
    wall = time.perf_counter() - started
    return {
        "images": len(report.imported),
        "failed": len(report.failed),
        "defects": [str(d) for d in report.defects[:10]],
        "wall_s": wall,
        "cpu_s": cpu_seconds_self() - cpu0,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_floor(folder: str) -> dict:
    import cv2
    import numpy as np
    import psycopg2

    conn = psycopg2.connect(database_url(DB))
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_public_floor")
        cur.execute("CREATE TABLE bench_public_floor (name text PRIMARY KEY, width int, height int, png bytea)")
    conn.commit()
    cpu0 = cpu_seconds_self()
    started = time.perf_counter()
    count = 0
    for path in sorted(Path(folder).rglob("*.png")):
        if path.stem.endswith("_mask"):
            continue
        data = path.read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        mask = cv2.imdecode(np.frombuffer(path.with_name(f"{path.stem}_mask.png").read_bytes(), np.uint8), 0)
        assert mask is not None
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO bench_public_floor (name, width, height, png) VALUES (%s, %s, %s, %s)",
                [str(path), img.shape[1], img.shape[0], psycopg2.Binary(data)],
            )
        conn.commit()
        count += 1
    wall = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bench_public_floor")
    conn.commit()
    conn.close()
    return {"images": count, "wall_s": wall, "cpu_s": cpu_seconds_self() - cpu0, "peak_rss_mb": peak_rss_mb()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=300, help="size of the generated folder")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        print(json.dumps({"app": child_app, "floor": child_floor}[kind](folder)))
        return 0

    print_machine()
    folder = busi_folder(args.images)
    print(f"source: {folder} ({args.images} images in the BUSI layout, one 0/255 mask each)")
    prepare_database(DB)
    env = bench_env(DB, debug=False)
    wait_quiet()
    floor = run_watched([PY, __file__, "--child", "floor", str(folder)], env, DB, label="floor")
    app = run_watched([PY, __file__, "--child", "app", str(folder)], env, DB, label="app")
    for side, r in (("floor", floor), ("app", app)):
        r["per_s"] = r["images"] / r["wall_s"]
        print(
            f"  {side:<5} {r['images']:>4} images  {r['wall_s']:6.1f} s wall  {r['cpu_s']:6.1f} s cpu  "
            f"{r['per_s']:6.1f} images/s  {1000 * r['wall_s'] / r['images']:5.1f} ms/image  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    if app["failed"] or app["defects"]:
        print(f"  app: {app['failed']} failed; defects: {app['defects']}")
    ratio = app["per_s"] / floor["per_s"]
    print(f"  app/floor throughput: {ratio:.2f}x")
    print("\ntargets (on this machine):")
    print(f"  import >= {TARGET_RATIO}x floor: {ratio:.2f}x  {verdict(ratio >= TARGET_RATIO)}")
    write_json(args.json, {"floor": floor, "app": app, "ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
