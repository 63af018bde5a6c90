/* The ruler: drag across the image to measure a distance, in mm when the image is calibrated.
 *
 * Display only: the measurement is drawn on its own Konva layer and read out in the status bar;
 * it never enters the drawing (the viewer's document), its history or a save. It attaches to a
 * viewer from outside, like the page modules do: while it is on, presses on the stage are its
 * own (taken in the capture phase, before the viewer's tools see them); wheel zoom and the
 * keyboard still work. L (or the toolbar's Ruler button) turns it on and off, Esc turns it off.
 *
 * Lengths are measured in physical coordinates, (dx * spacing x, dy * spacing y), so that an image
 * with different X and Y spacing measures true millimetres in every direction.
 */
/* global Konva */
import { isTextTarget } from "./viewer-keys.js";

export function distance(a, b, spacing = null) {
  const sx = spacing ? spacing.x : 1;
  const sy = spacing ? spacing.y : 1;
  return Math.hypot((b[0] - a[0]) * sx, (b[1] - a[1]) * sy);
}

export function formatDistance(a, b, spacing = null) {
  const d = distance(a, b, spacing);
  return spacing ? `${d.toFixed(1)} mm` : `${d.toFixed(1)} px`;
}

export class Ruler {
  constructor(viewer, { spacing = null, button = null, readout = null } = {}) {
    this.viewer = viewer;
    this.spacing = spacing;
    this.button = button;
    this.active = false;
    this.ends = null; // [[x, y], [x, y]] in image pixels
    this._drag = false;
    this.layer = new Konva.Layer({ listening: false });
    viewer.stage.add(this.layer);
    this.readout = readout || this._makeReadout();
    const el = viewer.el;
    el.addEventListener("pointerdown", (e) => this._down(e), { capture: true });
    el.addEventListener("pointermove", (e) => this._move(e), { capture: true });
    el.addEventListener("pointerup", (e) => this._up(e), { capture: true });
    viewer.on("zoom", () => this.draw());
    button?.addEventListener("click", () => this.toggle());
    window.addEventListener("keydown", (e) => {
      if (isTextTarget(e.target) || e.ctrlKey || e.metaKey || e.altKey || e.target?.closest?.("dialog")) return;
      if (e.key === "l" || e.key === "L") {
        e.preventDefault();
        this.toggle();
      } else if (e.key === "Escape" && this.active) {
        this.toggle(false);
      }
    });
  }

  _makeReadout() {
    const bar = this.viewer.el.closest(".viewer-pane")?.querySelector(".statusbar");
    const span = document.createElement("span");
    span.id = "ruler-readout";
    span.className = "ruler-readout";
    span.setAttribute("role", "status");
    bar?.append(span);
    return span;
  }

  toggle(on = !this.active) {
    this.active = on;
    this.button?.setAttribute("aria-pressed", String(on));
    this.viewer.el.classList.toggle("ruler-on", on);
    this.viewer.el.style.cursor = on ? "crosshair" : "";
    if (!on) {
      this.ends = null;
      this._drag = false;
    }
    this.draw();
  }

  _point(e) {
    const p = this.viewer.pageToImage(e.clientX, e.clientY);
    const v = this.viewer;
    return [Math.min(Math.max(p.x, 0), v.width - 1), Math.min(Math.max(p.y, 0), v.height - 1)];
  }

  _down(e) {
    if (!this.active || e.button !== 0) return;
    e.stopPropagation();
    e.preventDefault();
    const p = this._point(e);
    this.ends = [p, p];
    this._drag = true;
    this.viewer.el.setPointerCapture?.(e.pointerId);
    this.draw();
  }

  _move(e) {
    if (!this.active || !this._drag) return;
    e.stopPropagation();
    this.ends[1] = this._point(e);
    this.draw();
  }

  _up(e) {
    if (!this.active || !this._drag) return;
    e.stopPropagation();
    this._drag = false;
    this.ends[1] = this._point(e);
    this.viewer.el.releasePointerCapture?.(e.pointerId);
    this.draw();
  }

  /** The current measurement as text ("" when none). */
  text() {
    return this.ends ? formatDistance(this.ends[0], this.ends[1], this.spacing) : "";
  }

  draw() {
    this.layer.destroyChildren();
    const text = this.active ? this.text() : "";
    if (this.readout) this.readout.textContent = this.active ? (text ? `Ruler: ${text}` : "Ruler: drag to measure") : "";
    if (this.active && this.ends) {
      const s = this.viewer.scale || 1;
      const [a, b] = this.ends;
      const pts = [a[0], a[1], b[0], b[1]];
      this.layer.add(new Konva.Line({ points: pts, stroke: "#000", strokeWidth: 4 / s, opacity: 0.6 }));
      this.layer.add(new Konva.Line({ points: pts, stroke: "#ffd27d", strokeWidth: 2 / s }));
      for (const p of this.ends) {
        this.layer.add(new Konva.Circle({ x: p[0], y: p[1], radius: 3.5 / s, fill: "#ffd27d", stroke: "#000", strokeWidth: 1 / s }));
      }
      this.layer.add(new Konva.Text({ x: b[0] + 6 / s, y: b[1] + 6 / s, text, fontSize: 13 / s, fill: "#ffd27d",
        shadowColor: "#000", shadowBlur: 2 / s, shadowOpacity: 1 }));
    }
    this.layer.batchDraw();
  }
}
