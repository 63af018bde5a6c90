"""The geometry code as it was before issue 7 (kept verbatim): the reference that
``tests/test_geometry_cost.py`` checks the new code against and ``bench/geometry_cost.py`` times.

``brute_force_crossing`` is the O(n^2) pair test; ``old_rasterise`` paints a full-frame mask per
lesion; ``old_extract_lesions`` traces one component at a time.
"""

from __future__ import annotations

import cv2
import numpy as np

from annotator import geometry
from annotator.geometry import Lesion


def brute_force_crossing(points):
    """Every pair of non-adjacent edges, tested for a proper crossing (the O(n^2) original)."""
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if n < 4:
        return None
    a = p
    b = np.roll(p, -1, axis=0)
    lo = np.minimum(a, b)
    hi = np.maximum(a, b)
    for i in range(n - 2):
        js = np.arange(i + 2, n if i > 0 else n - 1)
        if js.size == 0:
            continue
        overlap = (lo[js, 0] <= hi[i, 0]) & (hi[js, 0] >= lo[i, 0]) & (lo[js, 1] <= hi[i, 1]) & (hi[js, 1] >= lo[i, 1])
        js = js[overlap]
        if js.size == 0:
            continue
        d1 = _orient(a[i], b[i], a[js])
        d2 = _orient(a[i], b[i], b[js])
        d3 = _orient_many(a[js], b[js], a[i])
        d4 = _orient_many(a[js], b[js], b[i])
        proper = (d1 * d2 < 0) & (d3 * d4 < 0)
        if proper.any():
            return i, int(js[np.argmax(proper)])
    return None


def _orient(p, q, r):
    return np.sign((q[0] - p[0]) * (r[:, 1] - p[1]) - (q[1] - p[1]) * (r[:, 0] - p[0]))


def _orient_many(p, q, r):
    return np.sign((q[:, 0] - p[:, 0]) * (r[1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[0] - p[:, 0]))


def old_lesion_mask(les, width, height):
    """The lesion's mask as the code before the box change made it (kept verbatim): the box of
    the outer ring, placed into a full-frame mask."""
    mask = np.zeros((height, width), dtype=np.uint8)
    outer = np.rint(np.asarray(les.points, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)
    x0, y0 = outer[:, 0, 0].min(), outer[:, 0, 1].min()
    x1, y1 = outer[:, 0, 0].max(), outer[:, 0, 1].max()
    box = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    offset = np.array([x0, y0], dtype=np.int32)
    cv2.fillPoly(box, [outer - offset], 1, lineType=cv2.LINE_8)
    if les.holes:
        holes = [
            np.rint(np.asarray(h, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2) - offset for h in les.holes
        ]
        cv2.fillPoly(box, holes, 0, lineType=cv2.LINE_8)
        cv2.polylines(box, holes, isClosed=True, color=1, thickness=1, lineType=cv2.LINE_8)
        outer_only = np.zeros_like(box)
        cv2.fillPoly(outer_only, [outer - offset], 1, lineType=cv2.LINE_8)
        box &= outer_only
    mask[y0 : y1 + 1, x0 : x1 + 1] = box
    return mask


def old_rasterise(lesions, width, height):
    """One full-frame mask per lesion, as before (kept verbatim)."""
    rgb = np.zeros((height, width, 3), np.uint8)
    for label in geometry.PAINT_ORDER:
        for les in lesions:
            if les.label == label:
                rgb[old_lesion_mask(les, width, height).astype(bool)] = geometry.COLOURS[label]
    return rgb


def old_extract_lesions(rgb):
    """One contour trace per component, as before (kept verbatim): the reference."""
    planes, other = geometry.colour_planes(rgb)
    lesions, specks = [], []
    for label in geometry.LABELS:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(planes[label].astype(np.uint8), connectivity=8)
        for comp in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[comp])
            box = np.zeros((h + 2, w + 2), dtype=np.uint8)
            box[1:-1, 1:-1] = labels[y : y + h, x : x + w] == comp
            contours, hierarchy = cv2.findContours(box, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
            shift = np.array([x - 1, y - 1])
            outer, holes = None, []
            for contour, (_, _, _, parent) in zip(contours, hierarchy[0], strict=True):
                ring = (contour.reshape(-1, 2) + shift).tolist()
                if parent < 0:
                    outer = ring
                else:
                    holes.append(ring)
            if outer is None or len(outer) < 3:
                specks.append((label, x, y, area))
                continue
            lesions.append(Lesion(label=label, points=outer, holes=holes))
    lesions.sort(
        key=lambda les: (
            geometry.LABELS.index(les.label),
            min(p[1] for p in les.points),
            min(p[0] for p in les.points),
        )
    )
    return geometry.MaskReading(lesions=lesions, other_pixels=other, dropped_specks=specks)
