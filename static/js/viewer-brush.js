/* The viewer's pixel tools: Brush and Eraser add to or cut from a lesion; Hole cuts a drawn
 * polygon out of one.
 *
 * Brush and Eraser work on pixels, as Slicer's and CVAT's do: the lesion is painted into a mask
 * exactly as the export paints it (raster.js), the stroke (a disc of the brush radius swept along
 * the pointer) is added or cleared, and the mask is traced back into rings with holes (trace.js).
 * The result is a lesion like any other and the server validates it so; a mask -> rings -> mask
 * round trip gives back the same pixels. A brush stroke with no lesion selected paints a new one
 * in the next-lesion label; an eraser stroke that splits a lesion leaves one lesion per piece.
 *
 * Hole keeps the reader's vertices: the polygon becomes a hole ring of the selected lesion, after
 * checking that every pixel it clears belongs to that lesion (inside its outline, not in a hole).
 *
 * Each stroke or hole is one undo step.
 */
/* global Konva */
import { COLOURS, clampPoint, copyLesion, dedupe, findCrossing, ringArea } from "./contours.js";
import { lesionBox, pixelArea } from "./raster.js";
import { traceMask } from "./trace.js";

export const PIXEL_TOOLS = ["brush", "eraser"];
export const MIN_RADIUS = 1;
export const MAX_RADIUS = 100;
export const DEFAULT_RADIUS = 8;

/** Set the brush radius in image pixels (clamped); returns it. */
export function setRadius(v, r) {
  v.brushRadius = Math.max(MIN_RADIUS, Math.min(MAX_RADIUS, Math.round(r)));
  v._emit("brushsize", { radius: v.brushRadius });
  v.redraw();
  return v.brushRadius;
}

/** [ and ] make the brush smaller or larger (by a quarter, at least a pixel). */
export function onBracketKey(v, key) {
  if (key !== "[" && key !== "]") return false;
  if (!PIXEL_TOOLS.includes(v.tool)) return false;
  const step = Math.max(1, Math.round(v.brushRadius / 4));
  setRadius(v, v.brushRadius + (key === "]" ? step : -step));
  return true;
}

/** A press with the brush or eraser: which lesion the stroke edits, then the stroke begins. */
export function startStroke(v, e, p, lesionHit) {
  if (v.selected < 0 && lesionHit >= 0) v._select(lesionHit);
  if (v.tool === "eraser" && v.selected < 0) {
    v._emit("warning", { message: "Select the lesion to erase from (or press on it)." });
    return false;
  }
  v._draft = { kind: "stroke", erase: v.tool === "eraser", points: [clampPoint([p.x, p.y], v.width, v.height)] };
  v._drag = { kind: "stroke" };
  v.el.setPointerCapture?.(e.pointerId);
  v.redraw();
  return true;
}

export function strokeTo(v, p) {
  const pts = v._draft.points;
  const q = clampPoint([p.x, p.y], v.width, v.height);
  const last = pts[pts.length - 1];
  if (Math.hypot(q[0] - last[0], q[1] - last[1]) >= Math.max(0.5, v.brushRadius / 4)) {
    pts.push(q);
    v.redraw();
  }
}

/** The release: paint or clear the stroke in the lesion's pixels and trace the result back. */
export function endStroke(v) {
  const d = v._draft;
  v._draft = null;
  if (!d) return v.redraw();
  const index = v.selected;
  const lesion = v.lesions[index] || null;
  const mask = strokeMask(lesion, d.points, v.brushRadius, d.erase, v.width, v.height);
  const { lesions, dropped } = traceMask(mask);
  if (dropped) v._emit("warning", { message: `${dropped} speck${dropped > 1 ? "s" : ""} too thin to outline ${dropped > 1 ? "were" : "was"} left out.` });
  const label = lesion ? lesion.label : v.pendingLabel;
  const pieces = lesions.map((l, k) => ({ id: k === 0 && lesion ? lesion.id : null, label, points: l.points, holes: l.holes }));
  if (!lesion) {
    if (!pieces.length) return v.redraw();
    v.lesions.push(...pieces);
    v._select(v.lesions.length - pieces.length);
    v._fresh = true;
  } else {
    if (!pieces.length) v._emit("warning", { message: "The eraser removed the whole lesion (Ctrl+Z brings it back)." });
    else if (pieces.length > 1) v._emit("warning", { message: `The lesion is now ${pieces.length} separate lesions.` });
    v.lesions.splice(index, 1, ...pieces);
    v._select(pieces.length ? index : -1);
  }
  v._commit();
}

