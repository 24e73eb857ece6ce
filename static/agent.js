// Handoff: the agent's live console on /agent. It talks to /ws/agent:
// presence, offers with their countdown, and one pane per chat. Messages are
// keyed by sequence number, so whatever a reconnect replays shows once.
(function () {
  "use strict";

  var root = document.getElementById("live-console");
  if (!root || !window.WebSocket) return;

  var $ = function (id) { return document.getElementById(id); };
  var el = {
    conn: $("socket-state"), presence: $("presence-state"), presenceOld: $("presence"),
    capacity: $("capacity"), notice: $("console-notice"), earning: $("earning-notice"),
    offerSlot: $("offer-slot"), idle: $("console-idle"), tabs: $("chat-tabs"), chats: $("chats")
  };
  var baseTitle = document.title;

  var state = {
    ws: null,
    backoff: 500,
    retry: null,
    presence: root.getAttribute("data-presence") || "offline",
    capacity: parseInt(root.getAttribute("data-capacity"), 10) || 1,
    offer: null,        // {card, el, deadline, total, receivedAt, timer}
    chats: new Map(),   // conversation id → chat
    selected: null,
    inFlight: []        // {conv, id} of message.send commands not yet answered, in order
  };

  var timeFmt = { hour: "2-digit", minute: "2-digit" };

  // ---- small helpers ----

  function h(tag, attrs, children) {
    var n = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        if (attrs[k] === null || attrs[k] === undefined || attrs[k] === false) return;
        if (k === "text") n.textContent = attrs[k];
        else if (k === "class") n.className = attrs[k];
        else if (k === "hidden") n.hidden = true;
        else n.setAttribute(k, attrs[k] === true ? "" : String(attrs[k]));
      });
    }
    (children || []).forEach(function (c) {
      if (c) n.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return n;
  }

  function newClientID() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    var a = new Uint8Array(16);
    crypto.getRandomValues(a);
    return Array.prototype.map.call(a, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function money(minor, currency) {
    var digits = 2;
    try {
      digits = new Intl.NumberFormat("en", { style: "currency", currency: currency }).resolvedOptions().maximumFractionDigits;
    } catch (e) { /* unknown code: two decimals */ }
    return (minor / Math.pow(10, digits)).toFixed(digits) + " " + currency;
  }

  function duration(secs) {
    secs = Math.max(0, Math.floor(secs));
    if (secs < 60) return secs + " s";
    var m = Math.floor(secs / 60);
    if (m < 60) return m + " min";
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function errorText(d) {
    if (d.errors && d.errors.length) {
      return d.errors.map(function (e) { return e.field + " " + e.message; }).join("; ");
    }
    return d.message || "Something went wrong.";
  }

  function notice(msg) {
    el.notice.textContent = msg || "";
    el.notice.hidden = !msg;
  }

  function setConn(s) {
    el.conn.setAttribute("data-state", s);
    el.conn.textContent = s === "open" ? "Connected" : s === "connecting" ? "Connecting…" : "Reconnecting…";
    root.setAttribute("data-socket", s);
  }

  function updateIdle() {
    var busy = state.offer || state.chats.size > 0;
    el.idle.hidden = !!busy;
    if (state.presence === "online") {
      el.idle.textContent = "You are online. Offers appear here; you have a few seconds to accept each one.";
    } else if (state.presence === "away") {
      el.idle.textContent = "You are away: no new offers. Your open chats stay with you.";
    } else {
      el.idle.textContent = "You are offline. Go online to receive offers.";
    }
    el.tabs.hidden = state.chats.size === 0;
    document.title = (state.offer ? "New offer · " : "") + baseTitle;
  }

  // ---- presence ----

  function setPresence(p, capacity) {
    if (p) state.presence = p;
    if (capacity) state.capacity = capacity;
    [el.presence, el.presenceOld].forEach(function (n) {
      if (!n) return;
      n.textContent = state.presence;
      n.className = "presence presence-" + state.presence;
    });
    root.setAttribute("data-presence", state.presence);
    root.querySelectorAll("[data-presence]").forEach(function (b) {
      if (b.tagName === "BUTTON") b.setAttribute("aria-pressed", String(b.getAttribute("data-presence") === state.presence));
    });
    el.capacity.value = String(state.capacity);
    updateIdle();
  }

  // ---- the offer card ----

  var declineReasons = ["Not my area of expertise", "My language level is not enough", "I am about to go offline",
    "I need a short break", "The pay does not fit this request"];

  function showOffer(card) {
    if (state.offer && state.offer.card.offer_id === card.offer_id) {
      // The same offer again (a reconnect): only the time left changes.
      state.offer.deadline = performance.now() + card.remaining_ms;
      offerError("");
      tick();
      return;
    }
    removeOffer();
    var surge = card.surge_minor > 0 ? h("small", { text: "includes " + money(card.surge_minor, card.currency) + " surge" }) : null;
    var facts = h("dl", { class: "offer-facts" }, [
      h("div", null, [h("dt", { text: "Skills" }), h("dd", { text: (card.skills || []).join(", ") || "general" })]),
      h("div", null, [h("dt", { text: "Language" }), h("dd", { text: card.language })]),
      h("div", null, [h("dt", { text: "Waiting" }), h("dd", { class: "offer-wait", text: duration(card.wait_seconds) })]),
      card.reason ? h("div", null, [h("dt", { text: "Reason" }), h("dd", { text: card.reason })]) : null
    ]);
    var reasonSelect = h("select", { id: "decline-reason", name: "reason", required: true }, [h("option", { value: "", text: "Choose a reason…" })]
      .concat(declineReasons.map(function (r) { return h("option", { value: r, text: r }); }))
      .concat([h("option", { value: "other", text: "Other…" })]));
    var n = h("article", { id: "offer-card", class: "offer-card", role: "alertdialog", "aria-labelledby": "offer-title",
      "aria-describedby": "offer-summary", "data-offer": card.offer_id, "data-conversation": card.conversation_id }, [
      h("header", { class: "offer-head" }, [
        h("div", null, [h("p", { class: "offer-kicker", text: "New chat offer" }), h("h3", { id: "offer-title", text: card.brand_name })]),
        h("p", { class: "offer-pay" }, [h("strong", { id: "offer-pay", text: card.pay }), surge])
      ]),
      facts,
      h("p", { id: "offer-summary", class: "offer-summary", text: card.summary || "The bot left no summary." }),
      card.why ? h("p", { class: "offer-why" }, [h("strong", { text: "Why you: " }), card.why]) : null,
      h("div", { class: "countdown" }, [
        h("progress", { id: "offer-progress", max: "1000", value: "1000", "aria-label": "Time left to accept" }),
        h("span", { id: "offer-countdown", class: "countdown-text" })
      ]),
      h("p", { class: "offer-error field-error", role: "alert", hidden: true }),
      h("div", { class: "offer-actions" }, [
        h("button", { type: "button", id: "offer-accept", "data-action": "accept", text: "Accept" }),
        h("button", { type: "button", id: "offer-decline", class: "secondary outline", "data-action": "decline", text: "Decline" })
      ]),
      h("form", { id: "decline-form", class: "decline-form", hidden: true }, [
        h("label", { for: "decline-reason", text: "Why are you declining?" }),
        reasonSelect,
        h("label", { for: "decline-other", class: "sr-only", text: "Your reason" }),
        h("input", { id: "decline-other", name: "other", maxlength: "200", placeholder: "Your reason", hidden: true }),
        h("div", { class: "offer-actions" }, [
          h("button", { type: "submit", class: "secondary", text: "Decline offer" }),
          h("button", { type: "button", class: "outline secondary", "data-action": "decline-cancel", text: "Back" })
        ])
      ])
    ]);
    state.offer = { card: card, el: n, deadline: performance.now() + card.remaining_ms,
      total: Math.max(card.timeout_ms, card.remaining_ms, 1), receivedAt: performance.now(), timer: null };
    el.offerSlot.appendChild(n);
    tick();
    state.offer.timer = setInterval(tick, 200);
    updateIdle();
  }

  // tick redraws the countdown from the time the server said was left.
  function tick() {
    var o = state.offer;
    if (!o) return;
    var now = performance.now();
    var left = Math.max(0, o.deadline - now);
    o.el.querySelector("#offer-progress").value = Math.round(left / o.total * 1000);
    o.el.querySelector("#offer-countdown").textContent = left > 0 ? Math.ceil(left / 1000) + " s" : "0 s";
    o.el.classList.toggle("urgent", left < 5000);
    o.el.querySelector(".offer-wait").textContent = duration(o.card.wait_seconds + (now - o.receivedAt) / 1000);
  }

  function removeOffer(msg) {
    if (state.offer) {
      clearInterval(state.offer.timer);
      if (state.offer.el.parentNode) state.offer.el.parentNode.removeChild(state.offer.el);
      state.offer = null;
    }
    if (msg) notice(msg);
    updateIdle();
  }

  function offerError(msg) {
    if (!state.offer) return notice(msg);
    var p = state.offer.el.querySelector(".offer-error");
    p.textContent = msg;
    p.hidden = !msg;
    state.offer.el.querySelectorAll("button").forEach(function (b) { b.disabled = false; b.removeAttribute("aria-busy"); });
  }

  function isCurrentOffer(id) { return state.offer && state.offer.card.offer_id === id; }

  // ---- chats ----

  function senderLabel(chat, sender) {
    switch (sender) {
      case "customer": return chat.info.customer_name || "Customer";
      case "agent": return "You";
      case "bot": return "Bot";
      default: return "";
    }
  }

  function keyOf(li) { return parseFloat(li.getAttribute("data-key")); }

  function place(list, li) {
    var key = keyOf(li);
    for (var i = 0; i < list.children.length; i++) {
      var c = list.children[i];
      if (c !== li && keyOf(c) > key) { list.insertBefore(li, c); return; }
    }
    list.appendChild(li);
  }

  function bubble(chat, sender, text, meta) {
    var who = senderLabel(chat, sender);
    return h("li", { class: "msg msg-" + sender }, [
      who ? h("span", { class: "msg-from", text: who }) : null,
      h("p", { class: "msg-text", text: text }),
      h("small", { class: "msg-meta", text: meta })
    ]);
  }

  function timeOf(m) {
    var d = new Date(m.created_at);
    return isNaN(d) ? "" : d.toLocaleTimeString([], timeFmt);
  }

  function openChat(info, select) {
    var chat = state.chats.get(info.id);
    if (!chat) {
      chat = { id: info.id, info: info, messages: new Map(), lastSeq: 0, pending: new Map(),
        lastTyping: 0, typingTimer: null, resolving: false };
      buildPane(chat);
      state.chats.set(info.id, chat);
    } else {
      chat.info = info;
    }
    (info.messages || []).forEach(function (m) { renderMessage(chat, m); });
    if (select || !state.selected) selectChat(info.id);
    updateIdle();
    return chat;
  }

  function buildPane(chat) {
    var info = chat.info;
    var name = info.customer_name || "Customer";
    chat.tab = h("button", { type: "button", role: "tab", id: "tab-" + chat.id, "aria-controls": "chat-" + chat.id,
      "aria-selected": "false", "data-chat": chat.id, class: "chat-tab" }, [name, h("span", { class: "unread", "aria-label": "new messages", hidden: true, text: "●" })]);
    chat.list = h("ol", { class: "messages", "aria-live": "polite", "aria-label": "Conversation with " + name });
    chat.typing = h("p", { class: "typing muted", hidden: true, text: name + " is typing…" });
    chat.input = h("input", { name: "text", maxlength: "4000", placeholder: "Write to " + name + "…", "aria-label": "Message to " + name,
      autocomplete: "off", required: true });
    chat.composer = h("form", { class: "composer", "data-chat": chat.id, "data-form": "message" }, [
      h("fieldset", { role: "group" }, [chat.input, h("button", { type: "submit", text: "Send" })]),
      h("small", { class: "field-error composer-error", role: "alert", hidden: true })
    ]);
    chat.resolveForm = h("form", { class: "resolve-form", "data-chat": chat.id, "data-form": "resolve", hidden: true }, [
      h("label", { for: "note-" + chat.id, text: "How did you resolve it? (the brand sees this note)" }),
      h("textarea", { id: "note-" + chat.id, name: "note", rows: "2", maxlength: "2000", required: true }),
      h("small", { class: "field-error resolve-error", role: "alert", hidden: true }),
      h("div", { class: "offer-actions" }, [
        h("button", { type: "submit", text: "Resolve and close" }),
        h("button", { type: "button", class: "outline secondary", "data-action": "resolve-cancel", "data-chat": chat.id, text: "Back to the chat" })
      ])
    ]);
    var details = [info.brand_name, info.language, (info.skills || []).join(", ")].filter(Boolean).join(" · ");
    chat.pane = h("section", { id: "chat-" + chat.id, class: "chat-pane", role: "tabpanel", "aria-labelledby": "tab-" + chat.id, hidden: true }, [
      h("header", { class: "pane-head" }, [
        h("div", null, [h("h3", { text: name }), h("p", { class: "muted", text: details })]),
        h("button", { type: "button", class: "secondary small", "data-action": "resolve", "data-chat": chat.id, text: "Resolve" })
      ]),
      info.summary ? h("details", { class: "pane-summary" }, [h("summary", { text: "Bot's summary" }), h("p", { text: info.summary })]) : null,
      chat.list, chat.typing, chat.composer, chat.resolveForm
    ]);
    el.tabs.appendChild(chat.tab);
    el.chats.appendChild(chat.pane);
  }

  function selectChat(id) {
    state.selected = id;
    state.chats.forEach(function (c) {
      var on = c.id === id;
      c.pane.hidden = !on;
      c.tab.setAttribute("aria-selected", String(on));
      c.tab.tabIndex = on ? 0 : -1;
      if (on) {
        c.tab.querySelector(".unread").hidden = true;
        c.list.scrollTop = c.list.scrollHeight;
      }
    });
  }

  function renderMessage(chat, m) {
    if (typeof m.seq !== "number") return;
    var known = chat.messages.get(m.seq);
    if (known) {
      if (!known.created_at && m.created_at) {
        // Shown on its ack before the message itself came: take its time.
        chat.messages.set(m.seq, m);
        var shown = chat.list.querySelector('li[data-seq="' + m.seq + '"] .msg-meta');
        if (shown) shown.textContent = timeOf(m);
      }
      return;
    }
    chat.messages.set(m.seq, m);
    if (m.seq > chat.lastSeq) chat.lastSeq = m.seq;
    if (m.sender === "agent" && m.client_id && chat.pending.has(m.client_id)) {
      var p = chat.pending.get(m.client_id);
      p.li.remove();
      chat.pending.delete(m.client_id);
    }
    var li = bubble(chat, m.sender, m.text, timeOf(m));
    li.setAttribute("data-seq", String(m.seq));
    li.setAttribute("data-key", String(m.seq));
    place(chat.list, li);
    if (m.sender === "customer") {
      chat.typing.hidden = true;
      if (state.selected !== chat.id) chat.tab.querySelector(".unread").hidden = false;
    }
    chat.list.scrollTop = chat.list.scrollHeight;
  }

  function sendMessage(chat, id) {
    var p = chat.pending.get(id);
    if (p && send("message.send", { conversation_id: chat.id, text: p.text, client_id: id })) {
      state.inFlight.push({ conv: chat.id, id: id });
    }
  }

  function ack(d) {
    state.inFlight = state.inFlight.filter(function (f) { return f.id !== d.client_id; });
    var chat = state.chats.get(d.conversation_id);
    if (!chat) return;
    var p = chat.pending.get(d.client_id);
    if (!p) return;
    if (d.message && d.message.seq === d.seq) {
      // The ack carries the message as stored: show it in place of the
      // pending bubble (this socket gets no "message" frame for it).
      chat.pending.delete(d.client_id);
      p.li.remove();
      renderMessage(chat, d.message);
      return;
    }
    chat.pending.delete(d.client_id);
    if (chat.messages.has(d.seq)) {
      p.li.remove();
      return;
    }
    chat.messages.set(d.seq, { seq: d.seq, sender: "agent", text: p.text, client_id: d.client_id });
    if (d.seq > chat.lastSeq) chat.lastSeq = d.seq;
    p.li.classList.remove("pending");
    p.li.setAttribute("data-seq", String(d.seq));
    p.li.setAttribute("data-key", String(d.seq));
    p.li.querySelector(".msg-meta").textContent = "sent";
    place(chat.list, p.li);
  }

  function closeChat(id, msg) {
    var chat = state.chats.get(id);
    if (!chat) return;
    clearTimeout(chat.typingTimer);
    chat.tab.remove();
    chat.pane.remove();
    state.chats.delete(id);
    state.inFlight = state.inFlight.filter(function (f) { return f.conv !== id; });
    if (state.selected === id) {
      state.selected = null;
      var next = state.chats.keys().next();
      if (!next.done) selectChat(next.value);
    }
    if (msg) notice(msg);
    updateIdle();
  }

  function showTyping(chat) {
    chat.typing.hidden = false;
    clearTimeout(chat.typingTimer);
    chat.typingTimer = setTimeout(function () { chat.typing.hidden = true; }, 4000);
  }

  // ---- the socket ----

  function send(type, data) {
    if (!state.ws || state.ws.readyState !== WebSocket.OPEN) return false;
    state.ws.send(JSON.stringify({ type: type, data: data }));
    return true;
  }

  function sendOrSay(type, data) {
    if (send(type, data)) return true;
    notice("Not connected right now. We are reconnecting; try again in a moment.");
    return false;
  }

  function connect() {
    var proto = location.protocol === "https:" ? "wss://" : "ws://";
    var ws = new WebSocket(proto + location.host + "/ws/agent");
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
      state.retry = setTimeout(connect, Handoff.retryIn(state.backoff));
      state.backoff = Math.min(state.backoff * 2, 10000);
    };
  }

  setInterval(function () { send("heartbeat", {}); }, 10000);

  function hello(d) {
    state.backoff = 500;
    setConn("open");
    var a = d.agent || {};
    setPresence(a.presence, a.capacity);
    if (d.offer) showOffer(d.offer);
    else removeOffer();
    var open = {};
    (d.chats || []).forEach(function (c) {
      open[c.id] = true;
      var chat = openChat(c, false);
      if (chat.resolving) {
        // The resolve was not answered before the socket closed, and the
        // chat is still open: the agent can try again.
        chat.resolving = false;
        chat.resolveForm.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
      }
      // The hello was read before this socket joined the chat's topic:
      // ask for anything after what we have.
      send("resume", { conversation_id: c.id, after_seq: chat.lastSeq });
      chat.pending.forEach(function (p, id) { sendMessage(chat, id); });
    });
    state.chats.forEach(function (chat, id) {
      if (!open[id]) closeChat(id, "The chat with " + (chat.info.customer_name || "the customer") + " ended while you were disconnected.");
    });
  }

  function handle(type, d) {
    var chat;
    switch (type) {
      case "hello":
        hello(d);
        break;
      case "presence":
        setPresence(d.presence, d.capacity);
        if (d.notice) notice(d.notice);
        break;
      case "offer":
        showOffer(d);
        break;
      case "offer.accepted":
        removeOffer();
        notice("");
        chat = openChat(d.chat, true);
        chat.input.focus();
        break;
      case "offer.failed":
        if (isCurrentOffer(d.offer_id)) removeOffer(d.message || "This offer is no longer available.");
        break;
      case "offer.declined":
        if (isCurrentOffer(d.offer_id)) removeOffer("Offer declined. We will send you the next one.");
        break;
      case "offer.expired":
        if (isCurrentOffer(d.offer_id) || !state.offer) removeOffer(d.notice || "The offer timed out and went to someone else.");
        if (d.set_away) setPresence("away");
        break;
      case "offer.withdrawn":
        if (isCurrentOffer(d.offer_id)) removeOffer("The offer was withdrawn: " + (d.reason || "it is no longer available."));
        break;
      case "message":
        chat = state.chats.get(d.conversation_id);
        if (chat) renderMessage(chat, d);
        break;
      case "message.ack":
        ack(d);
        break;
      case "typing":
        chat = state.chats.get(d.conversation_id);
        if (chat && d.sender === "customer") showTyping(chat);
        break;
      case "conversation":
        chat = state.chats.get(d.id);
        if (!chat || d.status === "active") break;
        if (d.status === "resolved" && chat.resolving) break; // our own resolve: "resolved" follows
        var who = chat.info.customer_name || "The customer";
        closeChat(d.id, d.status === "abandoned" ? who + " left the chat." :
          d.status === "queued" || d.status === "offered" ? "The chat with " + who + " went back to the queue." :
            "The chat with " + who + " was " + d.status + ".");
        break;
      case "resolved":
        chat = state.chats.get(d.conversation_id);
        var e = d.earning || {};
        el.earning.textContent = "You earned " + (e.net || money(e.net_minor || 0, e.currency || "USD")) +
          (chat ? " for the chat with " + (chat.info.customer_name || "the customer") : "") + ".";
        el.earning.hidden = false;
        closeChat(d.conversation_id);
        notice("");
        break;
      case "error":
        onError(d);
        break;
    }
  }

  function onError(d) {
    var msg = errorText(d);
    switch (d.command) {
      case "offer.accept":
        offerError(msg);
        break;
      case "offer.decline":
        offerError(msg);
        break;
      case "message.send":
        // Replies come in the order of the commands: this error answers the
        // oldest message still in flight, which a retry would not fix.
        var f = state.inFlight.shift();
        var chat = f && state.chats.get(f.conv);
        if (chat && chat.pending.has(f.id)) {
          var p = chat.pending.get(f.id);
          chat.pending.delete(f.id);
          p.li.classList.add("failed");
          p.li.querySelector(".msg-meta").textContent = "not sent";
          var ce = chat.composer.querySelector(".composer-error");
          ce.textContent = msg;
          ce.hidden = false;
        } else {
          notice(msg);
        }
        break;
      case "resolve":
        var rc = null;
        state.chats.forEach(function (c) { if (c.resolving) rc = c; });
        if (rc) {
          rc.resolving = false;
          var re = rc.resolveForm.querySelector(".resolve-error");
          re.textContent = msg;
          re.hidden = false;
          rc.resolveForm.querySelectorAll("button").forEach(function (b) { b.disabled = false; });
        } else {
          notice(msg);
        }
        break;
      case "typing":
      case "resume":
      case "heartbeat":
        break; // nothing the agent can act on
      default:
        notice(msg);
    }
  }

  // ---- what the agent does ----

  root.addEventListener("click", function (ev) {
    var b = ev.target.closest("button");
    if (!b || !root.contains(b)) return;
    var pres = b.getAttribute("data-presence");
    if (pres) {
      notice("");
      sendOrSay("presence", { status: pres, capacity: parseInt(el.capacity.value, 10) });
      return;
    }
    var chatID = b.getAttribute("data-chat");
    var chat = chatID && state.chats.get(chatID);
    if (b.getAttribute("role") === "tab" && chat) {
      selectChat(chatID);
      chat.input.focus();
      return;
    }
    switch (b.getAttribute("data-action")) {
      case "accept":
        if (!state.offer) return;
        if (sendOrSay("offer.accept", { offer_id: state.offer.card.offer_id })) {
          state.offer.el.querySelectorAll(".offer-actions button").forEach(function (x) { x.disabled = true; });
          b.setAttribute("aria-busy", "true");
        }
        break;
      case "decline":
        if (!state.offer) return;
        var form = state.offer.el.querySelector("#decline-form");
        form.hidden = false;
        b.parentNode.hidden = true;
        form.querySelector("select").focus();
        break;
      case "decline-cancel":
        if (!state.offer) return;
        state.offer.el.querySelector("#decline-form").hidden = true;
        state.offer.el.querySelector(".offer-actions").hidden = false;
        state.offer.el.querySelector("#offer-decline").focus();
        break;
      case "resolve":
        if (!chat) return;
        chat.composer.hidden = true;
        chat.resolveForm.hidden = false;
        chat.resolveForm.querySelector("textarea").focus();
        break;
      case "resolve-cancel":
        if (!chat) return;
        chat.resolveForm.hidden = true;
        chat.composer.hidden = false;
        chat.input.focus();
        break;
    }
  });

  root.addEventListener("change", function (ev) {
    if (ev.target === el.capacity) {
      sendOrSay("presence", { status: state.presence, capacity: parseInt(el.capacity.value, 10) });
    } else if (ev.target.id === "decline-reason") {
      var other = $("decline-other");
      other.hidden = ev.target.value !== "other";
      other.required = ev.target.value === "other";
      if (!other.hidden) other.focus();
    }
  });

  root.addEventListener("input", function (ev) {
    var form = ev.target.form;
    if (!form || form.getAttribute("data-form") !== "message") return;
    var chat = state.chats.get(form.getAttribute("data-chat"));
    var now = Date.now();
    if (chat && ev.target.value && now - chat.lastTyping > 3000 &&
        send("typing", { conversation_id: chat.id })) {
      chat.lastTyping = now;
    }
  });

  root.addEventListener("submit", function (ev) {
    var form = ev.target;
    ev.preventDefault();
    if (form.id === "decline-form") {
      if (!state.offer) return;
      var sel = form.querySelector("select").value;
      var reason = sel === "other" ? form.elements.other.value.trim() : sel;
      if (!reason) return;
      if (sendOrSay("offer.decline", { offer_id: state.offer.card.offer_id, reason: reason })) {
        form.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
      }
      return;
    }
    var chat = state.chats.get(form.getAttribute("data-chat"));
    if (!chat) return;
    if (form.getAttribute("data-form") === "message") {
      var text = chat.input.value.trim();
      if (!text) return;
      chat.composer.querySelector(".composer-error").hidden = true;
      var id = newClientID();
      var li = bubble(chat, "agent", text, "sending…");
      li.classList.add("pending");
      li.setAttribute("data-client-id", id);
      li.setAttribute("data-key", "Infinity");
      place(chat.list, li);
      chat.list.scrollTop = chat.list.scrollHeight;
      chat.pending.set(id, { text: text, li: li });
      sendMessage(chat, id);
      chat.input.value = "";
      chat.input.focus();
    } else if (form.getAttribute("data-form") === "resolve") {
      var note = form.elements.note.value.trim();
      if (!note) return;
      form.querySelector(".resolve-error").hidden = true;
      if (sendOrSay("resolve", { conversation_id: chat.id, note: note })) {
        chat.resolving = true;
        form.querySelectorAll("button").forEach(function (x) { x.disabled = true; });
      }
    }
  });

  // Arrow keys move between chat tabs, as a tablist should.
  el.tabs.addEventListener("keydown", function (ev) {
    if (ev.key !== "ArrowRight" && ev.key !== "ArrowLeft") return;
    var ids = Array.from(state.chats.keys());
    var i = ids.indexOf(state.selected);
    if (i < 0) return;
    var next = ids[(i + (ev.key === "ArrowRight" ? 1 : ids.length - 1)) % ids.length];
    selectChat(next);
    state.chats.get(next).tab.focus();
    ev.preventDefault();
  });

  setPresence(state.presence, state.capacity);
  setConn("connecting");
  connect();
})();
