"""Blind double reading: time per image of what an adjudicator's page costs the server.

    .venv/bin/python bench/adjudication.py [--images 200] [--seed 0]   # ~1 min

No database, no Django. The layer pairs are bench/agreement_metrics.py's (856x606, 1-3 irregular
lesions, a third with holes, the second reading perturbed as a second reader would draw it).

Per image, interleaved:
- floor: rasterise both readings (``geometry.rasterise``, what any mask-based work needs first);
- combine: ``adjudication.combine`` for the union and for the intersection (rasterise, combine,
  trace back with ``geometry.extract_lesions``), each result checked with ``geometry.validate_lesions``;
- agreement: ``agreement.compare_layers(...).as_dict()``, what the image detail of an image in
  adjudication adds (computed per request, not stored: an adjudication is looked at a few times).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

from annotator import adjudication, agreement, geometry  # noqa: E402
from bench.agreement_metrics import H, W, make_pair  # noqa: E402
from bench.common import percentile, print_machine  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    pairs = [make_pair(rng)[:2] for _ in range(args.images)]
    times: dict[str, list[float]] = {"floor": [], "union": [], "intersection": [], "agreement": []}
    for first, second in pairs:
        t0 = time.perf_counter()
        geometry.rasterise(first, W, H)
        geometry.rasterise(second, W, H)
        times["floor"].append(time.perf_counter() - t0)
        for operation in adjudication.OPERATIONS:
            t0 = time.perf_counter()
            result = adjudication.combine(first, second, W, H, operation)
            times[operation].append(time.perf_counter() - t0)
            raw = [{"label": les.label, "points": les.points, "holes": les.holes} for les in result.lesions]
            geometry.validate_lesions(raw, W, H)
        t0 = time.perf_counter()
        agreement.compare_layers(first, second, W, H).as_dict()
        times["agreement"].append(time.perf_counter() - t0)
    print_machine()
    floor = statistics.median(times["floor"])
    print(f"{args.images} reading pairs, {W}x{H}")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:<13} median {median * 1000:7.2f} ms  p95 {percentile(values, 95) * 1000:7.2f} ms"
            f"  ({median / floor:.2f}x the floor)"
        )


if __name__ == "__main__":
    main()
