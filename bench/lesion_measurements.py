"""Lesion measurements (issue 11): time per lesion of ``measurements.measure_lesion`` (area, longest
and perpendicular diameters), the cost the ``lesions`` export adds per lesion.

    .venv/bin/python bench/lesion_measurements.py [--lesions 2000] [--seed 0] [--json FILE]   # ~20 s

No database, no Django. Data: irregular blobs on 856x606 frames (the BUS-UCLM size) of 40-620
vertices (traced BUS-UCLM lesions have up to 619 points per layer), radius 15-200 px, anisotropic
spacing; plus a few contours at the per-ring cap (10,000 points), where the perpendicular
diameter is evaluated at ``MAX_STATIONS`` positions.

Per lesion, interleaved: floor = ``geometry.pixel_area`` (the pixel count the export already makes
per lesion); app = ``measurements.measure_lesion`` (the same count plus the diameters). The ratio is
app / floor, medians.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from annotator import geometry, measurements  # noqa: E402
from bench.common import percentile, print_machine, write_json  # noqa: E402

W, H = 856, 606


def blob(rng: np.random.Generator, n: int) -> list[list[float]]:
    r = rng.uniform(15, 200)
    cx, cy = rng.uniform(r + 5, W - r - 5), rng.uniform(min(r + 5, H / 2), max(H - r - 5, H / 2))
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    phase = rng.uniform(0, 6.28)
    radius = r * (1 + 0.2 * np.sin(3 * t + phase) + 0.08 * np.sin(7 * t + 2 * phase))
    pts = np.stack([cx + radius * np.cos(t), cy + radius * np.sin(t)], axis=1)
    return np.clip(pts, [0, 0], [W - 1, H - 1]).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json")
    args = parser.parse_args()
    print_machine()
    rng = np.random.default_rng(args.seed)
    spacing = measurements.Spacing(0.08, 0.11)
    floor, app = [], []
    for _ in range(args.lesions):
        lesion = geometry.Lesion("benign", blob(rng, int(rng.integers(40, 621))))
        t0 = time.perf_counter()
        geometry.pixel_area(lesion, W, H)
        t1 = time.perf_counter()
        measurements.measure_lesion(lesion, W, H, spacing)
        t2 = time.perf_counter()
        floor.append((t1 - t0) * 1000)
        app.append((t2 - t1) * 1000)
    big = []
    for _ in range(5):
        lesion = geometry.Lesion("benign", blob(rng, geometry.MAX_POINTS_PER_RING))
        t0 = time.perf_counter()
        measurements.measure_lesion(lesion, W, H, spacing)
        big.append((time.perf_counter() - t0) * 1000)
    result = {
        "lesions": args.lesions,
        "floor_ms_median": statistics.median(floor),
        "app_ms_median": statistics.median(app),
        "app_ms_p95": percentile(app, 95),
        "ratio_median": statistics.median(app) / statistics.median(floor),
        "cap_10000_points_ms_median": statistics.median(big),
    }
    print(f"lesions of 40-620 points: floor (pixel_area) median {result['floor_ms_median']:.3f} ms")
    print(f"  measure_lesion median {result['app_ms_median']:.3f} ms, p95 {result['app_ms_p95']:.3f} ms")
    print(f"  ratio app / floor {result['ratio_median']:.2f}x")
    print(f"a ring at the 10,000-point cap: median {result['cap_10000_points_ms_median']:.0f} ms")
    write_json(args.json, result)


if __name__ == "__main__":
    main()
