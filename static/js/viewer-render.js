/* Rendering half of the drawing module: Konva nodes from a Viewer's state.
 *
 * render(viewer) rebuilds the overlay, lesion and UI layers from the viewer's document,
 * selection, draft, pending request and pins at its current zoom; it never changes the
 * document. Strokes are divided by the zoom so they keep their width on screen.
 */
/* global Konva */
import { COLOURS, boxFromCorners, findCrossing } from "./contours.js";
import { drawBrush } from "./viewer-brush.js";

export const HANDLE_PX = 4.5; // vertex handle radius on screen

function rgba(label, alpha) {
  const [r, g, b] = COLOURS[label] || [255, 255, 0];
  return `rgba(${r},${g},${b},${alpha})`;
}

export function render(v) {
  const s = v.scale;
  v.overlayLayer.destroyChildren();
  v.lesionLayer.destroyChildren();
  v.uiLayer.destroyChildren();
  if (v.visible && v.overlay && v.overlayVisible) {
    for (const lesion of v.overlay) {
      v.overlayLayer.add(shape(lesion, {
        stroke: "rgba(255,255,255,0.9)", strokeWidth: 1.5 / s, dash: [5 / s, 4 / s], fill: null, listening: false,
      }));
      v.overlayLayer.add(shape(lesion, {
        stroke: rgba(lesion.label, 1), strokeWidth: 1.5 / s, dash: [5 / s, 4 / s], dashOffset: 5 / s, fill: null,
        listening: false,
      }));
    }
  }
  if (v.visible) {
    v.lesions.forEach((lesion, i) => {
      const selected = i === v.selected;
      const crossing = selected && v._drag?.kind === "vertex" && findCrossing(lesion.points);
      v.lesionLayer.add(shape(lesion, {
        // Outline only: a transparent fill, so a click inside still picks the lesion.
        fill: v.outlineOnly ? "rgba(0,0,0,0)" : rgba(lesion.label, v.fillOpacity),
        stroke: crossing ? "#ffff00" : rgba(lesion.label, 1),
        strokeWidth: (selected ? 2.5 : 1.5) / s,
        shadowColor: "#000", shadowBlur: selected ? 4 : 0, shadowForStrokeEnabled: selected,
        role: "lesion", lesionIndex: i,
      }));
    });
    drawHandles(v);
  }
  drawDraft(v);
  drawBrush(v, v.uiLayer);
  drawPins(v);
  v._hitStale = true;
  v.imageLayer.batchDraw();
  v.overlayLayer.batchDraw();
  v.lesionLayer.batchDraw();
  v.uiLayer.batchDraw();
}

function shape(lesion, attrs) {
  const rings = [lesion.points, ...(lesion.holes || [])];
  return new Konva.Shape({
    ...attrs,
    fillRule: "evenodd",
    perfectDrawEnabled: false,
    sceneFunc(ctx, node) {
      ctx.beginPath();
      for (const ring of rings) {
        ring.forEach(([x, y], k) => (k ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
        ctx.closePath();
      }
      ctx.fillStrokeShape(node);
    },
  });
}

function drawHandles(v) {
  const lesion = v.lesions[v.selected];
  if (!lesion || v.readOnly || v.tool !== "edit") return;
  const s = v.scale;
  const pts = lesion.points;
  // Dense contours (traced or imported) would vanish under full-size handles at low zoom.
  const spacing = pts.reduce((sum, p, k) => sum + Math.hypot(p[0] - pts[(k + 1) % pts.length][0],
    p[1] - pts[(k + 1) % pts.length][1]), 0) / pts.length * s;
  const r = Math.max(2, Math.min(HANDLE_PX, spacing * 0.3));
  pts.forEach(([x, y], k) => {
    const active = k === v.selectedVertex;
    v.uiLayer.add(new Konva.Circle({
      x, y, radius: (active ? Math.max(r, HANDLE_PX) + 1.5 : r) / s,
      fill: active ? "#ffd400" : "#fff", stroke: "#000", strokeWidth: 1 / s, listening: false,
      perfectDrawEnabled: false,
    }));
  });
}

function drawDraft(v) {
  const d = v._draft;
  const s = v.scale;
  if (v.pending) drawBox(v, v.pending.box, v.pending.point, true);
  if (!d || !d.points.length || d.kind === "stroke") return;
  if (d.kind === "box") return drawBox(v, boxFromCorners(...d.points), null, false);
  const colour = rgba(v.pendingLabel, 1);
  const pts = d.points.flat();
  if (d.kind === "polygon" && v._cursor) pts.push(...v._clamp([v._cursor.x, v._cursor.y]));
  v.uiLayer.add(new Konva.Line({ points: pts, stroke: "#000", strokeWidth: 3.5 / s, opacity: 0.5, listening: false }));
  v.uiLayer.add(new Konva.Line({ points: pts, stroke: colour, strokeWidth: 1.5 / s, listening: false }));
  if (d.kind === "polygon") {
    d.points.forEach(([x, y], k) => {
      const closable = k === 0 && d.points.length >= 3 && v._nearFirst();
      v.uiLayer.add(new Konva.Circle({
        x, y, radius: (k === 0 ? HANDLE_PX + (closable ? 3 : 1) : HANDLE_PX - 1) / s,
        fill: closable ? "#ffd400" : "#fff", stroke: colour, strokeWidth: 1.5 / s, listening: false,
      }));
    });
  }
}

/** The smart tool's box (or click) being drawn, or, finer-dashed, the one awaiting a proposal. */
function drawBox(v, box, point, waiting) {
  const s = v.scale;
  const colour = rgba(v.pendingLabel, 1);
  const dash = waiting ? [3 / s, 3 / s] : [6 / s, 4 / s];
  if (box) {
    const [x0, y0, x1, y1] = box;
    const rect = { x: x0, y: y0, width: x1 - x0, height: y1 - y0, listening: false };
    v.uiLayer.add(new Konva.Rect({ ...rect, stroke: "#000", strokeWidth: 3 / s, opacity: 0.5 }));
    v.uiLayer.add(new Konva.Rect({ ...rect, stroke: colour, strokeWidth: 1.5 / s, dash }));
  }
  if (point) {
    v.uiLayer.add(new Konva.Circle({ x: point[0], y: point[1], radius: 6 / s, stroke: colour, strokeWidth: 2 / s,
      dash, listening: false }));
  }
}

function drawPins(v) {
  if (!v.visible) return;
  const s = v.scale;
  v.pins.forEach((pin, i) => {
    const g = new Konva.Group({ x: pin.x, y: pin.y, scaleX: 1 / s, scaleY: 1 / s, role: "pin", pinIndex: i });
    const active = i === v.activePin;
    g.add(new Konva.Circle({ radius: active ? 11 : 9, fill: pin.pending ? "#5ab0ff" : "#ffb300", stroke: "#111",
      strokeWidth: active ? 2.5 : 1.5, role: "pin", pinIndex: i }));
    g.add(new Konva.Text({ text: String(pin.label ?? i + 1), fontSize: 11, fontStyle: "bold", fill: "#111",
      width: 24, height: 24, x: -12, y: -12, align: "center", verticalAlign: "middle", role: "pin", pinIndex: i }));
    v.uiLayer.add(g);
  });
}
