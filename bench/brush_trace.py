"""Brush and eraser round trip (issue 9, part 2): how long one stroke takes in the browser's code.

    .venv/bin/python bench/brush_trace.py      # ~20 s; needs `node` (skips cleanly without it)

A stroke repaints the lesion into a mask (static/js/raster.js), adds or clears the stroke
(viewer-brush.js) and traces the mask back into rings (trace.js). The same JS modules the pages
load run here under Node (V8, Chromium's engine), on a large lesion of an 856x606 frame, for
strokes of growing size. Floor, measured in the same run on the same masks: OpenCV (C++), the
server's `cv2.findContours` (RETR_CCOMP, CHAIN_APPROX_SIMPLE) plus `fillPoly` of the lesion, that
is the work an equivalent server round trip would do without its HTTP request. Each result is
checked: the rings the JS traced rasterise (geometry.rasterise) to exactly the stroked mask.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from annotator import geometry  # noqa: E402
from bench.common import print_machine, wait_quiet, write_json  # noqa: E402

WIDTH, HEIGHT = 856, 606
HERE = Path(__file__).resolve().parent


def ellipse(cx: float, cy: float, rx: float, ry: float, n: int = 180) -> list[list[float]]:
    return [
        [round(cx + rx * math.cos(2 * math.pi * k / n), 1), round(cy + ry * math.sin(2 * math.pi * k / n), 1)]
        for k in range(n)
    ]


def line(a, b, n: int) -> list[list[float]]:
    return [[a[0] + (b[0] - a[0]) * k / (n - 1), a[1] + (b[1] - a[1]) * k / (n - 1)] for k in range(n)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    node = shutil.which("node")
    if not node:
        print("SKIP: no `node` on PATH (the JS modules run under Node here)")
        return 0
    print_machine()
    print(f"load before measuring: {wait_quiet():.2f}")
    lesion = {"points": ellipse(430, 300, 220, 160), "holes": []}
    strokes = {
        "small brush r=5, 30 px": {"points": line([640, 300], [670, 300], 8), "r": 5, "erase": False},
        "brush r=15 along the edge, 300 px": {"points": line([300, 140], [600, 140], 40), "r": 15, "erase": False},
        "eraser r=10, hole in the middle": {"points": [[430, 300]], "r": 10, "erase": True},
        "eraser r=8 splitting it, 340 px": {"points": line([430, 130], [430, 470], 50), "r": 8, "erase": True},
    }
    payload = {"lesion": lesion, "strokes": list(strokes.values()), "width": WIDTH, "height": HEIGHT}
    payload["repeat"] = args.repeat
    proc = subprocess.run([node, str(HERE / "brush_trace.mjs"), json.dumps(payload)], capture_output=True, check=True)
    results = json.loads(proc.stdout)
    figures = {}
    print(f"\n{'stroke':38} {'JS median':>10} {'JS p95':>8} {'OpenCV':>8}  pieces points  exact")
    for (name, _), r in zip(strokes.items(), results, strict=True):
        x0, y0, w, h = r["box"]
        mask = np.array(r["mask"], dtype=np.uint8).reshape(h, w)
        floor = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            frame = np.zeros((HEIGHT, WIDTH), dtype=np.uint8)
            cv2.fillPoly(frame, [np.rint(np.array(lesion["points"])).astype(np.int32)], 1)
            padded = cv2.copyMakeBorder(mask, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
            cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
            floor.append((time.perf_counter() - t0) * 1000)
        # The rings the JS traced, rasterised by the server, are the stroked mask itself.
        rgb = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
        rgb[y0 : y0 + h, x0 : x0 + w][mask > 0] = geometry.COLOURS["benign"]
        traced = geometry.extract_lesions(rgb)
        back = geometry.rasterise(traced.lesions, WIDTH, HEIGHT)[..., 1] > 0
        exact = bool((back[y0 : y0 + h, x0 : x0 + w] == (mask > 0)).all()) and len(traced.lesions) == r["pieces"]
        times = sorted(r["times"])
        p95 = times[min(len(times) - 1, math.ceil(0.95 * len(times)) - 1)]
        med = statistics.median(times)
        print(
            f"{name:38} {med:8.1f}ms {p95:6.1f}ms {statistics.median(floor):6.2f}ms"
            f"  {r['pieces']:>6} {r['points']:>6}  {exact}"
        )
        figures[name] = {
            "js_median_ms": med,
            "js_p95_ms": p95,
            "opencv_median_ms": statistics.median(floor),
            "pieces": r["pieces"],
            "points": r["points"],
            "exact": exact,
        }
    worst = max(f["js_p95_ms"] for f in figures.values())
    print(
        f"\nworst p95 {worst:.1f} ms per stroke (target: under a 60 Hz frame budget x3 = 50 ms): "
        f"{'met' if worst <= 50 else 'NOT met'}"
    )
    write_json(args.json, figures)
    return 0 if all(f["exact"] for f in figures.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
