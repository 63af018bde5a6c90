// Curator dashboard: "Reopen…" asks for the reason the annotator will read, then posts it.
(function () {
  "use strict";
  document.querySelectorAll("[data-reopen]").forEach(function (button) {
    button.addEventListener("click", function () {
      var reason = window.prompt("Why reopen this approved image? The annotator will see this reason.");
      if (!reason) return;
      var form = document.getElementById("reopen-form");
      form.action = button.dataset.reopen;
      form.elements.reason.value = reason;
      form.submit();
    });
  });
})();
