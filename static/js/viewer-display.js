/* Display-only helpers of the viewer: the image filter (brightness, contrast, invert), the
 * magnifier loupe, and the reader's saved window presets. None of them changes the drawing.
 *
 * The loupe copies the stage's own canvases (image with its filter, lesions, the outline being
 * drawn) around the pointer into a small canvas beside it, magnified, so a reader placing a
 * vertex sees the pixels under it without zooming the whole view. It shows while a drawing or
 * editing tool is in use, over the image.
 *
 * Window presets are brightness/contrast pairs kept in this browser's localStorage, one list per
 * user name (a shared workstation keeps each reader's own); they never reach the server.
 */

export const LOUPE_TOOLS = ["polygon", "freehand", "edit", "hole", "smart"];
const LOUPE_PX = 160; // on screen
const LOUPE_ZOOM = 4; // relative to the current view
const PRESET_PREFIX = "busreview:window-presets:";

export const BUILT_IN_PRESETS = [
  { name: "Default", brightness: 100, contrast: 100, builtIn: true },
  { name: "Soft tissue", brightness: 110, contrast: 140, builtIn: true },
  { name: "Bright, low contrast", brightness: 150, contrast: 80, builtIn: true },
];

/** The CSS filter of the image canvas. */
export function imageFilter({ brightness = 100, contrast = 100, invert = false } = {}) {
  return `brightness(${brightness}%) contrast(${contrast}%)${invert ? " invert(1)" : ""}`;
}

// --- window presets ---

export function loadPresets(user) {
  try {
    const saved = JSON.parse(localStorage.getItem(PRESET_PREFIX + user) || "[]");
    return Array.isArray(saved) ? saved.filter((p) => p && Number.isFinite(p.brightness) && Number.isFinite(p.contrast)) : [];
  } catch {
    return [];
  }
}

/** Save a pair under its name (a preset of the same name is replaced); returns the user's list. */
export function savePreset(user, { name, brightness, contrast }) {
  const list = loadPresets(user).filter((p) => p.name !== name);
  list.push({ name, brightness: Number(brightness), contrast: Number(contrast) });
  localStorage.setItem(PRESET_PREFIX + user, JSON.stringify(list));
  return list;
}

export function deletePreset(user, name) {
  const list = loadPresets(user).filter((p) => p.name !== name);
  localStorage.setItem(PRESET_PREFIX + user, JSON.stringify(list));
  return list;
}

// --- the loupe ---

export class Loupe {
  constructor(viewer) {
    this.v = viewer;
    this.enabled = false;
    this.canvas = document.createElement("canvas");
    this.canvas.className = "loupe";
    this.canvas.hidden = true;
    this.canvas.setAttribute("aria-hidden", "true");
    document.body.append(this.canvas);
    this._frame = 0;
  }

  setEnabled(enabled) {
    this.enabled = enabled;
    this.update();
  }

  /** Show or hide for the current pointer and tool; drawn once the stage has drawn its frame. */
  update() {
    cancelAnimationFrame(this._frame);
    this._frame = requestAnimationFrame(() => this._draw());
  }

  get showing() {
    return !this.canvas.hidden;
  }

  _draw() {
    const v = this.v;
    const c = v._cursor;
    const inside = c && c.x >= -0.5 && c.y >= -0.5 && c.x <= v.width - 0.5 && c.y <= v.height - 0.5;
    const show = this.enabled && inside && !v.readOnly && LOUPE_TOOLS.includes(v.tool) && v._drag?.kind !== "pan";
    this.canvas.hidden = !show;
    if (!show) return;
    const ratio = window.devicePixelRatio || 1;
    const size = LOUPE_PX * ratio;
    if (this.canvas.width !== size) {
      this.canvas.width = this.canvas.height = size;
      this.canvas.style.width = this.canvas.style.height = `${LOUPE_PX}px`;
    }
    // The source square around the pointer, in the stage canvases' own pixels.
    const sx = (v.stage.x() + c.x * v.scale) * ratio;
    const sy = (v.stage.y() + c.y * v.scale) * ratio;
    const half = size / LOUPE_ZOOM / 2;
    const ctx = this.canvas.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.fillStyle = "#000";
    ctx.fillRect(0, 0, size, size);
    for (const layer of [v.imageLayer, v.lesionLayer, v.overlayLayer, v.uiLayer]) {
      const src = layer.getNativeCanvasElement();
      ctx.filter = layer === v.imageLayer ? src.style.filter || "none" : "none";
      ctx.drawImage(src, sx - half, sy - half, 2 * half, 2 * half, 0, 0, size, size);
    }
    ctx.filter = "none";
    ctx.strokeStyle = "rgba(255,255,255,0.8)";
    ctx.lineWidth = ratio;
    ctx.beginPath();
    ctx.moveTo(size / 2, size / 2 - 8 * ratio);
    ctx.lineTo(size / 2, size / 2 + 8 * ratio);
    ctx.moveTo(size / 2 - 8 * ratio, size / 2);
    ctx.lineTo(size / 2 + 8 * ratio, size / 2);
    ctx.stroke();
    // Beside the pointer, never under it; flipped to the other side near the stage's edges.
    const r = v.el.getBoundingClientRect();
    const px = r.left + v.stage.x() + c.x * v.scale;
    const py = r.top + v.stage.y() + c.y * v.scale;
    const left = px + 24 + LOUPE_PX > r.right ? px - 24 - LOUPE_PX : px + 24;
    const top = py - 24 - LOUPE_PX < r.top ? py + 24 : py - 24 - LOUPE_PX;
    this.canvas.style.left = `${left + window.scrollX}px`;
    this.canvas.style.top = `${top + window.scrollY}px`;
  }

  destroy() {
    cancelAnimationFrame(this._frame);
    this.canvas.remove();
  }
}
