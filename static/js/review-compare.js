/* Revisions side by side on the review page: the previous revision in a second, read-only viewer
 * beside the one under review, zoomed and panned with it (overlaying it dashed stays available).
 *
 * The second viewer takes no keys (the page's viewer owns the shortcuts) and follows every view
 * change of the first: both panes are the same size, so the same scale and offset show the same
 * pixels. Its own wheel and drags are handed back to the first, which then leads both.
 */
import { Viewer } from "./viewer.js";

export class SideBySide {
  constructor(viewer, container, { imageUrl, width, height }) {
    this.main = viewer;
    this.container = container;
    this.imageUrl = imageUrl;
    this.size = { width, height };
    this.other = null;
    this.lesions = null;
    this.on = false;
    this._follow = () => {
      if (!this.other) return;
      this.other._fitted = false;
      this.other._setView(this.main.scale, this.main.stage.x(), this.main.stage.y());
    };
    viewer.on("view", this._follow);
  }

  /** The previous revision's lesions (or null: nothing to compare with). */
  setLesions(lesions) {
    this.lesions = lesions;
    if (this.other) this.other.fromData({ lesions: lesions || [] });
  }

  setOn(on) {
    this.on = on && !!this.lesions;
    this.container.hidden = !this.on;
    this.container.closest(".viewer-pane")?.classList.toggle("side-by-side", this.on);
    if (this.on && !this.other) {
      const stage = this.container.querySelector(".stage");
      this.other = new Viewer(stage, { ...this.size, readOnly: true, keyboard: false });
      this.other.fromData({ lesions: this.lesions });
      // Its own fit (on its first resize) would part the two panes: bring it back in step.
      this.other.on("view", ({ scale, x, y }) => {
        if (scale !== this.main.scale || x !== this.main.stage.x() || y !== this.main.stage.y()) this._follow();
      });
      this.other.setImage(this.imageUrl).catch(() => {});
      // The pane follows the main viewer; its own wheel and drags would pull the two apart.
      for (const ev of ["wheel", "pointerdown"]) {
        stage.addEventListener(ev, (e) => e.stopImmediatePropagation(), { capture: true });
      }
      stage.addEventListener("wheel", (e) => {
        e.preventDefault();
        const r = stage.getBoundingClientRect();
        const factor = e.deltaY < 0 ? 1.2 : 1 / 1.2;
        this.main.zoomTo(this.main.scale * factor, e.clientX - r.left, e.clientY - r.top);
      }, { passive: false });
    }
    // The main pane has just changed size: let it refit, then the other follows.
    requestAnimationFrame(() => {
      if (this.main._fitted) this.main.fit();
      this._follow();
    });
  }

  /** Keep the compare pane's display in step (fill, outline, filter). */
  syncDisplay() {
    if (!this.other) return;
    this.other.setFillOpacity(this.main.fillOpacity);
    this.other.setOutlineOnly(this.main.outlineOnly);
    this.other.setAdjust(this.main.getAdjust());
    this.other.setInvert(this.main.invert);
    this.other.setVisible(this.main.visible);
  }
}
