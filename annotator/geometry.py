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

import itertools
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
MAX_LESIONS = 500  # per layer (one reader's drawing of one image)
# All rings of all lesions of a layer together. A traced lesion on an ultrasound frame has a few
# hundred points (the 33 sample masks: at most 619 per layer); this is 80 times that, room for
# 500 lesions of 100 points, and bounds the parsing and crossing checks of one request to under
# a second on a 2-core server (BENCHMARKS.md, "Geometry cost").
MAX_POINTS_PER_LAYER = 50_000

Ring = list[list[float]]


class ContourError(ValueError):
    """A contour breaks one of the validation rules; the message says which and where."""

    def __init__(self, rule: str, message: str, *, index: int | None = None):
        super().__init__(message)
        self.rule = rule
        self.message = message
        self.index = index  # the lesion at fault, when the error is about one lesion


@dataclass
class Lesion:
    label: str
    points: Ring
    holes: list[Ring] = field(default_factory=list)
    # BI-RADS descriptors (annotator.birads), carried along with the contour; geometry never reads them.
    descriptors: dict = field(default_factory=dict)


# --- validation -------------------------------------------------------------------------------


def validate_ring(ring: object, width: int, height: int, *, what: str = "contour") -> Ring:
    """Return the ring as a list of [float, float] or raise ContourError naming the rule."""
    if not isinstance(ring, (list, tuple)):
        raise ContourError("format", f"{what} must be a list of [x, y] points")
    if len(ring) > MAX_POINTS_PER_RING:
        raise ContourError("too_many_points", f"{what} has {len(ring)} points; at most {MAX_POINTS_PER_RING} allowed")
    points = _plain_points(ring, width, height)
    if points is None:
        points = _checked_points(ring, width, height, what)
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


_NUMBER_TYPES = (int, float)


def _plain_points(ring: list | tuple, width: int, height: int) -> Ring | None:
    """The points as floats when every one is a well-formed pair of finite numbers inside the
    image (what the browser always sends), checked in a few vectorised steps; None otherwise, and
    ``_checked_points`` then finds and names the first fault."""
    if not all(
        type(p) in (list, tuple) and len(p) == 2 and type(p[0]) in _NUMBER_TYPES and type(p[1]) in _NUMBER_TYPES
        for p in ring
    ):
        return None
    if not ring:
        return []
    try:
        xy = np.array(ring, dtype=np.float64)
    except OverflowError:  # an integer too large for a float: the checked path says which
        return None
    inside = (xy >= 0).all() and (xy[:, 0] <= width - 1).all() and (xy[:, 1] <= height - 1).all()
    return xy.tolist() if inside and np.isfinite(xy).all() else None


def _checked_points(ring: list | tuple, width: int, height: int, what: str) -> Ring:
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
    return points


def validate_lesion(data: object, width: int, height: int, *, index: int = 0) -> Lesion:
    """Validate one lesion given as {"label", "points", "holes"?}; errors carry ``index``."""
    try:
        return _validate_lesion(data, width, height, index)
    except ContourError as e:
        e.index = index
        raise


def _validate_lesion(data: object, width: int, height: int, index: int) -> Lesion:
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
    """Validate a layer's lesions: the caps first, from the structure alone, then each lesion.

    The caps bound the work a request can cause before any point is parsed or any crossing
    checked: at most MAX_LESIONS lesions and MAX_POINTS_PER_LAYER points in all their rings.
    """
    if not isinstance(raw, (list, tuple)):
        raise ContourError("format", "lesions must be a list")
    if len(raw) > MAX_LESIONS:
        raise ContourError("too_many_lesions", f"{len(raw)} lesions; at most {MAX_LESIONS} per image")
    total = count_points(raw)
    if total > MAX_POINTS_PER_LAYER:
        raise ContourError(
            "too_many_points", f"more than {MAX_POINTS_PER_LAYER} points in all lesions; at most that many per image"
        )
    return [validate_lesion(data, width, height, index=i) for i, data in enumerate(raw)]


