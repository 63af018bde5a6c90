/* What the annotation and review pages share: DOM helpers, the toolbar, the lesion list, the
 * earlier reviews, the shortcut sheet, and the smart tool's round trip to the server.
 *
 * The viewer never calls the server; bindSmartTool() is where its boxdrawn / pointpicked
 * events become a proposal request and the answer a new lesion.
 */
import * as api from "./api.js";
import { centroid } from "./contours.js";
import { cachedDiameters } from "./measure.js";
import { BUILT_IN_PRESETS, deletePreset, loadPresets, savePreset } from "./viewer-display.js";
import { cachedPixelArea, labelOverlaps } from "./raster.js";
import { bindCorrections } from "./smart-correct.js";
import { isTextTarget } from "./viewer-keys.js";

const $ = (id) => document.getElementById(id);
const TOOLS = ["polygon", "freehand", "smart", "edit", "move", "hole", "brush", "eraser"];
const LABEL_NAMES = { benign: "Benign", malignant: "Malignant" };
const DECISIONS = {
  approved: "Approved", edited_approved: "Edited and approved", returned: "Sent back", reopened: "Reopened",
  adjudicated: "Adjudicated",
};

export { isTextTarget };

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) if (c != null && c !== false) node.append(c);
  return node;
}

/** The area as the export will count it: painted mask pixels (raster.js), not the polygon's area.
 * `spacing` is {x, y} mm per pixel (measure.js spacingOf) or a single figure, or null. */
export function formatArea(lesion, spacing, { width, height }) {
  const px = cachedPixelArea(lesion, width, height);
  const text = `${Math.round(px).toLocaleString("en-GB")} px`;
  const s = typeof spacing === "number" ? { x: spacing, y: spacing } : spacing;
  return s ? `${text} · ${(px * s.x * s.y).toFixed(1)} mm²` : text;
}

/** "⌀ 12.3 × 8.1 mm": the longest diameter and the one perpendicular to it (measure.js). */
export function formatDiameters(lesion, spacing) {
  const s = typeof spacing === "number" ? { x: spacing, y: spacing } : spacing;
  const d = cachedDiameters(lesion.points, s);
  const digits = d.unit === "mm" ? 1 : 0;
  return `⌀ ${d.longest.toFixed(digits)} × ${d.perpendicular.toFixed(digits)} ${d.unit}`;
}

/** Show a message in the viewer's status bar: for 4 s, or until replaced when `sticky`. */
export function flash(message, kind = "warn", { sticky = false } = {}) {
  const box = $("viewer-message");
  if (!box) return;
  box.textContent = message;
  box.dataset.kind = kind;
  clearTimeout(flash.timer);
  if (!sticky) flash.timer = setTimeout(() => (box.textContent = ""), 4000);
}

