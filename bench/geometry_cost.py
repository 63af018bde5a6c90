"""Geometry cost (issue 7, defects 1 and 7): the crossing check, rasterising and tracing, old vs new.

    .venv/bin/python bench/geometry_cost.py            # ~3 min, most of it the old code
    .venv/bin/python bench/geometry_cost.py --quick    # smaller frames (~30 s)

No database, no Django: ``annotator.geometry`` is pure. The old code is kept below, verbatim, as
the reference measured in the same run, and every comparison also checks that both give the
same answer (the same verdict, the same pixels, the same lesions).

(a) The self-crossing check on 10,000-point rings (``MAX_POINTS_PER_RING``): a circle (points
    to 1/100 pixel), a zig-zag whose edges span the image 1/10 pixel apart (every edge's box
    overlaps every other's), a tight spiral, and a staircase path traced forth and back along
    the same pixels (collinear overlaps everywhere, as traced outlines of thin necks). Old: the
    quadratic pair test; new: ``geometry.find_crossing``. Then ``validate_lesions`` on a layer at
    ``MAX_POINTS_PER_LAYER`` (ten such zig-zags), the most one request can ask for.
(b) Rasterise + PNG encode (``encode_png``'s settings), as ``mask.png`` and the export do:
    500 lesions on a 36-Mpx frame (6000x6000) and on a frame at the default pixel limit; and
    a 2000x2000 mask of 10,000 small components traced (``extract_lesions``) and rasterised
    back, as an import followed by an export does. Old: a full-frame mask per lesion and one
    contour trace per component; new: each lesion in its bounding box, one trace per colour.
    Last, the worst case for the box method at the default pixel limit: 500 nested rings with
    holes, each box near the whole frame.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from annotator import geometry  # noqa: E402
from annotator.geometry import BENIGN, MALIGNANT, Lesion  # noqa: E402
from bench.common import background_load, print_machine, wait_quiet, write_json  # noqa: E402
from bench.reference_geometry import brute_force_crossing as old_find_crossing  # noqa: E402
from bench.reference_geometry import old_extract_lesions, old_rasterise  # noqa: E402

# busreview/settings.py MAX_IMAGE_PIXELS defaults to this frame's pixels (a 4K UHD capture).
LIMIT_FRAME = (3840, 2160)


def encode_png(rgb: np.ndarray) -> bytes:
    """``annotator.exporting.base.encode_png``, copied so that the benchmark needs no Django."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    assert ok
    return buf.tobytes()


# --- the old code, verbatim (the reference) ---------------------------------------------------


# --- inputs -----------------------------------------------------------------------------------

N = geometry.MAX_POINTS_PER_RING


def circle_ring(n: int = N) -> list[list[float]]:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.c_[428 + 400 * np.cos(t), 303 + 300 * np.sin(t)].round(2).tolist()


def zigzag_ring(n: int = N) -> list[list[float]]:
    """Edges spanning 10..800 px, 0.1 px apart: every edge's box overlaps every other's."""
    zig = [[10.0 if i % 2 == 0 else 800.0, 5 + i * 0.1] for i in range(n - 3)]
    return [*zig, [805.0, zig[-1][1] + 1], [805.0, 2.0], [5.0, 2.0]]


def spiral_ring(n: int = N) -> list[list[float]]:
    """A spiral out and back in, its turns 0.4 px apart (a ring with 2 x 12 close turns)."""
    half = n // 2
    t = np.linspace(0, 12 * 2 * np.pi, half)
    r_out = 20 + 0.8 * t / (2 * np.pi) * 1.0 + 0.4 * t / (2 * np.pi)
    out = np.c_[428 + r_out * np.cos(t), 303 + r_out * np.sin(t)]
    back = np.c_[428 + (r_out - 0.4) * np.cos(t), 303 + (r_out - 0.4) * np.sin(t)][::-1]
    return np.r_[out, back].round(3).tolist()


