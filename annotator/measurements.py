"""Lesion measurements from a contour: area, longest diameter, and the diameter perpendicular to it.

Pure module (numpy, and ``geometry`` for the pixel count); no Django.

- **Area** is the painted pixel count (``geometry.pixel_area``, the mask, the COCO ``area`` and
  ``Lesion.area_px``), times the pixel's physical size ``sx * sy`` in mm² when calibrated.
- **Diameters** are measured on the outer contour (the lesion's border, vertices on pixel centres),
  in physical coordinates (x * sx, y * sy) when calibrated, so that different X and Y spacings give
  true lengths. The *longest diameter* is the longest segment between two contour points (the
  maximum Feret diameter: the diameter of the convex hull). The *perpendicular diameter* is what a
  radiologist's callipers measure at a right angle to it: over every line perpendicular to the
  longest diameter, the distance between the first and last crossing of the contour, the longest
  such. Along the long axis this span is piecewise linear between the vertices' positions, so its
  maximum is at one of them: it is evaluated exactly there (at most ``MAX_STATIONS`` positions,
  evenly spaced beyond that, for very long contours).
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


def _hull(pts: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain), counter-clockwise, no repeated point."""
    order = np.lexsort((pts[:, 1], pts[:, 0]))
    p = pts[order]
    if len(p) < 3:
        return p

    def half(seq: np.ndarray) -> list[np.ndarray]:
        out: list[np.ndarray] = []
        for q in seq:
            while len(out) >= 2:
                a, b = out[-2], out[-1]
                if (b[0] - a[0]) * (q[1] - a[1]) - (b[1] - a[1]) * (q[0] - a[0]) <= 0:
                    out.pop()
                else:
                    break
            out.append(q)
        return out

    lower = half(p)
    upper = half(p[::-1])
    return np.array(lower[:-1] + upper[:-1])


def longest_diameter(pts: np.ndarray) -> tuple[float, int, int]:
    """Length and the two hull points (indices into ``pts``) of the longest point-to-point segment."""
    hull = _hull(pts)
    if len(hull) < 2:
        return 0.0, 0, 0
    # The hull of a traced lesion has a few dozen points: all pairs is cheap and exact.
    d = hull[:, None, :] - hull[None, :, :]
    dist2 = (d**2).sum(axis=-1)
    i, j = np.unravel_index(int(np.argmax(dist2)), dist2.shape)
    a = int(np.flatnonzero((pts == hull[i]).all(axis=1))[0])
    b = int(np.flatnonzero((pts == hull[j]).all(axis=1))[0])
    return float(np.sqrt(dist2[i, j])), a, b


def perpendicular_diameter(pts: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """The longest contour-to-contour span at a right angle to segment a-b, and its two ends."""
    axis = b - a
    length = float(np.hypot(*axis))
    if length == 0:
        return 0.0, a, a
    u = axis / length
    v = np.array([-u[1], u[0]])
    # Rotate so that the long axis is the s axis and the perpendicular the t axis.
    s = (pts - a) @ u
    t = (pts - a) @ v
    s0, t0 = s, t
    s1, t1 = np.roll(s, -1), np.roll(t, -1)
    stations = np.unique(s)
    if len(stations) > MAX_STATIONS:
        stations = np.linspace(stations[0], stations[-1], MAX_STATIONS)
    best = (0.0, a, a)
    lo_s, hi_s = np.minimum(s0, s1), np.maximum(s0, s1)
    chunk = max(1, 4_000_000 // max(len(s0), 1))
    for start in range(0, len(stations), chunk):
        st = stations[start : start + chunk][:, None]
        crosses = (lo_s <= st) & (st <= hi_s)
        ds = s1 - s0
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(ds != 0, (st - s0) / np.where(ds != 0, ds, 1), 0.0)
        tt = t0 + frac * (t1 - t0)
        # An edge lying along the station line spans both its ends.
        flat = ds == 0
        t_hi = np.where(flat, np.maximum(t0, t1), tt)
        t_lo = np.where(flat, np.minimum(t0, t1), tt)
        top = np.where(crosses, t_hi, -np.inf).max(axis=1)
        bottom = np.where(crosses, t_lo, np.inf).min(axis=1)
        span = top - bottom
        span[~np.isfinite(span)] = -1
        k = int(np.argmax(span))
        if span[k] > best[0]:
            sk = float(stations[start + k])
            best = (float(span[k]), a + sk * u + bottom[k] * v, a + sk * u + top[k] * v)
    return best


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
