/* The export page: choose formats and filters, then either stream the ZIP now (the form's own GET)
 * or start a background job whose progress is polled from the API, so it survives a reload.
 *
 * An API error ({code, detail}, e.g. a 503 when the export queue is unreachable) is shown and
 * the polling stops: asking again every second would only repeat it, and a page that polls
 * without end looks like a job that is still coming. A job that failed shows its own error.
 */
import * as api from "./api.js";

const POLL_MS = 1000;
const $ = (id) => document.getElementById(id);
const form = $("export-form");
const st = { timer: null, polling: false, generation: 0 };

// For the browser tests: whether the page is still polling.
window.busExport = {
  get polling() {
    return st.polling;
  },
};

function chosenFormats() {
  return Array.from(form.querySelectorAll("input.format:checked"), (c) => c.value).join(",");
}

function showError(message) {
  $("export-error").hidden = !message;
  $("export-error").textContent = message || "";
}

function stopPolling() {
  clearTimeout(st.timer);
  st.timer = null;
  st.polling = false;
  st.generation += 1; // an answer still on its way must not restart the polling
}

function describe(options) {
  const parts = [(options.formats || []).join(", ")];
  if (options.patients?.length) parts.push(`patients ${options.patients.join(",")}`);
  for (const flag of ["doppler", "marks", "combined"]) if (options[`exclude_${flag}`]) parts.push(`no ${flag}`);
  return parts.join("; ");
}

function cell(...children) {
  const td = document.createElement("td");
  td.append(...children);
  return td;
}

function progressCell(job) {
  if (job.status === "failed") {
    const td = cell(`failed: ${job.error}`);
    td.className = "error";
    return td;
  }
  if (job.status === "done") return cell(`done, ${job.images} images, ${(job.size / 1048576).toFixed(1)} MB`);
  const bar = document.createElement("progress");
  bar.max = 100;
  bar.value = job.percent;
  return cell(bar, ` ${job.percent}% (${job.status})`);
}

function row(job) {
  const tr = document.createElement("tr");
  tr.id = `job-${job.id}`;
  tr.dataset.status = job.status;
  const link = cell();
  if (job.status === "done") {
    const a = document.createElement("a");
    a.href = api.exportJobDownloadUrl(job.id);
    a.textContent = "Download";
    a.className = "btn download-job";
    link.append(a);
  }
  tr.append(cell(String(job.id)), cell(new Date(job.created_at).toLocaleString()), cell(describe(job.options)),
    progressCell(job), link);
  return tr;
}

async function refresh() {
  clearTimeout(st.timer);
  const generation = ++st.generation;
  st.polling = true;
  let jobs;
  try {
    jobs = await api.exportJobs();
  } catch (err) {
    if (generation !== st.generation) return;
    stopPolling();
    return showError(`The exports could not be read: ${err.detail}`);
  }
  if (generation !== st.generation) return;
  document.querySelector("#jobs tbody").replaceChildren(...jobs.map(row));
  if (jobs.some((j) => j.status === "queued" || j.status === "running")) {
    st.timer = setTimeout(refresh, POLL_MS);
  } else {
    st.polling = false;
  }
}

form.addEventListener("submit", () => {
  $("formats-field").value = chosenFormats();
});

$("start-job").addEventListener("click", async () => {
  const button = $("start-job");
  button.disabled = true;
  showError("");
  try {
    await api.startExportJob({
      formats: chosenFormats(),
      patients: form.elements.patients.value,
      exclude_doppler: form.elements.exclude_doppler.checked,
      exclude_marks: form.elements.exclude_marks.checked,
      exclude_combined: form.elements.exclude_combined.checked,
    });
  } catch (err) {
    stopPolling();
    return showError(`Export refused: ${err.detail}`);
  } finally {
    button.disabled = false;
  }
  refresh();
});

refresh();
