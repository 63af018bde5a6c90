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
 * toolchange, labelchange, history, zoom, pointer, pin, pinclick, visibility, warning, and for
 * the smart tool boxdrawn {box: [x0, y0, x1, y1]} and pointpicked {point: [x, y]}: the page asks
 * the server for a proposal and hands it back with addLesion(); moving for the move tool's drag.
 *
 * The module is split in files: viewer.js (document, history, tools, view, pointer input),
 * viewer-render.js (Konva drawing), viewer-keys.js (shortcuts), viewer-move.js (the "move all"
 * tool), viewer-brush.js (brush, eraser and hole), history.js (undo), and contours.js (the pure ring geometry the pages use too).
 */
/* global Konva */
import {
  LABELS,
  boxFromCorners,
  clampPoint,
  copyLesion,
  dedupe,
  distToSegment,
  findCrossing,
  ringArea,
  segmentCrossesPath,
  simplify,
  untangle,
} from "./contours.js";
import { History } from "./history.js";
import * as brush from "./viewer-brush.js";
import { Loupe, imageFilter } from "./viewer-display.js";
import { onKey } from "./viewer-keys.js";
import * as move from "./viewer-move.js";
import { HANDLE_PX, render } from "./viewer-render.js";

const CLOSE_PX = 9; // a click this close to the first vertex closes the polygon
const EDGE_PX = 7; // a click this close to an edge of the selected lesion inserts a vertex
const MAX_SCALE = 64;
const HISTORY_LIMIT = 300;
const COALESCE_MS = 1500;
const MAX_FREEHAND_POINTS = 400;
const CLICK_PX = 4; // a smart-tool drag shorter than this on screen is a click, not a box
const TOOLS = ["polygon", "freehand", "smart", "edit", "move", "hole", "brush", "eraser"];
// Tools that act on the selected lesion keep it selected; the others draw the next lesion.
const ON_SELECTED = ["edit", "hole", "brush", "eraser"];

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
    this.brushRadius = brush.DEFAULT_RADIUS;
    this.mode = null; // "pin" on the review page
    this.drawEnabled = true;
    this.fillOpacity = 0.3;
    this.outlineOnly = false; // display: outlines without their fill
    this.invert = false; // display: the image in negative
    this._adjust = { brightness: 100, contrast: 100 };
    this.visible = true;
    this.overlay = null;
    this.overlayVisible = false;
    this.pins = [];
    this.activePin = -1;
    this.scale = 1;
    this._fitted = true;
    this._draft = null; // {kind: "polygon"|"freehand"|"box", points} (box: two corners)
    this._drag = null;
    this._cursor = null;
    this._space = false;
    this._handlers = {};
    this._history = new History({ limit: HISTORY_LIMIT, coalesceMs: COALESCE_MS });
    this._image = null;
    this.imageLoaded = false;
    this.pending = null; // {box} or {point} the page is waiting on, drawn dashed

    this.stage = new Konva.Stage({ container, width: container.clientWidth || 1, height: container.clientHeight || 1 });
    this.imageLayer = new Konva.Layer({ listening: false });
    this.overlayLayer = new Konva.Layer({ listening: false });
    this.lesionLayer = new Konva.Layer();
    this.uiLayer = new Konva.Layer();
    this.stage.add(this.imageLayer, this.lesionLayer, this.overlayLayer, this.uiLayer);
    this._frame = new Konva.Rect({ x: -0.5, y: -0.5, width, height, fill: "#000" });
    this.imageLayer.add(this._frame);

    this.loupe = new Loupe(this);
    this._bind(keyboard);
    this._resetHistory();
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
      this._resetHistory();
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

  _resetHistory() {
    this._loaded = this.lesions.map(copyLesion); // what the move tool's offset is measured from
    this._history.reset(this._snapshot());
    this._emitHistory();
  }

  _emitHistory() {
    this._emit("history", { canUndo: this.canUndo(), canRedo: this.canRedo() });
  }

  _commit({ coalesce = null, contours = true } = {}) {
    this._history.commit(this._snapshot(), coalesce);
    this._emitHistory();
    if (contours) this._emit("contourchange", { lesions: this.lesions.map(copyLesion) });
    this._emit("change", { data: this.toData() });
    this.redraw();
  }

  canUndo() {
    return this._history.canUndo;
  }

  canRedo() {
    return this._history.canRedo;
  }

  undo() {
    if (this._draft) return this.cancelDraft();
    const snapshot = this._history.undo();
    if (snapshot) this._restore(snapshot);
  }

  redo() {
    const snapshot = this._history.redo();
    if (snapshot) this._restore(snapshot);
  }

  _restore(snapshot) {
    const { lesions, attrs } = JSON.parse(snapshot);
    this.lesions = lesions;
    this.attrs = attrs;
    this._select(this.selected < this.lesions.length ? this.selected : -1);
    this._emitHistory();
    this._emit("contourchange", { lesions: this.lesions.map(copyLesion) });
    this._emit("change", { data: this.toData() });
    this.redraw();
  }

  // --- tools, labels, selection ---

  setTool(tool) {
    if (!TOOLS.includes(tool)) return;
    this._draft = null;
    // Picking a drawing tool means "next lesion": b/m then label the one about to be drawn.
    if (!ON_SELECTED.includes(tool) && tool !== this.tool) this._select(-1);
    this.tool = tool;
    this.selectedVertex = -1;
    this.loupe.update();
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

  /**
   * Label the selected lesion, or the next one drawn when none is selected. A lesion just drawn
   * stays selected (to show it) but is not relabelled: the reader who presses B or M after closing
   * an outline is choosing the next one's label. Picking it (list, click, edit) makes it relabel.
   */
  setLabel(label) {
    if (!LABELS.includes(label)) return;
    this.pendingLabel = label;
    const lesion = this.lesions[this.selected];
    if (lesion && this._fresh && lesion.label !== label && !this.readOnly) {
      const name = label.charAt(0).toUpperCase() + label.slice(1);
      this._emit("warning", { message: `${name} for the next lesion; to relabel the one just drawn, click it first.` });
    } else if (lesion && !this.readOnly && lesion.label !== label) {
      lesion.label = label;
      this._commit();
    }
    this._emit("labelchange", { label, selected: this.selected });
    this.redraw();
  }

  currentLabel() {
    if (this._fresh) return this.pendingLabel;
    return this.lesions[this.selected]?.label ?? this.pendingLabel;
  }

  select(index) {
    this._select(index);
    this.redraw();
  }

  _select(index) {
    const next = index >= 0 && index < this.lesions.length ? index : -1;
    const changed = next !== this.selected;
    this._fresh = false; // any selection is a pick; addLesion marks its new lesion fresh after it
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

  /** Brush and eraser radius in image pixels (viewer-brush.js); returns the radius set. */
  setBrushRadius(r) {
    return brush.setRadius(this, r);
  }

  /** Move every lesion by whole pixels, clamped to the image (viewer-move.js); the offset applied. */
  moveAll(dx, dy, options) {
    return move.moveAll(this, dx, dy, options);
  }

  /** [dx, dy] from the drawing last loaded, when the drawing is that one moved; else null. */
  moveOffset() {
    return move.offsetFromLoaded(this);
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
    this._adjust = { brightness: Number(brightness), contrast: Number(contrast) };
    this._applyFilter();
  }

  getAdjust() {
    return { ...this._adjust };
  }

  /** Show the image in negative (display only), as OHIF's invert. */
  setInvert(invert) {
    this.invert = !!invert;
    this._applyFilter();
    this._emit("display", { invert: this.invert, outlineOnly: this.outlineOnly, loupe: this.loupe.enabled });
  }

  _applyFilter() {
    this.imageLayer.getNativeCanvasElement().style.filter = imageFilter({ ...this._adjust, invert: this.invert });
    this.loupe.update();
  }

  /** Draw the lesions as outlines only, without fill, to see the tissue under them. */
  setOutlineOnly(outlineOnly) {
    this.outlineOnly = !!outlineOnly;
    this._emit("display", { invert: this.invert, outlineOnly: this.outlineOnly, loupe: this.loupe.enabled });
    this.redraw();
  }

  /** The magnifier beside the pointer while drawing or editing (viewer-display.js). */
  setLoupe(enabled) {
    this.loupe.setEnabled(!!enabled);
    this._emit("display", { invert: this.invert, outlineOnly: this.outlineOnly, loupe: this.loupe.enabled });
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
    this._emit("view", { scale, x: this.stage.x(), y: this.stage.y() });
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
    return clampPoint(p, this.width, this.height);
  }

  destroy() {
    this._ro?.disconnect();
    window.removeEventListener("keydown", this._keydown);
    window.removeEventListener("keyup", this._keyup);
    this.loupe.destroy();
    this.stage.destroy();
  }

  // --- rendering (viewer-render.js) ---

  redraw() {
    render(this);
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
      this.loupe.update();
      if (this._draft?.kind === "polygon" || brush.PIXEL_TOOLS.includes(this.tool)) this.redraw();
    });
    el.addEventListener("dblclick", (e) => this._onDblClick(e));
    el.addEventListener("wheel", (e) => this._onWheel(e), { passive: false });
    el.addEventListener("contextmenu", (e) => e.preventDefault());
    // Middle-button autoscroll would fight with panning.
    el.addEventListener("mousedown", (e) => e.button === 1 && e.preventDefault());
    if (keyboard) {
      this._keydown = (e) => onKey(this, e);
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
    if (this.tool === "move") return move.startDrag(this, e) || this._startPan(e, -2);
    if (!this.drawEnabled) {
      this._emit("warning", { message: "The image is marked normal: untick Normal to draw a lesion." });
      return this._startPan(e, -2);
    }
    if (!this.visible) this.setVisible(true);
    if (this.tool === "polygon") return this._polygonClick(p);
    if (this.tool === "hole") {
      // The hole's lesion: the one selected, or the first press picks it.
      if (this.selected >= 0 || this._draft) return this._polygonClick(p);
      if (lesionHit >= 0) return this.select(lesionHit);
      return this._emit("warning", { message: "Click the lesion the hole belongs to, then draw the hole." });
    }
    if (brush.PIXEL_TOOLS.includes(this.tool)) return brush.startStroke(this, e, p, lesionHit) || this._startPan(e, -2);
    if (this.tool === "smart") {
      const q = this._clamp([p.x, p.y]);
      this._draft = { kind: "box", points: [q, q] };
      this._drag = { kind: "box", x: e.clientX, y: e.clientY, moved: false, lesion: lesionHit };
      this._select(-1);
      this.el.setPointerCapture?.(e.pointerId);
      return this.redraw();
    }
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
      if (this.tool !== "hole") this._select(-1);
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

  /**
   * Finish the polygon being drawn (Enter, double-click, or a click on its first point).
   * With fewer than 3 points there is no contour to close: the open one is dropped, and said so,
   * so that the next click starts a new outline instead of silently extending the old one.
   */
  closePolygon() {
    const d = this._draft;
    if (!d || d.kind !== "polygon") return false;
    if (d.points.length < 3) {
      const n = d.points.length;
      this._draft = null;
      this.redraw();
      this._emit("warning", {
        message: `A contour needs at least 3 points: the ${n}-point outline was dropped. Click to start again.`,
      });
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
    if (this.tool === "hole") {
      if (!brush.addHole(this, points)) this.redraw();
      return;
    }
    if (this.addLesion(points) < 0) this.redraw();
  }

  /**
   * Add a lesion drawn elsewhere (e.g. a smart-contour proposal) as if it had been drawn here:
   * current label, selected, one undo step, a change event. Returns its index, or -1 (with a
   * warning) when the ring is too small or crosses itself.
   */
  addLesion(points, { label = this.pendingLabel } = {}) {
    if (this.readOnly) return -1;
    const ring = dedupe(points.map((p) => this._clamp(p)));
    if (ring.length < 3 || Math.abs(ringArea(ring)) < 1 || findCrossing(ring)) {
      this._emit("warning", { message: "That contour is too small or crosses itself; draw it again." });
      return -1;
    }
    this.lesions.push({ id: null, label: LABELS.includes(label) ? label : this.pendingLabel, points: ring, holes: [] });
    this._select(this.lesions.length - 1);
    this._fresh = true;
    this._commit();
    return this.lesions.length - 1;
  }

  /**
   * Replace lesion `index`'s outline (e.g. a corrected smart-contour proposal): one undo step and
   * a change event, the label and holes kept. False (with a warning) when the ring is not valid.
   */
  replaceLesionPoints(index, points) {
    const lesion = this.lesions[index];
    if (this.readOnly || !lesion) return false;
    const ring = dedupe(points.map((p) => this._clamp(p)));
    if (ring.length < 3 || Math.abs(ringArea(ring)) < 1 || findCrossing(ring)) {
      this._emit("warning", { message: "That contour is too small or crosses itself." });
      return false;
    }
    lesion.points = ring;
    this.selectedVertex = -1;
    this._commit();
    return true;
  }

  /** Show what the page is waiting on ({box} or {point}, image pixels), or nothing (null). */
  setPending(pending) {
    this.pending = pending;
    this.redraw();
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
    this.loupe.update();
    if (drag?.kind === "pan") {
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
      if (drag.moved) {
        this.stage.position({ x: drag.sx + dx, y: drag.sy + dy });
        this._fitted = false;
        this.stage.batchDraw();
        this._emit("view", { scale: this.scale, x: this.stage.x(), y: this.stage.y() });
      }
    } else if (drag?.kind === "move") {
      move.dragTo(this, e);
    } else if (drag?.kind === "stroke") {
      brush.strokeTo(this, p);
    } else if (drag?.kind === "vertex") {
      this.lesions[this.selected].points[this.selectedVertex] = this._clamp([p.x, p.y]);
      drag.moved = true;
      this.redraw();
    } else if (drag?.kind === "box") {
      if (Math.hypot(e.clientX - drag.x, e.clientY - drag.y) >= CLICK_PX) drag.moved = true;
      this._draft.points[1] = this._clamp([p.x, p.y]);
      this.redraw();
    } else if (drag?.kind === "freehand") {
      const pts = this._draft.points;
      const q = this._clamp([p.x, p.y]);
      const last = pts[pts.length - 1];
      if (Math.hypot(q[0] - last[0], q[1] - last[1]) * this.scale >= 1.5) {
        pts.push(q);
        this.redraw();
      }
    } else if (this._draft?.kind === "polygon" || brush.PIXEL_TOOLS.includes(this.tool)) {
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
    } else if (drag.kind === "move") {
      move.endDrag(this, drag);
    } else if (drag.kind === "freehand") {
      this._finishFreehand();
    } else if (drag.kind === "stroke") {
      brush.endStroke(this);
    } else if (drag.kind === "box") {
      const [start, end] = this._draft?.points || [];
      this._draft = null;
      this.redraw();
      if (!start) return;
      if (drag.moved) this._emit("boxdrawn", { box: boxFromCorners(start, end) });
      // A click on a lesion already drawn picks it, rather than proposing it a second time.
      else if (drag.lesion >= 0) this.select(drag.lesion);
      else this._emit("pointpicked", { point: start });
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
    if (this.readOnly || ON_SELECTED.includes(this.tool) || this.tool === "move" || lesion < 0) return;
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

  _updateCursor() {
    let c = "crosshair";
    if (this._drag?.kind === "pan") c = "grabbing";
    else if (this._space) c = "grab";
    else if (this.mode === "pin") c = "copy";
    else if (this.readOnly) c = "default";
    else if (this.tool === "edit") c = "pointer";
    else if (this.tool === "move") c = "move";
    this.el.style.cursor = c;
  }
}
