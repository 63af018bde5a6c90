// Export page: choose formats and filters, then either stream the ZIP now or start a background
// job whose progress is polled from the API (so it survives a page reload).
(function () {
  "use strict";
  var form = document.getElementById("export-form");
  var csrf = document.querySelector("meta[name=csrf-token]").content;

  function chosenFormats() {
    return Array.from(form.querySelectorAll("input.format:checked")).map(function (c) { return c.value; }).join(",");
  }

  form.addEventListener("submit", function () {
    document.getElementById("formats-field").value = chosenFormats();
  });

  document.getElementById("start-job").addEventListener("click", function () {
    var body = {
      formats: chosenFormats(),
      patients: form.elements.patients.value,
      exclude_doppler: form.elements.exclude_doppler.checked,
      exclude_marks: form.elements.exclude_marks.checked,
      exclude_combined: form.elements.exclude_combined.checked,
    };
    fetch("/api/export-jobs/", {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf },
      body: JSON.stringify(body),
    }).then(function (r) {
      return r.json().then(function (data) {
        if (!r.ok) { window.alert("Export refused: " + JSON.stringify(data)); }
        refresh();
      });
    });
  });

  function describe(options) {
    var parts = [(options.formats || []).join(", ")];
    if (options.patients && options.patients.length) parts.push("patients " + options.patients.join(","));
    ["doppler", "marks", "combined"].forEach(function (f) { if (options["exclude_" + f]) parts.push("no " + f); });
    return parts.join("; ");
  }

  function row(job) {
    var tr = document.createElement("tr");
    tr.dataset.status = job.status;
    tr.id = "job-" + job.id;
    var cells = [String(job.id), new Date(job.created_at).toLocaleString(), describe(job.options)];
    cells.forEach(function (text) { var td = document.createElement("td"); td.textContent = text; tr.appendChild(td); });
    var progress = document.createElement("td");
    if (job.status === "failed") {
      progress.textContent = "failed: " + job.error;
      progress.className = "error";
    } else if (job.status === "done") {
      progress.textContent = "done, " + job.images + " images, " + (job.size / 1048576).toFixed(1) + " MB";
    } else {
      var bar = document.createElement("progress");
      bar.max = 100; bar.value = job.percent;
      progress.appendChild(bar);
      progress.appendChild(document.createTextNode(" " + job.percent + "% (" + job.status + ")"));
    }
    tr.appendChild(progress);
    var link = document.createElement("td");
    if (job.status === "done") {
      var a = document.createElement("a");
      a.href = "/api/export-jobs/" + job.id + "/download/";
      a.textContent = "Download";
      a.className = "btn download-job";
      link.appendChild(a);
    }
    tr.appendChild(link);
    return tr;
  }

  var timer = null;
  function refresh() {
    fetch("/api/export-jobs/", { credentials: "same-origin" }).then(function (r) { return r.json(); }).then(function (list) {
      var body = document.querySelector("#jobs tbody");
      body.replaceChildren.apply(body, list.map(row));
      var busy = list.some(function (j) { return j.status === "queued" || j.status === "running"; });
      clearTimeout(timer);
      if (busy) timer = setTimeout(refresh, 1000);
    });
  }
  refresh();
})();
