// berth portal: small improvements over pages that work without it.
// Loaded from a file (the Content-Security-Policy forbids inline script);
// it reads only data-* attributes and never builds HTML from text.
(function () {
  "use strict";
  document.documentElement.classList.add("js");

  // Confirm dialogs: <form data-confirm="…">.
  document.addEventListener("submit", function (e) {
    var form = e.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      e.preventDefault();
    }
  });

  // Copy buttons: <button data-copy="text">.
  document.addEventListener("click", function (e) {
    var button = e.target.closest && e.target.closest("[data-copy]");
    if (!button) return;
    var value = button.getAttribute("data-copy");
    var done = function () {
      var was = button.textContent;
      button.textContent = "Copied";
      window.setTimeout(function () { button.textContent = was; }, 1500);
    };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(value).then(done, function () {});
    }
  });

  // Filter as you type: <input data-filter="table-id"> hides the rows of
  // that table whose text does not contain what is typed.
  document.querySelectorAll("input[data-filter]").forEach(function (input) {
    var table = document.getElementById(input.getAttribute("data-filter"));
    if (!table) return;
    input.addEventListener("input", function () {
      var want = input.value.toLowerCase();
      table.querySelectorAll("tbody tr").forEach(function (row) {
        row.hidden = want !== "" && row.textContent.toLowerCase().indexOf(want) < 0;
      });
    });
  });
})();
