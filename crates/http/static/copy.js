// Gatehouse: "Copy" buttons, as progressive enhancement. Every page works without this
// script: a button.copy[data-copy-target] ships with the `hidden` attribute and is shown
// only when the clipboard is available. Clicking it copies the text of the element whose
// id is data-copy-target, and the button says "Copied" for two seconds.
(function () {
  "use strict";
  if (!window.isSecureContext || !navigator.clipboard || !navigator.clipboard.writeText) {
    return;
  }
  var buttons = document.querySelectorAll("button.copy[data-copy-target]");
  Array.prototype.forEach.call(buttons, function (button) {
    var target = document.getElementById(button.getAttribute("data-copy-target"));
    if (!target) {
      return;
    }
    var label = button.textContent;
    var timer = null;
    // Screen readers hear the outcome through a polite live region next to the button.
    var status = document.createElement("span");
    status.className = "visually-hidden";
    status.setAttribute("role", "status");
    button.insertAdjacentElement("afterend", status);
    function show(text, announcement) {
      button.textContent = text;
      status.textContent = announcement;
      window.clearTimeout(timer);
      timer = window.setTimeout(function () {
        button.textContent = label;
        status.textContent = "";
      }, 2000);
    }
    button.addEventListener("click", function () {
      var text = "value" in target && typeof target.value === "string" ? target.value : target.textContent;
      navigator.clipboard.writeText(text.trim()).then(
        function () { show("Copied", "Copied to the clipboard"); },
        function () { show("Copy failed", "Could not copy; select the text and copy it"); }
      );
    });
    button.hidden = false;
  });
})();
