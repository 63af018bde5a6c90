/* Corrections to a smart-contour proposal without redrawing it (as CVAT's interactors and Slicer's
 * grow-from-seeds do): while the proposed lesion is selected and unchanged since the server
 * proposed it, Shift+click (or a short Shift+drag stroke) marks a place it must include and
 * Alt+click (or an Alt stroke) a place it must leave out. Every correction asks the server again
 * with the original box or click plus all the points so far; the answer replaces the proposal's
 * outline as one undo step. Editing the outline by hand (or undoing) ends the corrections, so a
 * later Shift or Alt click on a vertex deletes it as usual.
 */
import * as api from "./api.js";
import { HANDLE_PX } from "./viewer-render.js";

const STROKE_PX = 6; // a stroke is sampled every this many screen pixels
const TOOLS = ["edit", "smart"]; // where a Shift/Alt click may mean a correction

export function bindCorrections(viewer, imageId, { flash }) {
  let session = null; // {request, index, points, inside, outside}
  let stroke = null; // {inside: bool, points: [[x, y]], last: {x, y} on screen}
  let busy = false;

  const active = () => {
    if (!session || viewer.readOnly || !TOOLS.includes(viewer.tool) || viewer.selected !== session.index) return false;
    const lesion = viewer.lesions[session.index];
    return Boolean(lesion) && JSON.stringify(lesion.points) === JSON.stringify(session.points);
  };
  const onHandle = (p) =>
    viewer.lesions[session.index].points.some((q) => Math.hypot(q[0] - p.x, q[1] - p.y) * viewer.scale <= HANDLE_PX + 3);
  const imagePoint = (e) => {
    const p = viewer.pageToImage(e.clientX, e.clientY);
    return [Math.min(Math.max(p.x, 0), viewer.width - 1), Math.min(Math.max(p.y, 0), viewer.height - 1)];
  };

  async function send(inside, points) {
    const list = inside ? session.inside : session.outside;
    list.push(...points);
    busy = true;
    viewer.el.classList.add("busy");
    try {
      const answer = await api.proposeContour(imageId, {
        ...session.request,
        inside: session.inside,
        outside: session.outside,
      });
      if (!sameSession()) return; // edited (or undone) while the request was out: the answer is stale
      if (!viewer.replaceLesionPoints(session.index, answer.points)) throw { detail: "the corrected outline was not valid" };
      session.points = viewer.lesions[session.index].points.map((q) => [...q]);
      const n = session.inside.length + session.outside.length;
      flash(`Outline recomputed with ${n} correction point${n === 1 ? "" : "s"} (Ctrl+Z takes it back).`, "info");
    } catch (err) {
      list.splice(list.length - points.length, points.length);
      flash(`No correction: ${err.offline ? "the server could not be reached" : err.detail}`, "error");
    } finally {
      busy = false;
      viewer.el.classList.remove("busy");
    }
  }
  const sameSession = () => {
    const lesion = viewer.lesions[session.index];
    return Boolean(lesion) && JSON.stringify(lesion.points) === JSON.stringify(session.points);
  };

  // Capture phase: the viewer's own handlers never see a correction.
  viewer.el.addEventListener(
    "pointerdown",
    (e) => {
      if (e.button !== 0 || !(e.shiftKey || e.altKey) || !active()) return;
      if (onHandle(viewer.pageToImage(e.clientX, e.clientY))) return; // Shift/Alt on a vertex deletes it
      e.preventDefault();
      e.stopImmediatePropagation();
      if (busy) return flash("Still working on the previous correction…");
      stroke = { inside: e.shiftKey, points: [imagePoint(e)], last: { x: e.clientX, y: e.clientY } };
      viewer.el.setPointerCapture?.(e.pointerId);
    },
    true,
  );
  viewer.el.addEventListener(
    "pointermove",
    (e) => {
      if (!stroke) return;
      e.stopImmediatePropagation();
      if (Math.hypot(e.clientX - stroke.last.x, e.clientY - stroke.last.y) < STROKE_PX) return;
      stroke.last = { x: e.clientX, y: e.clientY };
      if (stroke.points.length < 100) stroke.points.push(imagePoint(e));
    },
    true,
  );
  viewer.el.addEventListener(
    "pointerup",
    (e) => {
      if (!stroke) return;
      e.stopImmediatePropagation();
      viewer.el.releasePointerCapture?.(e.pointerId);
      const { inside, points } = stroke;
      stroke = null;
      send(inside, points);
    },
    true,
  );

  return {
    /** A new proposal (lesion `index`, made from `request` {box} or {point}) may now be corrected. */
    start(request, index) {
      session = { request, index, points: viewer.lesions[index].points.map((q) => [...q]), inside: [], outside: [] };
    },
  };
}
