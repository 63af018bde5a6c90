/* BUS Review drawing module: lesion contours on one ultrasound image, rendered with Konva.
 *
 * Shaped like signature_pad: the lesion data, in IMAGE PIXEL coordinates, is the source of
 * truth; redraw() renders it; toData()/fromData() save and load it; on()/off() subscribe to
 * events. The viewer never talks to the server — pages listen to its events and call the API.
 *
 * A point (x, y) is the centre of pixel column x, row y (as in annotator/geometry.py), so the
 * bitmap is drawn at (-0.5, -0.5) and contours sit on pixel centres at every zoom.
 *
 * Events: change (any document change, undo/redo included), contourchange, selectionchange,
 * toolchange, labelchange, history, zoom, pointer, pin, pinclick, visibility, warning.
 */
/* global Konva */

export const LABELS = ["benign", "malignant"];
export const COLOURS = { benign: [0, 255, 0], malignant: [255, 0, 0] };
const HANDLE_PX = 4.5; // vertex handle radius on screen
const CLOSE_PX = 9; // a click this close to the first vertex closes the polygon
const EDGE_PX = 7; // a click this close to an edge of the selected lesion inserts a vertex
const MAX_SCALE = 64;
const HISTORY_LIMIT = 300;
const COALESCE_MS = 1500;
const MAX_FREEHAND_POINTS = 400;

