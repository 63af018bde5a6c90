"""Lesion geometry: validation, rasterisation, contour extraction, areas and overlap.

Pure functions on numpy arrays and plain lists; no Django. Coordinates are image pixels:
x to the right, y down, a point at (x, y) is the centre of pixel column x, row y.

Conventions (they make mask -> contours -> mask pixel-identical):
- A lesion is an outer ring plus optional hole rings. A ring is a list of [x, y] points.
- Rasterising a ring paints every pixel whose centre lies inside the polygon or on its edges
  (OpenCV ``fillPoly`` on rounded vertices, no anti-aliasing).
- A hole ring is the inner border of the lesion (the lesion pixels around the hole, as OpenCV's
  contour tracer returns it): its inside is cleared, its border stays painted.
- Extraction returns one lesion per 8-connected component of one colour, holes kept.
- Malignant is painted over benign where the two overlap.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

BENIGN = "benign"
MALIGNANT = "malignant"
LABELS = (BENIGN, MALIGNANT)
COLOURS: dict[str, tuple[int, int, int]] = {BENIGN: (0, 255, 0), MALIGNANT: (255, 0, 0)}
# Painting order: later wins where lesions overlap.
PAINT_ORDER = (BENIGN, MALIGNANT)

MAX_POINTS_PER_RING = 10_000
MAX_HOLES = 10_000
MAX_LESIONS = 500  # per image
MAX_POINTS_PER_LAYER = 100_000  # all rings of all lesions of one image together

Ring = list[list[float]]


class ContourError(ValueError):
    """A contour breaks one of the validation rules; the message says which and where."""

    def __init__(self, rule: str, message: str, index: int | None = None):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.index = index  # the lesion, for errors about one lesion


@dataclass
class Lesion:
    label: str
    points: Ring
    holes: list[Ring] = field(default_factory=list)


# --- validation -------------------------------------------------------------------------------


def validate_ring(ring: object, width: int, height: int, *, what: str = "contour") -> Ring:
    """Return the ring as a list of [float, float] or raise ContourError naming the rule."""
    if not isinstance(ring, (list, tuple)):
        raise ContourError("format", f"{what} must be a list of [x, y] points")
    if len(ring) > MAX_POINTS_PER_RING:
        raise ContourError("too_many_points", f"{what} has {len(ring)} points; at most {MAX_POINTS_PER_RING} allowed")
    points: Ring = []
    for i, p in enumerate(ring):
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise ContourError("format", f"{what} point {i} must be a pair [x, y]")
        x, y = p
        if isinstance(x, bool) or isinstance(y, bool) or not all(isinstance(v, (int, float)) for v in (x, y)):
            raise ContourError("format", f"{what} point {i} must hold two numbers")
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ContourError("not_finite", f"{what} point {i} is not a finite number")
        if not (0 <= x <= width - 1 and 0 <= y <= height - 1):
            raise ContourError(
                "out_of_bounds",
                f"{what} point {i} ({x:g}, {y:g}) is outside the image (0..{width - 1}, 0..{height - 1})",
            )
        points.append([float(x), float(y)])
    # A closing point equal to the first is accepted and dropped.
    if len(points) > 1 and points[0] == points[-1]:
        points.pop()
    if len(points) < 3:
        raise ContourError("too_few_points", f"{what} needs at least 3 points, got {len(points)}")
    crossing = find_crossing(points)
    if crossing is not None:
        i, j = crossing
        raise ContourError("self_intersecting", f"{what} crosses itself: edge {i} crosses edge {j}")
    return points


def validate_lesion(data: object, width: int, height: int, *, index: int = 0) -> Lesion:
    """Validate one lesion given as {"label", "points", "holes"?}."""
    what = f"lesion {index}"
    if not isinstance(data, dict):
        raise ContourError("format", f"{what} must be an object with label and points")
    label = data.get("label")
    if label not in LABELS:
        raise ContourError("label", f"{what} label must be one of {', '.join(LABELS)}, got {label!r}")
    points = validate_ring(data.get("points"), width, height, what=f"{what} contour")
    holes_in = data.get("holes") or []
    if not isinstance(holes_in, (list, tuple)) or len(holes_in) > MAX_HOLES:
        raise ContourError("format", f"{what} holes must be a list of at most {MAX_HOLES} rings")
    holes = [validate_ring(h, width, height, what=f"{what} hole {k}") for k, h in enumerate(holes_in)]
    return Lesion(label=label, points=points, holes=holes)


def validate_lesions(raw: object, width: int, height: int) -> list[Lesion]:
    """Validate a layer's lesions, refusing oversized documents before any point is parsed."""
    if not isinstance(raw, list):
        raise ContourError("format", "lesions must be a list")
    if len(raw) > MAX_LESIONS:
        raise ContourError("too_many_lesions", f"at most {MAX_LESIONS} lesions per image, got {len(raw)}")
    total = 0
    for item in raw:
        if isinstance(item, dict):
            for ring in (
                [item.get("points"), *(item.get("holes") or [])] if isinstance(item.get("holes") or [], list) else []
            ):
                total += len(ring) if isinstance(ring, list) else 0
    if total > MAX_POINTS_PER_LAYER:
        raise ContourError("too_many_points", f"{total} points in all; at most {MAX_POINTS_PER_LAYER} per image")
    lesions = []
    for i, item in enumerate(raw):
        try:
            lesions.append(validate_lesion(item, width, height, index=i))
        except ContourError as e:
            e.index = i
            raise
    return lesions


