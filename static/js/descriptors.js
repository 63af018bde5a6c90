/* BI-RADS descriptors in the side panel: the selected lesion's descriptors and the image's
 * assessment category, shared by the annotation and review pages.
 *
 * The lexicon comes from the server (annotator/birads.py, embedded in the page as JSON), so a
 * new lexicon version needs no change here. Values live in the viewer's document (each lesion's
 * `descriptors`, the image's `assessment` among the attrs): a change is an undo step and is
 * autosaved like a contour. The curator's mode decides what is shown: "off" hides the controls
 * (stored values still travel with the drawing, untouched), "on" shows them, "required" marks the
 * required ones (the server refuses a submission without them and names what is missing).
 *
 * Keyboard: D jumps to the first control (selecting lesion 1 when none is
 * selected); each control has an access key (Alt+letter in Chromium on Linux and Windows); a
 * focused select takes the first letters of a value; Tab moves on.
 */
import { el } from "./workspace.js";

const $ = (id) => document.getElementById(id);

export function readLexicon() {
  const node = $("birads-lexicon");
  return node ? JSON.parse(node.textContent) : null;
}

function valueLabels(lex) {
  const map = {};
  for (const d of lex.descriptors) map[d.key] = Object.fromEntries(d.values.map((v) => [v.value, v.label]));
  return map;
}

/** "Shape: oval; Margin: angular, spiculated" (empty when nothing is described). */
export function summary(descriptors, lex) {
  if (!lex || !descriptors) return "";
  const labels = valueLabels(lex);
  const parts = [];
  for (const d of lex.descriptors) {
    const v = descriptors[d.key];
    const values = Array.isArray(v) ? v : v ? [v] : [];
    if (values.length) parts.push(`${d.label}: ${values.map((x) => (labels[d.key][x] || x).toLowerCase()).join(", ")}`);
  }
  return parts.join("; ");
}

/** The lesion list's line about a lesion's descriptors (what is described; in "required" mode, what is missing). */
export function describeLesion(lesion, lex, mode) {
  if (!lex) return null;
  const text = summary(lesion.descriptors, lex);
  const lacking = mode === "required" ? missing(lesion.descriptors, lex) : [];
  const parts = [text || "Not described"];
  if (lacking.length) parts.push(`missing: ${lacking.join(", ")}`);
  return el("span", { class: `lesion-desc${lacking.length ? " missing" : ""}` }, parts.join(" · "));
}

/** The required descriptors a lesion lacks, as labels. */
export function missing(descriptors, lex) {
  return lex.descriptors
    .filter((d) => d.required)
    .filter((d) => {
      const v = (descriptors || {})[d.key];
      return !v || (Array.isArray(v) && !v.length);
    })
    .map((d) => d.label.toLowerCase());
}

export class DescriptorPanel {
  /** `editable()` says whether the page may change the drawing now (draft, or the reviewer's edit). */
  constructor(viewer, { lex, mode, editable }) {
    this.viewer = viewer;
    this.lex = lex;
    this.mode = mode;
    this.editable = editable;
    this.box = $("descriptor-panel");
    this.assessment = $("assessment");
    this.key = null;
    this.enabled = !!lex && mode !== "off";
    if (!this.box) return;
    this.box.hidden = !this.enabled;
    if ($("assessment-wrap")) $("assessment-wrap").hidden = !this.enabled;
    if (!this.enabled) return;
    this.assessment.replaceChildren(
      el("option", { value: "" }, "— not assessed —"),
      ...lex.assessment.map((a) => el("option", { value: a.value }, a.label)),
    );
    this.assessment.addEventListener("change", () => {
      if (this.editable()) this.viewer.setAttrs({ assessment: this.assessment.value });
    });
    // Alt+letter reaches a control whatever the browser's own access-key modifier is (it differs
    // between browsers and systems); on a lesion's descriptor, selecting lesion 1 if none is.
    window.addEventListener("keydown", (e) => {
      if (!e.altKey || e.ctrlKey || e.metaKey || e.key.length !== 1) return;
      const letter = e.key.toLowerCase();
      if (letter === this.assessment.accessKey) {
        e.preventDefault();
        return this.assessment.focus();
      }
      const d = this.lex.descriptors.find((x) => x.accesskey === letter);
      if (!d) return;
      e.preventDefault();
      if (this.viewer.selected < 0 && this.viewer.lesions.length) this.viewer.select(0);
      this.render();
      this.box.querySelector(d.multi ? `#desc-${d.key} input` : `#desc-${d.key}`)?.focus();
    });
  }

