/* Mask -> lesions: the outlines of a binary pixel mask, as the server traces them.
 *
 * The brush and the eraser edit a lesion as pixels (raster.js paints it exactly as the export
 * will); this module turns the edited pixels back into lesions {points, holes} that the server
 * validates like any other. It is Suzuki and Abe's border following (1985), the algorithm of
 * OpenCV's findContours that annotator/geometry.py `extract_lesions` runs on imported masks, with
 * the same conventions, so that mask -> rings -> mask gives back the same pixels:
 * - foreground is 8-connected, background 4-connected; one lesion per 8-connected component;
 * - a ring runs through the centres of the lesion's border pixels; a hole ring through the
 *   lesion pixels around the hole (its inner border), which raster.js and the server keep painted;
 * - straight runs are reduced to their ends (OpenCV's CHAIN_APPROX_SIMPLE);
 * - a component too thin to outline (under 3 corner points: a speck or a 1-pixel line) is dropped
 *   and counted, as extract_lesions drops it.
 * Why this and not marching squares: marching squares puts vertices on pixel edges (half-pixel
 * positions) whose fillPoly rasterisation differs from the painted pixels by a pixel here and
 * there; border following through pixel centres round-trips exactly.
 */

// Neighbours clockwise on screen (y down), starting east.
const DX = [1, 1, 0, -1, -1, -1, 0, 1];
const DY = [0, 1, 1, 1, 0, -1, -1, -1];

function dirOf(dx, dy) {
  for (let d = 0; d < 8; d++) if (DX[d] === dx && DY[d] === dy) return d;
  return -1;
}

/** Keep the corners of a closed chain of 8-neighbour steps (CHAIN_APPROX_SIMPLE). */
function corners(chain) {
  const n = chain.length;
  if (n < 3) return chain;
  const out = [];
  for (let i = 0; i < n; i++) {
    const p = chain[(i + n - 1) % n];
    const q = chain[i];
    const r = chain[(i + 1) % n];
    if (q[0] - p[0] !== r[0] - q[0] || q[1] - p[1] !== r[1] - q[1]) out.push(q);
  }
  return out;
}

/**
 * The lesions of a mask box {x0, y0, w, h, data} (data[y * w + x] non-zero where painted), in
 * image coordinates: {lesions: [{points, holes}], dropped} (dropped: specks too thin to outline).
 * Lesions come in raster order of their top-left border pixel.
 */
export function traceMask({ x0, y0, w, h, data }) {
  const W = w + 2;
  const H = h + 2;
  const f = new Int32Array(W * H); // padded: the tracer sees background all round
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) if (data[y * w + x]) f[(y + 1) * W + x + 1] = 1;
  const comp = components(f, W, H);
  const outers = new Map(); // component -> outer ring
  const holes = new Map(); // component -> hole rings
  let nbd = 1;
  for (let y = 1; y < H - 1; y++) {
    for (let x = 1; x < W - 1; x++) {
      const v = f[y * W + x];
      if (v === 0) continue;
      let from;
      let outer;
      if (v === 1 && f[y * W + x - 1] === 0) {
        outer = true;
        from = 4; // west
      } else if (v >= 1 && f[y * W + x + 1] === 0) {
        outer = false;
        from = 0; // east
      } else continue;
      nbd += 1;
      const chain = follow(f, W, x, y, from, nbd);
      const ring = corners(chain).map(([px, py]) => [px - 1 + x0, py - 1 + y0]);
      const c = comp[y * W + x];
      if (outer) outers.set(c, ring);
      else (holes.get(c) || holes.set(c, []).get(c)).push(ring);
    }
  }
  const lesions = [];
  let dropped = 0;
  for (const [c, ring] of outers) {
    if (ring.length < 3) {
      dropped += 1;
      continue;
    }
    lesions.push({ points: ring, holes: (holes.get(c) || []).filter((r) => r.length >= 3) });
  }
  return { lesions, dropped };
}

/** Suzuki-Abe step 3: follow the border from (x, y), whose 0-neighbour is in direction `from`. */
function follow(f, W, x, y, from, nbd) {
  let found = -1;
  for (let k = 0; k < 8; k++) {
    const d = (from + k) % 8;
    if (f[(y + DY[d]) * W + x + DX[d]] !== 0) {
      found = d;
      break;
    }
  }
  if (found < 0) {
    f[y * W + x] = -nbd; // a lone pixel
    return [[x, y]];
  }
  const x1 = x + DX[found];
  const y1 = y + DY[found];
  let x2 = x1;
  let y2 = y1;
  let x3 = x;
  let y3 = y;
  const chain = [];
  for (;;) {
    chain.push([x3, y3]);
    const back = dirOf(x2 - x3, y2 - y3);
    let eastZero = false;
    let x4 = x3;
    let y4 = y3;
    for (let k = 1; k <= 8; k++) {
      const d = (back - k + 16) % 8; // counter-clockwise from the pixel after (x2, y2)
      const nx = x3 + DX[d];
      const ny = y3 + DY[d];
      if (f[ny * W + nx] !== 0) {
        x4 = nx;
        y4 = ny;
        break;
      }
      if (d === 0) eastZero = true;
    }
    const at = y3 * W + x3;
    if (eastZero) f[at] = -nbd;
    else if (f[at] === 1) f[at] = nbd;
    if (x4 === x && y4 === y && x3 === x1 && y3 === y1) break;
    x2 = x3;
    y2 = y3;
    x3 = x4;
    y3 = y4;
  }
  return chain;
}

/** 8-connected component number of every non-zero cell (0 for background): row runs, union-find. */
function components(f, W, H) {
  const comp = new Int32Array(W * H);
  const parent = [0];
  const find = (a) => {
    while (parent[a] !== a) a = parent[a] = parent[parent[a]];
    return a;
  };
  const union = (a, b) => {
    a = find(a);
    b = find(b);
    if (a !== b) parent[Math.max(a, b)] = Math.min(a, b);
  };
  for (let y = 1; y < H - 1; y++) {
    const row = y * W;
    for (let x = 1; x < W - 1; x++) {
      const i = row + x;
      if (f[i] === 0) continue;
      // Neighbours already labelled: west, north-west, north, north-east.
      const w = comp[i - 1];
      const nw = comp[i - W - 1];
      const n = comp[i - W];
      const ne = comp[i - W + 1];
      let label = w || nw || n || ne;
      if (!label) {
        label = parent.length;
        parent.push(label);
      } else {
        if (nw && nw !== label) union(label, nw);
        if (n && n !== label) union(label, n);
        if (ne && ne !== label) union(label, ne);
      }
      comp[i] = label;
    }
  }
  for (let i = 0; i < comp.length; i++) if (comp[i]) comp[i] = find(comp[i]);
  return comp;
}
