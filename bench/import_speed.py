"""Import throughput (images/s) of a BUS-UCLM-sized folder, next to a floor measured in the same run.

    .venv/bin/python bench/import_speed.py

Data: the 683 generated scans in the BUS-UCLM layout (``images/``, ``masks/``, ``INFO.csv``;
bench/dataset.py, cached under $BENCH_CACHE). Own database ``busreview_bench_import``,
recreated and migrated each run. Each side runs in a fresh subprocess; the timer covers the
import itself, not the interpreter's and Django's start-up.

- app: ``annotator.importing.import_dataset(folder_source(path), as_status=approved, ...)``,
  what ``manage.py import_dataset PATH`` runs: each image decoded and checked, its mask decoded
  and traced into lesions, INFO.csv read, and each image written in its own transaction with its
  approved consensus layer, lesions and audit event.
- floor: no Django; for each image, read the PNG and its mask, decode both (cv2.imdecode), and
  insert the PNG bytes with plain psycopg2 into a scratch table, one commit per image (as the
  app's one transaction per image); INFO.csv read with the csv module.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (  # noqa: E402
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

DB = "busreview_bench_import"
TARGET_RATIO = 0.5


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
    import csv
    import io

    import cv2
    import numpy as np
    import psycopg2

    root = Path(folder)
    conn = psycopg2.connect(database_url(DB))
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS bench_import_floor")
        cur.execute("CREATE TABLE bench_import_floor (name text PRIMARY KEY, width int, height int, png bytea)")
    conn.commit()
    cpu0 = cpu_seconds_self()
    started = time.perf_counter()
    info = list(csv.reader(io.StringIO((root / "INFO.csv").read_bytes().decode("utf-8-sig")), delimiter=";"))
    count = 0
    for path in sorted((root / "images").glob("*.png")):
        data = path.read_bytes()
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
        mask_path = root / "masks" / path.name
        if mask_path.exists():
            mask = cv2.imdecode(np.frombuffer(mask_path.read_bytes(), np.uint8), cv2.IMREAD_UNCHANGED)
            assert mask is not None
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO bench_import_floor (name, width, height, png) VALUES (%s, %s, %s, %s)",
                [path.name, img.shape[1], img.shape[0], psycopg2.Binary(data)],
            )
        conn.commit()
        count += 1
    wall = time.perf_counter() - started
    with conn.cursor() as cur:
        cur.execute("DROP TABLE bench_import_floor")
    conn.commit()
    conn.close()
    return {
        "images": count,
        "info_rows": len(info) - 1,
        "wall_s": wall,
        "cpu_s": cpu_seconds_self() - cpu0,
        "peak_rss_mb": peak_rss_mb(),
    }


def child_profile(folder: str, top: int = 35) -> dict:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = child_app(folder)
    profiler.disable()
    for key in ("cumulative", "tottime"):
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).strip_dirs().sort_stats(key).print_stats(top)
        sys.stderr.write(f"\n--- import profile, top {top} by {key} ---\n")
        sys.stderr.write("\n".join(line for line in text.getvalue().splitlines() if line.strip()) + "\n")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=683, help="size of the generated folder")
    parser.add_argument("--profile", action="store_true", help="also cProfile the app's import (a second run)")
    parser.add_argument("--debug", choices=["0", "1"], default="0", help="the app's DEBUG (default 0, production)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, folder = args.child
        fn = {"app": child_app, "floor": child_floor, "profile": child_profile}[kind]
        print(json.dumps(fn(folder)))
        return 0

    from bench import dataset

    print_machine()
    folder = dataset.uclm_folder(args.images)
    print(f"source: {folder} ({args.images} images, masks, INFO.csv)")
    prepare_database(DB)
    env = bench_env(DB, debug=args.debug == "1")
    print(f"app settings: DEBUG={args.debug}")
    wait_quiet()
    floor = run_watched([PY, __file__, "--child", "floor", str(folder)], env, DB, label="floor")
    app = run_watched([PY, __file__, "--child", "app", str(folder)], env, DB, label="app")
    for side, r in (("floor", floor), ("app", app)):
        r["per_s"] = r["images"] / r["wall_s"]
        print(
            f"  {side:<5} {r['images']:>4} images  {r['wall_s']:6.1f} s wall  "
            f"{r['cpu_s']:6.1f} s cpu (+ db {r['db_cpu_s']:4.1f} s)  "
            f"{r['per_s']:6.1f} images/s  {1000 * r['wall_s'] / r['images']:5.1f} ms/image  "
            f"peak RSS {r['peak_rss_mb']:.0f} MB"
        )
    if app["failed"] or app["defects"]:
        print(f"  app: {app['failed']} failed; defects: {app['defects']}")
    ratio = app["per_s"] / floor["per_s"]
    print(f"  app/floor throughput: {ratio:.2f}x (cpu time floor/app {floor['cpu_s'] / app['cpu_s']:.2f}x)")
    if args.profile:
        import subprocess

        prepare_database(DB)
        proc = subprocess.run(
            [PY, __file__, "--child", "profile", str(folder)], env=env, capture_output=True, text=True
        )
        print(proc.stderr)
    print("\ntargets (on this machine):")
    print(f"  import >= {TARGET_RATIO}x floor: {ratio:.2f}x  {verdict(ratio >= TARGET_RATIO)}")
    write_json(args.json, {"floor": floor, "app": app, "ratio": ratio})
    return 0


if __name__ == "__main__":
    sys.exit(main())