  /** Re-build the controls when the selection or editability changed, else only sync their values. */
  render() {
    if (!this.enabled || !this.box) return;
    const v = this.viewer;
    const i = v.selected;
    const lesion = v.lesions[i];
    const editable = this.editable();
    const key = `${i}|${editable}|${v.lesions.length}|${lesion ? lesion.label : ""}`;
    if (key !== this.key) {
      this.key = key;
      this._build(i, lesion, editable);
    }
    this._sync(lesion);
    this.assessment.value = v.attrs.assessment || "";
    this.assessment.disabled = !editable;
    const req = $("assessment-required");
    if (req) req.hidden = this.mode !== "required";
  }

  _build(i, lesion, editable) {
    const title = el("h2", {}, lesion ? `BI-RADS · lesion ${i + 1} (${lesion.label})` : "BI-RADS descriptors");
    if (!lesion) {
      const hint = this.viewer.lesions.length
        ? "Select a lesion (click it, or its row above) to describe it; D jumps here."
        : "Draw a lesion to describe it.";
      this.box.replaceChildren(title, el("p", { class: "muted small", id: "descriptor-hint" }, hint));
      return;
    }
    const required = this.mode === "required";
    const rows = this.lex.descriptors.map((d) => {
      const star = required && d.required ? el("span", { class: "required", title: "Required for submission" }, " *") : null;
      if (!d.multi) {
        const select = el("select", { id: `desc-${d.key}`, accesskey: d.accesskey || null, disabled: !editable,
          dataset: { key: d.key }, onchange: () => this._changed(i) },
        el("option", { value: "" }, "—"),
        ...d.values.map((x) => el("option", { value: x.value }, x.label)));
        return el("div", { class: "descriptor" },
          el("label", { class: "field-label", for: `desc-${d.key}` }, d.label, star, accessHint(d)),
          select);
      }
      const boxes = d.values.map((x, k) => el("label", { class: "check" },
        el("input", { type: "checkbox", value: x.value, disabled: !editable, dataset: { key: d.key },
          accesskey: k === 0 && d.accesskey ? d.accesskey : null, onchange: (e) => this._changed(i, e.target) }),
        ` ${x.label}`));
      return el("fieldset", { class: "descriptor multi", id: `desc-${d.key}` },
        el("legend", {}, d.label, star, accessHint(d)), ...boxes);
    });
    this.box.replaceChildren(title, ...rows);
  }

  _sync(lesion) {
    if (!lesion) return;
    const desc = lesion.descriptors || {};
    for (const d of this.lex.descriptors) {
      if (!d.multi) {
        const select = $(`desc-${d.key}`);
        if (select && select.value !== (desc[d.key] || "")) select.value = desc[d.key] || "";
      } else {
        const chosen = new Set(desc[d.key] || []);
        for (const box of this.box.querySelectorAll(`input[data-key="${d.key}"]`)) box.checked = chosen.has(box.value);
      }
    }
  }

  /** Read the controls back into lesion i's descriptors (one undo step, autosaved). */
  _changed(i, changedBox = null) {
    if (!this.editable()) return;
    const next = {};
    for (const d of this.lex.descriptors) {
      if (!d.multi) {
        const value = $(`desc-${d.key}`).value;
        if (value) next[d.key] = value;
        continue;
      }
      let values = [...this.box.querySelectorAll(`input[data-key="${d.key}"]`)].filter((b) => b.checked).map((b) => b.value);
      // An exclusive value (margin: circumscribed) and the others cannot go together: the one just ticked wins.
      if (changedBox?.dataset.key === d.key && changedBox.checked) {
        const ex = d.exclusive.includes(changedBox.value);
        values = values.filter((x) => x === changedBox.value || (ex ? false : !d.exclusive.includes(x)));
      }
      if (values.length) next[d.key] = values;
    }
    const data = this.viewer.toData();
    if (!data.lesions[i]) return;
    data.lesions[i].descriptors = next;
    this.viewer.fromData(data, { resetHistory: false });
  }

  /** D: to the first control, selecting the first lesion when none is selected. */
  focus() {
    if (!this.enabled) return false;
    const v = this.viewer;
    if (v.selected < 0 && v.lesions.length) v.select(0);
    this.render();
    const first = this.box.querySelector("select, input");
    if (first) first.focus();
    else this.assessment.focus();
    return true;
  }
}

function accessHint(d) {
  return d.accesskey ? el("span", { class: "muted small accesskey" }, ` (Alt+${d.accesskey.toUpperCase()})`) : null;
}