def count_points(raw: Sequence[object]) -> int:
    """Points in all rings of the raw lesions, counted by len() without reading a point.

    A ring counts at least 3 points (the fewest a valid ring has), so the count bounds the
    number of rings too, and it stops as soon as it passes the cap: counting costs at most
    MAX_POINTS_PER_LAYER / 3 steps whatever the request holds. Malformed parts count as one
    ring; ``validate_lesion`` reports them.
    """
    total = 0
    for data in raw:
        if not isinstance(data, dict):
            continue
        holes = data.get("holes")
        rings = itertools.chain((data.get("points"),), holes if isinstance(holes, (list, tuple)) else ())
        for ring in rings:
            total += max(len(ring) if isinstance(ring, (list, tuple)) else 0, 3)
            if total > MAX_POINTS_PER_LAYER:
                return total
    return total


def find_crossing(points: Sequence[Sequence[float]]) -> tuple[int, int] | None:
    """A pair of edges (indices, lower first) that properly cross, or None.

    A proper crossing is two edges that meet at one point inside both, each edge's ends strictly
    on either side of the other's line. Touching is allowed (a vertex on another edge, overlapping
    collinear edges, repeated vertices): traced pixel outlines of thin necks revisit the same
    pixels, and they rasterise correctly. Edges that share a vertex never cross properly, so the
    rule needs no exception for neighbours.

    A Shamos-Hoey sweep, O(n log n) whatever the ring's shape, with exact integer arithmetic so
    that the sweep's order never disagrees with the crossing test. See ``_Sweep``. Rings of up to
    ``_FILTER_MAX_POINTS`` points that ``_may_cross`` clears skip it (a drawn lesion, every save).
    """
    if len(points) < 4:
        return None
    p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(p) <= _FILTER_MAX_POINTS and not _may_cross(p):
        return None
    return _Sweep(p, _exact_coordinates(p)).run()


# Rings up to this many points (a drawn lesion has tens to a few hundred) first go through
# ``_may_cross``: a few numpy operations on all pairs of edges, where the exact sweep is a Python
# loop. The pair table grows with n^2, hence the bound; larger rings go straight to the sweep.
_FILTER_MAX_POINTS = 400
# Bound on the rounding error of an orientation determinant computed in float64, relative to the
# sum of its two products' magnitudes (Shewchuk's bound for orient2d is (3 + 16 eps) eps; doubled).
_ORIENTATION_ERROR = 8 * np.finfo(np.float64).eps


def _may_cross(p: np.ndarray) -> bool:
    """False only when no two edges of the ring can cross properly; True hands over to the sweep.

    Candidates are the pairs of edges that are not neighbours and whose bounding boxes meet
    (exact comparisons). For them the four orientations are computed in floating point with an
    error bound: a pair is cleared when one edge's two ends lie certainly on the same side of the
    other's line. Any pair not cleared (a crossing, or a vertex that touches another edge within
    rounding) makes the answer True, and the exact sweep decides; so this never changes a result,
    it only skips the sweep for rings that are clearly simple.
    """
    n = len(p)
    a, b = p, np.roll(p, -1, axis=0)
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    meet = (lo[:, None, 0] <= hi[None, :, 0]) & (lo[None, :, 0] <= hi[:, None, 0])
    meet &= (lo[:, None, 1] <= hi[None, :, 1]) & (lo[None, :, 1] <= hi[:, None, 1])
    i, j = np.nonzero(np.triu(meet, k=2))
    keep = ~((i == 0) & (j == n - 1))  # the last edge and the first share vertex 0
    i, j = i[keep], j[keep]
    if not len(i):
        return False

    def sides(s0, s1, q):
        """Orientation of points q against the lines s0->s1: -1, 1, or 0 when within rounding."""
        t1 = (s1[:, 0] - s0[:, 0]) * (q[:, 1] - s0[:, 1])
        t2 = (s1[:, 1] - s0[:, 1]) * (q[:, 0] - s0[:, 0])
        d = t1 - t2
        return np.where(np.abs(d) > _ORIENTATION_ERROR * (np.abs(t1) + np.abs(t2)), np.sign(d), 0)

    ai, bi, aj, bj = a[i], b[i], a[j], b[j]
    same_side_of_i = sides(ai, bi, aj) * sides(ai, bi, bj) > 0
    same_side_of_j = sides(aj, bj, ai) * sides(aj, bj, bi) > 0
    return not bool(np.all(same_side_of_i | same_side_of_j))


