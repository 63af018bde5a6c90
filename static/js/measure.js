/* Lesion diameters from a contour, as annotator/measurements.py computes them (pure, no DOM).
 *
 * Points are scaled to millimetres first when the image is calibrated (X and Y spacing may
 * differ), so lengths are physical. Longest diameter: the longest segment between two contour
 * points (on the convex hull). Perpendicular diameter: over every line at a right angle to it,
 * the distance between the first and last crossing of the contour, the longest such; evaluated
 * at the vertices' positions along the long axis (where its maximum lies), at most MAX_STATIONS.
 */

const MAX_STATIONS = 2000;

function hull(pts) {
  const p = [...pts].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const half = (seq) => {
    const out = [];
    for (const q of seq) {
      while (out.length >= 2 && cross(out[out.length - 2], out[out.length - 1], q) <= 0) out.pop();
      out.push(q);
    }
    return out;
  };
  const lower = half(p);
  const upper = half([...p].reverse());
  return [...lower.slice(0, -1), ...upper.slice(0, -1)];
}

/** {longest, perpendicular, unit, longestEnds, perpendicularEnds} of an outer ring in image pixels. */
export function diameters(points, spacing = null) {
  const sx = spacing ? spacing.x : 1;
  const sy = spacing ? spacing.y : 1;
  const pts = points.map((p) => [p[0] * sx, p[1] * sy]);
  const h = hull(pts);
  let best = 0;
  let a = pts[0];
  let b = pts[0];
  for (let i = 0; i < h.length; i++) {
    for (let j = i + 1; j < h.length; j++) {
      const d = (h[i][0] - h[j][0]) ** 2 + (h[i][1] - h[j][1]) ** 2;
      if (d > best) [best, a, b] = [d, h[i], h[j]];
    }
  }
  const longest = Math.sqrt(best);
  let perp = 0;
  let ends = [a, a];
  if (longest > 0) {
    const u = [(b[0] - a[0]) / longest, (b[1] - a[1]) / longest];
    const v = [-u[1], u[0]];
    const s = pts.map((p) => (p[0] - a[0]) * u[0] + (p[1] - a[1]) * u[1]);
    const t = pts.map((p) => (p[0] - a[0]) * v[0] + (p[1] - a[1]) * v[1]);
    let stations = [...new Set(s)].sort((x, y) => x - y);
    if (stations.length > MAX_STATIONS) {
      const [lo, hi] = [stations[0], stations[stations.length - 1]];
      stations = Array.from({ length: MAX_STATIONS }, (_, k) => lo + ((hi - lo) * k) / (MAX_STATIONS - 1));
    }
    const n = pts.length;
    for (const st of stations) {
      let top = -Infinity;
      let bottom = Infinity;
      for (let k = 0; k < n; k++) {
        const s0 = s[k];
        const s1 = s[(k + 1) % n];
        const t0 = t[k];
        const t1 = t[(k + 1) % n];
        if (st < Math.min(s0, s1) || st > Math.max(s0, s1)) continue;
        if (s1 === s0) {
          top = Math.max(top, t0, t1);
          bottom = Math.min(bottom, t0, t1);
        } else {
          const tt = t0 + ((st - s0) / (s1 - s0)) * (t1 - t0);
          top = Math.max(top, tt);
          bottom = Math.min(bottom, tt);
        }
      }
      if (top - bottom > perp) {
        perp = top - bottom;
        const base = [a[0] + st * u[0], a[1] + st * u[1]];
        ends = [[base[0] + bottom * v[0], base[1] + bottom * v[1]], [base[0] + top * v[0], base[1] + top * v[1]]];
      }
    }
  }
  const back = (p) => [p[0] / sx, p[1] / sy];
  return {
    longest,
    perpendicular: perp,
    unit: spacing ? "mm" : "px",
    longestEnds: [back(a), back(b)],
    perpendicularEnds: ends.map(back),
  };
}

const cache = new Map();

/** diameters(), remembered for the last few hundred rings (the side panel re-renders on every change). */
export function cachedDiameters(points, spacing) {
  const key = `${spacing ? `${spacing.x},${spacing.y}` : "px"}|${points.flat().join(",")}`;
  let hit = cache.get(key);
  if (!hit) {
    hit = diameters(points, spacing);
    if (cache.size > 500) cache.clear();
    cache.set(key, hit);
  }
  return hit;
}

/** The image's spacing from the page's data attributes: X and Y when known, else the one figure. */
export function spacingOf(dataset) {
  const one = parseFloat(dataset.spacing) || null;
  const x = parseFloat(dataset.spacingX) || one;
  const y = parseFloat(dataset.spacingY) || one;
  return x && y ? { x, y } : null;
}
