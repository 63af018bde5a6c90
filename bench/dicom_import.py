"""DICOM import throughput of the whole import, next to a floor measured in the same run.

    .venv/bin/python bench/dicom_import.py [--copies 4] [--json FILE]

Data: the ultrasound files pydicom and the pydicom-data wheel ship (the set of bench/dicom_decode.py),
each written ``--copies`` times with a fresh SOP Instance UID and one of five patient IDs, so every
file is a new image. Written to a temporary folder (no database involved in writing them).

- floor (no framework): for every file, read it from disk, pydicom ``dcmread``, decode the key frame
  to RGB and encode the PNG (bench/dicom_decode.py's ``floor``).
- app: ``annotator.importing.import_dataset(folder_source(folder))`` into a fresh, migrated database
  (``busreview_bench_dicom``): what ``manage.py import_dataset FOLDER`` runs, i.e. the header
  refusals, the key frame, crop and blanking outside the tissue regions, the burned-in text search
  (tesseract), the PNG, keyed patient and instance hashes, one transaction per image.
- app without the text search: the same with ``redaction.find_text`` replaced by "no boxes", to
  show what the OCR costs (the import stays correct either way: every image waits for a curator).
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


def run_app(folder: Path, *, ocr: bool) -> tuple[float, int]:
    from django.contrib.auth import get_user_model

    from annotator import importing, redaction
    from annotator.models import Image

    Image.objects.all().delete()
    actor, _ = get_user_model().objects.get_or_create(username="bench-curator")
    real = redaction.find_text
    if not ocr:
        redaction.find_text = lambda rgb: []
    try:
        started = time.perf_counter()
        report = importing.import_dataset(importing.folder_source(folder), actor=actor)
        elapsed = time.perf_counter() - started
    finally:
        redaction.find_text = real
    if report.failed:
        raise RuntimeError(f"{len(report.failed)} files failed: {report.defects[:3]}")
    return elapsed, len(report.imported)


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
        app_s, imported = run_app(folder, ocr=True)
        plain_s, _ = run_app(folder, ocr=False)
        connection.close()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    count = len(paths)
    assert imported == count, (imported, count)
    rates = {"floor": count / floor_s, "app": count / app_s, "app without OCR": count / plain_s}
    print(f"{count} files ({len(paths) // args.copies} distinct x {args.copies} copies), one image each")
    for label, rate in rates.items():
        print(f"{label:>16}: {rate:6.1f} images/s  {1000 / rate:7.1f} ms/image")
    ratio = rates["app"] / rates["floor"]
    plain_ratio = rates["app without OCR"] / rates["floor"]
    print(f"app / floor: {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)})")
    print(f"app without OCR / floor: {plain_ratio:.2f}x")
    write_json(args.json, {"images": count, **{k.replace(" ", "_"): v for k, v in rates.items()}, "ratio": ratio})


if __name__ == "__main__":
    main()