/** The mask box of `lesion` (or empty) with a stroke of discs of radius r along `points` added or cleared. */
export function strokeMask(lesion, points, r, erase, width, height) {
  const own = lesion ? lesionBox(lesion, width, height) : null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  let x0 = Math.max(0, Math.floor(Math.min(...xs) - r));
  let y0 = Math.max(0, Math.floor(Math.min(...ys) - r));
  let x1 = Math.min(width - 1, Math.ceil(Math.max(...xs) + r));
  let y1 = Math.min(height - 1, Math.ceil(Math.max(...ys) + r));
  if (own) {
    x0 = Math.min(x0, own.x0);
    y0 = Math.min(y0, own.y0);
    x1 = Math.max(x1, own.x0 + own.w - 1);
    y1 = Math.max(y1, own.y0 + own.h - 1);
  }
  const w = x1 - x0 + 1;
  const h = y1 - y0 + 1;
  const data = new Uint8Array(w * h);
  if (own) {
    for (let y = 0; y < own.h; y++) {
      for (let x = 0; x < own.w; x++) data[(y + own.y0 - y0) * w + x + own.x0 - x0] = own.data[y * own.w + x];
    }
  }
  const value = erase ? 0 : 1;
  const segs = points.length > 1 ? points.slice(1).map((p, k) => [points[k], p]) : [[points[0], points[0]]];
  for (const [a, b] of segs) {
    const sx0 = Math.max(x0, Math.floor(Math.min(a[0], b[0]) - r));
    const sx1 = Math.min(x1, Math.ceil(Math.max(a[0], b[0]) + r));
    const sy0 = Math.max(y0, Math.floor(Math.min(a[1], b[1]) - r));
    const sy1 = Math.min(y1, Math.ceil(Math.max(a[1], b[1]) + r));
    for (let y = sy0; y <= sy1; y++) {
      for (let x = sx0; x <= sx1; x++) {
        if (segDist2(x, y, a, b) <= r * r) data[(y - y0) * w + x - x0] = value;
      }
    }
  }
  return { x0, y0, w, h, data };
}

function segDist2(x, y, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 ? Math.max(0, Math.min(1, ((x - a[0]) * dx + (y - a[1]) * dy) / len2)) : 0;
  const qx = a[0] + t * dx - x;
  const qy = a[1] + t * dy - y;
  return qx * qx + qy * qy;
}

/**
 * Make `points` a hole of the selected lesion; false (with a warning) when it cannot be one: it
 * must clear only pixels of that lesion, and at least one.
 */
export function addHole(v, points) {
  const lesion = v.lesions[v.selected];
  if (!lesion) {
    v._emit("warning", { message: "Select the lesion the hole belongs to first." });
    return false;
  }
  const ring = dedupe(points.map((p) => clampPoint(p, v.width, v.height)));
  if (ring.length < 3 || Math.abs(ringArea(ring)) < 1 || findCrossing(ring)) {
    v._emit("warning", { message: "That hole is too small or crosses itself; draw it again." });
    return false;
  }
  const own = lesionBox(lesion, v.width, v.height);
  const cut = lesionBox({ points: ring, holes: [] }, v.width, v.height);
  for (let y = 0; y < cut.h; y++) {
    for (let x = 0; x < cut.w; x++) {
      if (!cut.data[y * cut.w + x]) continue;
      const ox = x + cut.x0 - own.x0;
      const oy = y + cut.y0 - own.y0;
      const inside = ox >= 0 && oy >= 0 && ox < own.w && oy < own.h && own.data[oy * own.w + ox];
      if (!inside) {
        v._emit("warning", { message: "A hole must lie inside the selected lesion, clear of its other holes." });
        return false;
      }
    }
  }
  const next = { ...copyLesion(lesion), holes: [...copyLesion(lesion).holes, ring] };
  if (pixelArea(next, v.width, v.height) >= pixelArea(lesion, v.width, v.height)) {
    v._emit("warning", { message: "That hole is too small to clear a pixel; draw it larger." });
    return false;
  }
  v.lesions[v.selected] = next;
  v._commit();
  return true;
}

/** The stroke being drawn and the brush outline under the pointer (called by viewer-render.js). */
export function drawBrush(v, layer) {
  const s = v.scale;
  const d = v._draft;
  const label = v.lesions[v.selected]?.label ?? v.pendingLabel;
  const [r, g, b] = COLOURS[label] || [255, 255, 0];
  if (d?.kind === "stroke") {
    const pts = d.points.length > 1 ? d.points.flat() : [...d.points[0], ...d.points[0]];
    layer.add(new Konva.Line({
      points: pts, stroke: d.erase ? "rgba(0,0,0,0.55)" : `rgba(${r},${g},${b},0.45)`, strokeWidth: 2 * v.brushRadius,
      lineCap: "round", lineJoin: "round", listening: false,
    }));
  }
  if (PIXEL_TOOLS.includes(v.tool) && v._cursor && !v.readOnly) {
    layer.add(new Konva.Circle({
      x: v._cursor.x, y: v._cursor.y, radius: v.brushRadius, stroke: v.tool === "eraser" ? "#fff" : `rgb(${r},${g},${b})`,
      strokeWidth: 1.5 / s, dash: v.tool === "eraser" ? [4 / s, 3 / s] : null, listening: false,
    }));
  }
}