def find_crossing(points: Sequence[Sequence[float]]) -> tuple[int, int] | None:
    """First pair of non-adjacent edges that properly cross, or None.

    Touching (a vertex on another edge, or overlapping collinear edges) is allowed: traced pixel
    outlines of thin necks revisit the same pixels, and they rasterise correctly.
    """
    p = np.asarray(points, dtype=np.float64)
    n = len(p)
    if n < 4:
        return None
    a = p
    b = np.roll(p, -1, axis=0)
    # Bounding boxes of each edge, to prune pairs cheaply before the exact test.
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


def _orient(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.sign((q[0] - p[0]) * (r[:, 1] - p[1]) - (q[1] - p[1]) * (r[:, 0] - p[0]))


def _orient_many(p: np.ndarray, q: np.ndarray, r: np.ndarray) -> np.ndarray:
    return np.sign((q[:, 0] - p[:, 0]) * (r[1] - p[:, 1]) - (q[:, 1] - p[:, 1]) * (r[0] - p[:, 0]))


# --- rasterisation ----------------------------------------------------------------------------


def _int_ring(ring: Sequence[Sequence[float]]) -> np.ndarray:
    return np.rint(np.asarray(ring, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)


def lesion_mask(lesion: Lesion, width: int, height: int) -> np.ndarray:
    """Binary mask (uint8 0/1, height x width) of one lesion."""
    mask = np.zeros((height, width), dtype=np.uint8)
    outer = _int_ring(lesion.points)
    x0, y0 = outer[:, 0, 0].min(), outer[:, 0, 1].min()
    x1, y1 = outer[:, 0, 0].max(), outer[:, 0, 1].max()
    # Work in the lesion's bounding box: a few lesions on a 856x606 image cost little either way,
    # but thousands per export add up.
    box = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    offset = np.array([x0, y0], dtype=np.int32)
    cv2.fillPoly(box, [outer - offset], 1, lineType=cv2.LINE_8)
    if lesion.holes:
        holes = [_int_ring(h) - offset for h in lesion.holes]
        cv2.fillPoly(box, holes, 0, lineType=cv2.LINE_8)
        cv2.polylines(box, holes, isClosed=True, color=1, thickness=1, lineType=cv2.LINE_8)
        # A hole ring may reach outside the outer ring only by a malformed input; clip to it.
        outer_only = np.zeros_like(box)
        cv2.fillPoly(outer_only, [outer - offset], 1, lineType=cv2.LINE_8)
        box &= outer_only
    mask[y0 : y1 + 1, x0 : x1 + 1] = box
    return mask


def rasterise(lesions: Iterable[Lesion], width: int, height: int) -> np.ndarray:
    """RGB mask (height x width x 3, uint8) in the BUS-UCLM colours."""
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    by_label: dict[str, list[Lesion]] = {label: [] for label in PAINT_ORDER}
    for lesion in lesions:
        by_label[lesion.label].append(lesion)
    for label in PAINT_ORDER:
        for lesion in by_label[label]:
            rgb[lesion_mask(lesion, width, height).astype(bool)] = COLOURS[label]
    return rgb


def label_of(lesions: Iterable[Lesion]) -> str:
    """Image-level label as in INFO.csv: Malignant if any malignant, Benign if any, else Normal."""
    labels = {lesion.label for lesion in lesions}
    if MALIGNANT in labels:
        return "Malignant"
    if BENIGN in labels:
        return "Benign"
    return "Normal"


# --- extraction -------------------------------------------------------------------------------


@dataclass
class MaskReading:
    lesions: list[Lesion]
    other_pixels: int  # pixels of a colour that is neither black, benign nor malignant
    dropped_specks: list[tuple[str, int, int, int]]  # (label, x, y, pixel count) too thin to outline


def colour_planes(rgb: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
    """Binary plane per label and the count of pixels of any other non-black colour."""
    rgb = np.ascontiguousarray(rgb[..., :3])
    # cv2.inRange is ~100x faster than numpy comparisons over the colour axis on 856x606 masks.
    planes = {label: cv2.inRange(rgb, COLOURS[label], COLOURS[label]).astype(bool) for label in LABELS}
    black = cv2.inRange(rgb, (0, 0, 0), (0, 0, 0)).astype(bool)
    known = planes[BENIGN] | planes[MALIGNANT] | black
    return planes, int((~known).sum())


def extract_lesions(rgb: np.ndarray) -> MaskReading:
    """One lesion per 8-connected component of each colour, holes kept."""
    planes, other = colour_planes(rgb)
    lesions: list[Lesion] = []
    specks: list[tuple[str, int, int, int]] = []
    for label in LABELS:
        count, labels, stats, _ = cv2.connectedComponentsWithStats(planes[label].astype(np.uint8), connectivity=8)
        for comp in range(1, count):
            x, y, w, h, area = (int(v) for v in stats[comp])
            # Pad by one pixel so the tracer sees background all round.
            box = np.zeros((h + 2, w + 2), dtype=np.uint8)
            box[1:-1, 1:-1] = labels[y : y + h, x : x + w] == comp
            contours, hierarchy = cv2.findContours(box, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
            shift = np.array([x - 1, y - 1])
            outer = None
            holes: list[Ring] = []
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
    # Stable order: by label, then top-left of the outline.
    lesions.sort(
        key=lambda les: (LABELS.index(les.label), min(p[1] for p in les.points), min(p[0] for p in les.points))
    )
    return MaskReading(lesions=lesions, other_pixels=other, dropped_specks=specks)


# --- measures ---------------------------------------------------------------------------------


def pixel_area(lesion: Lesion, width: int, height: int) -> int:
    """Number of mask pixels the lesion paints (the COCO ``area``)."""
    return int(lesion_mask(lesion, width, height).sum())


def bbox(lesion: Lesion) -> list[int]:
    """[x, y, w, h] in pixels covering the painted lesion (COCO convention)."""
    ring = _int_ring(lesion.points).reshape(-1, 2)
    x0, y0 = ring.min(axis=0)
    x1, y1 = ring.max(axis=0)
    return [int(x0), int(y0), int(x1 - x0 + 1), int(y1 - y0 + 1)]


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two binary masks; 1.0 when both are empty."""
    a = a.astype(bool)
    b = b.astype(bool)
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        return 1.0
    return 2.0 * int((a & b).sum()) / total
