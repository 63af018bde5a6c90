"""DICOM import throughput of the whole import, next to a floor measured in the same run.

    .venv/bin/python bench/dicom_import.py [--copies 4] [--json FILE]

Data: the ultrasound files pydicom and the pydicom-data wheel ship (the set of bench/dicom_decode.py),
each written ``--copies`` times with a fresh SOP Instance UID and one of five patient IDs, so every
file is a new image. Written to a temporary folder (no database involved in writing them).

- floor (no framework): for every file, read it from disk, pydicom ``dcmread``, decode the key frame
  to RGB and encode the PNG (bench/dicom_decode.py's ``floor``).
- app: ``annotator.importing.import_dataset(folder_source(folder))`` into a fresh, migrated database
  (``busreview_bench_dicom``): what ``manage.py import_dataset FOLDER`` runs, i.e. the header
  refusals, the key frame, crop and blanking outside the tissue regions, the PNG, keyed patient and
  instance hashes, one transaction per image, and queueing the burned-in text search (RQ, Redis).
- text search (worker): then an RQ worker in this process drains that queue (tesseract per image),
  timed apart: the images wait in ``redaction`` meanwhile, and a curator cannot confirm them before.
- app, search inline: the import with ``TEXT_SEARCH_INLINE`` (what happens without Redis).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pydicom  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from bench.common import django_setup, prepare_database, print_machine, verdict, wait_quiet, write_json  # noqa: E402
from bench.dicom_decode import floor, load  # noqa: E402

DB = "busreview_bench_dicom"
TARGET_RATIO = 0.5


def write_copies(folder: Path, copies: int) -> list[Path]:
    paths = []
    for name, data in sorted(load().items()):
        for k in range(copies):
            ds = pydicom.dcmread(BytesIO(data))
            ds.SOPInstanceUID = generate_uid()
            if "file_meta" in dir(ds) and ds.file_meta is not None:
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
            ds.PatientID = f"BENCH-{k % 5}"
            path = folder / f"{Path(name).stem}-{k}.dcm"
            ds.save_as(path)
            paths.append(path)
    return paths


def run_floor(paths: list[Path]) -> float:
    started = time.perf_counter()
    for path in paths:
        floor(path.read_bytes())
    return time.perf_counter() - started


def run_app(folder: Path, *, inline: bool) -> tuple[float, float, int]:
    """Import the folder; returns (import seconds, seconds to drain the queued text search, images)."""
    import django_rq
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from rq import SimpleWorker

    from annotator import importing
    from annotator.models import Image

    Image.objects.all().delete()
    actor, _ = get_user_model().objects.get_or_create(username="bench-curator")
    settings.TEXT_SEARCH_INLINE = inline
    queue = django_rq.get_queue("default")
    queue.empty()
    started = time.perf_counter()
    report = importing.import_dataset(importing.folder_source(folder), actor=actor)
    elapsed = time.perf_counter() - started
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} files failed: {report.defects[:3]}")
    started = time.perf_counter()
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    drained = time.perf_counter() - started
    pending = Image.objects.filter(text_boxes__isnull=True).count()
    if pending:
        raise RuntimeError(f"{pending} images left unsearched")
    return elapsed, drained, len(report.imported)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--json")
    args = parser.parse_args()
    print_machine()
    os.environ.setdefault("DEBUG", "0")
    os.environ.setdefault("PATIENT_KEY_SECRET", "benchmark-only-key-" + "k" * 16)
    prepare_database(DB)
    django_setup(DB)
    from django.db import connection

    folder = Path(tempfile.mkdtemp(prefix="bench-dicom-"))
    try:
        paths = write_copies(folder, args.copies)
        run_floor(paths[:3])  # warm-up: decoder plug-in discovery
        wait_quiet()
        floor_s = run_floor(paths)
        app_s, drain_s, imported = run_app(folder, inline=False)
        inline_s, _, _ = run_app(folder, inline=True)
        connection.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    count = len(paths)
    assert imported == count, (imported, count)
    rates = {
        "floor": count / floor_s,
        "app": count / app_s,
        "text search (worker)": count / drain_s,
        "app, search inline": count / inline_s,
    }
    print(f"{count} files ({len(paths) // args.copies} distinct x {args.copies} copies), one image each")
    for label, rate in rates.items():
        print(f"{label:>22}: {rate:6.1f} images/s  {1000 / rate:7.1f} ms/image")
    ratio = rates["app"] / rates["floor"]
    print(f"import / floor: {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)})")
    print(f"import with the text search inline / floor: {rates['app, search inline'] / rates['floor']:.2f}x")
    write_json(args.json, {"images": count, **{k.replace(" ", "_"): v for k, v in rates.items()}, "ratio": ratio})


if __name__ == "__main__":
    main()
