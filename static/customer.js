// Handoff: the customer's chat page (/c/<token>). It talks to
// /c/<token>/ws: place in line while waiting, the live chat, typing, the
// rating. Messages are keyed by their sequence number, so a reconnect that
// replays some of them shows each exactly once.
(function () {
  "use strict";

  var root = document.getElementById("customer");
  if (!root || !window.WebSocket) return;

  var token = root.getAttribute("data-token");
  var storeKey = "handoff:c:" + token.slice(-48);
  var $ = function (id) { return document.getElementById(id); };
  var el = {
    status: $("chat-status"), conn: $("conn-state"), queue: $("queue"),
    position: $("queue-position"), wait: $("queue-wait"), messages: $("messages"),
    typing: $("typing"), composer: $("composer"), text: $("composer-text"),
    composerError: $("composer-error"), rating: $("rating"), ratingForm: $("rating-form"),
    ratingDone: $("rating-done"), ratingError: $("rating-error"), closed: $("closed-notice")
  };

  var state = {
    status: root.getAttribute("data-status"),
    brand: root.getAttribute("data-brand") || "",
    agent: root.getAttribute("data-agent") || "",
    rated: root.getAttribute("data-rated") === "true",
    messages: new Map(),   // seq → message frame
    lastSeq: 0,            // highest seq seen on this page
    pending: new Map(),    // client_id → {text, li}, sent but not acknowledged
    inFlight: [],          // client_ids sent on this socket, in order, not yet answered
    joinNote: null,        // the local "… joined" line
    ws: null,
    backoff: 500,
    retry: null,
    lastTyping: 0,
    typingTimer: null,
    helloSeen: false
  };

  // ---- storage: last seq and unsent messages survive a reload ----

  function save() {
    try {
      var pend = [];
      state.pending.forEach(function (p, id) { pend.push({ client_id: id, text: p.text }); });
      sessionStorage.setItem(storeKey, JSON.stringify({ lastSeq: state.lastSeq, pending: pend }));
    } catch (e) { /* storage full or disabled: the page still works */ }
  }

  function load() {
    try {
      var v = JSON.parse(sessionStorage.getItem(storeKey) || "null");
      return v && typeof v === "object" ? v : null;
    } catch (e) { return null; }
  }

  function newClientID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  // ---- rendering ----

  var timeFmt = { hour: "2-digit", minute: "2-digit" };

  function senderLabel(sender) {
    switch (sender) {
      case "customer": return "You";
      case "agent": return state.agent || "Support";
      case "bot": return "Assistant";
      default: return "";
    }
  }

  // Each li has a sort key: its seq, seq+0.5 for a local note after it,
  // Infinity for a message not yet acknowledged.
  function keyOf(li) { return parseFloat(li.getAttribute("data-key")); }

  function place(li) {
    var key = keyOf(li);
    var items = el.messages.children;
    for (var i = 0; i < items.length; i++) {
      if (items[i] !== li && keyOf(items[i]) > key) {
        el.messages.insertBefore(li, items[i]);
        return;
      }
    }
    el.messages.appendChild(li);
  }

  function scrollDown() {
    el.messages.scrollTop = el.messages.scrollHeight;
  }

  function bubble(sender, text, when) {
    var li = document.createElement("li");
    li.className = "msg msg-" + sender;
    var who = senderLabel(sender);
    if (who) {
      var name = document.createElement("span");
      name.className = "msg-from";
      name.textContent = who;
      li.appendChild(name);
    }
    var body = document.createElement("p");
    body.className = "msg-text";
    body.textContent = text;
    li.appendChild(body);
    var meta = document.createElement("small");
    meta.className = "msg-meta";
    meta.textContent = when;
    li.appendChild(meta);
    return li;
  }

  function timeOf(m) {
    var d = new Date(m.created_at);
    return isNaN(d) ? "" : d.toLocaleTimeString([], timeFmt);
  }

  function renderMessage(m) {
    if (typeof m.seq !== "number") return;
    var known = state.messages.get(m.seq);
    if (known) {
      if (!known.created_at && m.created_at) {
        // Shown on its ack before the message itself came: take its time.
        state.messages.set(m.seq, m);
        var shown = el.messages.querySelector('li[data-seq="' + m.seq + '"] .msg-meta');
        if (shown) shown.textContent = timeOf(m);
      }
      return;
    }
    state.messages.set(m.seq, m);
    if (m.seq > state.lastSeq) state.lastSeq = m.seq;
    if (m.sender === "customer" && m.client_id && state.pending.has(m.client_id)) {
      var p = state.pending.get(m.client_id);
      if (p.li.parentNode) p.li.parentNode.removeChild(p.li);
      state.pending.delete(m.client_id);
    }
    var li = bubble(m.sender, m.text, timeOf(m));
    li.setAttribute("data-seq", String(m.seq));
    li.setAttribute("data-key", String(m.seq));
    place(li);
    if (m.sender === "agent") {
      hideTyping();
      // A page loaded after the agent joined puts the joined line before
      // their first message.
      if (state.joinNote && state.joinNote.getAttribute("data-floating") === "true" &&
          keyOf(state.joinNote) > m.seq) {
        state.joinNote.setAttribute("data-key", String(m.seq - 0.5));
        state.joinNote.removeAttribute("data-floating");
        place(state.joinNote);
      }
    }
    save();
    scrollDown();
  }

  function note(text, key, floating) {
    var li = document.createElement("li");
    li.className = "msg msg-system";
    li.setAttribute("data-key", String(key));
    if (floating) li.setAttribute("data-floating", "true");
    var p = document.createElement("p");
    p.className = "msg-text";
    p.textContent = text;
    li.appendChild(p);
    place(li);
    scrollDown();
    return li;
  }

  function renderPending(id, text) {
    var li = bubble("customer", text, "sending…");
    li.classList.add("pending");
    li.setAttribute("data-client-id", id);
    li.setAttribute("data-key", "Infinity");
    place(li);
    state.pending.set(id, { text: text, li: li });
    scrollDown();
  }

  function joinedText() {
    return state.agent + " from " + state.brand + " support joined";
  }

  // ---- state changes ----

  // setStatus shows a conversation state. first is true for the first
  // hello of the page, before any message has arrived.
  function setStatus(status, agentName, first) {
    var was = state.status;
    var hadAgent = state.agent;
    var at = first ? 1e9 : state.lastSeq + 0.5; // where a note goes
    state.status = status;
    root.setAttribute("data-status", status);
    if (agentName) state.agent = agentName;

    var waiting = status === "queued" || status === "offered";
    el.queue.hidden = !waiting;
    el.composer.hidden = !(waiting || status === "active");
    el.closed.hidden = status !== "abandoned" && status !== "closed";

    if (status === "active" && state.agent) {
      el.status.textContent = joinedText();
      if (!state.joinNote) {
        if (!first && (was === "queued" || was === "offered")) {
          state.joinNote = note(joinedText(), state.lastSeq + 0.5, false);
        } else {
          state.joinNote = note(joinedText(), 1e9, true);
        }
      }
    } else if (waiting) {
      if (hadAgent && was === "active") {
        el.status.textContent = hadAgent + " had to leave. We are finding someone else.";
        note(hadAgent + " left the chat", at, false);
        state.agent = "";
        state.joinNote = null;
      } else {
        el.status.textContent = "Connecting you to a person…";
      }
    } else if (status === "resolved") {
      hideTyping();
      el.status.textContent = "This conversation is resolved";
      if (was === "active") note((state.agent || "Support") + " resolved this conversation", at, false);
      showRating();
    } else if (status === "abandoned" || status === "closed") {
      hideTyping();
      el.status.textContent = "This conversation is closed";
      el.rating.hidden = status === "closed" || !state.rated;
    }
  }

  function showRating() {
    el.rating.hidden = false;
    el.ratingForm.hidden = state.rated;
    el.ratingDone.hidden = !state.rated;
  }

  function minutes(secs) {
    if (secs < 45) return "less than a minute";
    return "about " + Math.max(1, Math.round(secs / 60)) + " min";
  }

  function setQueue(q) {
    if (!q) return;
    el.position.textContent = q.position > 0 ? String(q.position) : "–";
    if (q.estimated_wait_seconds === null || q.estimated_wait_seconds === undefined) {
      el.wait.textContent = "We are finding someone — no estimate yet";
    } else {
      el.wait.textContent = minutes(q.estimated_wait_seconds);
    }
  }

  function showTyping() {
    el.typing.textContent = (state.agent || "Support") + " is typing…";
    el.typing.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, 4000);
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    el.typing.hidden = true;
  }

  function setConn(s) {
    el.conn.setAttribute("data-state", s);
    el.conn.textContent = s === "open" ? "Connected" : s === "connecting" ? "Connecting…" : "Reconnecting…";
  }

  function composerError(msg) {
    el.composerError.textContent = msg || "";
    el.composerError.hidden = !msg;
  }

  // ---- the socket ----

  function send(type, data) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify({ type: type, data: data }));
    return true;
  }

  function sendMessage(id) {
    var p = state.pending.get(id);
    if (p && send("message.send", { text: p.text, client_id: id })) state.inFlight.push(id);
  }

  function connect(after) {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/c/" + encodeURIComponent(token) + "/ws?after=" + after);
    state.ws = ws;
    state.inFlight = [];
    ws.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      handle(f.type, f.data || {});
    };
    ws.onclose = function () {
      if (state.ws !== ws) return;
      state.ws = null;
      setConn("closed");
      clearTimeout(state.retry);
      state.retry = setTimeout(function () { connect(state.lastSeq); }, Handoff.retryIn(state.backoff));
      state.backoff = Math.min(state.backoff * 2, 10000);
    };
  }

  function handle(type, d) {
    switch (type) {
      case "hello":
        state.backoff = 500;
        setConn("open");
        var c = d.conversation || {};
        if (c.brand_name) state.brand = c.brand_name;
        state.rated = !!c.rated;
        setStatus(c.status, c.agent_name, !state.helloSeen);
        state.helloSeen = true;
        setQueue(d.queue);
        // Resend what was never acknowledged; the server stores a client
        // id once, so a message that did arrive is not doubled.
        state.pending.forEach(function (p, id) { sendMessage(id); });
        break;
      case "queue":
        setQueue(d);
        break;
      case "conversation":
        if (d.brand_name) state.brand = d.brand_name;
        setStatus(d.status, d.agent_name);
        break;
      case "message":
        renderMessage(d);
        break;
      case "message.ack":
        ack(d.client_id, d.seq, d.message);
        break;
      case "typing":
        if (d.sender === "agent") showTyping();
        break;
      case "rated":
        state.rated = true;
        showRating();
        break;
      case "error":
        onError(d);
        break;
    }
  }

  function ack(id, seq, m) {
    var i = state.inFlight.indexOf(id);
    if (i >= 0) state.inFlight.splice(i, 1);
    var p = state.pending.get(id);
    if (!p) return;
    if (m && m.seq === seq) {
      // The ack carries the message as stored: show it in place of the
      // pending bubble (this socket gets no "message" frame for it).
      state.pending.delete(id);
      if (p.li.parentNode) p.li.parentNode.removeChild(p.li);
      renderMessage(m);
      save();
      return;
    }
    state.pending.delete(id);
    if (state.messages.has(seq)) {
      if (p.li.parentNode) p.li.parentNode.removeChild(p.li);
    } else {
      // The message frame is on its way; show it as sent meanwhile.
      state.messages.set(seq, { seq: seq, sender: "customer", text: p.text, client_id: id });
      if (seq > state.lastSeq) state.lastSeq = seq;
      p.li.classList.remove("pending");
      p.li.setAttribute("data-seq", String(seq));
      p.li.setAttribute("data-key", String(seq));
      p.li.querySelector(".msg-meta").textContent = "sent";
      place(p.li);
    }
    save();
  }

  function onError(d) {
    var msg = d.message || "Something went wrong.";
    if (d.errors && d.errors.length) msg = d.errors.map(function (e) { return e.field + " " + e.message; }).join("; ");
    if (d.command === "message.send") {
      // Replies come in the order of the commands: this one answers the
      // oldest message still in flight. It will not be accepted on a retry.
      var id = state.inFlight.shift();
      var p = id && state.pending.get(id);
      if (p) {
        state.pending.delete(id);
        p.li.classList.add("failed");
        p.li.querySelector(".msg-meta").textContent = "not sent";
        save();
      }
      composerError(msg);
    } else if (d.command === "rate") {
      el.ratingError.textContent = msg;
      el.ratingError.hidden = false;
    }
  }

  // ---- user actions ----

  el.composer.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = el.text.value.trim();
    if (!text) return;
    composerError("");
    var id = newClientID();
    renderPending(id, text);
    save();
    sendMessage(id);
    el.text.value = "";
    el.text.focus();
  });

  el.text.addEventListener("input", function () {
    var now = Date.now();
    if (el.text.value && now - state.lastTyping > 3000 && send("typing", {})) state.lastTyping = now;
  });

  el.ratingForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var picked = el.ratingForm.querySelector("input[name=rating]:checked");
    if (!picked) return;
    el.ratingError.hidden = true;
    var btn = el.ratingForm.querySelector("button[type=submit]");
    if (!send("rate", { rating: parseInt(picked.value, 10), comment: el.ratingForm.elements.comment.value })) {
      el.ratingError.textContent = "Not connected — trying again in a moment. Send once more when it says Connected.";
      el.ratingError.hidden = false;
      return;
    }
    btn.setAttribute("aria-busy", "true");
    setTimeout(function () { btn.removeAttribute("aria-busy"); }, 3000);
  });

  // ---- start: render everything from scratch, then resume by seq ----

  var saved = load();
  if (saved && Array.isArray(saved.pending)) {
    saved.pending.forEach(function (p) {
      if (p && typeof p.client_id === "string" && typeof p.text === "string") renderPending(p.client_id, p.text);
    });
  }
  if (state.status === "resolved") showRating();
  setConn("connecting");
  connect(0);
})();
