/* Contour geometry for the drawing pages: pure functions on rings of [x, y] image pixels.
 *
 * No DOM, no Konva, no server: the viewer draws with these, the pages measure with them, and
 * the rules match annotator/geometry.py (a proper crossing is refused, touching is allowed).
 */

export const LABELS = ["benign", "malignant"];
export const COLOURS = { benign: [0, 255, 0], malignant: [255, 0, 0] }; // the mask colours

/** Signed shoelace area of a ring (positive when the ring runs clockwise on screen). */
export function ringArea(ring) {
  let a = 0;
  for (let i = 0, n = ring.length; i < n; i++) {
    const [x1, y1] = ring[i];
    const [x2, y2] = ring[(i + 1) % n];
    a += x1 * y2 - x2 * y1;
  }
  return a / 2;
}

/** Shoelace area in px² of the outer ring less its holes (the server counts painted pixels). */
export function lesionArea(lesion) {
  const holes = (lesion.holes || []).reduce((s, h) => s + Math.abs(ringArea(h)), 0);
  return Math.max(0, Math.abs(ringArea(lesion.points)) - holes);
}

export function centroid(ring) {
  const a = ringArea(ring);
  if (Math.abs(a) < 1e-9) {
    const n = ring.length;
    return [ring.reduce((s, p) => s + p[0], 0) / n, ring.reduce((s, p) => s + p[1], 0) / n];
  }
  let cx = 0;
  let cy = 0;
  for (let i = 0, n = ring.length; i < n; i++) {
    const [x1, y1] = ring[i];
    const [x2, y2] = ring[(i + 1) % n];
    const f = x1 * y2 - x2 * y1;
    cx += (x1 + x2) * f;
    cy += (y1 + y2) * f;
  }
  return [cx / (6 * a), cy / (6 * a)];
}

function orient(p, q, r) {
  return Math.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]));
}

function properlyCross(a, b, c, d) {
  return orient(a, b, c) * orient(a, b, d) < 0 && orient(c, d, a) * orient(c, d, b) < 0;
}

/** First pair of non-adjacent edges that properly cross, or null (same rule as the server). */
export function findCrossing(points) {
  const n = points.length;
  if (n < 4) return null;
  for (let i = 0; i < n - 2; i++) {
    const a = points[i];
    const b = points[i + 1];
    for (let j = i + 2; j < (i > 0 ? n : n - 1); j++) {
      if (properlyCross(a, b, points[j], points[(j + 1) % n])) return [i, j];
    }
  }
  return null;
}

/** Would the open path `points` plus a segment to `p` cross itself? */
export function segmentCrossesPath(points, p) {
  const last = points[points.length - 1];
  for (let i = 0; i < points.length - 2; i++) {
    if (properlyCross(points[i], points[i + 1], last, p)) return true;
  }
  return false;
}

function lineIntersection(a, b, c, d) {
  const den = (a[0] - b[0]) * (c[1] - d[1]) - (a[1] - b[1]) * (c[0] - d[0]);
  const t = ((a[0] - c[0]) * (c[1] - d[1]) - (a[1] - c[1]) * (c[0] - d[0])) / den;
  return [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
}

/** Distance from p to segment ab, and the nearest point q on it. */
export function distToSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2)) : 0;
  const q = [a[0] + t * dx, a[1] + t * dy];
  return { d: Math.hypot(p[0] - q[0], p[1] - q[1]), q };
}

/** Ramer–Douglas–Peucker on an open path (iterative, so long traces do not blow the stack). */
export function simplify(points, epsilon) {
  if (points.length < 3) return points.slice();
  const keep = new Uint8Array(points.length);
  keep[0] = keep[points.length - 1] = 1;
  const stack = [[0, points.length - 1]];
  while (stack.length) {
    const [s, e] = stack.pop();
    let best = -1;
    let bestD = epsilon;
    for (let i = s + 1; i < e; i++) {
      const { d } = distToSegment(points[i], points[s], points[e]);
      if (d > bestD) {
        bestD = d;
        best = i;
      }
    }
    if (best >= 0) {
      keep[best] = 1;
      stack.push([s, best], [best, e]);
    }
  }
  return points.filter((_, i) => keep[i]);
}

