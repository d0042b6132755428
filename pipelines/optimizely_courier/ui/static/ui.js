// courier ui: the only script. A page showing a run in progress (body[data-refresh]) reloads itself every few
// seconds while it is visible, and stops saying so once it is hidden; nothing else runs here.
"use strict";
(function () {
  var seconds = Number(document.body.getAttribute("data-refresh"));
  if (!seconds) {
    return;
  }
  function schedule() {
    window.setTimeout(function () {
      if (document.visibilityState === "visible") {
        window.location.reload();
      } else {
        schedule();
      }
    }, seconds * 1000);
  }
  schedule();
})();
