/* The annotation page: one image, the annotator's draft layer, autosave, submit.
 *
 * The viewer owns the drawing; this page turns its "change" events into debounced saves
 * (PUT with the layer version), keeps every unsaved state in localStorage (keyed by layer id
 * and version) so a reload or a dropped connection loses nothing, and shows conflicts.
 * The helpers it shares with the review page are in workspace.js.
 */
import * as api from "./api.js";
import { DescriptorPanel, describeLesion, readLexicon } from "./descriptors.js";
import { spacingOf } from "./measure.js";
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
const SAVE_DELAY_MS = 800;
const BACKUP_PREFIX = "busreview:draft:";

// --- the annotation page --------------------------------------------------------------------

function contentKey(data) {
  return JSON.stringify(api.layerContent(data));
}

async function initAnnotatePage() {
  const app = $("app");
  const imageId = Number(app.dataset.imageId);
  const spacing = spacingOf(app.dataset);
  const viewer = new Viewer($("stage"), { width: Number(app.dataset.width), height: Number(app.dataset.height) });
  window.busViewer = viewer;
  const lexicon = readLexicon();
  const mode = app.dataset.descriptors || "off";

  // needsStart: the image is the reader's to draw but has no draft yet. Looking at it changes
  // nothing on the server; the draft is started (POST start) on the first edit, before the first save.
  const st = { image: null, layer: null, state: "saved", dirty: false, inflight: null, timer: null,
    conflict: null, retryMs: 5000, readOnly: false, needsStart: false, starting: null };
  const setState = (s) => {
    st.state = s;
    const box = $("save-state");
    box.textContent = s;
    box.dataset.state = s;
  };
  const showError = (msg) => {
    $("page-error").hidden = !msg;
    $("page-error").textContent = msg || "";
  };
  const showInfo = (msg) => {
    $("page-info").hidden = !msg;
    $("page-info").textContent = msg || "";
  };

  // --- local backup, so nothing is lost ---
  const backupKey = (version) => `${BACKUP_PREFIX}${st.layer.id}:${version}`;
  const backupKeys = () => Object.keys(localStorage).filter((k) => k.startsWith(`${BACKUP_PREFIX}${st.layer.id}:`));
  const backup = () => {
    if (!st.layer) return; // not started yet: the start comes within a moment and backs up then
    try {
      localStorage.setItem(backupKey(st.layer.version),
        JSON.stringify({ savedAt: Date.now(), imageId, version: st.layer.version, data: viewer.toData() }));
    } catch {
      /* storage full or disabled: the server copy is all there is */
    }
  };
  const clearBackups = () => st.layer && backupKeys().forEach((k) => localStorage.removeItem(k));

  // --- the draft, started on the first edit ---
  function ensureStarted() {
    if (!st.needsStart) return Promise.resolve(true);
    if (!st.starting) {
      st.starting = api.startLayer(imageId).then(
        (layer) => {
          st.layer = layer;
          st.needsStart = false;
          setBadge("draft");
          showLayerInfo();
          if (st.dirty) backup();
          return true;
        },
        (err) => {
          st.starting = null;
          showError(`Could not start a draft: ${err.detail}`);
          return false;
        },
      );
    }
    return st.starting;
  }

  // --- autosave ---
  const schedule = (ms = SAVE_DELAY_MS) => {
    clearTimeout(st.timer);
    st.timer = setTimeout(() => saveNow(), ms);
  };

  async function saveNow() {
    clearTimeout(st.timer);
    if (st.readOnly) return true;
    if (st.needsStart && st.dirty && !(await ensureStarted())) {
      setState(st.state === "offline" ? "offline" : "unsaved");
      return false;
    }
    if (!st.layer) return !st.dirty;
    while (st.inflight) await st.inflight.catch(() => {});
    if (st.conflict) return false;
    if (!st.dirty) return st.state === "saved";
    st.dirty = false;
    setState("saving…");
    const body = { version: st.layer.version, ...api.layerContent(viewer.toData()) };
    st.inflight = api.saveLayer(st.layer.id, body);
    try {
      const saved = await st.inflight;
      const oldKey = backupKey(st.layer.version);
      st.layer = saved;
      st.retryMs = 5000;
      localStorage.removeItem(oldKey);
      showError("");
      showLayerInfo();
      if (st.dirty) {
        backup();
        setState("unsaved");
        schedule();
      } else {
        clearBackups();
        setState("saved");
      }
      return !st.dirty;
    } catch (err) {
      st.dirty = true;
      if (err.conflict) {
        showConflict(err);
      } else if (err.offline || err.status >= 500) {
        setState("offline");
        schedule(st.retryMs);
        st.retryMs = Math.min(st.retryMs * 2, 60000);
      } else {
        setState("unsaved");
        showError(`Not saved: ${err.detail}`);
        if (err.lesion != null) viewer.select(err.lesion);
      }
      return false;
    } finally {
      st.inflight = null;
    }
  }

  function showConflict(err) {
    st.conflict = err;
    setState("conflict");
    const current = err.current;
    $("conflict").hidden = false;
    // The dashed overlay is promised only when there is a server version to draw.
    $("conflict-text").textContent = current
      ? `This drawing was changed elsewhere: the server has version ${current.version} (${current.status}), ` +
        `you edited version ${st.layer.version}. The server's version is shown dashed; ` +
        "your drawing is kept in this browser."
      : `${sentence(err.detail)} Your drawing is kept in this browser.`;
    $("conflict-keep").hidden = !current || current.status !== "draft";
    if (current) {
      viewer.setOverlay(current.lesions);
      viewer.setOverlayVisible(true);
    }
  }

  function resolveConflict(keepMine) {
    const current = st.conflict?.current;
    st.conflict = null;
    $("conflict").hidden = true;
    viewer.setOverlay(st.image.previous_layer?.lesions || null);
    viewer.setOverlayVisible($("show-previous").checked);
    if (!current) return window.location.reload();
    if (keepMine) {
      st.layer = { ...st.layer, version: current.version };
      backup();
      st.dirty = true;
      saveNow();
    } else {
      clearBackups();
      st.layer = current;
      st.dirty = false;
      viewer.fromData(layerContentOf(current));
      renderAll();
      setState("saved");
    }
    showLayerInfo();
  }

  function showLayerInfo() {
    $("layer-info").textContent = st.layer ? `rev ${st.layer.revision} · v${st.layer.version}` : "";
  }

  // --- side panel ---
  const descriptors = new DescriptorPanel(viewer, { lex: lexicon, mode, editable: () => !st.readOnly });
  const describe = mode === "off" ? null : (lesion) => describeLesion(lesion, lexicon, mode);
  const ruler = new Ruler(viewer, { spacing, button: $("tool-ruler") });
  const normal = $("normal");
  const flags = { doppler: $("flag-doppler"), marks: $("flag-marks"), combined: $("flag-combined") };
  function renderAll() {
    const attrs = viewer.attrs;
    renderLesionList(viewer, { spacing, describe });
    descriptors.render();
    normal.checked = !!attrs.is_normal;
    normal.disabled = st.readOnly || (viewer.lesions.length > 0 && !attrs.is_normal);
    normal.closest("label").title = normal.disabled && !st.readOnly ? "Delete the lesions to mark the image normal" : "";
    for (const [k, box] of Object.entries(flags)) {
      box.checked = !!attrs[k];
      box.disabled = st.readOnly;
    }
    if ($("note").value !== (attrs.note || "")) $("note").value = attrs.note || "";
    $("note").readOnly = st.readOnly;
    viewer.setDrawEnabled(!attrs.is_normal);
    $("submit").disabled = st.readOnly || !(st.layer || st.needsStart);
  }

  function toggleNormal(value) {
    if (st.readOnly) return;
    if (value && viewer.lesions.length) {
      normal.checked = false;
      return flash("Delete the lesions before marking the image normal.");
    }
    viewer.setAttrs({ is_normal: value });
  }

  normal.addEventListener("change", () => toggleNormal(normal.checked));
  for (const [k, box] of Object.entries(flags)) box.addEventListener("change", () => viewer.setAttrs({ [k]: box.checked }));
  $("note").addEventListener("input", (e) => viewer.setAttrs({ note: e.target.value }, { coalesce: "note" }));
  $("show-previous").addEventListener("change", (e) => viewer.setOverlayVisible(e.target.checked));

  viewer.on("change", () => {
    renderAll();
    if (st.readOnly || !(st.layer || st.needsStart)) return;
    ensureStarted();
    st.dirty = true;
    backup();
    if (!st.conflict) {
      setState("unsaved");
      schedule();
    }
  });
  viewer.on("selectionchange", () => (renderLesionList(viewer, { spacing, describe }), descriptors.render()));
  bindToolbar(viewer);
  bindSmartTool(viewer, imageId);
  setupHelp();

  window.addEventListener("keydown", (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === "s") {
      e.preventDefault();
      saveNow();
    } else if (!isTextTarget(e.target) && !e.ctrlKey && !e.metaKey && !e.altKey && e.key === "n") {
      e.preventDefault();
      toggleNormal(!viewer.attrs.is_normal);
    } else if (!isTextTarget(e.target) && !e.ctrlKey && !e.metaKey && !e.altKey && e.key === "k") {
      if (descriptors.focus()) e.preventDefault();
    }
  });
  window.addEventListener("online", () => st.dirty && saveNow());
  window.addEventListener("beforeunload", (e) => {
    if (st.dirty || st.inflight) {
      backup();
      e.preventDefault();
      e.returnValue = "";
    }
  });
  $("conflict-reload").addEventListener("click", () => resolveConflict(false));
  $("conflict-keep").addEventListener("click", () => resolveConflict(true));

  // --- submit and next ---
  const next = $("next-image");
  next.addEventListener("click", async (e) => {
    if (next.getAttribute("aria-disabled") === "true") return e.preventDefault();
    if (st.dirty || st.inflight) {
      e.preventDefault();
      if (await saveNow()) window.location.href = next.href;
    }
  });

  $("submit").addEventListener("click", async () => {
    const button = $("submit");
    button.disabled = true;
    showError("");
    try {
      if (!(await ensureStarted()) || !(await saveNow())) {
        if (!st.conflict) showError("The drawing could not be saved, so it was not submitted.");
        return;
      }
      if (!st.layer.is_normal && !st.layer.lesions.length) {
        showError("Draw at least one lesion or mark the image normal before submitting.");
        return;
      }
      st.layer = await api.submitLayer(st.layer.id, st.layer.version);
      clearBackups();
      setReadOnly(true);
      setBadge("submitted");
      showInfo("Submitted for review.");
      if (next.getAttribute("aria-disabled") !== "true") window.location.href = next.href;
    } catch (err) {
      if (err.conflict && err.current) showConflict(err);
      else showError(`Not submitted: ${err.detail}`);
      if (err.lesion != null) viewer.select(err.lesion);
    } finally {
      button.disabled = st.readOnly;
    }
  });

  function setBadge(status) {
    const badge = $("image-status");
    badge.className = `badge status-${status}`;
    badge.textContent = status.charAt(0).toUpperCase() + status.slice(1).replace("_", " ");
  }

  function setReadOnly(readOnly) {
    st.readOnly = readOnly;
    viewer.setReadOnly(readOnly);
    app.classList.toggle("readonly", readOnly);
    renderAll();
  }

  async function findNext(image) {
    let nextId = null;
    try {
      nextId = (await api.nextMine(imageId)).id;
    } catch {
      nextId = image.next_id ?? null;
    }
    if (nextId == null) {
      next.textContent = "No more images";
      next.href = "/";
      return;
    }
    next.href = `/images/${nextId}/annotate/`;
    next.setAttribute("aria-disabled", "false");
    // Warm the cache so the next image opens at once: its pixels (cached for an hour) and its
    // JSON, asked for as the page will ask (Accept: application/json), so the page's request
    // revalidates it (304) instead of fetching it again.
    document.head.append(el("link", { rel: "prefetch", href: api.imageUrl(nextId), as: "image" }));
    api.prefetchImage(nextId);
  }

  function offerRestore() {
    let best = null;
    for (const key of backupKeys()) {
      try {
        const saved = JSON.parse(localStorage.getItem(key));
        if (!best || saved.savedAt > best.savedAt) best = { ...saved, key };
      } catch {
        localStorage.removeItem(key);
      }
    }
    if (!best) return;
    if (contentKey(best.data) === contentKey(viewer.toData())) return clearBackups();
    const when = new Date(best.savedAt).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "short" });
    const older = best.version < st.layer.version ? " The server has a newer version; restoring replaces it." : "";
    $("restore-text").textContent = `Changes from ${when} (version ${best.version}) were not saved and are kept in this browser.${older}`;
    $("restore").hidden = false;
    $("restore-apply").onclick = () => {
      $("restore").hidden = true;
      viewer.fromData(best.data, { resetHistory: false });
    };
    $("restore-discard").onclick = () => {
      $("restore").hidden = true;
      clearBackups();
    };
  }

  // --- load ---
  window.busPage = {
    get layer() {
      return st.layer;
    },
    get state() {
      return st.state;
    },
    get image() {
      return st.image;
    },
    ready: false, // loaded: drawable (or read-only), whether or not a draft was started yet
    saveNow,
    viewer,
    ruler,
  };

  try {
    const image = await api.getImage(imageId);
    st.image = image;
    viewer.setImage(api.imageUrl(imageId)).catch(() => showError("The image could not be loaded."));
    let layer = image.open_layer;
    // Read blind by two readers, the image stays in double_reading until both have submitted:
    // this reader draws until their own layer is submitted.
    const ownTurn = image.status === "double_reading" && layer?.status !== "submitted";
    const canDraw = image.can_annotate && (["new", "draft", "returned"].includes(image.status) || ownTurn);
    // The API names the author by username (LayerSerializer).
    const mine = layer?.status === "draft" && layer.author === app.dataset.username;
    st.needsStart = canDraw && !mine;
    st.layer = mine ? layer : null;
    const shown = layer || image.consensus || image.previous_layer;
    viewer.fromData(layerContentOf(shown));
    setBadge(mine ? "draft" : image.status);
    setReadOnly(!(st.layer || st.needsStart) || !image.can_annotate);
    if (st.readOnly) {
      const why = {
        submitted: "Submitted: waiting for the reviewer.",
        approved: "Approved: this is the consensus.",
        double_reading: "Your reading is submitted: waiting for the other reader.",
        adjudication: "Both readings are in: waiting for the adjudicator.",
      };
      showInfo(why[image.status] || "You cannot edit this image.");
    }
    if (image.previous_layer && image.previous_layer.id !== st.layer?.id) {
      viewer.setOverlay(image.previous_layer.lesions);
      $("show-previous-wrap").hidden = false;
    }
    if (image.reviews?.length) {
      $("comments-panel").hidden = false;
      const layers = [image.previous_layer, image.open_layer, image.consensus];
      viewer.setPins(renderReviews(image.reviews, layers, viewer));
    }
    showLayerInfo();
    setState("saved");
    if (st.layer) offerRestore();
    app.classList.remove("is-loading");
    window.busPage.ready = true;
    findNext(image);
  } catch (err) {
    app.classList.remove("is-loading");
    showError(`Could not open the image: ${err.detail}`);
    setState(err.offline ? "offline" : "unsaved");
  }
}

/** "the layer is no longer a draft" -> "The layer is no longer a draft." */
function sentence(text) {
  const t = String(text || "The server refused the change").trim();
  return t.charAt(0).toUpperCase() + t.slice(1) + (/[.!?]$/.test(t) ? "" : ".");
}

if (document.body.classList.contains("page-annotate")) {
  // Back/forward may restore this page from memory with an old state: load it afresh instead.
  window.addEventListener("pageshow", (e) => e.persisted && window.location.reload());
  initAnnotatePage();
}
