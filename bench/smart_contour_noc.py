"""Interactions per lesion to reach Dice 0.90 (NoC@90) with the smart contour and its corrections.

    BUS_UCLM_RELEASE=/path/to/release .venv/bin/python bench/smart_contour_noc.py [--part test]
        [--release PATH] [--every 1] [--seed 0] [--target 0.90] [--max 20]
    .venv/bin/python bench/smart_contour_noc.py --sample ../shared/data/bus-uclm-sample

Measured as interactive segmentation papers do (e.g. RITM, Sofiiuk et al. 2022): a simulated
reader draws one loose box round the lesion (its bounding box plus 10..20 px per side, drawn
independently, fixed seed: the first interaction), then, while the proposal's Dice against the
reference is below the target, clicks once at the centre of the largest error region: the
error pixel farthest from the error region's border (distance transform, the image border
counted as border), an inside point if the proposal missed it, an outside point if it is a false
positive. Each click re-runs ``smart_contour.propose(gray, box=..., inside=..., outside=...)`` as
the endpoint does. A lesion not reached within ``--max`` interactions counts ``--max``.

Manual baseline, per lesion: the vertices a hand-drawn polygon needs for the same Dice, i.e. the
reference outline simplified with ``cv2.approxPolyDP`` at growing tolerance until its Dice drops
below the target; the smallest vertex count still at or above it.

Data: the ``--part`` patients ("tune" or "test", from ``../shared/data/bus-uclm-split.csv``) of
the full public BUS-UCLM release, found by ``--release`` or $BUS_UCLM_RELEASE (kept outside the
project; without it the script says so and exits 0), or with ``--sample`` the shared sample.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from smart_contour_dice import (  # noqa: E402
    Case,
    loose_boxes,
    release_cases,
    release_path,
    sample_cases,
)

from annotator import contour_net, geometry, smart_contour  # noqa: E402


def proposal_mask(case: Case, ring) -> np.ndarray:
    geometry.validate_ring(ring, case.width, case.height)
    return geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, ring), case.width, case.height)


def next_click(pred: np.ndarray, truth: np.ndarray) -> tuple[float, float, bool]:
    """(x, y, inside) at the centre of the largest error region (the farthest from its border)."""
    best = None
    for err, inside in ((truth & ~pred, True), (pred & ~truth, False)):
        padded = np.pad(err.astype(np.uint8), 1)
        depth = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
        d = float(depth.max())
        if d > 0 and (best is None or d > best[0]):
            y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
            best = (d, float(x), float(y), inside)
    if best is None:
        raise ValueError("no error left")
    return best[1], best[2], best[3]


def noc(case: Case, box, target: float, limit: int) -> tuple[int, float, list[float]]:
    """(interactions including the box, final Dice, ms per proposal) for one lesion."""
    truth = case.mask.astype(bool)
    inside: list[list[float]] = []
    outside: list[list[float]] = []
    times = []
    for n in range(1, limit + 1):
        t0 = time.perf_counter()
        ring = smart_contour.propose(case.gray, box=box, inside=inside, outside=outside)
        times.append((time.perf_counter() - t0) * 1000)
        pred = proposal_mask(case, ring).astype(bool)
        d = geometry.dice(pred, truth)
        if d >= target:
            return n, d, times
        x, y, is_inside = next_click(pred, truth)
        (inside if is_inside else outside).append([x, y])
    return limit, d, times


def manual_vertices(case: Case, target: float) -> int:
    """Fewest polygon vertices (reference outline simplified) that still reach ``target`` Dice."""
    ring = np.float32(case.lesion.points).reshape(-1, 1, 2)
    best = len(ring)
    eps = 0.25
    while eps < 200:
        simple = cv2.approxPolyDP(ring, eps, True).reshape(-1, 2)
        if len(simple) < 3:
            break
        mask = geometry.lesion_mask(geometry.Lesion(geometry.BENIGN, simple.tolist()), case.width, case.height)
        if geometry.dice(mask, case.mask) < target:
            break
        best = min(best, len(simple))
        eps *= 1.15
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--release", type=Path, default=None, help="the BUS-UCLM release (or $BUS_UCLM_RELEASE)")
    parser.add_argument("--part", choices=["tune", "test"], default="test")
    parser.add_argument("--sample", type=Path, default=None, help="measure on this sample folder instead")
    parser.add_argument("--every", type=int, default=1, help="keep every n-th lesion (quick runs)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--target", type=float, default=0.90)
    parser.add_argument("--max", type=int, default=20)
    args = parser.parse_args()

    if args.sample is not None:
        if not (args.sample / "masks").is_dir():
            print(f"no sample at {args.sample}: skipped")
            return
        cases, where = sample_cases(args.sample)[:: args.every], f"sample {args.sample}"
    else:
        release = release_path(args.release)
        if release is None:
            print("no BUS-UCLM release (give --release PATH or set BUS_UCLM_RELEASE): skipped")
            return
        cases, where = release_cases(release, args.part, every=args.every), f"release, {args.part} patients"
    load = os.getloadavg()[0]
    print(
        f"machine: {os.cpu_count()} cores (load {load:.2f} at start), Python {platform.python_version()}, "
        f"OpenCV {cv2.__version__}, {time.strftime('%Y-%m-%d %H:%M')}; {where}, {len(cases)} lesions, "
        f"margins 10-20 px, seed {args.seed}, target Dice {args.target:.2f}, max {args.max}"
    )
    net = contour_net.load()
    print(f"proposals: {'the network, ' + str(contour_net.MODEL) if net else 'the radial programme (no network)'}")
    rng = np.random.default_rng(args.seed)
    counts, manual, times = [], [], []
    for case in cases:
        box = loose_boxes(case, rng, 1)[0]
        n, _, ms = noc(case, box, args.target, args.max)
        counts.append(n)
        times += ms
        manual.append(manual_vertices(case, args.target))
    counts, manual, times = np.array(counts), np.array(manual), np.array(times)
    print()
    print("| method | mean NoC@90 | median | reached within 2 | not reached in max | ms/proposal (median, p95) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| box + correction clicks | {counts.mean():.2f} | {np.median(counts):.0f} | {np.mean(counts <= 2):.0%} "
        f"| {np.mean(counts >= args.max):.0%} | {np.median(times):.0f}, {np.percentile(times, 95):.0f} |"
    )
    print(
        f"| manual polygon (vertices) | {manual.mean():.2f} | {np.median(manual):.0f} "
        f"| {np.mean(manual <= 2):.0%} | - | - |"
    )


if __name__ == "__main__":
    main()
