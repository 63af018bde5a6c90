"""DICOM read + decode + PNG encode throughput of annotator.dicom, next to a floor measured in the same run.

    .venv/bin/python bench/dicom_decode.py [--rounds 5] [--json FILE]

Data: the ultrasound files that pydicom and the pydicom-data wheel ship (native, big endian, RLE,
JPEG Baseline 120- and 30-frame cines, JPEG Lossless, JPEG 2000 lossless and lossy, 8- and 16-bit
palette), read from memory. No database, no Django.

- app: ``read_dicom`` (content check and every header refusal), ``key_frame_index``,
  ``decode_frame`` (to 8-bit RGB), ``header_summary`` (allow-list and calibration), ``has_colour``
  over the crop, then the PNG encoding the importer will store (OpenCV, level 1 like the floor).
- floor: plain pydicom: ``dcmread``, ``pydicom.pixels.pixel_array(ds, index=key frame)``, the
  palette LUT or grey-to-RGB, and the same PNG encoding. No checks, no summary.

Also: one key frame of the 120-frame cine against pydicom's ``ds.pixel_array`` (all frames), the
cost the frame selection avoids.
"""

from __future__ import annotations

import argparse
import sys
import time
from io import BytesIO
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pydicom  # noqa: E402
from pydicom import examples  # noqa: E402
from pydicom.data import get_testdata_file  # noqa: E402
from pydicom.pixels import apply_color_lut  # noqa: E402

from annotator import dicom  # noqa: E402
from bench.common import print_machine, verdict, wait_quiet, write_json  # noqa: E402

TARGET_RATIO = 0.5
FILES = [
    "OBXXXX1A.dcm",
    "OBXXXX1A_expb.dcm",
    "OBXXXX1A_rle.dcm",
    "JPGLosslessP14SV1_1s_1f_8b.dcm",
    "gdcm-US-ALOKA-16.dcm",
    "US1_UNCR.dcm",
    "US1_J2KR.dcm",
    "US1_J2KI.dcm",
    "color3d_jpeg_baseline.dcm",
]
PNG = [cv2.IMWRITE_PNG_COMPRESSION, 1]


def load() -> dict[str, bytes]:
    data = {name: Path(get_testdata_file(name, download=False)).read_bytes() for name in FILES}
    for name in ("ybr_color", "palette_color"):
        data[name] = Path(examples.get_path(name)).read_bytes()
    return data


def app(data: bytes) -> int:
    ds = dicom.read_dicom(data)
    index = dicom.key_frame_index(ds)
    rgb = dicom.decode_frame(ds, index)
    summary = dicom.header_summary(ds, frame_index=index)
    dicom.has_colour(rgb, tuple(summary["crop"]) if summary["crop"] else None)
    ok, png = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), PNG)
    return len(png)


def floor(data: bytes) -> int:
    ds = pydicom.dcmread(BytesIO(data))
    frames = int(ds.get("NumberOfFrames") or 1)
    array = pydicom.pixels.pixel_array(ds, index=(frames - 1) // 2)
    if ds.PhotometricInterpretation == "PALETTE COLOR":
        array = apply_color_lut(array, ds)
        if array.dtype != np.uint8:
            array = (array >> 8).astype(np.uint8)
    elif array.ndim == 2:
        array = np.repeat(array[:, :, np.newaxis], 3, axis=2)
    ok, png = cv2.imencode(".png", cv2.cvtColor(array, cv2.COLOR_RGB2BGR), PNG)
    return len(png)


def timed(function, files: dict[str, bytes], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for data in files.values():
            function(data)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json")
    args = parser.parse_args()
    print_machine()
    files = load()
    for function in (app, floor):  # warm-up: imports, decoder plug-in discovery
        timed(function, files, 1)
    wait_quiet()
    # Alternate so a burst of load from other processes hits both sides alike.
    app_s = floor_s = 0.0
    for _ in range(args.rounds):
        floor_s += timed(floor, files, 1)
        app_s += timed(app, files, 1)
    count = len(files) * args.rounds
    app_rate, floor_rate = count / app_s, count / floor_s
    ratio = app_rate / floor_rate
    print(f"{len(files)} files x {args.rounds} rounds = {count} images")
    print(f"floor: {floor_rate:7.1f} images/s  {1000 * floor_s / count:6.1f} ms/image")
    print(f"app:   {app_rate:7.1f} images/s  {1000 * app_s / count:6.1f} ms/image")
    print(f"app / floor: {ratio:.2f}x (target >= {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)})")

    cine = files["color3d_jpeg_baseline.dcm"]
    started = time.perf_counter()
    ds = dicom.read_dicom(cine)
    dicom.decode_frame(ds, dicom.key_frame_index(ds))
    one = time.perf_counter() - started
    started = time.perf_counter()
    frames = pydicom.dcmread(BytesIO(cine)).pixel_array
    every = time.perf_counter() - started
    assert frames.shape[0] == 120
    print(f"120-frame cine: key frame {1000 * one:.0f} ms, all frames (ds.pixel_array) {1000 * every:.0f} ms")
    write_json(
        args.json,
        {
            "images": count,
            "app_images_per_s": app_rate,
            "floor_images_per_s": floor_rate,
            "ratio": ratio,
            "cine_key_frame_ms": 1000 * one,
            "cine_all_frames_ms": 1000 * every,
        },
    )


if __name__ == "__main__":
    main()
