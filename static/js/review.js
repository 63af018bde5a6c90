/* The review page: the submitted layer, read-only, with approve / send back / edit-then-approve.
 *
 * Remarks are pinned to a point (pin mode: click the image) and/or a lesion; they travel with
 * a send-back. After a decision the page moves on to the next image of the review queue.
 */
import { initAdjudication } from "./adjudicate.js";
import * as api from "./api.js";
import { centroid } from "./contours.js";
import { DescriptorPanel, describeLesion, readLexicon, summary } from "./descriptors.js";
import { spacingOf } from "./measure.js";
import { SideBySide } from "./review-compare.js";
import { Viewer } from "./viewer.js";
import { Ruler } from "./viewer-ruler.js";
import {
  bindSmartTool,
  bindToolbar,
  el,
  flash,
  isTextTarget,
  layerContentOf,
  renderLesionList,
  renderReviews,
  setupHelp,
} from "./workspace.js";

const $ = (id) => document.getElementById(id);
const CONFIRM_MS = 1200; // how long the decision is shown before the next image opens
const DONE = { approve: "Approved", sendBack: "Sent back", editApprove: "Your edit approved" };

async function initReviewPage() {
  const app = $("app");
  const imageId = Number(app.dataset.imageId);
  const spacing = spacingOf(app.dataset);
  const lexicon = readLexicon();
  const mode = app.dataset.descriptors || "off";
  const viewer = new Viewer($("stage"), {
    width: Number(app.dataset.width), height: Number(app.dataset.height), readOnly: true,
  });
  window.busViewer = viewer;
  const st = { image: null, layer: null, remarks: [], earlierPins: [], editing: false, busy: false, state: "loading" };
  window.busPage = {
    get layer() {
      return st.layer;
    },
    get state() {
      return st.state;
    },
    get remarks() {
      return st.remarks;
    },
    viewer,
  };
  const descriptors = new DescriptorPanel(viewer, { lex: lexicon, mode, editable: () => st.editing });
  const describe = mode === "off" ? null : (lesion) => describeLesion(lesion, lexicon, mode);
  window.busPage.ruler = new Ruler(viewer, { spacing, button: $("tool-ruler") });

  const showError = (box, msg) => {
    $(box).hidden = !msg;
    $(box).textContent = msg || "";
  };

  // --- pins and remarks ---
  function remarkPoint(r) {
    if (r.x != null) return [r.x, r.y];
    const lesion = viewer.lesions[r.lesionIndex];
    return lesion ? centroid(lesion.points) : null;
  }

  function showPins(active = -1) {
    const pending = st.remarks.map((r, i) => {
      const p = remarkPoint(r);
      return p ? { x: p[0], y: p[1], label: i + 1, pending: true } : null;
    }).filter(Boolean);
    viewer.setPins([...st.earlierPins, ...pending], active);
  }

  function renderRemarks() {
    $("remarks").replaceChildren(...st.remarks.map((r, i) => {
      const where = r.lesionIndex != null && r.lesionIndex >= 0
        ? `Lesion ${r.lesionIndex + 1} (${viewer.lesions[r.lesionIndex]?.label ?? "?"})`
        : `Point ${Math.round(r.x)}, ${Math.round(r.y)}`;
      const text = el("textarea", { class: "remark-text", rows: "2", maxlength: "2000", placeholder: "What should change here?",
        "aria-label": `Remark ${i + 1}`, oninput: (e) => (r.text = e.target.value) });
      text.value = r.text;
      // What the annotator described, so that "margin should be spiculated" is written against it.
      const lesion = r.lesionIndex != null && r.lesionIndex >= 0 ? viewer.lesions[r.lesionIndex] : null;
      const described = lesion && (mode !== "off" || Object.keys(lesion.descriptors || {}).length)
        ? el("span", { class: "remark-descriptors" },
          `Described as: ${summary(lesion.descriptors, lexicon) || "not described"}${
            viewer.attrs.assessment ? ` · assessment ${viewer.attrs.assessment}` : ""}`)
        : null;
      return el("li", { class: "remark pending", dataset: { index: String(i) } },
        el("div", { class: "remark-head" },
          el("span", { class: "pin-no pending" }, String(i + 1)),
          el("span", { class: "muted small" }, where),
          el("button", { type: "button", class: "link-btn", title: "Remove this remark",
            onclick: () => (st.remarks.splice(i, 1), renderRemarks()) }, "remove")),
        described,
        text);
    }));
    $("remarks-hint").hidden = st.remarks.length > 0;
    showPins();
  }

  function addRemark(remark) {
    st.remarks.push({ text: "", x: null, y: null, lesion: null, lesionIndex: null, ...remark });
    renderRemarks();
    $("remarks").querySelector("li:last-child textarea")?.focus();
  }

  function setPinMode(on) {
    if (st.editing) on = false;
    viewer.setMode(on ? "pin" : null);
    $("pin-mode").setAttribute("aria-pressed", String(on));
    $("hint").textContent = on ? "Click the image, or a lesion, to pin a remark there." : "";
  }

  viewer.on("pin", ({ x, y, lesion }) => {
    addRemark({ x, y, lesionIndex: lesion, lesion: lesion != null ? viewer.lesions[lesion]?.id ?? null : null });
  });
  viewer.on("pinclick", ({ index }) => {
    const k = index - st.earlierPins.length;
    if (k >= 0) $("remarks").querySelector(`li[data-index="${k}"] textarea`)?.focus();
  });
  $("pin-mode").addEventListener("click", () => setPinMode(viewer.mode !== "pin"));

  // --- lesion list and flags ---
  const lesionExtra = (lesion, i) => st.editing || !reviewable() ? null
    : el("button", { type: "button", class: "link-btn", title: "Add a remark about this lesion",
      onclick: () => addRemark({ lesion: lesion.id ?? null, lesionIndex: i }) }, "remark");
  const renderList = () => {
    renderLesionList(viewer, { spacing, extra: lesionExtra, describe });
    descriptors.render();
  };
  const flags = { normal: "is_normal", "flag-doppler": "doppler", "flag-marks": "marks", "flag-combined": "combined" };
  function renderFlags() {
    for (const [id, key] of Object.entries(flags)) {
      $(id).checked = !!viewer.attrs[key];
      $(id).disabled = !st.editing || (key === "is_normal" && viewer.lesions.length > 0 && !viewer.attrs.is_normal);
    }
    const note = viewer.attrs.note || "";
    $("annotator-note").hidden = !note;
    $("annotator-note").textContent = note ? `Note: ${note}` : "";
    viewer.setDrawEnabled(!viewer.attrs.is_normal);
  }
  for (const [id, key] of Object.entries(flags)) {
    $(id).addEventListener("change", (e) => {
      if (key === "is_normal" && e.target.checked && viewer.lesions.length) {
        e.target.checked = false;
        return flash("Delete the lesions before marking the image normal.");
      }
      viewer.setAttrs({ [key]: e.target.checked });
    });
  }
  viewer.on("change", () => (renderList(), renderFlags()));
  viewer.on("selectionchange", renderList);
  $("show-previous").addEventListener("change", (e) => viewer.setOverlayVisible(e.target.checked));

  // --- decisions ---
  const reviewable = () => !!st.image?.can_review && st.image.status === "submitted" && st.layer?.status === "submitted";
  const buttons = ["approve", "send-back", "edit-approve", "confirm-edit-approve", "cancel-edit"];
  function renderButtons() {
    const ok = reviewable() && !st.busy;
    $("approve").disabled = !ok || st.editing;
    $("send-back").disabled = !ok || st.editing;
    $("edit-approve").disabled = !ok;
    $("edit-approve").hidden = st.editing;
    $("confirm-edit-approve").hidden = !st.editing;
    $("confirm-edit-approve").disabled = !ok;
    $("cancel-edit").hidden = !st.editing;
    $("pin-mode").disabled = !ok || st.editing;
  }

  async function decide(call, kind) {
    showError("decision-error", "");
    st.busy = true;
    st.state = "sending";
    renderButtons();
    try {
      await call();
      st.state = "done";
      let next = null;
      const [found] = await Promise.all([
        api.nextReview().then((n) => n.id, () => null),
        // The reader sees what was recorded before the page changes under them.
        confirmDecision(kind),
      ]);
      next = found;
      window.location.href = next && next !== imageId ? `/images/${next}/review/` : "/review/";
    } catch (err) {
      st.state = "error";
      const hint = err.conflict ? " Reload the page to see the current state." : "";
      showError("decision-error", `${err.detail}${hint}`);
      st.busy = false;
      renderButtons();
    }
  }

  function confirmDecision(kind) {
    const box = $("decision-done");
    const who = st.layer?.author ? ` (${st.layer.author})` : "";
    box.dataset.kind = kind;
    box.textContent = `${DONE[kind]}: ${st.image?.name || "this image"}${kind === "sendBack" ? who : ""}. Opening the next image…`;
    box.hidden = false;
    return new Promise((resolve) => setTimeout(resolve, CONFIRM_MS));
  }

  const comment = () => $("comment").value.trim();
  $("comment").addEventListener("input", () => showError("decision-error", ""));
  $("approve").addEventListener("click", () =>
    decide(() => api.approve(imageId, { comment: comment(), version: st.layer.version }), "approve"));

  $("send-back").addEventListener("click", () => {
    if (!comment()) {
      showError("decision-error", "Write a comment that tells the annotator what to change.");
      return $("comment").focus();
    }
    const blank = st.remarks.findIndex((r) => !r.text.trim());
    if (blank >= 0) {
      showError("decision-error", `Remark ${blank + 1} has no text: write it or remove it.`);
      return $("remarks").querySelector(`li[data-index="${blank}"] textarea`)?.focus();
    }
    const remarks = st.remarks.map((r) => {
      const out = { text: r.text.trim() };
      if (r.x != null) Object.assign(out, { x: r.x, y: r.y });
      if (r.lesion != null) out.lesion = r.lesion;
      return out;
    });
    decide(() => api.sendBack(imageId, { comment: comment(), remarks, version: st.layer.version }), "sendBack");
  });

  function setEditing(on) {
    st.editing = on;
    setPinMode(false);
    viewer.setReadOnly(!on);
    if (on) viewer.setTool("edit");
    else viewer.fromData(layerContentOf(st.layer));
    app.classList.toggle("readonly", !on);
    app.classList.toggle("editing", on);
    toolbar.refresh();
    renderList();
    renderFlags();
    renderButtons();
    $("hint").textContent = on ? "Editing: your corrected drawing becomes the consensus when you approve it." : "";
  }
  $("edit-approve").addEventListener("click", () => setEditing(true));
  $("cancel-edit").addEventListener("click", () => setEditing(false));
  $("confirm-edit-approve").addEventListener("click", () => {
    const data = viewer.toData();
    if (!data.is_normal && !data.lesions.length) {
      return showError("decision-error", "Draw at least one lesion or mark the image normal.");
    }
    decide(() => api.editApprove(imageId, { comment: comment(), version: st.layer.version, layer: api.layerContent(data) }),
      "editApprove");
  });

  // Shift+A approves, Shift+S opens the comment for a send-back, Ctrl+Enter in it sends.
  const canDecide = () => reviewable() && !st.editing && !st.busy;
  $("comment").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey) && canDecide()) {
      e.preventDefault();
      $("send-back").click();
    }
  });
  window.addEventListener("keydown", (e) => {
    if (isTextTarget(e.target) || e.ctrlKey || e.metaKey || e.altKey || e.target?.closest?.("dialog")) return;
    if (e.shiftKey && (e.key === "A" || e.key === "S") && canDecide()) {
      e.preventDefault();
      if (e.key === "A") return $("approve").click();
      $("comment").focus();
      $("comment").scrollIntoView({ block: "nearest" });
      return flash("Write what should change, then Ctrl+Enter (or Send back).", "info");
    }
    if (e.key === "r" && !st.editing && reviewable()) setPinMode(viewer.mode !== "pin");
    else if (e.key === "k" && st.editing && descriptors.focus()) e.preventDefault();
    else if (e.key === "Escape" && viewer.mode === "pin") setPinMode(false);
  });

  const toolbar = bindToolbar(viewer);
  const compare = new SideBySide(viewer, $("compare-pane"), {
    imageUrl: api.imageUrl(imageId), width: viewer.width, height: viewer.height,
  });
  $("side-by-side").addEventListener("change", (e) => (compare.setOn(e.target.checked), compare.syncDisplay()));
  viewer.on("display", () => compare.syncDisplay());
  viewer.on("visibility", () => compare.syncDisplay());
  for (const id of ["opacity", "brightness", "contrast", "window-preset"]) {
    $(id)?.addEventListener(id === "window-preset" ? "change" : "input", () => compare.syncDisplay());
  }
  bindSmartTool(viewer, imageId);
  setupHelp();

  // --- load ---
  try {
    const image = await api.getImage(imageId);
    st.image = image;
    viewer.setImage(api.imageUrl(imageId)).catch(() => showError("page-error", "The image could not be loaded."));
    const open = image.open_layer;
    st.layer = open?.status === "submitted" ? open : image.consensus || open || image.previous_layer;
    viewer.fromData(layerContentOf(st.layer));
    if (st.layer) $("layer-info").textContent = `Revision ${st.layer.revision} · ${st.layer.status} · by ${st.layer.author}`;
    const previous = image.previous_layer;
    if (previous && previous.id !== st.layer?.id) {
      viewer.setOverlay(previous.lesions);
      $("show-previous").disabled = false;
      $("show-previous-wrap").title = `Revision ${previous.revision}`;
      compare.setLesions(previous.lesions);
      $("side-by-side").disabled = false;
      $("compare-label").textContent = `Revision ${previous.revision} (${previous.status}, by ${previous.author})`;
    } else {
      $("show-previous-wrap").title = "There is no earlier revision";
      $("side-by-side-wrap").title = "There is no earlier revision";
    }
    if (image.reviews?.length) {
      $("comments-panel").hidden = false;
      st.earlierPins = renderReviews(image.reviews, [previous, open, image.consensus], viewer,
        { focusPin: (i) => showPins(i) });
    }
    if (image.status === "adjudication" && image.readings?.length === 2) {
      // Read blind by two readers: the adjudication panel takes over the decision panel.
      window.busPage.adjudication = initAdjudication({
        imageId, image, viewer, toolbar, app,
        setEditing: (on) => ((st.editing = on), renderList(), renderFlags()),
      });
      if (!image.can_adjudicate) showError("page-info", "You cannot adjudicate this image (you read it, or your role does not allow it).");
    } else if (!reviewable()) {
      const why = image.can_review
        ? `This image is ${image.status}; there is nothing to review.`
        : "You cannot review this image.";
      showError("page-info", why);
      $("decision").classList.add("inactive");
    }
    renderList();
    renderFlags();
    renderButtons();
    renderRemarks();
    st.state = "ready";
  } catch (err) {
    st.state = "error";
    showError("page-error", `Could not open the image: ${err.detail}`);
  }
  app.classList.remove("is-loading");
}

if (document.body.classList.contains("page-review")) {
  // Back/forward may restore this page from memory after a decision: load it afresh instead.
  window.addEventListener("pageshow", (e) => e.persisted && window.location.reload());
  initReviewPage();
}
