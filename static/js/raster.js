/* The pixel count a lesion will have in the exported mask, computed as the server computes it.
 *
 * The lesion list shows this figure, not the polygon's area: the mask, the COCO `area` and the
 * API all count painted pixels. It follows annotator/geometry.py `lesion_box` step by step:
 * vertices rounded half to even (numpy's rint), OpenCV's fillPoly with LINE_8 (every edge drawn
 * as an 8-connected Bresenham line, then on each row the pixels between two edges, edges in
 * 16.16 fixed point, from the ceiling of the left one to the floor of the right one, the
 * algorithm of the opencv-python-headless the server runs), holes filled with 0, their ring drawn back with 1 (a hole's ring is the lesion's inner
 * border), the result kept inside the outer fill. A test compares it with geometry.pixel_area on
 * random shapes in Chromium.
 */

const XY_SHIFT = 16;
const XY_ONE = 1 << XY_SHIFT;
const fixedToInt = (v) => Math.floor(v / XY_ONE); // an arithmetic >> XY_SHIFT without 32-bit wrap

/** numpy.rint: round half to even. */
export function rint(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** A box of pixels: data[y * w + x], covering [x0, x0 + w) x [y0, y0 + h). */
function makeBox(x0, y0, w, h) {
  return { x0, y0, w, h, data: new Uint8Array(w * h) };
}

function put(box, x, y, value) {
  const bx = x - box.x0;
  const by = y - box.y0;
  if (bx >= 0 && by >= 0 && bx < box.w && by < box.h) box.data[by * box.w + bx] = value;
}

/** OpenCV's Line() with 8-connectivity (LineIterator, left to right). */
function line(box, p0, p1, value) {
  let [x0, y0] = p0;
  let [x1, y1] = p1;
  if (x1 < x0) [x0, y0, x1, y1] = [x1, y1, x0, y0];
  let dx = x1 - x0;
  let dy = Math.abs(y1 - y0);
  const sy = y1 < y0 ? -1 : 1;
  // major: the step always taken; minor: the step taken when err < 0
  let major = [1, 0];
  let minor = [0, sy];
  if (dy > dx) {
    [dx, dy] = [dy, dx];
    [major, minor] = [minor, major];
  }
  let err = dx - 2 * dy;
  let x = x0;
  let y = y0;
  for (let i = 0; i <= dx; i++) {
    put(box, x, y, value);
    const step = err < 0;
    err += -2 * dy + (step ? 2 * dx : 0);
    x += major[0] + (step ? minor[0] : 0);
    y += major[1] + (step ? minor[1] : 0);
  }
}

/** OpenCV's fillPoly(img, rings, value, LINE_8) with shift 0 and no offset. */
function fillPoly(box, rings, value) {
  const edges = [];
  for (const ring of rings) {
    const n = ring.length;
    for (let i = 0; i < n; i++) {
      const a = ring[(i + n - 1) % n];
      const b = ring[i];
      line(box, a, b, value);
      if (a[1] === b[1]) continue;
      const ax = a[0] * XY_ONE;
      const bx = b[0] * XY_ONE;
      const dx = Math.trunc((bx - ax) / (b[1] - a[1]));
      if (a[1] < b[1]) edges.push({ y0: a[1], y1: b[1], x: ax, dx, next: null });
      else edges.push({ y0: b[1], y1: a[1], x: bx, dx, next: null });
    }
  }
  fillEdges(box, edges, value);
}

/** OpenCV's FillEdgeCollection: the scanlines between active edges, even-odd. */
function fillEdges(box, edges, value) {
  const total = edges.length;
  if (total < 2) return;
  const width = box.x0 + box.w; // the frame as fillPoly sees it: the box, in frame coordinates
  let yMax = -Infinity;
  for (const e of edges) yMax = Math.max(yMax, e.y1);
  edges.sort((a, b) => a.y0 - b.y0 || a.x - b.x || a.dx - b.dx);
  edges.push({ y0: Infinity, y1: Infinity, x: 0, dx: 0, next: null });
  const head = { next: null, x: 0, dx: 0 };
  let i = 0;
  let e = edges[0];
  yMax = Math.min(yMax, box.y0 + box.h);
  for (let y = e.y0; y < yMax; y++) {
    let draw = false;
    let prelast = head;
    let last = head.next;
    while (last || e.y0 === y) {
      if (last && last.y1 === y) {
        prelast.next = last.next;
        last = last.next;
        continue;
      }
      const keep = prelast;
      if (last && (e.y0 > y || last.x < e.x)) {
        prelast = last;
        last = last.next;
      } else if (i < total) {
        prelast.next = e;
        e.next = last;
        prelast = e;
        e = edges[++i];
      } else break;
      if (draw) {
        if (y >= box.y0) {
          let x1;
          let x2;
          if (keep.x > prelast.x) {
            x1 = fixedToInt(prelast.x + XY_ONE - 1);
            x2 = fixedToInt(keep.x);
          } else {
            x1 = fixedToInt(keep.x + XY_ONE - 1);
            x2 = fixedToInt(prelast.x);
          }
          if (x1 < width && x2 >= box.x0) {
            x1 = Math.max(x1, box.x0);
            x2 = Math.min(x2, width - 1);
            const row = (y - box.y0) * box.w - box.x0;
            box.data.fill(value, row + x1, row + x2 + 1);
          }
        }
        keep.x += keep.dx;
        prelast.x += prelast.dx;
      }
      draw = !draw;
    }
    // Keep the active list ordered by x (OpenCV's bubble sort: stable).
    const active = [];
    for (let a = head.next; a; a = a.next) active.push(a);
    active.sort((a, b) => a.x - b.x);
    head.next = active[0] || null;
    for (let k = 0; k < active.length; k++) active[k].next = active[k + 1] || null;
  }
}

const intRing = (ring) => ring.map(([x, y]) => [rint(x), rint(y)]);

/**
 * The lesion's mask inside its bounding box (geometry.lesion_box): {x0, y0, w, h, data} with
 * data[(y - y0) * w + (x - x0)] 1 where the lesion paints pixel (x, y); null when off the frame.
 */
export function lesionBox(lesion, width, height) {
  const outer = intRing(lesion.points);
  const xs = outer.map((p) => p[0]);
  const ys = outer.map((p) => p[1]);
  const x0 = Math.max(Math.min(...xs), 0);
  const y0 = Math.max(Math.min(...ys), 0);
  const x1 = Math.min(Math.max(...xs), width - 1);
  const y1 = Math.min(Math.max(...ys), height - 1);
  if (x1 < x0 || y1 < y0) return null;
  const box = makeBox(x0, y0, x1 - x0 + 1, y1 - y0 + 1);
  fillPoly(box, [outer], 1);
  const holes = (lesion.holes || []).map(intRing);
  if (holes.length) {
    fillPoly(box, holes, 0);
    for (const ring of holes) ring.forEach((p, k) => line(box, p, ring[(k + 1) % ring.length], 1));
    const outerOnly = makeBox(x0, y0, box.w, box.h);
    fillPoly(outerOnly, [outer], 1);
    for (let k = 0; k < box.data.length; k++) box.data[k] &= outerOnly.data[k];
  }
  return box;
}

/** Painted pixels of one lesion {points, holes} in a width x height frame (geometry.pixel_area). */
export function pixelArea(lesion, width, height) {
  const box = lesionBox(lesion, width, height);
  if (!box) return 0;
  let count = 0;
  for (let k = 0; k < box.data.length; k++) count += box.data[k];
  return count;
}

const cache = new Map();

/** pixelArea, remembered for the last few hundred shapes (the list is redrawn on every change). */
export function cachedPixelArea(lesion, width, height) {
  const key = JSON.stringify([lesion.points, lesion.holes || [], width, height]);
  let area = cache.get(key);
  if (area === undefined) {
    area = pixelArea(lesion, width, height);
    if (cache.size > 500) cache.clear();
    cache.set(key, area);
  }
  return area;
}

/** Pixels that lesions a and b both paint (0 when their boxes do not meet). */
export function overlapPixels(a, b, width, height) {
  const ba = lesionBox(a, width, height);
  const bb = lesionBox(b, width, height);
  if (!ba || !bb) return 0;
  const x0 = Math.max(ba.x0, bb.x0);
  const y0 = Math.max(ba.y0, bb.y0);
  const x1 = Math.min(ba.x0 + ba.w, bb.x0 + bb.w);
  const y1 = Math.min(ba.y0 + ba.h, bb.y0 + bb.h);
  let count = 0;
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      count += ba.data[(y - ba.y0) * ba.w + x - ba.x0] & bb.data[(y - bb.y0) * bb.w + x - bb.x0];
    }
  }
  return count;
}

/** Pairs [i, j, pixels] (i < j) of lesions of different labels that paint common pixels. */
export function labelOverlaps(lesions, width, height) {
  const pairs = [];
  for (let i = 0; i < lesions.length; i++) {
    for (let j = i + 1; j < lesions.length; j++) {
      if (lesions[i].label === lesions[j].label || !boxesMeet(lesions[i], lesions[j])) continue;
      const n = overlapPixels(lesions[i], lesions[j], width, height);
      if (n) pairs.push([i, j, n]);
    }
  }
  return pairs;
}

function boxesMeet(a, b) {
  const span = (ring) => {
    const xs = ring.map((p) => p[0]);
    const ys = ring.map((p) => p[1]);
    return [Math.min(...xs) - 1, Math.min(...ys) - 1, Math.max(...xs) + 1, Math.max(...ys) + 1];
  };
  const [ax0, ay0, ax1, ay1] = span(a.points);
  const [bx0, by0, bx1, by1] = span(b.points);
  return ax0 <= bx1 && bx0 <= ax1 && ay0 <= by1 && by0 <= ay1;
}
