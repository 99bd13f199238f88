// Grading progress on the report page; reloads to show the report when grading is done.
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("report-config").textContent);
  if (cfg.done) return;
  const statusEl = document.getElementById("grading-status");
  const bar = document.getElementById("grading-progress");
  let retryMs = 1000;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const ws = new WebSocket(scheme + location.host + cfg.wsPath);
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type !== cfg.frames.REPORT_PROGRESS) return;
      if (frame.total) { bar.max = frame.total; bar.value = frame.done; }
      if (frame.status === "done") {
        statusEl.textContent = "Grading done. Loading the report…";
        window.location.reload();
      } else if (frame.status === "failed") {
        statusEl.textContent = "Grading hit an error and will be retried" + (frame.error ? ": " + frame.error : ".");
      } else if (frame.status === "running") {
        statusEl.textContent = "Grading: " + frame.done + " of " + frame.total + " criteria scored…";
      } else {
        statusEl.textContent = "Waiting for the grader…";
      }
    };
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) { statusEl.textContent = "You cannot follow this report."; return; }
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 10000);
    };
  }
  connect();
})();