def _exact_coordinates(p: np.ndarray) -> list[tuple[int, int]]:
    """The points scaled by one power of two into Python integers, so every predicate is exact.

    Orientation signs (all the sweep uses) do not change under a common positive scale. Pixel
    coordinates are integers and stay small; a fraction of a pixel is a dyadic float, exact after
    scaling by 2**k.
    """
    if np.array_equal(p, np.floor(p)) and np.abs(p).max() < 2.0**52:
        return [(int(x), int(y)) for x, y in p.astype(np.int64).tolist()]
    ratios = [(float(x).as_integer_ratio(), float(y).as_integer_ratio()) for x, y in p.tolist()]
    scale = max(den for pair in ratios for _, den in pair)
    return [(nx * (scale // dx), ny * (scale // dy)) for (nx, dx), (ny, dy) in ratios]


class _Sweep:
    """Shamos-Hoey: is there any proper crossing among the ring's edges?

    Events are the edges' end points in (x, y) order (an edge's left end is the smaller of the
    two; this order is a sweep by a line turned by an infinitesimal angle, so vertical edges need
    no special case). The status is the list of edges the sweep line cuts, bottom to top; an edge
    is inserted at its left end and removed at its right end, removals first at a shared point.
    Every pair of edges that becomes adjacent in the status is tested for a proper crossing.

    Why that finds a crossing whenever there is one: let p be the first proper crossing point in
    sweep order and s, t two edges crossing there. Up to p no edges swap (edges only swap at a
    proper crossing; an edge that touches another starts or ends at the touching point), so the
    status order is the true bottom-to-top order. Every edge between s and t just before p passes
    through p. Once the edges that end at p are removed, those left between s and t have p
    inside them, and since s and t are not collinear two adjacent ones are not collinear either:
    they cross properly at p, and they were tested when they became adjacent. Collinear edges
    that overlap are tied and ordered by index, which keeps the order total and consistent.
    """

    def __init__(self, points: np.ndarray, pts: list[tuple[int, int]]):
        """``points`` as floats (n x 2) for sorting, ``pts`` the same exactly scaled to integers."""
        n = len(pts)
        self.edge: list[int] = []  # ring index of each kept edge
        ends: list[tuple[tuple[int, int], tuple[int, int]]] = []
        for k in range(n):
            a, b = pts[k], pts[(k + 1) % n]
            if a == b:
                continue  # a repeated vertex: a point can touch, never cross
            self.edge.append(k)
            ends.append((min(a, b), max(a, b)))
        self.left = [left for left, _ in ends]
        # Each edge as left end + direction, for the orientation tests of the binary searches.
        self.lx = [left[0] for left in self.left]
        self.ly = [left[1] for left in self.left]
        self.dx = [right[0] - left[0] for left, right in ends]
        self.dy = [right[1] - left[1] for left, right in ends]
        self.right = [right for _, right in ends]
        # Events by point, removals (0) before insertions (1) at the same point, then by edge.
        # Sorted on the floats (the scaling keeps their order exactly): numpy, not Python tuples.
        a = points[self.edge]
        b = points[[(k + 1) % n for k in self.edge]]
        b_first = (b[:, 0] < a[:, 0]) | ((b[:, 0] == a[:, 0]) & (b[:, 1] < a[:, 1]))
        left = np.where(b_first[:, None], b, a)
        right = np.where(b_first[:, None], a, b)
        m = len(self.edge)
        xy = np.r_[left, right]
        kind = np.r_[np.ones(m, np.int8), np.zeros(m, np.int8)]
        eid = np.r_[np.arange(m), np.arange(m)]
        order = np.lexsort((eid, kind, xy[:, 1], xy[:, 0]))
        self.events = list(zip(kind[order].tolist(), eid[order].tolist(), strict=True))

    def run(self) -> tuple[int, int] | None:
        status: list[int] = []
        for insert, e in self.events:
            if insert:
                i = self._insertion_point(status, e)
                status.insert(i, e)
                if i > 0 and self._crosses(status[i - 1], e):
                    return self._pair(status[i - 1], e)
                if i + 1 < len(status) and self._crosses(e, status[i + 1]):
                    return self._pair(e, status[i + 1])
            else:
                i = self._position(status, e)
                if i >= len(status) or status[i] != e:
                    raise RuntimeError("sweep order broken before the first crossing")  # cannot happen
                del status[i]
                if 0 < i < len(status) and self._crosses(status[i - 1], status[i]):
                    return self._pair(status[i - 1], status[i])
        return None

    def _insertion_point(self, status: list[int], e: int) -> int:
        """Where e goes: its left end is the sweep point, at or after every status edge's left end.

        The same decision as ``_below(s, e)``, inlined: this loop is most of the sweep's time.
        """
        lx, ly, dx, dy = self.lx, self.ly, self.dx, self.dy
        px, py = lx[e], ly[e]
        qx, qy = px + dx[e], py + dy[e]
        lo, hi = 0, len(status)
        while lo < hi:
            mid = (lo + hi) // 2
            s = status[mid]
            d = dx[s] * (py - ly[s]) - dy[s] * (px - lx[s])
            if d == 0:
                d = dx[s] * (qy - ly[s]) - dy[s] * (qx - lx[s])
                if d == 0:
                    d = e - s
            if d > 0:
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _position(self, status: list[int], e: int) -> int:
        """Index of edge e in the status (binary search with ``_below``)."""
        lo, hi = 0, len(status)
        while lo < hi:
            mid = (lo + hi) // 2
            s = status[mid]
            if s == e:
                return mid
            if self._below(s, e):
                lo = mid + 1
            else:
                hi = mid
        return lo

    def _below(self, a: int, b: int) -> bool:
        """Edge a is below edge b where the sweep line cuts both (a != b).

        Decided at the later of the two left ends, which lies on the other edge's span: by the
        side of that point, then by the side of the later edge's right end (the two meet there),
        then, for collinear edges, by index. ``_insertion_point`` is this, inlined.
        """
        lx, ly, dx, dy = self.lx, self.ly, self.dx, self.dy
        later, other, sign = (b, a, 1) if self.left[a] < self.left[b] else (a, b, -1)
        px, py = lx[later], ly[later]
        d = dx[other] * (py - ly[other]) - dy[other] * (px - lx[other])
        if d == 0:
            d = dx[other] * (py + dy[later] - ly[other]) - dy[other] * (px + dx[later] - lx[other])
            if d == 0:
                d = later - other
        # d > 0: the later edge is above the other one.
        return d * sign > 0

    def _crosses(self, a: int, b: int) -> bool:
        la, ra, lb, rb = self.left[a], self.right[a], self.left[b], self.right[b]
        return _orientation(la, ra, lb) * _orientation(la, ra, rb) < 0 and (
            _orientation(lb, rb, la) * _orientation(lb, rb, ra) < 0
        )

    def _pair(self, a: int, b: int) -> tuple[int, int]:
        i, j = sorted((self.edge[a], self.edge[b]))
        return i, j


def _orientation(p: tuple[int, int], q: tuple[int, int], r: tuple[int, int]) -> int:
    """1 if r is left of p->q, -1 if right, 0 if on the line (exact on integers)."""
    d = (q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0])
    return (d > 0) - (d < 0)


# --- rasterisation ----------------------------------------------------------------------------


def _int_ring(ring: Sequence[Sequence[float]]) -> np.ndarray:
    return np.rint(np.asarray(ring, dtype=np.float64)).astype(np.int32).reshape(-1, 1, 2)


def lesion_box(lesion: Lesion, width: int, height: int) -> tuple[int, int, np.ndarray] | None:
    """The lesion's mask inside its bounding box: (x0, y0, uint8 0/1 box), None if off the frame.

    Every cost is in the box, never in the frame: thousands of small lesions on a large image
    cost their own pixels only. The box is the outer ring's, clipped to the frame (validated
    rings lie inside it; fillPoly clips what does not).
    """
    outer = _int_ring(lesion.points)
    x0, y0 = max(int(outer[:, 0, 0].min()), 0), max(int(outer[:, 0, 1].min()), 0)
    x1, y1 = min(int(outer[:, 0, 0].max()), width - 1), min(int(outer[:, 0, 1].max()), height - 1)
    if x1 < x0 or y1 < y0:
        return None
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
    return x0, y0, box


def lesion_mask(lesion: Lesion, width: int, height: int) -> np.ndarray:
    """Binary mask (uint8 0/1, height x width) of one lesion."""
    mask = np.zeros((height, width), dtype=np.uint8)
    placed = lesion_box(lesion, width, height)
    if placed is not None:
        x0, y0, box = placed
        mask[y0 : y0 + box.shape[0], x0 : x0 + box.shape[1]] = box
    return mask


def rasterise(lesions: Iterable[Lesion], width: int, height: int) -> np.ndarray:
    """RGB mask (height x width x 3, uint8) in the BUS-UCLM colours."""
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    by_label: dict[str, list[Lesion]] = {label: [] for label in PAINT_ORDER}
    for lesion in lesions:
        by_label[lesion.label].append(lesion)
    for label in PAINT_ORDER:
        for lesion in by_label[label]:
            placed = lesion_box(lesion, width, height)
            if placed is None:
                continue
            x0, y0, box = placed
            # Paint into the frame's slice (a view): no full-frame mask per lesion. One channel
            # at a time: a boolean index with a scalar is ~15x faster than with an RGB triple.
            region = rgb[y0 : y0 + box.shape[0], x0 : x0 + box.shape[1]]
            inside = box.view(bool)  # box holds only 0 and 1
            for channel, value in enumerate(COLOURS[label]):
                region[..., channel][inside] = value
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
    """One lesion per 8-connected component of each colour, holes kept.

    One contour trace per colour plane, not one per component: a mask with thousands of small
    components costs its pixels plus a little per component (RETR_CCOMP puts every component's
    outer border at the top level, with its holes under it, islands in holes included).
    """
    planes, other = colour_planes(rgb)
    found: list[tuple[int, int, Lesion]] = []  # (label index, component, lesion)
    specks: list[tuple[int, int, tuple[str, int, int, int]]] = []
    for li, label in enumerate(LABELS):
        plane = planes[label].astype(np.uint8)
        count, labels, stats, _ = cv2.connectedComponentsWithStats(plane, connectivity=8)
        if count <= 1:
            continue
        # Pad by one pixel so the tracer sees background all round.
        padded = cv2.copyMakeBorder(plane, 1, 1, 1, 1, cv2.BORDER_CONSTANT, value=0)
        contours, hierarchy = cv2.findContours(padded, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        outers: dict[int, np.ndarray] = {}
        holes: dict[int, list[np.ndarray]] = {}
        for k, (contour, (_, _, _, parent)) in enumerate(zip(contours, hierarchy[0], strict=True)):
            if parent < 0:
                outers[k] = contour
            else:
                holes.setdefault(int(parent), []).append(contour)
        for k, contour in outers.items():
            x0, y0 = contour[0, 0]
            comp = int(labels[y0 - 1, x0 - 1])
            if len(contour) < 3:
                x, y, _, _, area = (int(v) for v in stats[comp])
                specks.append((li, comp, (label, x, y, area)))
                continue
            ring = (contour.reshape(-1, 2) - 1).tolist()
            hole_rings = [(h.reshape(-1, 2) - 1).tolist() for h in holes.get(k, [])]
            found.append((li, comp, Lesion(label=label, points=ring, holes=hole_rings)))
    # Stable order: by label, then top-left of the outline, then component (raster order).
    found.sort(key=lambda f: (f[0], min(p[1] for p in f[2].points), min(p[0] for p in f[2].points), f[1]))
    specks.sort(key=lambda s: (s[0], s[1]))
    return MaskReading(lesions=[f[2] for f in found], other_pixels=other, dropped_specks=[s[2] for s in specks])


# --- measures ---------------------------------------------------------------------------------


def pixel_area(lesion: Lesion, width: int, height: int) -> int:
    """Number of mask pixels the lesion paints (the COCO ``area``)."""
    placed = lesion_box(lesion, width, height)
    return 0 if placed is None else int(np.count_nonzero(placed[2]))


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
