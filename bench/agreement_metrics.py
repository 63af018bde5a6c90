"""Agreement metrics (issue 10): time per image of ``agreement.compare_layers`` on a BUS-UCLM-size set.

    .venv/bin/python bench/agreement_metrics.py [--images 683] [--seed 0] [--json FILE]   # ~1 min

No database, no Django: ``annotator.agreement`` is pure. Data: ``--images`` synthetic layer pairs
on 856x606 frames (the BUS-UCLM size), 1-3 lesions each (irregular blobs of 40-80 vertices, radius
15-120 px, a third with a hole, labels drawn at random), and a second layer perturbed from the
first as a second reader would: every vertex moved radially by up to ±8 % and the lesion shifted
by up to ±6 px; 10 % of lesions dropped (missed), 10 % of images gain a lesion (added), 10 % of
lesions change label. Pixel spacing anisotropic, x and y drawn from 0.06-0.12 mm each.

Per image, interleaved so that a busy machine slows all alike:
- floor: what the app computes today per approval, a Dice from the two layers, done the
  cheapest way: paint both layers' lesions into one boolean plane each from their boxes
  (``geometry.lesion_box``, OpenCV ``fillPoly``) and ``geometry.dice`` of the two planes;
- Dice alone: ``geometry.dice`` on the already rasterised masks;
- app: ``agreement.compare_layers`` (both rasterised, whole and per-label Dice/IoU, Hausdorff,
  HD95, ASSD in mm, the lesion matching and each match's distances), plus ``as_dict()``.
- for scale, medpy 0.5.2 (the tests' reference, if installed): ``hd``, ``hd95`` and ``assd`` of the
  two whole masks (distances only, no matching), on the masks rasterised beforehand.
The ratio is app / floor, medians. Every result is also checked to serialise with
``json.dumps(allow_nan=False)`` and its match counts against the perturbation's own bookkeeping.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from annotator import agreement, geometry  # noqa: E402
from annotator.geometry import BENIGN, LABELS, MALIGNANT, Lesion  # noqa: E402
from bench.common import percentile, print_machine, wait_quiet, write_json  # noqa: E402

W, H = 856, 606


def blob(rng: np.random.Generator, cx: float, cy: float, r: float, n: int, phase: float) -> np.ndarray:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    radius = r * (1 + 0.2 * np.sin(3 * t + phase) + 0.08 * np.sin(7 * t + 2 * phase))
    return np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)


def to_ring(points: np.ndarray) -> list[list[float]]:
    return np.clip(np.rint(points), [0, 0], [W - 1, H - 1]).tolist()


def make_pair(rng: np.random.Generator) -> tuple[list[Lesion], list[Lesion], int, int]:
    """(first layer, second layer, lesions dropped, lesions added)."""
    first: list[Lesion] = []
    second: list[Lesion] = []
    dropped = 0
    # Lesions in distinct thirds of the frame so that they do not overlap one another.
    slots = rng.permutation(3)[: int(rng.integers(1, 4))]
    for slot in slots:
        r = float(rng.uniform(15, 120 if len(slots) == 1 else 80))
        cx = float((slot + 0.5) * W / 3 + rng.uniform(-20, 20))
        cy = float(rng.uniform(r + 10, H - r - 10))
        n, phase = int(rng.integers(40, 81)), float(rng.uniform(0, 6))
        outer = blob(rng, cx, cy, r, n, phase)
        label = LABELS[int(rng.integers(0, 2))]
        holes = [to_ring(blob(rng, cx, cy, r / 4, 24, phase))] if rng.random() < 1 / 3 else []
        first.append(Lesion(label, to_ring(outer), holes))
        if rng.random() < 0.1:
            dropped += 1
            continue
        jitter = 1 + rng.uniform(-0.08, 0.08, size=(n, 1))
        shift = rng.uniform(-6, 6, size=2)
        moved = (outer - [cx, cy]) * jitter + [cx, cy] + shift
        new_label = label if rng.random() >= 0.1 else (MALIGNANT if label == BENIGN else BENIGN)
        second.append(Lesion(new_label, to_ring(moved), holes))
    added = 0
    free = [s for s in range(3) if s not in slots]
    if free and rng.random() < 0.1:
        added = 1
        cx = (free[0] + 0.5) * W / 3
        second.append(Lesion(BENIGN, to_ring(blob(rng, cx, H / 2, 30, 40, 0.0)), []))
    return first, second, dropped, added


def lesion_plane(lesions: list[Lesion]) -> np.ndarray:
    """Any lesion pixel, each lesion painted from its box (``geometry.lesion_box``, OpenCV): the
    cheapest way to the mask here (``rasterise`` then reading the RGB planes back is 2x slower)."""
    plane = np.zeros((H, W), dtype=bool)
    for lesion in lesions:
        placed = geometry.lesion_box(lesion, W, H)
        if placed is not None:
            x0, y0, box = placed
            plane[y0 : y0 + box.shape[0], x0 : x0 + box.shape[1]] |= box.view(bool)
    return plane


def floor(first: list[Lesion], second: list[Lesion]) -> float:
    return geometry.dice(lesion_plane(first), lesion_plane(second))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=683)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the raw figures to this file")
    args = parser.parse_args()

    print_machine()
    rng = np.random.default_rng(args.seed)
    pairs = [make_pair(rng) for _ in range(args.images)]
    spacings = [agreement.Spacing(float(rng.uniform(0.06, 0.12)), float(rng.uniform(0.06, 0.12))) for _ in pairs]
    lesions = sum(len(p[0]) + len(p[1]) for p in pairs)
    print(f"{args.images} image pairs {W}x{H}, {lesions} lesions in all")
    # Warm-up (imports, OpenCV and scipy first calls) on a few pairs, not measured.
    for (first, second, _, _), spacing in list(zip(pairs, spacings, strict=True))[:5]:
        floor(first, second)
        agreement.compare_layers(first, second, W, H, spacing)
    load = wait_quiet()

    t_floor: list[float] = []
    t_dice: list[float] = []
    t_app: list[float] = []
    t_medpy: list[float] = []
    try:
        from medpy.metric import binary as medpy_binary
    except ImportError:  # a dev dependency; the benchmark runs without it
        medpy_binary = None
    mismatched = 0
    start = time.perf_counter()
    for (first, second, dropped, added), spacing in zip(pairs, spacings, strict=True):
        t0 = time.perf_counter()
        floor(first, second)
        t1 = time.perf_counter()
        result = agreement.compare_layers(first, second, W, H, spacing).as_dict()
        t2 = time.perf_counter()
        t_floor.append(t1 - t0)
        t_app.append(t2 - t1)
        a, b = lesion_plane(first), lesion_plane(second)
        t3 = time.perf_counter()
        geometry.dice(a, b)
        t_dice.append(time.perf_counter() - t3)
        if medpy_binary is not None and a.any() and b.any():
            vs = (spacing.y_mm, spacing.x_mm)
            t4 = time.perf_counter()
            medpy_binary.hd(a, b, vs), medpy_binary.hd95(a, b, vs), medpy_binary.assd(a, b, vs)
            t_medpy.append(time.perf_counter() - t4)
        json.dumps(result, allow_nan=False)
        counts = result["lesions"]
        if (counts["missed_count"], counts["added_count"]) != (dropped, added):
            mismatched += 1
    wall = time.perf_counter() - start

    def ms(values: list[float]) -> dict[str, float]:
        return {
            "median": statistics.median(values) * 1e3,
            "p90": percentile(values, 90) * 1e3,
            "max": max(values) * 1e3,
            "mean": statistics.fmean(values) * 1e3,
        }

    rows = {"floor: paint both + Dice": ms(t_floor), "Dice alone": ms(t_dice), "compare_layers": ms(t_app)}
    if t_medpy:
        rows["medpy hd+hd95+assd, whole mask"] = ms(t_medpy)
    print(f"background load before the run: {load:.0%}; all measured in {wall:.1f} s")
    print(f"{'ms per image':32s} {'median':>8s} {'p90':>8s} {'max':>8s} {'mean':>8s}")
    for name, r in rows.items():
        print(f"{name:32s} {r['median']:8.2f} {r['p90']:8.2f} {r['max']:8.2f} {r['mean']:8.2f}")
    ratio = rows["compare_layers"]["median"] / rows["floor: paint both + Dice"]["median"]
    print(f"compare_layers / floor (medians): {ratio:.2f}x")
    print(f"all {args.images} images: {sum(t_app):.2f} s for compare_layers")
    print(f"missed/added counts equal to the perturbation's: {args.images - mismatched}/{args.images}")
    write_json(
        args.json,
        {"images": args.images, "load": load, "ms": rows, "ratio": ratio, "mismatched": mismatched},
    )


if __name__ == "__main__":
    main()