/** Wire the toolbar buttons, sliders and read-outs that both pages carry to the viewer. */
export function bindToolbar(viewer) {
  const on = (id, ev, fn) => $(id)?.addEventListener(ev, fn);
  // Toolbar buttons must not keep the focus, or Enter/Space would press them again.
  document.querySelector(".toolbar")?.addEventListener("mousedown", (e) => {
    if (e.target.closest("button")) e.preventDefault();
  });
  for (const tool of TOOLS) on(`tool-${tool}`, "click", () => viewer.setTool(tool));
  on("label-benign", "click", () => viewer.setLabel("benign"));
  on("label-malignant", "click", () => viewer.setLabel("malignant"));
  on("delete-lesion", "click", () => viewer.deleteSelected());
  on("undo", "click", () => viewer.undo());
  on("redo", "click", () => viewer.redo());
  on("zoom-in", "click", () => viewer.zoomIn());
  on("zoom-out", "click", () => viewer.zoomOut());
  on("zoom-fit", "click", () => viewer.fit());
  on("zoom-1", "click", () => viewer.actualSize());
  on("toggle-visible", "click", () => viewer.setVisible(!viewer.visible));
  on("toggle-outline", "click", () => viewer.setOutlineOnly(!viewer.outlineOnly));
  on("toggle-invert", "click", () => viewer.setInvert(!viewer.invert));
  on("toggle-loupe", "click", () => viewer.setLoupe(!viewer.loupe.enabled));
  on("brush-size", "change", (e) => (e.target.value = viewer.setBrushRadius(Number(e.target.value) || 1)));
  viewer.on("brushsize", ({ radius }) => $("brush-size") && ($("brush-size").value = radius));
  on("opacity", "input", (e) => viewer.setFillOpacity(e.target.value / 100));
  const adjust = () => viewer.setAdjust({ brightness: $("brightness").value, contrast: $("contrast").value });
  on("brightness", "input", adjust);
  on("contrast", "input", adjust);
  for (const id of ["brightness", "contrast"]) {
    on(id, "dblclick", (e) => {
      e.target.value = 100;
      adjust();
    });
  }

  const pressed = (id, yes) => $(id)?.setAttribute("aria-pressed", String(!!yes));
  const showTool = () => TOOLS.forEach((t) => pressed(`tool-${t}`, viewer.tool === t));
  const showLabel = () => {
    pressed("label-benign", viewer.currentLabel() === "benign");
    pressed("label-malignant", viewer.currentLabel() === "malignant");
    const del = $("delete-lesion");
    if (del) del.disabled = viewer.readOnly || viewer.selected < 0;
  };
  const hints = {
    polygon: "Click the outline point by point; close on the first point, Enter or double-click.",
    freehand: "Press and trace the outline; release to finish.",
    smart: "Drag a box around a lesion (or click inside it): the server proposes its outline, ready to edit.",
    edit: "Select a lesion; drag a point, click an edge to add one, Alt/Shift-click to remove one.",
    move: "Drag to move every lesion together, or Shift+arrows (1 px; with Ctrl 10 px).",
    hole: "Select a lesion, then click the hole's outline inside it; close on the first point or Enter.",
    brush: "Paint onto the selected lesion (none selected: a new lesion); [ and ] change the size.",
    eraser: "Erase from the selected lesion (or the one you press on); [ and ] change the size.",
  };
  const signed = (d) => (d > 0 ? `+${d}` : String(d));
  const showHint = () => {
    const hint = $("hint");
    if (!hint) return;
    let text = viewer.readOnly ? "" : hints[viewer.tool];
    const offset = viewer.tool === "move" && !viewer.readOnly ? viewer.moveOffset() : null;
    // The reader lines the drawing up by eye; the offset says how far it now is from the loaded one.
    if (offset) text += ` Moved ${signed(offset[0])}, ${signed(offset[1])} px.`;
    hint.textContent = text;
  };
  viewer.on("toolchange", () => (showTool(), showHint()));
  viewer.on("labelchange", showLabel);
  viewer.on("selectionchange", showLabel);
  viewer.on("change", () => (showLabel(), viewer.tool === "move" && showHint()));
  viewer.on("moving", showHint);
  viewer.on("history", ({ canUndo, canRedo }) => {
    if ($("undo")) $("undo").disabled = !canUndo;
    if ($("redo")) $("redo").disabled = !canRedo;
  });
  viewer.on("zoom", ({ scale }) => ($("zoom-level").textContent = `${Math.round(scale * 100)}%`));
  viewer.on("pointer", ({ x, y }) => ($("cursor-pos").textContent = `x ${x}  y ${y}`));
  viewer.on("visibility", ({ visible }) => {
    pressed("toggle-visible", !visible);
    $("toggle-visible").textContent = visible ? "Hide" : "Show";
  });
  viewer.on("display", ({ invert, outlineOnly, loupe }) => {
    pressed("toggle-invert", invert);
    pressed("toggle-outline", outlineOnly);
    pressed("toggle-loupe", loupe);
  });
  viewer.on("warning", ({ message }) => flash(message));
  bindOverlapWarning(viewer);
  bindPresets(viewer, adjust);
  showTool();
  showLabel();
  showHint();
  $("zoom-level").textContent = `${Math.round(viewer.scale * 100)}%`;
  return { refresh: () => (showTool(), showLabel(), showHint()) };
}

/**
 * Window presets: brightness/contrast pairs, built-in ones and the reader's own, kept in this
 * browser per user name (viewer-display.js). Choosing one sets the sliders and the image filter.
 */
