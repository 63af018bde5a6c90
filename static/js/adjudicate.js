/* The review page of an image read blind by two readers, in adjudication: both readings overlaid
 * (one solid, the other dashed; Swap exchanges them), their agreement from the server
 * (annotator/agreement.py: whole mask and per lesion), and the adjudicator's decisions: approve a
 * reading, edit one then approve, start from their union or intersection (computed by the server),
 * or send one or both back with a comment. After a decision the page opens the next image to review.
 */
import * as api from "./api.js";
import { el, layerContentOf } from "./workspace.js";

const $ = (id) => document.getElementById(id);
const LABELS = { benign: "B", malignant: "M" };

function figure(value, unit = "") {
  return value == null ? "undefined" : `${Number(value).toFixed(3)}${unit ? ` ${unit}` : ""}`;
}

function renderAgreement(agreement) {
  const box = $("agreement-whole");
  if (!agreement) {
    box.hidden = true;
    $("agreement-summary").textContent = "No agreement figures: the two readings are not both submitted.";
    return;
  }
  const whole = agreement.whole;
  for (const key of ["dice", "iou", "hd95", "assd"]) {
    const unit = key.startsWith("hd") || key === "assd" ? agreement.unit : "";
    box.querySelector(`td[data-key="${key}"]`).textContent = figure(whole[key], unit);
  }
  const lesions = agreement.lesions;
  $("agreement-lesions").querySelector("tbody").replaceChildren(
    ...lesions.matches.map((m) =>
      el("tr", { dataset: { first: String(m.first), second: String(m.second) }, class: m.label_flip ? "label-flip" : null },
        el("td", {}, `${m.first + 1} ↔ ${m.second + 1}`),
        el("td", {}, `${LABELS[m.first_label]} / ${LABELS[m.second_label]}${m.label_flip ? " (flip)" : ""}`),
        el("td", {}, figure(m.dice)),
        el("td", {}, figure(m.hd95, m.unit)))),
  );
  $("agreement-summary").textContent =
    `${lesions.matched} matched, ${lesions.missed_count} only in reading 1, ${lesions.added_count} only in reading 2, ` +
    `${lesions.label_flips} label flip(s); image: ${agreement.first_image_label} / ${agreement.second_image_label}.`;
}

/**
 * ctx: {imageId, image, viewer, toolbar, app, setEditing(on)} — setEditing tells the review page
 * to enable its flags and lesion list for editing (the page owns those controls).
 */