/** Stored points carry one decimal: finer than any mouse, coarse enough to compare. */
export function roundPoint([x, y]) {
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

/** The point moved inside a width x height image (pixel centres 0..width-1), rounded. */
export function clampPoint(p, width, height) {
  return roundPoint([Math.min(Math.max(p[0], 0), width - 1), Math.min(Math.max(p[1], 0), height - 1)]);
}

/** [x0, y0, x1, y1] with x0 <= x1 and y0 <= y1, from two opposite corners. */
export function boxFromCorners(a, b) {
  return [Math.min(a[0], b[0]), Math.min(a[1], b[1]), Math.max(a[0], b[0]), Math.max(a[1], b[1])];
}

/** Drop repeated points (and a closing point equal to the first). */
export function dedupe(points) {
  const out = [];
  for (const p of points) {
    const q = out[out.length - 1];
    if (!q || q[0] !== p[0] || q[1] !== p[1]) out.push(p);
  }
  while (out.length > 1 && out[0][0] === out[out.length - 1][0] && out[0][1] === out[out.length - 1][1]) out.pop();
  return out;
}

/**
 * Make a traced ring simple: where it crosses itself, keep the larger of the two loops.
 * A freehand trace often overshoots where it closes; the server refuses crossing contours.
 */
export function untangle(points, round = roundPoint) {
  let pts = dedupe(points.map(round));
  for (let guard = 0; guard < 200; guard++) {
    const c = findCrossing(pts);
    if (!c) return pts;
    const [i, j] = c;
    const n = pts.length;
    const x = round(lineIntersection(pts[i], pts[i + 1], pts[j], pts[(j + 1) % n]));
    const a = dedupe([...pts.slice(0, i + 1), x, ...pts.slice(j + 1)]);
    const b = dedupe([x, ...pts.slice(i + 1, j + 1)]);
    pts = Math.abs(ringArea(a)) >= Math.abs(ringArea(b)) ? a : b;
    if (pts.length < 3) return pts;
  }
  return pts;
}

/** A deep copy of a lesion in the shape the pages and the API use. */
export function copyLesion(l) {
  return {
    id: l.id ?? null,
    label: l.label,
    points: l.points.map((p) => [p[0], p[1]]),
    holes: (l.holes || []).map((h) => h.map((p) => [p[0], p[1]])),
    // BI-RADS descriptors travel with the contour (annotator/birads.py); never read here.
    descriptors: structuredClone(l.descriptors || {}),
  };
}

/**
 * The whole-pixel offset nearest (dx, dy) that keeps every point of every lesion (outer rings
 * and holes) inside a width x height image: the drawing moves as one piece and stops at the
 * border rather than being squeezed against it. [0, 0] when there is nothing to move.
 */
export function clampOffset(lesions, dx, dy, width, height) {
  let minX = Infinity;
  let minY = Infinity;
  let maxX = -Infinity;
  let maxY = -Infinity;
  for (const lesion of lesions) {
    for (const ring of [lesion.points, ...lesion.holes]) {
      for (const [x, y] of ring) {
        minX = Math.min(minX, x);
        maxX = Math.max(maxX, x);
        minY = Math.min(minY, y);
        maxY = Math.max(maxY, y);
      }
    }
  }
  if (minX === Infinity) return [0, 0];
  const clamp = (d, lo, hi) => (lo > hi ? 0 : Math.min(Math.max(Math.round(d), lo), hi) || 0);
  return [clamp(dx, Math.ceil(-minX), Math.floor(width - 1 - maxX)), clamp(dy, Math.ceil(-minY), Math.floor(height - 1 - maxY))];
}

/** Copies of the lesions moved by (dx, dy): every ring, holes included; labels and ids kept. */
export function translateLesions(lesions, dx, dy) {
  const move = (ring) => ring.map(([x, y]) => [x + dx, y + dy]);
  return lesions.map((l) => ({ id: l.id ?? null, label: l.label, points: move(l.points), holes: l.holes.map(move) }));
}

/**
 * The offset [dx, dy] (to 0.1 px) that takes `from` to `to` when `to` is `from` moved as one
 * piece, else null. Sums of moves differ from one move by float rounding, hence the tolerance.
 */
export function translationBetween(from, to) {
  if (!from.length || from.length !== to.length) return null;
  const dx = to[0].points[0][0] - from[0].points[0][0];
  const dy = to[0].points[0][1] - from[0].points[0][1];
  const close = (u, v) => Math.abs(u - v) < 1e-6;
  const same = (a, b) => a.length === b.length && a.every((p, k) => close(p[0] + dx, b[k][0]) && close(p[1] + dy, b[k][1]));
  for (let i = 0; i < from.length; i++) {
    const f = from[i];
    const t = to[i];
    if (!same(f.points, t.points) || f.holes.length !== t.holes.length) return null;
    if (!f.holes.every((h, k) => same(h, t.holes[k]))) return null;
  }
  return [Math.round(dx * 10) / 10, Math.round(dy * 10) / 10];
}