function bindPresets(viewer, adjust) {
  const select = $("window-preset");
  if (!select) return;
  const user = $("app")?.dataset.username || "";
  const fill = (chosen = "") => {
    const mine = loadPresets(user);
    const option = (p, group) => el("option", { value: `${group}:${p.name}` }, `${p.name} (${p.brightness}/${p.contrast})`);
    select.replaceChildren(
      el("option", { value: "" }, "Window…"),
      el("optgroup", { label: "Built in" }, BUILT_IN_PRESETS.map((p) => option(p, "built-in"))),
      mine.length ? el("optgroup", { label: "Mine" }, mine.map((p) => option(p, "mine"))) : null,
    );
    select.value = chosen;
    $("preset-delete").disabled = !select.value.startsWith("mine:");
  };
  const find = (value) => {
    const [group, ...rest] = value.split(":");
    const name = rest.join(":");
    return (group === "mine" ? loadPresets(user) : BUILT_IN_PRESETS).find((p) => p.name === name);
  };
  select.addEventListener("change", () => {
    const preset = find(select.value);
    $("preset-delete").disabled = !select.value.startsWith("mine:");
    if (!preset) return;
    $("brightness").value = preset.brightness;
    $("contrast").value = preset.contrast;
    adjust();
    select.blur(); // the keys go back to the viewer
  });
  $("preset-save").addEventListener("click", () => {
    const { brightness, contrast } = viewer.getAdjust();
    const name = window.prompt("Name this brightness/contrast preset", `B${brightness} C${contrast}`)?.trim();
    if (!name) return;
    savePreset(user, { name, brightness, contrast });
    fill(`mine:${name}`);
    flash(`Preset "${name}" saved in this browser.`, "info");
  });
  $("preset-delete").addEventListener("click", () => {
    if (!select.value.startsWith("mine:")) return;
    deletePreset(user, select.value.slice(5));
    fill();
  });
  fill();
}

/**
 * A banner, not a block, while lesions of different labels overlap: the export paints malignant
 * over benign, so the overlap is benign tissue lost from the mask, usually a slip of the hand.
 */
function bindOverlapWarning(viewer) {
  const banner = $("overlap-warning");
  if (!banner) return;
  const show = () => {
    const pairs = labelOverlaps(viewer.lesions, viewer.width, viewer.height);
    banner.hidden = !pairs.length;
    if (!pairs.length) return;
    const name = (i) => `lesion ${i + 1} (${viewer.lesions[i].label})`;
    const text = pairs.map(([i, j, n]) => `${name(j)} overlaps ${name(i)} by ${n.toLocaleString("en-GB")} px`).join("; ");
    $("overlap-text").textContent = `${text.charAt(0).toUpperCase()}${text.slice(1)}. The export paints malignant over benign there; check the outlines.`;
  };
  viewer.on("history", show); // every edit, undo, redo and load
  show();
}

/** One `li` per lesion (data-label, data-index); a click selects it in the viewer. */
export function renderLesionList(viewer, { spacing = null, extra = null, describe = null } = {}) {
  const list = $("lesion-list");
  const lesions = viewer.lesions;
  list.replaceChildren(
    ...lesions.map((lesion, i) =>
      el("li", {
        class: `lesion-item${i === viewer.selected ? " selected" : ""}`,
        dataset: { label: lesion.label, index: String(i) },
        tabindex: "0",
        title: "Select this lesion",
        onclick: (e) => {
          if (e.target.closest("button")) return;
          viewer.select(i === viewer.selected ? -1 : i);
        },
        onkeydown: (e) => e.key === "Enter" && viewer.select(i),
      },
      el("span", { class: `swatch ${lesion.label}` }),
      el("span", { class: "lesion-name" }, `${i + 1}. ${LABEL_NAMES[lesion.label]}`),
      el("span", { class: "lesion-area" }, formatArea(lesion, spacing, viewer)),
      el("span", { class: "lesion-measure", title: "Longest diameter × the diameter perpendicular to it" },
        formatDiameters(lesion, spacing)),
      describe ? describe(lesion, i) : null,
      extra ? extra(lesion, i) : null),
    ),
  );
  if ($("lesion-count")) $("lesion-count").textContent = String(lesions.length);
  if ($("lesion-empty")) $("lesion-empty").hidden = lesions.length > 0;
}