// --- geometry (pure) ------------------------------------------------------------------------

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
function segmentCrossesPath(points, p) {
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

function distToSegment(p, a, b) {
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

function roundPoint([x, y]) {
  return [Math.round(x * 10) / 10, Math.round(y * 10) / 10];
}

/** Drop repeated points (and a closing point equal to the first). */
function dedupe(points) {
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

function rgba(label, alpha) {
  const [r, g, b] = COLOURS[label] || [255, 255, 0];
  return `rgba(${r},${g},${b},${alpha})`;
}

function copyLesion(l) {
  return {
    id: l.id ?? null,
    label: l.label,
    points: l.points.map((p) => [p[0], p[1]]),
    holes: (l.holes || []).map((h) => h.map((p) => [p[0], p[1]])),
  };
}

function isTextTarget(t) {
  if (!t || !t.tagName) return false;
  if (t.isContentEditable) return true;
  if (t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  return t.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "range"].includes(t.type);
}

// --- the viewer -----------------------------------------------------------------------------

export class Viewer {
  constructor(container, { width, height, readOnly = false, keyboard = true } = {}) {
    this.el = container;
    this.width = width;
    this.height = height;
    this.readOnly = readOnly;
    this.lesions = [];
    this.attrs = {};
    this.selected = -1;
    this.selectedVertex = -1;
    this.tool = "polygon";
    this.pendingLabel = "benign";
    this.mode = null; // "pin" on the review page
    this.drawEnabled = true;
    this.fillOpacity = 0.3;
    this.visible = true;
    this.overlay = null;
    this.overlayVisible = false;
    this.pins = [];
    this.activePin = -1;
    this.scale = 1;
    this._fitted = true;
    this._draft = null; // {kind: "polygon"|"freehand", points}
    this._drag = null;
    this._cursor = null;
    this._space = false;
    this._handlers = {};
    this._history = [];
    this._hIndex = -1;
    this._lastCommit = { key: null, at: 0 };
    this._image = null;
    this.imageLoaded = false;

    this.stage = new Konva.Stage({ container, width: container.clientWidth || 1, height: container.clientHeight || 1 });
    this.imageLayer = new Konva.Layer({ listening: false });
    this.overlayLayer = new Konva.Layer({ listening: false });
    this.lesionLayer = new Konva.Layer();
    this.uiLayer = new Konva.Layer();
    this.stage.add(this.imageLayer, this.lesionLayer, this.overlayLayer, this.uiLayer);
    this._frame = new Konva.Rect({ x: -0.5, y: -0.5, width, height, fill: "#000" });
    this.imageLayer.add(this._frame);

    this._bind(keyboard);
    this._pushHistory();
    this.fit();
  }

  // --- events ---

  on(name, fn) {
    (this._handlers[name] ||= new Set()).add(fn);
    return this;
  }

  off(name, fn) {
    if (fn) this._handlers[name]?.delete(fn);
    else delete this._handlers[name];
    return this;
  }

  _emit(name, detail = {}) {
    for (const fn of this._handlers[name] || []) fn(detail);
  }

  // --- data ---

  /** The document: {lesions: [{id, label, points, holes}], ...attrs} (deep copies). */
  toData() {
    return { ...structuredClone(this.attrs), lesions: this.lesions.map(copyLesion) };
  }

  /** Replace the document; by default the undo history starts afresh from it. */
  fromData(data, { resetHistory = true } = {}) {
    const { lesions = [], ...attrs } = data || {};
    this.lesions = lesions.map(copyLesion);
    this.attrs = structuredClone(attrs);
    this._draft = null;
    this._select(this.selected < this.lesions.length ? this.selected : -1);
    if (resetHistory) {
      this._history = [];
      this._hIndex = -1;
      this._pushHistory();
    } else {
      this._commit();
    }
    this.redraw();
  }

  getAttrs() {
    return structuredClone(this.attrs);
  }

  /** Page-owned fields (normal flag, note...) share the undo history with the contours. */
  setAttrs(partial, { coalesce = null } = {}) {
    Object.assign(this.attrs, partial);
    this._commit({ coalesce, contours: false });
  }

  // --- history ---

  _snapshot() {
    return JSON.stringify({ lesions: this.lesions, attrs: this.attrs });
  }

  _pushHistory() {
    this._history.splice(this._hIndex + 1);
    this._history.push(this._snapshot());
    if (this._history.length > HISTORY_LIMIT) this._history.shift();
    this._hIndex = this._history.length - 1;
    this._emit("history", { canUndo: this.canUndo(), canRedo: this.canRedo() });
  }

  _commit({ coalesce = null, contours = true } = {}) {
    const now = Date.now();
    const same = coalesce && this._lastCommit.key === coalesce && now - this._lastCommit.at < COALESCE_MS;
    if (same && this._hIndex === this._history.length - 1) this._history[this._hIndex] = this._snapshot();
    else this._pushHistory();
    this._lastCommit = { key: coalesce, at: now };
    if (contours) this._emit("contourchange", { lesions: this.lesions.map(copyLesion) });
    this._emit("change", { data: this.toData() });
    this.redraw();
  }

  canUndo() {
    return this._hIndex > 0;
  }

  canRedo() {
    return this._hIndex < this._history.length - 1;
  }

  undo() {
    if (this._draft) return this.cancelDraft();
    if (this.canUndo()) this._restore(this._hIndex - 1);
  }

  redo() {
    if (this.canRedo()) this._restore(this._hIndex + 1);
  }

  _restore(index) {
    this._hIndex = index;
    const { lesions, attrs } = JSON.parse(this._history[index]);
    this.lesions = lesions;
    this.attrs = attrs;
    this._lastCommit = { key: null, at: 0 };
    this._select(this.selected < this.lesions.length ? this.selected : -1);
    this._emit("history", { canUndo: this.canUndo(), canRedo: this.canRedo() });
    this._emit("contourchange", { lesions: this.lesions.map(copyLesion) });
    this._emit("change", { data: this.toData() });
    this.redraw();
  }

  // --- tools, labels, selection ---

  setTool(tool) {
    if (!["polygon", "freehand", "edit"].includes(tool)) return;
    this._draft = null;
    // Picking a drawing tool means "next lesion": b/m then label the one about to be drawn.
    if (tool !== "edit" && tool !== this.tool) this._select(-1);
    this.tool = tool;
    this.selectedVertex = -1;
    this._updateCursor();
    this._emit("toolchange", { tool });
    this.redraw();
  }

  setMode(mode) {
    this.mode = mode;
    this._draft = null;
    this._updateCursor();
    this.redraw();
  }

  setReadOnly(readOnly) {
    this.readOnly = readOnly;
    this._draft = null;
    this.selectedVertex = -1;
    this._updateCursor();
    this.redraw();
  }

  /** Drawing new lesions can be switched off (e.g. while the image is marked normal). */
  setDrawEnabled(enabled) {
    this.drawEnabled = enabled;
    if (!enabled) this._draft = null;
    this.redraw();
  }

  /** Label the selected lesion, or the next one drawn when none is selected. */
  setLabel(label) {
    if (!LABELS.includes(label)) return;
    this.pendingLabel = label;
    const lesion = this.lesions[this.selected];
    if (lesion && !this.readOnly && lesion.label !== label) {
      lesion.label = label;
      this._commit();
    }
    this._emit("labelchange", { label, selected: this.selected });
    this.redraw();
  }

  currentLabel() {
    return this.lesions[this.selected]?.label ?? this.pendingLabel;
  }

  select(index) {
    this._select(index);
    this.redraw();
  }

  _select(index) {
    const next = index >= 0 && index < this.lesions.length ? index : -1;
    const changed = next !== this.selected;
    this.selected = next;
    if (changed) {
      this.selectedVertex = -1;
      this._emit("selectionchange", { index: next, lesion: next >= 0 ? copyLesion(this.lesions[next]) : null });
    }
  }

  deleteSelected() {
    if (this.readOnly || this.selected < 0) return false;
    this.lesions.splice(this.selected, 1);
    this._select(-1);
    this._commit();
    return true;
  }

  deleteSelectedVertex() {
    const lesion = this.lesions[this.selected];
    if (this.readOnly || !lesion || this.selectedVertex < 0) return false;
    if (lesion.points.length <= 3) {
      this._emit("warning", { message: "A contour needs at least 3 points; delete the lesion instead." });
      return true;
    }
    const points = lesion.points.filter((_, i) => i !== this.selectedVertex);
    if (findCrossing(points)) {
      this._emit("warning", { message: "Deleting that point would make the contour cross itself." });
      return true;
    }
    lesion.points = points;
    this.selectedVertex = -1;
    this._commit();
    return true;
  }

  cancelDraft() {
    this._draft = null;
    this.redraw();
  }

  // --- view ---

  setVisible(visible) {
    this.visible = visible;
    this._emit("visibility", { visible });
    this.redraw();
  }

  setFillOpacity(opacity) {
    this.fillOpacity = Math.max(0, Math.min(1, opacity));
    this.redraw();
  }

  /** Brightness/contrast in percent (100 = unchanged): a CSS filter on the image canvas only. */
  setAdjust({ brightness = 100, contrast = 100 } = {}) {
    this.imageLayer.getNativeCanvasElement().style.filter = `brightness(${brightness}%) contrast(${contrast}%)`;
  }

  setOverlay(lesions) {
    this.overlay = lesions ? lesions.map(copyLesion) : null;
    this.redraw();
  }

  setOverlayVisible(visible) {
    this.overlayVisible = visible;
    this.redraw();
  }

  /** Pins: [{x, y, label, text}] in image pixels; drawn as numbered markers. */
  setPins(pins, active = -1) {
    this.pins = pins.filter((p) => p.x != null && p.y != null).map((p) => ({ ...p }));
    this.activePin = active;
    this.redraw();
  }

  setImage(src) {
    return new Promise((resolve, reject) => {
      const img = new window.Image();
      img.onload = () => {
        this._image?.destroy();
        this._image = new Konva.Image({ image: img, x: -0.5, y: -0.5, width: this.width, height: this.height });
        this.imageLayer.add(this._image);
        this.imageLoaded = true;
        this.redraw();
        resolve(img);
      };
      img.onerror = () => reject(new Error(`could not load ${src}`));
      img.src = src;
    });
  }

  fit() {
    const w = this.stage.width();
    const h = this.stage.height();
    const s = Math.min((w - 16) / this.width, (h - 16) / this.height);
    this._setView(s > 0 ? s : 1, (w - this.width * s) / 2, (h - this.height * s) / 2);
    this._fitted = true;
  }

  actualSize() {
    this.zoomTo(1);
  }

  zoomIn() {
    this.zoomTo(this.scale * 1.25);
  }

  zoomOut() {
    this.zoomTo(this.scale / 1.25);
  }

  /** Zoom keeping the image point under (px, py) (stage pixels; default the centre) in place. */
  zoomTo(scale, px = this.stage.width() / 2, py = this.stage.height() / 2) {
    const min = Math.min(1, this._fitScale() / 4);
    const s = Math.max(min, Math.min(MAX_SCALE, scale));
    const ix = (px - this.stage.x()) / this.scale;
    const iy = (py - this.stage.y()) / this.scale;
    this._setView(s, px - ix * s, py - iy * s);
    this._fitted = false;
  }

  centerOn(x, y) {
    this._setView(this.scale, this.stage.width() / 2 - x * this.scale, this.stage.height() / 2 - y * this.scale);
    this._fitted = false;
  }

  _fitScale() {
    return Math.min((this.stage.width() - 16) / this.width, (this.stage.height() - 16) / this.height);
  }

  _setView(scale, x, y) {
    this.scale = scale;
    this.stage.scale({ x: scale, y: scale });
    this.stage.position({ x: Math.round(x), y: Math.round(y) });
    // Smoothing blurs pixels once they are magnified; radiologists want to see the real ones.
    this.imageLayer.imageSmoothingEnabled(scale < 1.5);
    this._emit("zoom", { scale });
    this.redraw();
  }

  /** Client (page) coordinates of image pixel (x, y). */
  imageToPage(x, y) {
    const r = this.el.getBoundingClientRect();
    return { x: r.left + this.stage.x() + x * this.scale, y: r.top + this.stage.y() + y * this.scale };
  }

  pageToImage(clientX, clientY) {
    const r = this.el.getBoundingClientRect();
    return { x: (clientX - r.left - this.stage.x()) / this.scale, y: (clientY - r.top - this.stage.y()) / this.scale };
  }

  _clamp(p) {
    const x = Math.min(Math.max(p[0], 0), this.width - 1);
    const y = Math.min(Math.max(p[1], 0), this.height - 1);
    return roundPoint([x, y]);
  }

  destroy() {
    this._ro?.disconnect();
    window.removeEventListener("keydown", this._keydown);
    window.removeEventListener("keyup", this._keyup);
    this.stage.destroy();
  }

  // --- rendering ---

  redraw() {
    const s = this.scale;
    this.overlayLayer.destroyChildren();
    this.lesionLayer.destroyChildren();
    this.uiLayer.destroyChildren();
    if (this.visible && this.overlay && this.overlayVisible) {
      for (const lesion of this.overlay) {
        this.overlayLayer.add(this._shape(lesion, {
          stroke: "rgba(255,255,255,0.9)", strokeWidth: 1.5 / s, dash: [5 / s, 4 / s], fill: null, listening: false,
        }));
        this.overlayLayer.add(this._shape(lesion, {
          stroke: rgba(lesion.label, 1), strokeWidth: 1.5 / s, dash: [5 / s, 4 / s], dashOffset: 5 / s, fill: null,
          listening: false,
        }));
      }
    }
    if (this.visible) {
      this.lesions.forEach((lesion, i) => {
        const selected = i === this.selected;
        const crossing = selected && this._drag?.kind === "vertex" && findCrossing(lesion.points);
        this.lesionLayer.add(this._shape(lesion, {
          fill: rgba(lesion.label, this.fillOpacity),
          stroke: crossing ? "#ffff00" : rgba(lesion.label, 1),
          strokeWidth: (selected ? 2.5 : 1.5) / s,
          shadowColor: "#000", shadowBlur: selected ? 4 : 0, shadowForStrokeEnabled: selected,
          role: "lesion", lesionIndex: i,
        }));
      });
      this._drawHandles();
    }
    this._drawDraft();
    this._drawPins();
    this._hitStale = true;
    this.imageLayer.batchDraw();
    this.overlayLayer.batchDraw();
    this.lesionLayer.batchDraw();
    this.uiLayer.batchDraw();
  }

  _shape(lesion, attrs) {
    const rings = [lesion.points, ...(lesion.holes || [])];
    return new Konva.Shape({
      ...attrs,
      fillRule: "evenodd",
      perfectDrawEnabled: false,
      sceneFunc(ctx, shape) {
        ctx.beginPath();
        for (const ring of rings) {
          ring.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
          ctx.closePath();
        }
        ctx.fillStrokeShape(shape);
      },
    });
  }

  _drawHandles() {
    const lesion = this.lesions[this.selected];
    if (!lesion || this.readOnly || this.tool !== "edit") return;
    const s = this.scale;
    const pts = lesion.points;
    // Dense contours (traced or imported) would vanish under full-size handles at low zoom.
    const spacing = pts.reduce((sum, p, k) => sum + Math.hypot(p[0] - pts[(k + 1) % pts.length][0],
      p[1] - pts[(k + 1) % pts.length][1]), 0) / pts.length * s;
    const r = Math.max(2, Math.min(HANDLE_PX, spacing * 0.3));
    pts.forEach(([x, y], k) => {
      const active = k === this.selectedVertex;
      this.uiLayer.add(new Konva.Circle({
        x, y, radius: (active ? Math.max(r, HANDLE_PX) + 1.5 : r) / s,
        fill: active ? "#ffd400" : "#fff", stroke: "#000", strokeWidth: 1 / s, listening: false,
        perfectDrawEnabled: false,
      }));
    });
  }

  _drawDraft() {
    const d = this._draft;
    if (!d || !d.points.length) return;
    const s = this.scale;
    const colour = rgba(this.pendingLabel, 1);
    const pts = d.points.flat();
    if (d.kind === "polygon" && this._cursor) pts.push(...this._clamp([this._cursor.x, this._cursor.y]));
    this.uiLayer.add(new Konva.Line({ points: pts, stroke: "#000", strokeWidth: 3.5 / s, opacity: 0.5, listening: false }));
    this.uiLayer.add(new Konva.Line({ points: pts, stroke: colour, strokeWidth: 1.5 / s, listening: false }));
    if (d.kind === "polygon") {
      d.points.forEach(([x, y], k) => {
        const closable = k === 0 && d.points.length >= 3 && this._nearFirst();
        this.uiLayer.add(new Konva.Circle({
          x, y, radius: (k === 0 ? HANDLE_PX + (closable ? 3 : 1) : HANDLE_PX - 1) / s,
          fill: closable ? "#ffd400" : "#fff", stroke: colour, strokeWidth: 1.5 / s, listening: false,
        }));
      });
    }
  }

  _drawPins() {
    if (!this.visible) return;
    const s = this.scale;
    this.pins.forEach((pin, i) => {
      const g = new Konva.Group({ x: pin.x, y: pin.y, scaleX: 1 / s, scaleY: 1 / s, role: "pin", pinIndex: i });
      const active = i === this.activePin;
      g.add(new Konva.Circle({ radius: active ? 11 : 9, fill: pin.pending ? "#5ab0ff" : "#ffb300", stroke: "#111",
        strokeWidth: active ? 2.5 : 1.5, role: "pin", pinIndex: i }));
      g.add(new Konva.Text({ text: String(pin.label ?? i + 1), fontSize: 11, fontStyle: "bold", fill: "#111",
        width: 24, height: 24, x: -12, y: -12, align: "center", verticalAlign: "middle", role: "pin", pinIndex: i }));
      this.uiLayer.add(g);
    });
  }

  // --- input ---

  _bind(keyboard) {
    const el = this.el;
    el.addEventListener("pointerdown", (e) => this._onDown(e));
    el.addEventListener("pointermove", (e) => this._onMove(e));
    el.addEventListener("pointerup", (e) => this._onUp(e));
    el.addEventListener("pointercancel", (e) => this._onUp(e));
    el.addEventListener("pointerleave", () => {
      this._cursor = null;
      if (this._draft?.kind === "polygon") this.redraw();
    });
    el.addEventListener("dblclick", (e) => this._onDblClick(e));
    el.addEventListener("wheel", (e) => this._onWheel(e), { passive: false });
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    // Middle-button autoscroll would fight with panning.
    el.addEventListener("mousedown", (e) => e.button === 1 && e.preventDefault());
    if (keyboard) {
      this._keydown = (e) => this._onKey(e);
      this._keyup = (e) => {
        if (e.key === " ") {
          this._space = false;
          this._updateCursor();
        }
      };
      window.addEventListener("keydown", this._keydown);
      window.addEventListener("keyup", this._keyup);
      window.addEventListener("blur", () => (this._space = false));
    }
    this._ro = new ResizeObserver(() => {
      this.stage.size({ width: el.clientWidth || 1, height: el.clientHeight || 1 });
      if (this._fitted) this.fit();
      else this.redraw();
    });
    this._ro.observe(el);
  }

  _stagePoint(e) {
    const r = this.el.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  _hit(e) {
    // redraw() replaces the nodes and draws on the next frame; a click can come first.
    if (this._hitStale) {
      this.lesionLayer.drawHit();
      this.uiLayer.drawHit();
      this._hitStale = false;
    }
    const shape = this.stage.getIntersection(this._stagePoint(e));
    if (!shape) return null;
    const node = shape.getAttr("role") ? shape : shape.getParent();
    return node?.getAttr("role") ? { role: node.getAttr("role"), node } : null;
  }

  _lesionAt(e) {
    const hit = this._hit(e);
    return hit?.role === "lesion" ? hit.node.getAttr("lesionIndex") : -1;
  }

  _nearFirst() {
    const d = this._draft;
    if (!d || !this._cursor || !d.points.length) return false;
    const [x, y] = d.points[0];
    return Math.hypot(x - this._cursor.x, y - this._cursor.y) * this.scale <= CLOSE_PX;
  }

  _onDown(e) {
    const p = this.pageToImage(e.clientX, e.clientY);
    this._cursor = p;
    if (e.button === 1 || (e.button === 0 && this._space)) return this._startPan(e, -2);
    if (e.button !== 0) return;
    const hit = this._hit(e);
    if (hit?.role === "pin" && !this._draft) {
      this.activePin = hit.node.getAttr("pinIndex");
      this._emit("pinclick", { index: this.activePin, pin: this.pins[this.activePin] });
      return this.redraw();
    }
    const inside = p.x >= -0.5 && p.y >= -0.5 && p.x <= this.width - 0.5 && p.y <= this.height - 0.5;
    if (this.mode === "pin") {
      if (!inside) return;
      const [x, y] = this._clamp([p.x, p.y]);
      const lesion = hit?.role === "lesion" ? hit.node.getAttr("lesionIndex") : -1;
      return this._emit("pin", { x, y, lesion: lesion >= 0 ? lesion : null });
    }
    const lesionHit = hit?.role === "lesion" ? hit.node.getAttr("lesionIndex") : -1;
    if (this.readOnly) return this._startPan(e, lesionHit);
    if (this.tool === "edit") return this._editDown(e, p, lesionHit);
    if (!this.drawEnabled) {
      this._emit("warning", { message: "The image is marked normal: untick Normal to draw a lesion." });
      return this._startPan(e, -2);
    }
    if (!this.visible) this.setVisible(true);
    if (this.tool === "polygon") return this._polygonClick(p);
    if (this.tool === "freehand") {
      this._draft = { kind: "freehand", points: [this._clamp([p.x, p.y])] };
      this._drag = { kind: "freehand" };
      this.el.setPointerCapture?.(e.pointerId);
      this.redraw();
    }
  }

  _startPan(e, clickLesion) {
    this._drag = { kind: "pan", x: e.clientX, y: e.clientY, sx: this.stage.x(), sy: this.stage.y(), moved: false,
      clickLesion };
    this.el.setPointerCapture?.(e.pointerId);
    this._updateCursor();
  }

  _polygonClick(p) {
    const q = this._clamp([p.x, p.y]);
    const d = this._draft;
    if (!d) {
      this._draft = { kind: "polygon", points: [q] };
      this._select(-1);
      return this.redraw();
    }
    if (d.points.length >= 3 && this._nearFirst()) return this.closePolygon();
    const last = d.points[d.points.length - 1];
    // The second click of a double-click lands on the same spot: not a new vertex.
    if (Math.hypot(last[0] - q[0], last[1] - q[1]) * this.scale < 3) return;
    if (segmentCrossesPath(d.points, q)) {
      this._emit("warning", { message: "The contour cannot cross itself." });
      return;
    }
    d.points.push(q);
    this.redraw();
  }

  /** Finish the polygon being drawn (Enter, double-click, or a click on its first point). */
  closePolygon() {
    const d = this._draft;
    if (!d || d.kind !== "polygon") return false;
    if (d.points.length < 3) {
      this._emit("warning", { message: "A contour needs at least 3 points." });
      return false;
    }
    // Every other edge was checked as it was added, so only the closing edge can cross.
    if (findCrossing(d.points)) {
      this._emit("warning", { message: "Closing here would make the contour cross itself." });
      return false;
    }
    this._finish(d.points);
    return true;
  }

  _finish(points) {
    this._draft = null;
    const ring = dedupe(points.map((p) => this._clamp(p)));
    if (ring.length < 3 || Math.abs(ringArea(ring)) < 1 || findCrossing(ring)) {
      this._emit("warning", { message: "That contour is too small or crosses itself; draw it again." });
      return this.redraw();
    }
    this.lesions.push({ id: null, label: this.pendingLabel, points: ring, holes: [] });
    this._select(this.lesions.length - 1);
    this._commit();
  }

  _editDown(e, p, lesionHit) {
    const lesion = this.lesions[this.selected];
    if (lesion) {
      const c = [p.x, p.y];
      let best = -1;
      let bestD = (HANDLE_PX + 3) / this.scale;
      lesion.points.forEach((q, k) => {
        const d = Math.hypot(q[0] - c[0], q[1] - c[1]);
        if (d <= bestD) {
          bestD = d;
          best = k;
        }
      });
      if (best >= 0) {
        this.selectedVertex = best;
        if (e.altKey || e.shiftKey) return this.deleteSelectedVertex() && this.redraw();
        return this._startVertexDrag(e, false);
      }
      const n = lesion.points.length;
      for (let k = 0; k < n; k++) {
        const { d, q } = distToSegment(c, lesion.points[k], lesion.points[(k + 1) % n]);
        if (d * this.scale <= EDGE_PX) {
          lesion.points.splice(k + 1, 0, this._clamp(q));
          this.selectedVertex = k + 1;
          return this._startVertexDrag(e, true);
        }
      }
    }
    this._select(lesionHit);
    this.redraw();
    this._startPan(e, -2);
  }

  _startVertexDrag(e, inserted) {
    const lesion = this.lesions[this.selected];
    const before = lesion.points.map((q) => [...q]);
    if (inserted) before.splice(this.selectedVertex, 1);
    this._drag = { kind: "vertex", before, inserted, moved: false };
    this.el.setPointerCapture?.(e.pointerId);
    this.redraw();
  }

  _onMove(e) {
    const p = this.pageToImage(e.clientX, e.clientY);
    this._cursor = p;
    if (p.x >= -0.5 && p.y >= -0.5 && p.x <= this.width - 0.5 && p.y <= this.height - 0.5) {
      this._emit("pointer", { x: Math.round(p.x), y: Math.round(p.y) });
    }
    const drag = this._drag;
    if (drag?.kind === "pan") {
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        this.stage.position({ x: drag.sx + dx, y: drag.sy + dy });
        this._fitted = false;
        this.stage.batchDraw();
      }
    } else if (drag?.kind === "vertex") {
      this.lesions[this.selected].points[this.selectedVertex] = this._clamp([p.x, p.y]);
      drag.moved = true;
      this.redraw();
    } else if (drag?.kind === "freehand") {
      const pts = this._draft.points;
      const q = this._clamp([p.x, p.y]);
      const last = pts[pts.length - 1];
      if (Math.hypot(q[0] - last[0], q[1] - last[1]) * this.scale >= 1.5) {
        pts.push(q);
        this.redraw();
      }
    } else if (this._draft?.kind === "polygon") {
      this.redraw();
    }
  }

  _onUp(e) {
    const drag = this._drag;
    this._drag = null;
    if (!drag) return;
    this.el.releasePointerCapture?.(e.pointerId);
    if (drag.kind === "pan") {
      if (!drag.moved && drag.clickLesion > -2) this.select(drag.clickLesion);
      this._updateCursor();
    } else if (drag.kind === "vertex") {
      const lesion = this.lesions[this.selected];
      if (findCrossing(lesion.points)) {
        lesion.points = drag.before;
        this.selectedVertex = -1;
        this._emit("warning", { message: "The contour cannot cross itself; the point was put back." });
        this.redraw();
      } else if (drag.moved || drag.inserted) {
        lesion.points = dedupe(lesion.points);
        this._commit();
      } else {
        this.redraw();
      }
    } else if (drag.kind === "freehand") {
      this._finishFreehand();
    }
  }

  _finishFreehand() {
    const raw = this._draft?.points || [];
    let eps = Math.max(0.5, 1 / this.scale);
    let pts = simplify(raw, eps);
    while (pts.length > MAX_FREEHAND_POINTS) pts = simplify(raw, (eps *= 1.5));
    if (pts.length < 3) {
      this._draft = null;
      return this.redraw();
    }
    this._finish(untangle(pts, (q) => this._clamp(q)));
  }

  _onDblClick(e) {
    const d = this._draft;
    if (d?.kind === "polygon" && d.points.length !== 1) {
      e.preventDefault();
      this.closePolygon();
      return;
    }
    // A double-click on a lesion with a drawing tool picks it for editing; the one-point
    // polygon its first click started is dropped.
    const lesion = this._lesionAt(e);
    if (this.readOnly || this.tool === "edit" || lesion < 0) return;
    this._draft = null;
    this.setTool("edit");
    this.select(lesion);
  }

  _onWheel(e) {
    e.preventDefault();
    const p = this._stagePoint(e);
    // Pinch gestures arrive as ctrl+wheel with small deltas; mouse wheels as large steps.
    const factor = e.ctrlKey ? Math.exp(-e.deltaY * 0.01) : e.deltaY < 0 ? 1.2 : 1 / 1.2;
    this.zoomTo(this.scale * factor, p.x, p.y);
  }

  _onKey(e) {
    // Keys typed into a field or a dialog (the shortcut sheet) are not drawing commands.
    if (isTextTarget(e.target) || e.defaultPrevented || e.target?.closest?.("dialog")) return;
    const key = e.key;
    const mod = e.ctrlKey || e.metaKey;
    if (key === " ") {
      if (e.target?.tagName === "BUTTON" || e.target?.type === "checkbox") return;
      e.preventDefault();
      this._space = true;
      return this._updateCursor();
    }
    if (mod && (key === "z" || key === "Z")) {
      e.preventDefault();
      return e.shiftKey ? this.redo() : this.undo();
    }
    if (mod && (key === "y" || key === "Y")) {
      e.preventDefault();
      return this.redo();
    }
    if (mod || e.altKey) return;
    const handled = this._key(key, e);
    if (handled) e.preventDefault();
  }

  _key(key, e) {
    const view = {
      "+": () => this.zoomIn(), "=": () => this.zoomIn(), "-": () => this.zoomOut(), 0: () => this.fit(),
      1: () => this.actualSize(), h: () => this.setVisible(!this.visible),
    };
    if (view[key]) return view[key]() ?? true;
    if (key === "Escape") {
      if (this._draft) this.cancelDraft();
      else if (this.selectedVertex >= 0) this.selectedVertex = -1;
      else this._select(-1);
      this.redraw();
      return true;
    }
    if (this.readOnly) return false;
    const edit = { p: () => this.setTool("polygon"), f: () => this.setTool("freehand"), e: () => this.setTool("edit"),
      b: () => this.setLabel("benign"), m: () => this.setLabel("malignant") };
    if (edit[key]) return edit[key]() ?? true;
    if (key === "Enter" && this._draft?.kind === "polygon") {
      if (e.target?.tagName === "BUTTON") return false;
      this.closePolygon();
      return true;
    }
    if (key === "Backspace" && this._draft?.kind === "polygon") {
      this._draft.points.pop();
      if (!this._draft.points.length) this._draft = null;
      this.redraw();
      return true;
    }
    if (key === "Delete" || key === "Backspace") {
      if (this.tool === "edit" && this.selectedVertex >= 0) return this.deleteSelectedVertex();
      return this.deleteSelected();
    }
    return false;
  }

  _updateCursor() {
    let c = "crosshair";
    if (this._drag?.kind === "pan") c = "grabbing";
    else if (this._space) c = "grab";
    else if (this.mode === "pin") c = "copy";
    else if (this.readOnly) c = "default";
    else if (this.tool === "edit") c = "pointer";
    this.el.style.cursor = c;
  }
}
