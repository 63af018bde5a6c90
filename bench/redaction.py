"""Burned-in text search (``annotator.redaction.find_text``): time per image and what it finds.

    .venv/bin/python bench/redaction.py [--images 20]

Data: the synthetic 856x606 B-mode scans of ``tests/test_redaction.py`` (speckle, a lesion, 42
bright echoes), each with five captions drawn at known places (a name and ID, a date, a hospital
in yellow, settings and a second name inside the tissue region), in two variants: echoes kept off
the captions, and echoes anywhere (an echo crossing a caption fuses with its letters); the same
scans without captions; and, if the pydicom-data wheel is installed, its real burned-in files.

Figures: wall time of ``find_text`` per image (median, 90th percentile), next to a floor measured
in the same run on the same images: one bare ``tesseract`` call on the grey image with the same
options (no preprocessing, no filtering), i.e. what a plain OCR pass costs here. Found: share of
caption lines with at least 95 % of their ink inside the boxes, and boxes found on captionless
speckle. Single process, one OCR thread (as in the import).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from annotator import redaction  # noqa: E402
from tests.test_redaction import INSIDE, OUTSIDE, captions, covered, draw, scan  # noqa: E402


def bare_tesseract(rgb: np.ndarray) -> tuple[list[redaction.Box], float]:
    """One plain tesseract pass on the grey image, same options as find_text: every word it
    reports with a letter or digit in it, unfiltered, and the seconds it took."""
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
    assert ok
    start = time.perf_counter()
    done = subprocess.run(
        ["tesseract", "stdin", "stdout", "-l", "eng", "--psm", "11", "--dpi", "300", "tsv"],
        input=png.tobytes(),
        capture_output=True,
        check=True,
        env={**os.environ, "OMP_THREAD_LIMIT": "1"},
    )
    seconds = time.perf_counter() - start
    boxes = []
    for line in done.stdout.decode("utf-8", "replace").splitlines()[1:]:
        cols = line.split("\t")
        if len(cols) >= 12 and cols[0] == "5" and any(ch.isalnum() for ch in cols[11]):
            boxes.append(redaction.Box(*(int(cols[i]) for i in (6, 7, 8, 9))))
    return boxes, seconds


def timed_find(rgb: np.ndarray) -> tuple[list[redaction.Box], float]:
    start = time.perf_counter()
    boxes = redaction.find_text(rgb)
    return boxes, time.perf_counter() - start


def lines_found(boxes: list[redaction.Box], inks: list[np.ndarray]) -> int:
    inside = covered(boxes, inks[0].shape)
    return sum((ink & inside).sum() / ink.sum() >= 0.95 for ink in inks)


def summary(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"median {statistics.median(ms):6.0f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:6.0f} ms"


def real_files() -> list[tuple[str, np.ndarray]]:
    try:
        import pydicom
        from pydicom.data import get_testdata_file
        from pydicom.pixels import apply_color_lut
    except ImportError:
        return []
    images = []
    for name in ("OBXXXX1A.dcm", "OBXXXX1A_rle.dcm"):
        path = get_testdata_file(name, download=False)
        if path is None:
            return []
        ds = pydicom.dcmread(path)
        images.append((name, (apply_color_lut(ds.pixel_array, ds) >> 8).astype(np.uint8)))
    return images


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=20, help="synthetic scans per variant (default 20)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(subprocess.run(["tesseract", "--version"], capture_output=True, text=True).stdout.splitlines()[0])

    avoid = captions(OUTSIDE + INSIDE)
    floor, ours = [], []
    found = {"echoes off captions": [0, 0, 0], "echoes anywhere": [0, 0, 0]}
    speckle_boxes = bare_speckle_boxes = 0
    for seed in range(args.images):
        for variant, keep_out in (("echoes off captions", avoid), ("echoes anywhere", None)):
            image, inks = draw(scan(seed, avoid=keep_out), OUTSIDE + INSIDE)
            bare, seconds = bare_tesseract(image)
            floor.append(seconds)
            boxes, seconds = timed_find(image)
            ours.append(seconds)
            found[variant][0] += lines_found(boxes, inks)
            found[variant][1] += lines_found(bare, inks)
            found[variant][2] += len(inks)
        plain = scan(seed)
        bare, seconds = bare_tesseract(plain)
        floor.append(seconds)
        bare_speckle_boxes += len(bare)
        boxes, seconds = timed_find(plain)
        ours.append(seconds)
        speckle_boxes += len(boxes)

    print(f"\nsynthetic {scan(0).shape[1]}x{scan(0).shape[0]}, {len(ours)} images")
    print(f"  bare tesseract (floor): {summary(floor)}")
    print(f"  find_text:              {summary(ours)}")
    print(f"  ratio find_text/floor (medians): {statistics.median(ours) / statistics.median(floor):.2f}")
    for variant, (hit, bare_hit, total) in found.items():
        print(f"  caption lines covered >= 95 %, {variant}: {hit}/{total} (bare tesseract: {bare_hit}/{total})")
    print(f"  boxes on {args.images} captionless scans: {speckle_boxes} (bare tesseract words: {bare_speckle_boxes})")

    for name, rgb in real_files():
        boxes, seconds = timed_find(rgb)
        print(f"\n{name} {rgb.shape[1]}x{rgb.shape[0]}: {len(boxes)} boxes in {seconds * 1000:.0f} ms")


if __name__ == "__main__":
    main()
