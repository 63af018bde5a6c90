"""Smart contour: a proposed lesion outline from a box (or a click) on a grayscale ultrasound image.

Pure numpy/OpenCV; no Django. The reader always edits the proposal before it counts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

MIN_BOX = 6  # pixels; a smaller box is a slip of the mouse, not a lesion


class ProposalError(ValueError):
    pass


@dataclass(frozen=True)
class Params:
    work_size: int = 128
    angles: int = 96
    radii: int = 64
    rho_min: float = 0.15
    rho_max: float = 1.42
    max_step: int = 2
    step_cost: float = 0.3
    edge_weight: float = 1.0
    region_weight: float = 1.0
    median: int = 5
    blur: float = 1.5
    core: float = 0.45
    smooth: int = 2
    min_contrast: float = 6.0
    offset: float = 0.0
    level: float = 0.5
    blend: float = 0.0


DEFAULT = Params()


def decode_gray(png: bytes) -> np.ndarray:
    gray = cv2.imdecode(np.frombuffer(bytes(png), np.uint8), cv2.IMREAD_GRAYSCALE)
    if gray is None:
        raise ProposalError("the stored image could not be decoded")
    return gray


def check_box(box, width: int, height: int) -> tuple[int, int, int, int]:
    if box is None or len(box) != 4 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in box):
        raise ProposalError("box must be [x0, y0, x1, y1] in image pixels")
    x0, y0, x1, y1 = box
    x0, x1 = sorted((x0, x1))
    y0, y1 = sorted((y0, y1))
    x0, y0 = max(0, round(x0)), max(0, round(y0))
    x1, y1 = min(width - 1, round(x1)), min(height - 1, round(y1))
    if x1 - x0 < MIN_BOX or y1 - y0 < MIN_BOX:
        raise ProposalError(f"the box must be at least {MIN_BOX} pixels wide and high inside the image")
    return x0, y0, x1, y1


def ellipse_in_box(box: tuple[int, int, int, int], n: int = 48) -> list[list[float]]:
    """The ellipse inscribed in the box: the baseline every smarter method must beat."""
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    return [
        [round(cx + rx * math.cos(2 * math.pi * k / n), 1), round(cy + ry * math.sin(2 * math.pi * k / n), 1)]
        for k in range(n)
    ]


def propose(gray: np.ndarray, *, box=None, point=None, params: Params = DEFAULT) -> list[list[float]]:
    """A contour (list of [x, y]) for the lesion in ``box``."""
    height, width = gray.shape[:2]
    if box is None:
        raise ProposalError("draw a box around the lesion")
    b = check_box(box, width, height)
    ring = _radial_contour(gray, b, params)
    return ring if ring is not None else ellipse_in_box(b)


def _radial_contour(gray: np.ndarray, box, p: Params):
    height, width = gray.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax, ay = (x1 - x0) / 2, (y1 - y0) / 2
    scale = min(1.0, p.work_size / max(x1 - x0, y1 - y0))
    pad = 4 + int(0.1 * max(ax, ay))
    rx0, ry0 = max(0, x0 - pad), max(0, y0 - pad)
    rx1, ry1 = min(width, x1 + pad + 1), min(height, y1 + pad + 1)
    roi = gray[ry0:ry1, rx0:rx1]
    if scale < 1.0:
        roi = cv2.resize(roi, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    smooth = cv2.medianBlur(roi, p.median) if p.median > 1 else roi
    smooth = cv2.GaussianBlur(smooth.astype(np.float32), (0, 0), p.blur) if p.blur > 0 else smooth.astype(np.float32)

    theta = np.linspace(0, 2 * np.pi, p.angles, endpoint=False)
    rho = np.linspace(p.rho_min, p.rho_max, p.radii)
    ct, st = np.cos(theta)[:, None], np.sin(theta)[:, None]
    px = cx + ax * rho[None, :] * ct
    py = cy + ay * rho[None, :] * st
    inside_box = (px >= x0) & (px <= x1) & (py >= y0) & (py <= y1)
    mapx = ((px - rx0) * scale).astype(np.float32)
    mapy = ((py - ry0) * scale).astype(np.float32)
    polar = cv2.remap(smooth, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    core = polar[:, rho < p.core]
    ring = polar[inside_box & (rho[None, :] > 1.0)]
    mu_in = float(np.median(core))
    mu_out = float(np.median(ring)) if ring.size else float(np.median(polar[:, -1]))
    contrast = mu_out - mu_in
    if contrast < p.min_contrast:
        return None
    f = np.clip((polar - mu_in) / contrast - p.level, -1, 1)
    w = rho[None, :] / rho.mean()
    fw = f * w
    before = np.cumsum(fw, axis=1) - fw  # samples strictly inside the boundary
    after = fw.sum(axis=1, keepdims=True) - before
    region = (before - after) / p.radii
    grad = np.zeros_like(polar)
    grad[:, 1:-1] = (polar[:, 2:] - polar[:, :-2]) / contrast
    edge = -np.clip(grad, 0, 1)
    cost = p.region_weight * region + p.edge_weight * edge
    cost[~inside_box] = np.inf
    path = _closed_path(cost, p.max_step, p.step_cost)
    r = rho[path]
    if p.smooth:
        k = np.ones(2 * p.smooth + 1) / (2 * p.smooth + 1)
        r = np.convolve(np.r_[r[-p.smooth :], r, r[: p.smooth]], k, mode="valid")
    if p.blend > 0:
        fitted = _ray_ellipse(r, cx, cy, ax, ay, ct[:, 0], st[:, 0])
        if fitted is not None:
            r = (1 - p.blend) * r + p.blend * fitted
    unit = np.hypot(ax * ct[:, 0], ay * st[:, 0])  # pixels per unit of rho along each ray
    r = r + p.offset / unit
    exit_rho = np.where(inside_box, rho[None, :], 0).max(axis=1)
    r = np.minimum(r, exit_rho)
    xs = np.clip(cx + ax * r * ct[:, 0], 0, width - 1)
    ys = np.clip(cy + ay * r * st[:, 0], 0, height - 1)
    pts = np.c_[xs, ys].astype(np.float32).reshape(-1, 1, 2)
    simple = cv2.approxPolyDP(pts, 0.7, True).reshape(-1, 2)
    if len(simple) < 8:
        simple = pts.reshape(-1, 2)
    return [[round(float(x), 1), round(float(y), 1)] for x, y in simple]


def _closed_path(cost: np.ndarray, max_step: int, step_cost: float) -> np.ndarray:
    """Minimum-cost closed path through ``cost`` (angles x radii), one radius per angle.

    The radius may change by at most ``max_step`` bins per angle, at ``step_cost`` per bin; the
    last angle must connect to the first the same way. Solved exactly by running the dynamic
    programme from every starting radius at once (a radii x radii table per angle).
    """
    n_ang, n_rad = cost.shape
    acc = np.full((n_rad, n_rad), np.inf)
    idx = np.arange(n_rad)
    acc[idx, idx] = cost[0]
    steps = range(-max_step, max_step + 1)
    back = np.zeros((n_ang, n_rad, n_rad), dtype=np.int8)
    for k in range(1, n_ang):
        best = np.full_like(acc, np.inf)
        arg = np.zeros(acc.shape, dtype=np.int8)
        for d in steps:
            shifted = np.full_like(acc, np.inf)
            # shifted[:, j] = acc[:, j - d]: arrive at radius j from radius j - d
            if d >= 0:
                shifted[:, d:] = acc[:, : n_rad - d]
            else:
                shifted[:, :d] = acc[:, -d:]
            shifted += step_cost * abs(d)
            better = shifted < best
            best[better] = shifted[better]
            arg[better] = d
        acc = best + cost[k][None, :]
        back[k] = arg
    # Close the loop: the end radius must be within max_step of the start radius.
    total = np.full(n_rad, np.inf)
    ends = np.zeros(n_rad, dtype=np.int64)
    for s in range(n_rad):
        lo, hi = max(0, s - max_step), min(n_rad, s + max_step + 1)
        cand = acc[s, lo:hi] + step_cost * np.abs(np.arange(lo, hi) - s)
        j = int(np.argmin(cand))
        total[s], ends[s] = cand[j], lo + j
    s = int(np.argmin(total))
    path = np.zeros(n_ang, dtype=np.int64)
    path[-1] = ends[s]
    for k in range(n_ang - 1, 0, -1):
        path[k - 1] = path[k] - back[k, s, path[k]]
    return path


def _ray_ellipse(r, cx, cy, ax, ay, c, s):
    """Rho at which each ray meets the ellipse fitted to the contour r(theta), or None."""
    pts = np.c_[cx + ax * r * c, cy + ay * r * s].astype(np.float32)
    (ex, ey), (w, h), angle = cv2.fitEllipse(pts)
    if min(w, h) <= 1:
        return None
    a, b = w / 2, h / 2
    phi = math.radians(angle)
    cp, sp = math.cos(phi), math.sin(phi)
    # Ray origin and direction in the fitted ellipse's frame, scaled to the unit circle.
    ox, oy = cx - ex, cy - ey
    qx0, qy0 = (cp * ox + sp * oy) / a, (-sp * ox + cp * oy) / b
    ux, uy = ax * c, ay * s
    dx, dy = (cp * ux + sp * uy) / a, (-sp * ux + cp * uy) / b
    qa = dx * dx + dy * dy
    qb = 2 * (qx0 * dx + qy0 * dy)
    qc = qx0 * qx0 + qy0 * qy0 - 1
    if qc >= 0:  # the box centre lies outside the fitted ellipse: rays may miss it
        return None
    return (-qb + np.sqrt(qb * qb - 4 * qa * qc)) / (2 * qa)
