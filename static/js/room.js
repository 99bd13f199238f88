// The interview room: one WebSocket, the server's clock, and a transcript that never shows a gap
// or a duplicate. Reply text arrives as deltas {turn_id, seq, offset, text}: a delta is applied
// only where its offset meets the text we have; one that overlaps is trimmed; one beyond it waits
// for the missing piece, and if that never comes we ask the server for a resync (the database and
// the Redis snapshot are the source of truth; the channel layer may drop or reorder frames).
(function () {
  "use strict";
  const cfg = JSON.parse(document.getElementById("room-config").textContent);
  const F = cfg.frames;
  const $ = (id) => document.getElementById(id);
  const transcriptEl = $("transcript");
  const typingEl = $("typing");
  const alertEl = $("alert");
  const connectionEl = $("connection");
  const input = $("message");
  const sendBtn = $("send");
  const endBtn = $("end");
  const ANNOUNCE_AT_MINUTES = [10, 5, 1];

  const turns = new Map(); // id -> {id, seq, role, status, content, el, pending: Map(offset -> text)}
  const outbox = new Map(); // client_id -> {text, el}: sent (or queued) but not yet acknowledged
  let session = null;
  let clockOffset = 0; // server time minus local time, ms
  let ws = null;
  let retryMs = 500;
  let ended = false;
  let gapTimer = null;
  const announced = new Set();

  function newClientId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    return "c" + Date.now().toString(36) + Math.random().toString(36).slice(2);
  }

  function showAlert(message) {
    alertEl.textContent = message;
    alertEl.hidden = !message;
  }

  function setConnection(text, ok) {
    connectionEl.textContent = text;
    connectionEl.classList.toggle("ok", !!ok);
  }

  // --- Transcript rendering -------------------------------------------------------------------

  function turnElement(turn) {
    const li = document.createElement("li");
    li.className = "turn " + turn.role;
    li.dataset.seq = turn.seq;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = turn.role === "candidate" ? "You" : "Interviewer";
    const text = document.createElement("div");
    text.className = "text";
    const state = document.createElement("span");
    state.className = "state muted small";
    li.append(who, text, state);
    return li;
  }

  function placeByseq(el, seq) {
    // Keep the list in transcript order; pending (unacknowledged) messages stay at the end.
    const after = Array.from(transcriptEl.children).find(
      (child) => child.dataset.seq && Number(child.dataset.seq) > seq
    );
    transcriptEl.insertBefore(el, after || transcriptEl.querySelector(".pending") || null);
  }

  // Our own texts use **bold**; built as DOM nodes, so nothing in a message is ever parsed as HTML.
  function setText(el, text) {
    el.textContent = "";
    text.split(/\*\*(.+?)\*\*/s).forEach((part, i) => {
      if (!part) return;
      if (i % 2) { const strong = document.createElement("strong"); strong.textContent = part; el.append(strong); }
      else el.append(document.createTextNode(part));
    });
  }

  function render(turn) {
    setText(turn.el.querySelector(".text"), turn.content);
    const labels = { streaming: "", cancelled: "(stopped)", failed: "(the interviewer could not answer)" };
    turn.el.querySelector(".state").textContent = labels[turn.status] || "";
    turn.el.classList.toggle("streaming", turn.status === "streaming");
    const streaming = Array.from(turns.values()).some((t) => t.status === "streaming");
    typingEl.hidden = !streaming;
    transcriptEl.setAttribute("aria-busy", streaming ? "true" : "false");
    transcriptEl.scrollTop = transcriptEl.scrollHeight;
  }

  function upsertTurn(frame) {
    let turn = turns.get(frame.id);
    if (!turn) {
      const pending = frame.client_id && outbox.get(frame.client_id);
      turn = { id: frame.id, seq: frame.seq, role: frame.role, content: "", status: frame.status, pending: new Map() };
      if (pending) {
        turn.el = pending.el; // the bubble shown while sending becomes the stored turn
        turn.el.classList.remove("pending");
        turn.el.dataset.seq = frame.seq;
        outbox.delete(frame.client_id);
      } else {
        turn.el = turnElement(frame);
      }
      turns.set(frame.id, turn);
      placeByseq(turn.el, frame.seq);
    }
    const final = frame.status !== "streaming";
    // A snapshot of a streaming reply never moves text backwards; a final turn is authoritative.
    if (final || frame.content.length >= turn.content.length) turn.content = frame.content;
    turn.status = frame.status;
    if (final) turn.pending.clear();
    drain(turn);
    render(turn);
    return turn;
  }

  function applyDelta(frame) {
    const turn = turns.get(frame.turn_id);
    if (!turn) { requestResync(); return; }
    if (turn.status !== "streaming") return; // already final: late frames are stale
    turn.pending.set(frame.offset, frame.text);
    drain(turn);
    render(turn);
  }

  function drain(turn) {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const [offset, text] of turn.pending) {
        const end = offset + text.length;
        if (end <= turn.content.length) { turn.pending.delete(offset); progressed = true; continue; }
        if (offset <= turn.content.length) {
          turn.content += text.slice(turn.content.length - offset);
          turn.pending.delete(offset);
          progressed = true;
        }
      }
    }
    if (turn.pending.size && !gapTimer) {
      gapTimer = setTimeout(() => { gapTimer = null; if (turn.pending.size) requestResync(); }, 1500);
    }
  }

  function requestResync() {
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: F.RESYNC }));
  }

  // --- Clock ----------------------------------------------------------------------------------

  function fmt(ms) {
    const s = Math.max(0, Math.ceil(ms / 1000));
    return String(Math.floor(s / 60)).padStart(2, "0") + ":" + String(s % 60).padStart(2, "0");
  }

  function currentPhase(now) {
    const plan = session.phase_plan;
    const planned = plan.reduce((sum, p) => sum + p.minutes, 0) || 1;
    const scale = (session.deadline_at - session.started_at) / (planned * 60000);
    let start = session.started_at;
    for (let i = 0; i < plan.length; i++) {
      const end = start + plan[i].minutes * 60000 * scale;
      if (now < end || i === plan.length - 1) return { index: i, phase: plan[i], end };
      start = end;
    }
  }

  function tick() {
    if (!session) return;
    const now = Date.now() + clockOffset;
    const left = session.deadline_at - now;
    $("clock-total").textContent = fmt(left);
    const { index, phase, end } = currentPhase(now);
    $("phase-name").textContent = phase.title;
    $("clock-phase").textContent = fmt(end - now);
    document.querySelectorAll("#phase-list li").forEach((li, i) => {
      li.classList.toggle("current", i === index);
      li.classList.toggle("done", i < index);
      if (i === index) li.setAttribute("aria-current", "step"); else li.removeAttribute("aria-current");
    });
    for (const minutes of ANNOUNCE_AT_MINUTES) {
      if (left <= minutes * 60000 && left > (minutes * 60000 - 5000) && !announced.has(minutes)) {
        announced.add(minutes);
        $("clock-announce").textContent = minutes + (minutes === 1 ? " minute" : " minutes") + " left.";
        document.querySelector(".clock").classList.add("warn");
      }
    }
    if (left <= 0 && !ended) $("clock-total").textContent = "00:00";
  }

  // --- Session end ----------------------------------------------------------------------------

  function markEnded() {
    if (ended) return;
    ended = true;
    [input, sendBtn, endBtn].forEach((el) => el && (el.disabled = true));
    typingEl.hidden = true;
    $("ended").hidden = false;
    setConnection("Interview over", true);
    if (cfg.canSpeak) setTimeout(() => { window.location.assign(cfg.reportUrl); }, 2500);
  }

  // --- Socket ---------------------------------------------------------------------------------

  const handlers = {};
  handlers[F.SYNC] = (frame) => {
    session = frame.session;
    clockOffset = frame.server_time - Date.now();
    const seen = new Set();
    frame.turns.forEach((t) => { upsertTurn(t); seen.add(t.client_id); });
    // Anything sent but never stored goes again, with the same client_id (the server dedups).
    for (const [clientId, item] of outbox) {
      if (!seen.has(clientId)) sendFrame({ type: F.CANDIDATE_MESSAGE, client_id: clientId, text: item.text });
    }
    if (session.status !== "active") { markEnded(); return; }
    setConnection("Connected", true);
    [input, sendBtn, endBtn].forEach((el) => el && (el.disabled = false));
    tick();
  };
  handlers[F.TURN_ACK] = (frame) => { upsertTurn(frame.turn); showAlert(""); };
  handlers[F.TURN_STARTED] = (frame) => upsertTurn(frame.turn);
  handlers[F.TURN_DELTA] = applyDelta;
  handlers[F.TURN_COMPLETED] = (frame) => upsertTurn(frame.turn);
  handlers[F.TURN_FAILED] = (frame) => { upsertTurn(frame.turn); showAlert(frame.message); };
  handlers[F.SESSION_ENDED] = markEnded;
  handlers[F.ERROR] = (frame) => {
    showAlert(frame.message);
    const item = frame.client_id && outbox.get(frame.client_id);
    if (item) { // not stored: give the text back so nothing is lost
      item.el.remove();
      outbox.delete(frame.client_id);
      if (input && !input.value) input.value = item.text;
    }
    if (frame.code === "session_not_active") markEnded();
  };

  function sendFrame(frame) {
    if (ws && ws.readyState === WebSocket.OPEN) { ws.send(JSON.stringify(frame)); return true; }
    return false;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    ws = new WebSocket(scheme + location.host + cfg.wsPath);
    // "Connected" only once the transcript is in (the sync frame), not when the socket opens.
    ws.onopen = () => { retryMs = 500; setConnection("Loading the conversation…", false); };
    ws.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      const handler = handlers[frame.type];
      if (handler) handler(frame);
    };
    ws.onclose = (event) => {
      if (event.code === 4401 || event.code === 4403) { setConnection("You cannot join this interview.", false); return; }
      if (ended) return;
      setConnection("Connection lost. Reconnecting…", false);
      setTimeout(connect, retryMs);
      retryMs = Math.min(retryMs * 2, 8000);
    };
  }

  if (input) {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const text = input.value.trim();
      if (!text || ended) return;
      const clientId = newClientId();
      const el = turnElement({ role: "candidate", seq: "" });
      el.classList.add("pending");
      el.querySelector(".text").textContent = text;
      el.querySelector(".state").textContent = "sending…";
      transcriptEl.appendChild(el);
      outbox.set(clientId, { text, el });
      input.value = "";
      if (!sendFrame({ type: F.CANDIDATE_MESSAGE, client_id: clientId, text })) {
        el.querySelector(".state").textContent = "will send when reconnected";
      }
    });
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        $("composer").requestSubmit();
      }
    });
    endBtn.addEventListener("click", () => {
      if (window.confirm("End the interview now? Your answers will be graded.")) sendFrame({ type: F.END_SESSION });
    });
  }

  setInterval(tick, 250);
  connect();
})();
