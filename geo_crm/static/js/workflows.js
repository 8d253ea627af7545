// Opportunities, service requests and churn warnings: small progressive enhancements.
// Pages work without it (plain forms); loaded with the CSP nonce, no inline handlers.
(function () {
  "use strict";
  // filters: submit as soon as a select or checkbox changes
  document.querySelectorAll("[data-autosubmit]").forEach(function (el) {
    el.addEventListener("change", function () { if (el.form) { el.form.submit(); } });
  });
  // avoid double submission of workflow forms (each is one state transition)
  document.querySelectorAll("form[method=post]").forEach(function (form) {
    form.addEventListener("submit", function () {
      var btn = form.querySelector("button[type=submit]");
      if (btn) { window.setTimeout(function () { btn.disabled = true; }, 0); }
    });
  });
  // rating: tell the user what a low rating will do before they submit
  var rate = document.getElementById("rate-form");
  if (rate) {
    var hint = document.createElement("p");
    hint.className = "muted rating-hint";
    hint.setAttribute("aria-live", "polite");
    rate.querySelector(".star-rating").after(hint);
    rate.querySelectorAll("input[type=radio]").forEach(function (r) {
      r.addEventListener("change", function () {
        var n = parseInt(r.value, 10);
        hint.textContent = n < 3 ? rate.dataset.lowHint || "This will reopen the request."
                                 : rate.dataset.okHint || "This will close the request.";
      });
    });
  }
})();