/** Earlier reviews, with remarks numbered as their pins on the image. Returns the pins. */
export function renderReviews(reviews, layers, viewer, { focusPin = null } = {}) {
  const box = $("comments");
  const lesionById = new Map();
  for (const layer of layers) for (const l of layer?.lesions || []) lesionById.set(l.id, l);
  const pins = [];
  const items = [];
  for (const review of [...reviews].reverse()) {
    const remarks = review.remarks.map((r) => {
      const lesion = r.lesion != null ? lesionById.get(r.lesion) : null;
      let { x, y } = r;
      if ((x == null || y == null) && lesion) [x, y] = centroid(lesion.points);
      const n = x != null ? pins.push({ x, y, label: pins.length + 1, text: r.text }) : null;
      const where = lesion ? `lesion ${lesion.index + 1} (${lesion.label})` : "";
      return el("li", { class: "remark", dataset: { pin: n ? String(n - 1) : "" },
        onclick: () => {
          if (!n) return;
          viewer.centerOn(x, y);
          if (focusPin) focusPin(n - 1);
          else viewer.setPins(pins, n - 1);
        } },
        n ? el("span", { class: "pin-no" }, String(n)) : null,
        where ? el("span", { class: "muted small" }, `${where}: `) : null, r.text);
    });
    const when = new Date(review.created_at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
    items.push(el("article", { class: `review review-${review.decision}` },
      el("header", {},
        el("span", { class: `badge decision-${review.decision}` }, DECISIONS[review.decision]),
        el("span", { class: "muted small" }, ` ${review.reviewer} · ${when}`)),
      review.comment ? el("p", { class: "review-comment" }, review.comment) : null,
      remarks.length ? el("ol", { class: "remarks" }, remarks) : null));
  }
  box.replaceChildren(...items);
  viewer.on("pinclick", ({ index }) => {
    box.querySelectorAll(".remark").forEach((li) => li.classList.toggle("active", li.dataset.pin === String(index)));
    box.querySelector(`.remark[data-pin="${index}"]`)?.scrollIntoView({ block: "nearest" });
  });
  return pins;
}

export function setupHelp() {
  const dialog = $("help");
  const open = () => (dialog.open ? dialog.close() : dialog.showModal());
  $("help-button")?.addEventListener("click", open);
  window.addEventListener("keydown", (e) => {
    if (e.key === "?" && !isTextTarget(e.target)) {
      e.preventDefault();
      open();
    }
  });
}

export function layerContentOf(layer) {
  return { ...api.layerContent(layer || {}), lesions: (layer?.lesions || []).map((l) => ({ ...l })) };
}

/**
 * The smart tool: a box drawn (or a click) on the viewer asks the server for a proposed outline,
 * which becomes a new lesion with the current label, selected in the edit tool: one undo step,
 * saved like any drawn lesion. One request at a time; the box stays on screen meanwhile.
 */
export function bindSmartTool(viewer, imageId) {
  const stage = viewer.el;
  const corrections = bindCorrections(viewer, imageId, { flash });
  let busy = false;
  async function propose(request, pending) {
    if (busy) return flash("Still working on the previous proposal…");
    busy = true;
    viewer.setPending(pending);
    stage.classList.add("busy");
    flash("Proposing a contour…", "busy", { sticky: true });
    try {
      const { points } = await api.proposeContour(imageId, request);
      viewer.setPending(null);
      if (viewer.readOnly) return flash("");
      const index = viewer.addLesion(points);
      if (index < 0) return;
      viewer.setTool("edit");
      corrections.start(request, index);
      flash(
        "Proposed outline added: Shift+click where it must reach, Alt+click what it must leave out, " +
          "or drag its points (Ctrl+Z removes it).",
        "info",
      );
    } catch (err) {
      viewer.setPending(null);
      // A 400 says what was wrong with the box (e.g. too small); the detail is meant for the reader.
      flash(`No proposal: ${err.offline ? "the server could not be reached" : err.detail}`, "error");
    } finally {
      busy = false;
      stage.classList.remove("busy");
    }
  }
  viewer.on("boxdrawn", ({ box }) => propose({ box }, { box }));
  viewer.on("pointpicked", ({ point }) => propose({ point }, { point }));
}
