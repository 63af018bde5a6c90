"""Lesion measurements from a contour: area, longest diameter, and the diameter perpendicular to it.

Pure module (numpy, and ``geometry`` for the pixel count); no Django.

- **Area** is the painted pixel count (``geometry.pixel_area``, the mask, the COCO ``area`` and
  ``Lesion.area_px``), times the pixel's physical size ``sx * sy`` in mm² when calibrated.
- **Diameters** are measured on the outer contour (the lesion's border, vertices on pixel centres),
  in physical coordinates (x * sx, y * sy) when calibrated, so that different X and Y spacings give
  true lengths. The *longest diameter* is the longest segment between two contour points (the
  maximum Feret diameter: the diameter of the convex hull, found with rotating callipers). The
  *perpendicular diameter* is what a radiologist's callipers measure at a right angle to it: over
  every line perpendicular to the longest diameter, the distance between the first and last
  crossing of the contour, the longest such. Along the long axis this span is piecewise linear
  between the vertices' positions, so its maximum is at one of them: it is evaluated exactly
  there (at most ``MAX_STATIONS`` positions, evenly spaced beyond that, for very long contours).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from annotator import geometry

MAX_STATIONS = 2000


@dataclass(frozen=True)
class Spacing:
    """mm per pixel along x (columns) and y (rows)."""

    x_mm: float
    y_mm: float


@dataclass(frozen=True)
class Measurement:
    area_px: int
    area_mm2: float | None
    longest: float  # in ``unit``
    perpendicular: float
    unit: str  # "mm" when calibrated, else "px"
    # The two diameters' end points, in image pixels ([[x0, y0], [x1, y1]]), to draw them.
    longest_ends: list[list[float]]
    perpendicular_ends: list[list[float]]

    def as_dict(self) -> dict:
        return asdict(self)


def spacing_of(x_mm: float | None, y_mm: float | None, mm: float | None = None) -> Spacing | None:
    """The image's spacing from its stored fields: X and Y when known, else the single figure."""
    sx = x_mm or mm
    sy = y_mm or mm
    if not sx or not sy:
        return None
    return Spacing(float(sx), float(sy))


def _hull(pts: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """Convex hull (Andrew's monotone chain), counter-clockwise, no repeated or collinear point.
    Plain floats: a Python loop over tuples is several times faster than over numpy rows."""
    p = sorted(set(pts))
    if len(p) < 3:
        return p

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for q in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (q[1] - ay) - (by - ay) * (q[0] - ax) <= 0:
                    out.pop()
                else:
                    break
            out.append(q)
        return out

    lower = half(p)
    upper = half(p[::-1])
    return lower[:-1] + upper[:-1]


def _area2(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def longest_diameter(pts: np.ndarray) -> tuple[float, int, int]:
    """Length and the two points (indices into ``pts``) of the longest point-to-point segment:
    rotating callipers over the convex hull's antipodal pairs, linear in the hull's size."""
    hull = _hull([(float(x), float(y)) for x, y in pts])
    h = len(hull)
    if h < 2:
        return 0.0, 0, 0

    def dist2(i: int, j: int) -> float:
        return (hull[i][0] - hull[j][0]) ** 2 + (hull[i][1] - hull[j][1]) ** 2

    best, bi, bj = dist2(0, 1), 0, 1
    if h > 2:
        j = 1
        for i in range(h):
            ni = (i + 1) % h
            # Advance j while the triangle (edge i, j+1) is larger than (edge i, j): j+1 is farther.
            while _area2(hull[i], hull[ni], hull[(j + 1) % h]) > _area2(hull[i], hull[ni], hull[j]):
                j = (j + 1) % h
            for a, b in ((i, j), (ni, j)):
                d = dist2(a, b)
                if d > best:
                    best, bi, bj = d, a, b
    a = int(np.flatnonzero((pts == hull[bi]).all(axis=1))[0])
    b = int(np.flatnonzero((pts == hull[bj]).all(axis=1))[0])
    return float(np.sqrt(best)), a, b


def perpendicular_diameter(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The longest contour-to-contour span at a right angle to segment a-b, and its two ends.

    Each edge is evaluated only at the stations its extent along the long axis covers (a sorted
    search gives them), so the work is the number of (edge, station) crossings: about twice the
    stations for a convex outline, rather than edges x stations."""
    axis = b - a
    length = float(np.hypot(*axis))
    if length == 0:
        return 0.0, a, a
    u = axis / length
    v = np.array([-u[1], u[0]])
    # Rotate so that the long axis is the s axis and the perpendicular the t axis.
    s0 = (pts - a) @ u
    t0 = (pts - a) @ v
    s1, t1 = np.roll(s0, -1), np.roll(t0, -1)
    stations = np.unique(s0)
    if len(stations) > MAX_STATIONS:
        stations = np.linspace(stations[0], stations[-1], MAX_STATIONS)
    lo, hi = np.minimum(s0, s1), np.maximum(s0, s1)
    first = np.searchsorted(stations, lo, side="left")
    counts = np.searchsorted(stations, hi, side="right") - first
    total = int(counts.sum())
    if total == 0:
        return 0.0, a, a
    edge = np.repeat(np.arange(len(s0)), counts)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    station = np.repeat(first, counts) + (np.arange(total) - starts)
    st = stations[station]
    ds = (s1 - s0)[edge]
    flat = ds == 0
    frac = np.where(flat, 0.0, (st - s0[edge]) / np.where(flat, 1.0, ds))
    tt = t0[edge] + frac * (t1 - t0)[edge]
    # An edge lying along the station line spans both its ends.
    t_hi = np.where(flat, np.maximum(t0, t1)[edge], tt)
    t_lo = np.where(flat, np.minimum(t0, t1)[edge], tt)
    top = np.full(len(stations), -np.inf)
    bottom = np.full(len(stations), np.inf)
    np.maximum.at(top, station, t_hi)
    np.minimum.at(bottom, station, t_lo)
    span = np.where(np.isfinite(top) & np.isfinite(bottom), top - bottom, -1.0)
    k = int(np.argmax(span))
    if span[k] <= 0:
        return 0.0, a, a
    base = a + float(stations[k]) * u
    return float(span[k]), base + bottom[k] * v, base + top[k] * v


def measure(points: Sequence[Sequence[float]], *, area_px: int, spacing: Spacing | None) -> Measurement:
    """Measurements of one lesion's outer contour; ``area_px`` is its painted pixel count."""
    sx, sy = (spacing.x_mm, spacing.y_mm) if spacing else (1.0, 1.0)
    scale = np.array([sx, sy], dtype=float)
    pix = np.asarray(points, dtype=float).reshape(-1, 2)
    phys = pix * scale
    longest, i, j = longest_diameter(phys)
    perp, p0, p1 = perpendicular_diameter(phys, phys[i], phys[j])
    return Measurement(
        area_px=int(area_px),
        area_mm2=None if spacing is None else float(area_px) * sx * sy,
        longest=longest,
        perpendicular=perp,
        unit="mm" if spacing else "px",
        longest_ends=[pix[i].tolist(), pix[j].tolist()],
        perpendicular_ends=[(np.asarray(p0) / scale).tolist(), (np.asarray(p1) / scale).tolist()],
    )


def measure_lesion(lesion: geometry.Lesion, width: int, height: int, spacing: Spacing | None) -> Measurement:
    """Measure a lesion, counting its painted pixels as the export does."""
    return measure(lesion.points, area_px=geometry.pixel_area(lesion, width, height), spacing=spacing)