def back_and_forth_ring(n: int = N) -> list[list[int]]:
    """A serpentine pixel path (one-pixel steps, rows 2 px apart) traced there and back along the
    same pixels: every edge overlaps its return edge, as traced outlines of thin necks do."""
    path: list[list[int]] = []
    row = 0
    while len(path) < n // 2:
        xs = range(10, 410) if row % 2 == 0 else range(409, 9, -1)
        for x in xs:
            path.append([x, 10 + 2 * row])
        path.append([path[-1][0], 11 + 2 * row])  # the step down to the next row
        row += 1
    path = path[: n // 2 + 1]
    return path + path[-2:0:-1]


def blob_lesions(rng: np.random.Generator, count: int, width: int, height: int) -> list[Lesion]:
    """Lesions of 40-120 px with 48-point outlines, a third with a hole, both labels, overlapping."""
    lesions = []
    t = np.linspace(0, 2 * np.pi, 48, endpoint=False)
    for k in range(count):
        cx, cy = rng.integers(150, width - 150), rng.integers(150, height - 150)
        r = rng.integers(40, 120) * (1 + 0.15 * np.sin(3 * t + k))
        outer = np.c_[cx + r * np.cos(t), cy + r * np.sin(t)].round(2).tolist()
        holes = []
        if k % 3 == 0:
            holes.append(np.c_[cx + 0.3 * r * np.cos(t), cy + 0.3 * r * np.sin(t)].round(2).tolist())
        lesions.append(Lesion([BENIGN, MALIGNANT][k % 2], outer, holes))
    return lesions


def speckled_mask(width: int, height: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` small components (2x2 to 5x5 squares and plus shapes), both colours."""
    mask = np.zeros((height, width, 3), np.uint8)
    cols = int(np.ceil(np.sqrt(count * width / height)))
    rows = int(np.ceil(count / cols))
    sx, sy = width // cols, height // rows
    for k in range(count):
        x, y = (k % cols) * sx + 2, (k // cols) * sy + 2
        s = int(rng.integers(2, 6))
        colour = [(0, 255, 0), (255, 0, 0)][k % 2]
        mask[y : y + s, x : x + s] = colour
        if k % 4 == 0:
            mask[y + s : y + s + 2, x + 1] = colour
    return mask


def nested_rings(count: int, width: int, height: int) -> list[Lesion]:
    """``count`` concentric square rings, each a lesion with a hole: every box near the frame."""
    lesions = []
    cx, cy = width // 2, height // 2
    step = min(width, height) // (2 * count + 2)
    for k in range(count):
        r = min(width, height) // 2 - 1 - k * step
        inner = r - max(step // 2, 1)
        if inner < 2:
            break
        square = [[cx - r, cy - r], [cx + r, cy - r], [cx + r, cy + r], [cx - r, cy + r]]
        hole = [[cx - inner, cy - inner], [cx + inner, cy - inner], [cx + inner, cy + inner], [cx - inner, cy + inner]]
        lesions.append(Lesion([BENIGN, MALIGNANT][k % 2], square, [hole]))
    return lesions


# --- measuring --------------------------------------------------------------------------------


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, object]:
    """Median wall time of ``repeat`` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def crossing_section(results: dict) -> None:
    print("\n(a) self-crossing check, 10,000-point rings (old: quadratic pair test, measured once)")
    print(f"  {'ring':<28}{'old s':>9}{'new ms':>9}{'old/new':>9}  verdicts")
    rings = {
        "circle": circle_ring(),
        "zig-zag 0.1 px apart": zigzag_ring(),
        "spiral, turns 0.4 px apart": spiral_ring(),
        "traced forth and back": back_and_forth_ring(),
    }
    for name, ring in rings.items():
        assert len(ring) <= N, name
        old_s, old_r = timed(lambda ring=ring: old_find_crossing(ring), 1)
        new_s, new_r = timed(lambda ring=ring: geometry.find_crossing(ring), 5)
        same = (old_r is None) == (new_r is None)
        verdict = "valid" if new_r is None else "crossing"
        print(f"  {name:<28}{old_s:>9.2f}{new_s * 1000:>9.1f}{old_s / new_s:>8.0f}x  {verdict}, same: {same}")
        results["crossing"][name] = {"points": len(ring), "old_s": old_s, "new_s": new_s, "same_verdict": same}
    layer = [{"label": BENIGN, "points": zigzag_ring()} for _ in range(geometry.MAX_POINTS_PER_LAYER // N)]
    layer_s, lesions = timed(lambda: geometry.validate_lesions(layer, 856, 1200), 3)
    points = sum(len(les.points) for les in lesions)
    print(
        f"  validate_lesions, a layer at the cap ({points:,} points, {len(lesions)} zig-zags): "
        f"{layer_s:.2f} s (the old check: ~{len(lesions)} x the zig-zag's)"
    )
    results["layer_at_cap"] = {"points": points, "validate_s": layer_s}


def raster_case(name: str, lesions: list[Lesion], width: int, height: int, results: dict, old: bool = True) -> None:
    def new() -> bytes:
        return encode_png(geometry.rasterise(lesions, width, height))

    new_s, new_png = timed(new, 3)
    row = {"lesions": len(lesions), "width": width, "height": height, "new_s": new_s}
    if old:
        old_s, old_png = timed(lambda: encode_png(old_rasterise(lesions, width, height)), 1)
        same = old_png == new_png
        row.update(old_s=old_s, same_png=same)
        print(f"  {name:<44}{old_s:>9.2f}{new_s:>9.2f}{old_s / new_s:>8.1f}x  same PNG: {same}")
    else:
        print(f"  {name:<44}{'-':>9}{new_s:>9.2f}{'':>9}")
    results["raster"][name] = row


def raster_section(results: dict, quick: bool) -> None:
    rng = np.random.default_rng(7)
    big = (2000, 2000) if quick else (6000, 6000)
    lw, lh = LIMIT_FRAME
    print("\n(b) rasterise + PNG encode (old: a full-frame mask per lesion, measured once)")
    print(f"  {'case':<44}{'old s':>9}{'new s':>9}{'old/new':>9}")
    raster_case(f"500 lesions, {big[0]}x{big[1]}", blob_lesions(rng, 500, *big), *big, results=results)
    raster_case(f"500 lesions, {lw}x{lh} (default limit)", blob_lesions(rng, 500, lw, lh), lw, lh, results)
    mask = speckled_mask(2000, 2000, 2_000 if quick else 10_000, rng)
    old_s, old_reading = timed(lambda: old_extract_lesions(mask), 1)
    new_s, reading = timed(lambda: geometry.extract_lesions(mask), 3)
    same = old_reading == reading
    print(
        f"  {'trace ' + format(len(reading.lesions), ',') + ' components, 2000x2000':<44}"
        f"{old_s:>9.2f}{new_s:>9.2f}{old_s / new_s:>8.1f}x  same lesions: {same}"
    )
    results["raster"]["trace components"] = {"lesions": len(reading.lesions), "old_s": old_s, "new_s": new_s}
    raster_case(f"rasterise those {len(reading.lesions):,}, 2000x2000", reading.lesions, 2000, 2000, results)
    raster_case(
        f"worst: 500 nested rings with holes, {lw}x{lh}",
        nested_rings(500, lw, lh),
        lw,
        lh,
        results,
        old=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller frames, for a trial run")
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()
    print_machine()
    results: dict = {"crossing": {}, "raster": {}}
    results["load_before"] = wait_quiet()
    crossing_section(results)
    raster_section(results, args.quick)
    results["load_after"] = background_load()
    print(f"\nother processes used {results['load_after']:.0%} of the machine just after the run")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
