/* "Move all", the viewer's tool that shifts the whole drawing: every lesion, outer rings and
 * holes, moves together by whole pixels.
 *
 * Why: a mask the import had to resize to its image can sit tens of pixels off the lesion (the
 * release's HESN images: about 40 px right and 30 px down); such layers arrive for review, and
 * the reader moves them into place rather than redrawing them. Whole pixels keep the rasterised
 * mask an exact shift of the one before; the offset is clamped so that no point leaves the image
 * and the shape is never squeezed against the border. Data stays in image pixel coordinates.
 *
 * A drag is one undo step; Shift+arrow nudges (1 px, 10 px with Ctrl) coalesce like typing, so a
 * burst of them is one undo step too.
 */
import { clampOffset, copyLesion, translateLesions, translationBetween } from "./contours.js";

export const NUDGE_PX = 1;
export const NUDGE_FAR_PX = 10;
const ARROWS = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
const COALESCE = "move-all";

/** Move every lesion by (dx, dy), rounded to whole pixels and clamped; returns the offset applied. */
export function moveAll(v, dx, dy, { coalesce = null } = {}) {
  if (v.readOnly) return [0, 0];
  if (!v.lesions.length) {
    v._emit("warning", { message: "There are no lesions to move." });
    return [0, 0];
  }
  const [ox, oy] = clampOffset(v.lesions, dx, dy, v.width, v.height);
  if (!ox && !oy) {
    v._emit("warning", { message: "The lesions touch the image border: they cannot move further that way." });
    return [0, 0];
  }
  v.lesions = translateLesions(v.lesions, ox, oy);
  v._commit({ coalesce });
  return [ox, oy];
}

/** Shift+arrow (with Ctrl: 10 px) nudges the drawing; true when the key was one of these. */
export function onArrowKey(v, e) {
  const dir = ARROWS[e.key];
  if (!dir || !e.shiftKey || e.altKey || v.readOnly) return false;
  const step = e.ctrlKey || e.metaKey ? NUDGE_FAR_PX : NUDGE_PX;
  moveAll(v, dir[0] * step, dir[1] * step, { coalesce: COALESCE });
  return true;
}

/** A press in the move tool: the drag moves the drawing (false when there is nothing to move). */
export function startDrag(v, e) {
  if (!v.lesions.length) return false;
  v._drag = { kind: "move", x: e.clientX, y: e.clientY, before: v.lesions.map(copyLesion), dx: 0, dy: 0 };
  v.el.setPointerCapture?.(e.pointerId);
  return true;
}

export function dragTo(v, e) {
  const d = v._drag;
  const [dx, dy] = clampOffset(d.before, (e.clientX - d.x) / v.scale, (e.clientY - d.y) / v.scale, v.width, v.height);
  if (dx === d.dx && dy === d.dy) return;
  d.dx = dx;
  d.dy = dy;
  // Always from where the drag began, so the rings never gather rounding on the way.
  v.lesions = translateLesions(d.before, dx, dy);
  v._emit("moving", { dx, dy });
  v.redraw();
}

export function endDrag(v, d) {
  if (d.dx || d.dy) v._commit();
  else v.redraw();
}

/** The drawing's offset from the one last loaded, when it is that drawing moved, else null. */
export function offsetFromLoaded(v) {
  return v._loaded ? translationBetween(v._loaded, v.lesions) : null;
}
