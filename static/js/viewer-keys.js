/* Keyboard half of the drawing module: the viewer's shortcuts (the help sheets list them).
 *
 * Zoom and visibility work everywhere; tools, labels, delete and undo only where the viewer
 * may edit. A key typed into a field or a dialog is text, never a command.
 */

import { onBracketKey } from "./viewer-brush.js";
import { onArrowKey } from "./viewer-move.js";

/** Is `t` somewhere the user types text (so single-letter shortcuts must not fire)? */
export function isTextTarget(t) {
  if (!t || !t.tagName) return false;
  if (t.isContentEditable) return true;
  if (t.tagName === "TEXTAREA" || t.tagName === "SELECT") return true;
  return t.tagName === "INPUT" && !["checkbox", "radio", "button", "submit", "range"].includes(t.type);
}

export function onKey(v, e) {
  if (isTextTarget(e.target) || e.defaultPrevented || e.target?.closest?.("dialog")) return;
  const key = e.key;
  const mod = e.ctrlKey || e.metaKey;
  if (key === " ") {
    if (e.target?.tagName === "BUTTON" || e.target?.type === "checkbox") return;
    e.preventDefault();
    v._space = true;
    return v._updateCursor();
  }
  if (mod && (key === "z" || key === "Z")) {
    e.preventDefault();
    return e.shiftKey ? v.redo() : v.undo();
  }
  if (mod && (key === "y" || key === "Y")) {
    e.preventDefault();
    return v.redo();
  }
  // Shift(+Ctrl)+arrow moves the whole drawing; on a focused slider the arrows are the slider's.
  if (e.target?.type !== "range" && onArrowKey(v, e)) return e.preventDefault();
  if (mod || e.altKey) return;
  if (command(v, key, e)) e.preventDefault();
}

function command(v, key, e) {
  const view = {
    "+": () => v.zoomIn(), "=": () => v.zoomIn(), "-": () => v.zoomOut(), 0: () => v.fit(),
    1: () => v.actualSize(), h: () => v.setVisible(!v.visible), u: () => v.setOutlineOnly(!v.outlineOnly),
    i: () => v.setInvert(!v.invert), z: () => v.setLoupe(!v.loupe.enabled),
  };
  if (view[key]) return view[key]() ?? true;
  if (key === "Escape") {
    if (v._draft) v.cancelDraft();
    else if (v.selectedVertex >= 0) v.selectedVertex = -1;
    else v._select(-1);
    v.redraw();
    return true;
  }
  if (v.readOnly) return false;
  const edit = { p: () => v.setTool("polygon"), f: () => v.setTool("freehand"), s: () => v.setTool("smart"),
    e: () => v.setTool("edit"), g: () => v.setTool("move"), o: () => v.setTool("hole"), d: () => v.setTool("brush"),
    x: () => v.setTool("eraser"), b: () => v.setLabel("benign"), m: () => v.setLabel("malignant") };
  if (edit[key]) return edit[key]() ?? true;
  if (onBracketKey(v, key)) return true;
  if (key === "Enter" && v._draft?.kind === "polygon") {
    if (e.target?.tagName === "BUTTON") return false;
    v.closePolygon();
    return true;
  }
  if (key === "Backspace" && v._draft?.kind === "polygon") {
    v._draft.points.pop();
    if (!v._draft.points.length) v._draft = null;
    v.redraw();
    return true;
  }
  if (key === "Delete" || key === "Backspace") {
    if (v.tool === "edit" && v.selectedVertex >= 0) return v.deleteSelectedVertex();
    return v.deleteSelected();
  }
  return false;
}