export function initAdjudication({ imageId, image, viewer, toolbar, app, setEditing }) {
  const readings = { 1: image.readings[0], 2: image.readings[1] };
  const st = { solid: 1, editing: null, busy: false };
  $("decision").hidden = true;
  $("adjudication").hidden = false;
  $("comments-panel").hidden = true; // earlier rounds of the same readers stay in the audit log
  for (const n of [1, 2]) {
    const who = `${readings[n].author} (reading ${n})`;
    $(`adj-approve-${n}`).textContent = `Approve ${readings[n].author}'s reading`;
    $(`adj-edit-${n}`).textContent = `Edit ${readings[n].author}'s reading, then approve`;
    $(`adj-return-${n}-name`).textContent = who;
  }
  renderAgreement(image.reading_agreement);
  const canDecide = !!image.can_adjudicate;

  function show() {
    const solid = readings[st.solid];
    const dashed = readings[3 - st.solid];
    viewer.setReadOnly(true);
    viewer.fromData(layerContentOf(solid));
    viewer.setOverlay(dashed.lesions);
    viewer.setOverlayVisible(true);
    $("show-previous-wrap").lastChild.textContent = " Overlay the other reading (dashed)";
    $("show-previous").checked = true;
    $("show-previous").disabled = false;
    $("reader-solid").textContent = `${solid.author} (reading ${st.solid})`;
    $("reader-dashed").textContent = `${dashed.author} (reading ${3 - st.solid})`;
    $("layer-info").textContent = `Adjudication · ${readings[1].author} and ${readings[2].author}`;
  }

  function renderButtons() {
    const idle = canDecide && !st.busy;
    for (const id of ["adj-approve-1", "adj-approve-2", "adj-edit-1", "adj-edit-2", "adj-union", "adj-intersection"]) {
      $(id).hidden = !!st.editing;
      $(id).disabled = !idle;
    }
    $("adj-confirm").hidden = !st.editing;
    $("adj-cancel").hidden = !st.editing;
    $("adj-confirm").disabled = !idle;
    $("adj-return").disabled = !idle || !!st.editing;
    $("swap-readers").disabled = !!st.editing;
  }

  const showError = (msg) => {
    $("adj-error").hidden = !msg;
    $("adj-error").textContent = msg || "";
  };
  const comment = () => $("adj-comment").value.trim();

  async function decide(call) {
    showError("");
    st.busy = true;
    renderButtons();
    try {
      await call();
      let next = null;
      try {
        next = (await api.nextReview()).id;
      } catch {
        next = null;
      }
      window.location.href = next && next !== imageId ? `/images/${next}/review/` : "/review/";
    } catch (err) {
      showError(`${err.detail}${err.conflict ? " Reload the page to see the current state." : ""}`);
      st.busy = false;
      renderButtons();
    }
  }

  function startEditing(startFrom, content, overlay) {
    st.editing = { startFrom };
    viewer.fromData(content);
    viewer.setOverlay(overlay);
    viewer.setReadOnly(false);
    viewer.setTool("edit");
    app.classList.remove("readonly");
    app.classList.add("editing");
    setEditing(true);
    toolbar.refresh();
    renderButtons();
    $("hint").textContent = "Editing: your drawing becomes the consensus when you approve it.";
  }

  function stopEditing() {
    st.editing = null;
    app.classList.add("readonly");
    app.classList.remove("editing");
    setEditing(false);
    show();
    toolbar.refresh();
    renderButtons();
    $("hint").textContent = "";
  }

  $("swap-readers").addEventListener("click", () => ((st.solid = 3 - st.solid), show()));
  for (const n of [1, 2]) {
    $(`adj-approve-${n}`).addEventListener("click", () =>
      decide(() => api.adjudicate(imageId, { layer: readings[n].id, comment: comment() })));
    $(`adj-edit-${n}`).addEventListener("click", () =>
      startEditing(readings[n].id, layerContentOf(readings[n]), readings[3 - n].lesions));
  }
  for (const operation of ["union", "intersection"]) {
    $(`adj-${operation}`).addEventListener("click", async () => {
      showError("");
      try {
        const { lesions, dropped_specks: dropped } = await api.combinedReadings(imageId, operation);
        // Flags start from reading 1's; the adjudicator sets them while editing.
        const base = layerContentOf(readings[1]);
        startEditing(operation, { ...base, lesions, is_normal: !lesions.length && base.is_normal }, null);
        if (dropped) $("hint").textContent += ` ${dropped} sliver(s) too thin to outline were left out.`;
      } catch (err) {
        showError(err.detail);
      }
    });
  }
  $("adj-cancel").addEventListener("click", stopEditing);
  $("adj-confirm").addEventListener("click", () => {
    const data = viewer.toData();
    if (!data.is_normal && !data.lesions.length) return showError("Draw at least one lesion or mark the image normal.");
    decide(() =>
      api.adjudicateEdit(imageId, { startFrom: st.editing.startFrom, layer: api.layerContent(data), comment: comment() }));
  });
  $("adj-return").addEventListener("click", () => {
    const layers = [1, 2].filter((n) => $(`adj-return-${n}`).checked).map((n) => readings[n].id);
    if (!layers.length) return showError("Tick the reading (or both) to send back.");
    if (!comment()) {
      showError("Write a comment that tells the reader what to change.");
      return $("adj-comment").focus();
    }
    decide(() => api.returnReading(imageId, { layers, comment: comment() }));
  });
  $("adj-comment").addEventListener("input", () => showError(""));

  show();
  renderButtons();
  if (!canDecide) $("adjudication").classList.add("inactive");
  return { get editing() { return st.editing; } };
}
