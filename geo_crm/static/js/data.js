/* Data pages: upload size check, column mapping duplicates, live import job progress.
   No inline handlers (strict CSP); fetches send the session cookie and X-CSRFToken. */
(function () {
  "use strict";

  function csrf() {
    var m = document.querySelector('meta[name="csrf-token"]');
    return m ? m.getAttribute("content") : "";
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "application/json", "X-CSRFToken": csrf() }
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  /* -- upload: refuse too large files before sending 200 MB --------------------------- */
  var upForm = document.getElementById("upload-form");
  if (upForm) {
    var input = document.getElementById("upload-file");
    var msg = document.getElementById("size-error");
    var max = parseInt(upForm.getAttribute("data-max-bytes"), 10);
    var tooBig = function () {
      var f = input.files && input.files[0];
      return f && max && f.size > max ? f : null;
    };
    var show = function () {
      var f = tooBig();
      if (f) {
        msg.textContent = "The file is too large (" + (f.size / 1048576).toFixed(1) + " MB): the limit is " +
          upForm.getAttribute("data-max-mb") + " MB.";
        msg.hidden = false;
      } else {
        msg.hidden = true;
      }
      return !!f;
    };
    input.addEventListener("change", show);
    upForm.addEventListener("submit", function (ev) {
      if (show()) { ev.preventDefault(); return; }
      var b = document.getElementById("upload-submit");
      if (b) { b.disabled = true; b.textContent = "Uploading…"; }
    });
  }

  /* -- mapping: flag a field chosen for two columns ----------------------------------- */
  var mapForm = document.getElementById("mapping-form");
  if (mapForm) {
    var selects = Array.prototype.slice.call(mapForm.querySelectorAll("select.map-select"));
    var warn = document.getElementById("dup-warning");
    var check = function () {
      var seen = {}, dup = false;
      selects.forEach(function (s) { s.classList.remove("dup"); });
      selects.forEach(function (s) {
        if (!s.value) { return; }
        if (seen[s.value]) { dup = true; s.classList.add("dup"); seen[s.value].classList.add("dup"); }
        else { seen[s.value] = s; }
      });
      warn.hidden = !dup;
      return dup;
    };
    selects.forEach(function (s) { s.addEventListener("change", check); });
    mapForm.addEventListener("submit", function (ev) {
      var action = ev.submitter ? ev.submitter.value : "run";
      if (action === "run" && check()) { ev.preventDefault(); }
    });
    check();
  }

  /* -- job: poll the status every second until it is final ---------------------------- */
  var job = document.getElementById("job");
  if (job && job.getAttribute("data-final") !== "true") {
    var stages = JSON.parse(job.getAttribute("data-stages") || "{}");
    var FINAL = { imported: true, dry_run: true, failed: true };
    var bar = job.querySelector(".progress .bar");
    var prog = document.getElementById("job-progress");
    var fmt = function (n) { return (n || 0).toLocaleString("en-US"); };
    var pct = function (j) {
      if (FINAL[j.status]) { return 100; }
      var stage = (j.report && j.report.stage) || "queued";
      var p = stages[stage] || 0;
      if (stage === "validating" && j.total_rows) {
        p += Math.floor(30 * Math.min(1, (j.processed_rows || 0) / j.total_rows));
      }
      return p;
    };
    var render = function (j) {
      var p = pct(j);
      bar.style.width = p + "%";
      prog.setAttribute("aria-valuenow", String(p));
      document.getElementById("job-pct").textContent = String(p);
      document.getElementById("job-rows").textContent = fmt(j.processed_rows);
      document.getElementById("job-total").textContent = fmt(j.total_rows);
      var st = document.getElementById("job-status");
      st.textContent = j.status.replace("_", " ");
      st.className = "badge job-" + j.status;
      var stage = FINAL[j.status] ? j.status : ((j.report && j.report.stage) || j.status);
      document.getElementById("job-stage").textContent = String(stage).replace("_", " ");
    };
    var showReport = function () {
      /* the report is rendered (and escaped) by the server: take it from the page */
      return fetch(job.getAttribute("data-page-url"), { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (r) { return r.text(); })
        .then(function (html) {
          var doc = new DOMParser().parseFromString(html, "text/html");
          var fresh = doc.getElementById("job-report");
          var here = document.getElementById("job-report");
          if (fresh && here) { here.replaceWith(document.importNode(fresh, true)); }
          job.setAttribute("data-final", "true");
        });
    };
    var failures = 0;
    var tick = function () {
      getJSON(job.getAttribute("data-status-url")).then(function (j) {
        failures = 0;
        render(j);
        if (FINAL[j.status]) { return showReport(); }
        window.setTimeout(tick, 1000);
      }).catch(function () {
        failures += 1;
        if (failures < 30) { window.setTimeout(tick, 2000); }
      });
    };
    window.setTimeout(tick, 300);
  }
})();
