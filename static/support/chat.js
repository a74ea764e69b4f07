/* The chat page's client for /ws/chat/ (docs/chat-protocol.md).
 *
 * The page arrives with the conversation's history already rendered and the last event seq it shows
 * (data-last-seq); this script connects, resumes after that seq, and renders what comes next. Every
 * stored event is shown once (deduplicated by seq), tokens are applied by offset, unacknowledged
 * messages are sent again with the same client id after a reconnect. Text is only ever set with
 * textContent; every sentence comes from the catalogue the server translated (#chat-strings).
 *
 * Who answers the conversation (data-conversation-status on #chat: open, handed_off, with_staff, closed)
 * follows the status events; it shapes the status line, the "Back to Alfred" notice and the composer the
 * way support/views/chat.py renders them after a reload.
 */
(function () {
  "use strict";

  const root = document.getElementById("chat");
  if (!root) return;
  const T = JSON.parse(document.getElementById("chat-strings").textContent);

  const $ = (id) => document.getElementById(id);
  const els = {
    log: $("chat-log"),
    welcome: $("chat-welcome"),
    heading: $("chat-heading"),
    status: $("chat-status"),
    statusText: $("chat-status-text"),
    connection: $("chat-connection"),
    connectionText: $("chat-connection-text"),
    reconnect: $("chat-reconnect"),
    composer: $("chat-composer"),
    input: $("chat-input"),
    error: $("chat-error"),
    list: $("chat-list-items"),
    listEmpty: $("chat-list-empty"),
    handoff: $("chat-handoff"),
    cancelHandoff: $("chat-cancel-handoff"),
    inputLabel: $("chat-input-label"),
    inputHint: $("chat-input-hint"),
    send: $("chat-send"),
    closed: $("chat-closed"),
  };

  const MIN_DELAY = 1000;
  const MAX_DELAY = 30000;
  const TOO_FAST_RETRY = 5000;
  const TITLE_LENGTH = 80;
  const RESENT_CONFIRM_ERRORS = new Set(["already_decided"]);
  const DECISION_ERRORS = ["stale_proposal", "expired", "already_decided", "not_found", "invalid_decision", "invalid_values", "invalid"];
  // Run states that say more than who answers (support/views/chat.py has the same list and rules).
  const ACTIVE_RUN_STATES = new Set(["queued", "running", "waiting_confirmation", "waiting_approval", "failed"]);
  const EXPIRED_CODES = new Set(["set_aside", "edited", "taken_over", "handed_back", "closed"]);
  const CONVERSATION_STATES = new Set(["handed_off", "with_staff", "closed"]); // status events that change hands

  const state = {
    conversation: root.dataset.conversation ? Number(root.dataset.conversation) : null,
    floor: Number(root.dataset.lastSeq || 0), // every event up to here is in the page already
    lastSeq: Number(root.dataset.lastSeq || 0),
    seen: new Set(), // seqs above the floor already shown
    rendered: [], // the seqs this page applied, in order (a test hook checks none is there twice)
    socket: null,
    connected: false,
    attempt: 0,
    timer: null,
    ended: false,
    unacked: new Map(), // client id -> {id, text, conversation, sent}
    starter: null, // the client id of the message that starts a new conversation, until its ack
    messages: new Map(), // message id -> bubble record
    byClientId: new Map(), // client id -> bubble record (a user message before its id is known)
    proposals: new Map(), // proposal id -> form record
    decision: null, // the confirm frame sent last, until its result (re-sent after a reconnect)
    resumed: false, // this socket caught up with the conversation
    streaming: new Set(), // assistant message ids still being written
    conversationStatus: root.dataset.conversationStatus || "open", // who answers: open, handed_off, with_staff, closed
    assignee: root.dataset.assignee || "", // the name of the person from support who has it
    runState: root.dataset.runStatus || "",
    runText: "",
    cancelPending: false, // "Back to Alfred" was asked for and not answered yet (sent again after a reconnect)
  };

  // --- small helpers ------------------------------------------------------------------------------
  function fmt(text, values) {
    return String(text).replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  }

  function codePoints(text) {
    return Array.from(text || "").length; // the server counts offsets in code points, not UTF-16 units
  }

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (name === "className") node.className = value;
      else node.setAttribute(name, value === true ? "" : String(value));
    }
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function nearBottom() {
    const log = els.log;
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function append(node) {
    const stick = nearBottom();
    els.log.appendChild(node);
    els.welcome.hidden = true;
    if (stick) els.log.scrollTop = els.log.scrollHeight;
  }

  function scrollIfNear(wasNear) {
    if (wasNear) els.log.scrollTop = els.log.scrollHeight;
  }

  function conversationUrl(id) {
    return root.dataset.conversationUrl.replace(/\/0\/$/, "/" + id + "/");
  }

  // --- the connection ------------------------------------------------------------------------------
  function socketUrl() {
    return (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/chat/";
  }

  function setConnection(name) {
    els.connection.dataset.state = name;
    els.connectionText.textContent = T.connection[name] || "";
    els.reconnect.hidden = !(name === "reconnecting" || name === "offline");
  }

  function connect() {
    clearTimeout(state.timer);
    state.timer = null;
    if (state.ended || state.socket) return;
    setConnection(state.attempt ? "reconnecting" : "connecting");
    let socket;
    try {
      socket = new WebSocket(socketUrl());
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.socket = socket;
    socket.addEventListener("open", () => {
      if (socket !== state.socket) return;
      state.connected = true;
      state.resumed = false;
      state.attempt = 0;
      setConnection("connected");
      onOpen();
    });
    socket.addEventListener("message", (event) => {
      if (socket !== state.socket) return;
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (!frame || typeof frame !== "object") return;
      handle(frame);
      if (typeof api.onFrame === "function") api.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== state.socket) return;
      state.socket = null;
      state.connected = false;
      if (event.code === 4401) {
        state.ended = true;
        setConnection("ended");
        return;
      }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    if (state.ended || state.timer) return;
    const base = Math.min(MAX_DELAY, MIN_DELAY * 2 ** state.attempt);
    const delay = Math.min(MAX_DELAY, base * (0.8 + Math.random() * 0.4)); // jitter: clients don't all come back at once
    state.attempt += 1;
    setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    state.timer = setTimeout(connect, delay);
  }

  function reconnectNow() {
    if (state.socket || state.ended) return;
    clearTimeout(state.timer);
    state.timer = null;
    connect();
  }

  function sendFrame(frame) {
    if (!state.connected || !state.socket) return false;
    state.socket.send(JSON.stringify(frame));
    return true;
  }

  function onOpen() {
    if (state.conversation !== null) {
      // Catch up first: what was stored meanwhile tells which messages and decisions got through.
      sendFrame({ type: "resume", conversation: state.conversation, after: state.lastSeq });
    } else {
      flushOutbox();
    }
  }

  function flushOutbox(force) {
    // What was sent on an earlier socket and never acknowledged goes again, with the same client id:
    // the server stores it once.
    for (const entry of state.unacked.values()) if (force || entry.socket !== state.socket) sendEntry(entry);
    const decision = state.decision;
    if (decision && (force || decision.socket !== state.socket)) {
      decision.resent = true; // "already decided" then means the first one got through
      if (sendFrame(decision.frame)) decision.socket = state.socket;
    }
  }

  // --- frames from the server --------------------------------------------------------------------
  function handle(frame) {
    if (frame.type === "ack") return onAck(frame);
    if (frame.type === "error") return onError(frame);
    if (state.conversation !== null && frame.conversation != null && frame.conversation !== state.conversation) return;
    if (typeof frame.seq === "number") {
      if (frame.seq <= state.floor || state.seen.has(frame.seq)) return; // already shown
      state.seen.add(frame.seq);
      state.lastSeq = Math.max(state.lastSeq, frame.seq);
      state.rendered.push(frame.seq);
    }
    switch (frame.type) {
      case "status":
        return onStatus(frame);
      case "participant":
        return onParticipant(frame);
      case "token":
        return onToken(frame);
      case "message":
        return onMessage(frame.message || {});
      case "form":
        return onForm(frame);
      case "result":
        return onResult(frame);
      case "resumed":
        return onResumed(frame);
      default:
        return undefined;
    }
  }

  function onAck(frame) {
    const entry = state.unacked.get(frame.id);
    state.unacked.delete(frame.id);
    const record = state.byClientId.get(frame.id);
    if (record) {
      record.note.textContent = "";
      record.node.classList.remove("msg-pending");
      if (frame.message && frame.message.id != null) bindMessage(record, frame.message.id);
    }
    if (state.conversation === null && frame.conversation != null) {
      adoptConversation(frame.conversation, entry ? entry.text : "");
      // The events stored before this socket joined the conversation were not sent to it: catch up.
      sendFrame({ type: "resume", conversation: state.conversation, after: state.lastSeq });
    }
    if (state.starter === frame.id) {
      state.starter = null;
      for (const held of state.unacked.values()) if (held.socket !== state.socket) sendEntry(held);
    }
  }

  function onError(frame) {
    const code = frame.code || "";
    if (code === "closed") setConversationStatus("closed", "");
    if (frame.ref && state.unacked.has(frame.ref)) {
      const entry = state.unacked.get(frame.ref);
      state.unacked.delete(frame.ref);
      if (state.starter === frame.ref) state.starter = null;
      const record = state.byClientId.get(frame.ref);
      if (record) {
        record.node.classList.remove("msg-pending");
        record.node.classList.add("msg-failed");
        record.note.textContent = T.not_sent;
      }
      if (!els.input.value) els.input.value = entry.text; // give the text back to fix and send again
    } else if (state.cancelPending && (code === "not_waiting" || (code === "not_found" && !state.decision))) {
      // Nobody waits to take it any more (a person took it, or it went back to Alfred): the events say which.
      state.cancelPending = false;
      els.cancelHandoff.disabled = false;
      els.handoff.hidden = true;
    } else if (state.decision && DECISION_ERRORS.includes(code)) {
      const decision = state.decision;
      state.decision = null;
      if (decision.resent && RESENT_CONFIRM_ERRORS.has(code)) return; // the first one got through
      const record = state.proposals.get(decision.frame.proposal);
      if (record) record.result.textContent = message(frame);
      if (record && (code === "invalid" || code === "invalid_values")) record.fieldset.disabled = false;
    } else if (code === "too_fast") {
      // Nothing of that frame was kept: send what is still unacknowledged again in a moment.
      setTimeout(() => flushOutbox(true), TOO_FAST_RETRY);
    }
    showError(message(frame), frame.error_id);
  }

  function message(frame) {
    if (frame.code === "rate_limited") {
      const seconds = Math.max(1, Math.ceil(Number(frame.retry_after) || 0));
      if (!frame.retry_after) return T.errors.too_fast;
      return fmt(seconds === 1 ? T.errors.rate_limited_one : T.errors.rate_limited, { seconds });
    }
    return T.errors[frame.code] || T.errors.generic;
  }

  function showError(text, errorId) {
    els.error.textContent = errorId ? text + " " + fmt(T.errors.reference, { id: errorId }) : text;
  }

  function onResumed(frame) {
    if (typeof frame.last_seq === "number") state.lastSeq = Math.max(state.lastSeq, frame.last_seq);
    if (frame.run_status && frame.run_status !== state.runState) setRunState(frame.run_status, "");
    if (!state.resumed) {
      state.resumed = true;
      flushOutbox();
      sendCancelHandoff();
    }
  }

  // A status event is a run state (queued, running, done…) or a change of hands: waiting for a person
  // (handed_off), a person answering (with_staff, text: their name), closed, or back to Alfred (idle).
  function onStatus(frame) {
    const name = frame.state || "";
    if (CONVERSATION_STATES.has(name)) {
      setConversationStatus(name, name === "with_staff" ? frame.text || "" : "");
      setRunState("idle", "");
    } else {
      if (name === "idle" && state.conversationStatus !== "closed") setConversationStatus("open", "");
      setRunState(name, frame.text);
    }
  }

  function setRunState(name, text) {
    state.runState = name || "";
    state.runText = text || "";
    renderStatus();
  }

  // The same rules as status_line() in support/views/chat.py.
  function renderStatus() {
    const words = T.states;
    const conversation = state.conversationStatus;
    const run = state.runState;
    if (conversation === "closed" || ((conversation === "handed_off" || conversation === "with_staff") && !ACTIVE_RUN_STATES.has(run))) {
      els.status.dataset.state = conversation;
      if (conversation === "with_staff") {
        els.statusText.textContent = state.assignee ? fmt(words.with_staff, { name: state.assignee }) : words.with_staff_unnamed;
      } else {
        els.statusText.textContent = words[conversation] || "";
      }
      return;
    }
    els.status.dataset.state = run;
    const text = state.runText;
    const shown = words[run] || "";
    els.statusText.textContent = text && run === "running" ? shown + " " + text : shown || text || "";
  }

  function setConversationStatus(name, assignee) {
    if (state.conversationStatus === "closed") name = "closed"; // a closed conversation stays closed
    state.conversationStatus = name;
    state.assignee = name === "with_staff" ? assignee : "";
    root.dataset.conversationStatus = name;
    root.dataset.assignee = state.assignee;
    const waiting = name === "handed_off";
    if (!waiting) state.cancelPending = false;
    els.handoff.hidden = !waiting;
    els.cancelHandoff.disabled = state.cancelPending;
    const closed = name === "closed";
    els.inputLabel.textContent = waiting || name === "with_staff" ? T.composer.support : T.composer.alfred;
    els.input.disabled = closed;
    els.send.disabled = closed;
    els.inputHint.hidden = closed;
    els.closed.hidden = !closed;
    if (closed) {
      els.composer.dataset.closed = "true";
      closeChoices();
    } else {
      delete els.composer.dataset.closed;
    }
    renderStatus();
  }

  // --- back to Alfred ------------------------------------------------------------------------------
  function cancelHandoff() {
    if (state.conversationStatus !== "handed_off" || state.conversation === null || state.cancelPending) return;
    state.cancelPending = true;
    els.cancelHandoff.disabled = true;
    els.error.textContent = "";
    sendCancelHandoff();
  }

  function sendCancelHandoff() {
    // Not connected: it goes out once the page has caught up after the reconnect (if still waiting then).
    if (!state.cancelPending || !state.resumed) return;
    sendFrame({ type: "cancel_handoff", conversation: state.conversation });
  }

  function onParticipant(frame) {
    append(el("p", { className: "chat-system", "data-seq": frame.seq, "data-action": frame.action }, participantText(frame)));
  }

  // The same rules as participant_text() in support/views/chat.py.
  function participantText(frame) {
    const sentence = T.participant[frame.action] || "";
    return fmt(sentence, { name: frame.name || T.roles.support });
  }

  // --- messages ----------------------------------------------------------------------------------
  // "You", "Alfred", or a person from support: "Sophie Durand · Support" (as _chat_message.html).
  function authorLabel(role, author) {
    if (role === "user") return T.you;
    if (role !== "staff") return T.alfred;
    const roleWord = T.roles.support;
    const name = author && typeof author === "object" && author.name ? String(author.name) : "";
    return name ? name + " · " + roleWord : roleWord;
  }

  function bubble(role, text, attrs, author) {
    const node = el("div", Object.assign({ className: "msg msg-" + role }, attrs || {}));
    node.appendChild(el("p", { className: "msg-author" }, authorLabel(role, author)));
    const textNode = el("p", { className: "msg-text" }, text);
    const note = el("p", { className: "msg-note" });
    node.append(textNode, note);
    return { node, text: textNode, note, length: codePoints(text), complete: false, id: null };
  }

  // A citation's link only when it is a path on this site (the same rule as site_path() in support/views/chat.py):
  // not "//host" nor "/\\host" (browsers read both as another host), no spaces or control characters.
  function sitePath(url) {
    if (typeof url !== "string" || !url.startsWith("/") || url.startsWith("//") || url.includes("\\")) return null;
    return /[\u0000-\u0020\u007f]/.test(url) ? null : url;
  }

  // The articles an answer cites, as "[1] Title — Section" under it (support/_chat_message.html renders the same
  // box after a reload). Titles are text (textContent) and links only ever point at Alfred's own article pages.
  function renderSources(record, citations) {
    if (record.sources) record.sources.remove();
    record.sources = null;
    if (!Array.isArray(citations) || citations.length === 0) return;
    const box = el("div", { className: "msg-sources" });
    box.appendChild(el("p", { className: "msg-sources-title" }, T.sources));
    const list = el("ol", { className: "msg-sources-list" });
    for (const citation of citations) {
      if (!citation || typeof citation !== "object") continue;
      const item = el("li", { value: Number(citation.n) || null });
      const label = "[" + (Number(citation.n) || "?") + "] " + String(citation.title || citation.slug || "");
      const url = sitePath(citation.url);
      item.appendChild(url ? el("a", { href: url, target: "_blank", rel: "noopener" }, label) : el("span", {}, label));
      const section = String(citation.heading || "").split(" › ").slice(1).join(" › ");
      if (section) item.appendChild(el("span", { className: "msg-sources-section" }, " — " + section));
      list.appendChild(item);
    }
    box.appendChild(list);
    record.node.insertBefore(box, record.note);
    record.sources = box;
  }

  function bindMessage(record, id) {
    record.id = id;
    record.node.dataset.messageId = String(id);
    state.messages.set(id, record);
  }

  function addUserMessage(text, clientId) {
    const record = bubble("user", text, { "data-client-id": clientId, className: "msg msg-user msg-pending" });
    record.note.textContent = T.sending;
    state.byClientId.set(clientId, record);
    append(record.node);
    closeChoices();
    return record;
  }

  function assistantRecord(id) {
    let record = state.messages.get(id);
    if (!record) {
      record = bubble("assistant", "");
      bindMessage(record, id);
      append(record.node);
    }
    return record;
  }

  function setText(record, text) {
    const wasNear = nearBottom();
    record.text.textContent = text;
    record.length = codePoints(text);
    scrollIfNear(wasNear);
  }

  function streamingStarted(record) {
    if (!state.streaming.has(record.id)) {
      state.streaming.add(record.id);
      record.node.classList.add("msg-streaming");
      record.note.textContent = T.writing;
      els.log.setAttribute("aria-busy", "true"); // announce the reply once, when it is complete
    }
  }

  function streamingDone(record) {
    state.streaming.delete(record.id);
    record.node.classList.remove("msg-streaming");
    record.note.textContent = "";
    if (state.streaming.size === 0) els.log.removeAttribute("aria-busy");
  }

  function onToken(frame) {
    const record = assistantRecord(frame.message);
    if (record.complete) return;
    streamingStarted(record);
    const delta = Array.from(frame.text || "");
    const offset = Number(frame.offset) || 0;
    if (offset > record.length) return; // a gap: the next snapshot or the final message fills it
    if (offset + delta.length <= record.length) return; // already have it
    const wasNear = nearBottom();
    record.text.textContent += delta.slice(record.length - offset).join("");
    record.length = offset + delta.length;
    scrollIfNear(wasNear);
  }

  function onMessage(data) {
    if (data.id == null) return;
    if (data.role === "user") {
      let record = state.messages.get(data.id) || (data.client_id && state.byClientId.get(data.client_id));
      if (data.client_id && state.unacked.has(data.client_id)) {
        state.unacked.delete(data.client_id); // stored: no need to send it again
        if (state.starter === data.client_id) state.starter = null;
      }
      if (record) {
        record.node.classList.remove("msg-pending");
        record.note.textContent = "";
      } else {
        record = bubble("user", data.text, {});
        append(record.node);
        closeChoices();
      }
      bindMessage(record, data.id);
      record.complete = true;
      return;
    }
    if (data.role === "staff") {
      // A person from support: sent whole, never streamed.
      let record = state.messages.get(data.id);
      if (record) {
        setText(record, data.text || "");
      } else {
        record = bubble("staff", data.text || "", {}, data.author);
        bindMessage(record, data.id);
        append(record.node);
      }
      record.complete = true;
      return;
    }
    const record = assistantRecord(data.id);
    if (data.status === "streaming") {
      if (record.complete) return;
      streamingStarted(record);
      if (codePoints(data.text) >= record.length) setText(record, data.text); // the text so far, after a resume
      return;
    }
    setText(record, data.text || ""); // the stored reply replaces whatever its tokens built
    renderSources(record, data.citations);
    record.complete = true;
    record.node.classList.toggle("msg-failed", data.status === "failed");
    streamingDone(record);
  }

  // --- sending -----------------------------------------------------------------------------------
  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    const bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }

  function sendEntry(entry) {
    if (entry.conversation === null && state.conversation !== null) entry.conversation = state.conversation;
    if (entry.conversation === null) {
      if (state.starter && state.starter !== entry.id) return; // waits for the new conversation's id
      state.starter = entry.id;
    }
    const frame = { type: "message", id: entry.id, conversation: entry.conversation, text: entry.text };
    if (entry.conversation === null) frame.language = root.dataset.language === "fr" ? "fr" : "en";
    if (sendFrame(frame)) entry.socket = state.socket;
  }

  function sendMessage(raw) {
    if (state.conversationStatus === "closed") {
      showError(T.errors.closed);
      return false;
    }
    const text = String(raw || "").trim();
    if (!text) {
      showError(T.errors.empty_message);
      return false;
    }
    if (codePoints(text) > Number(root.dataset.maxChars || 4000)) {
      showError(T.errors.too_long);
      return false;
    }
    els.error.textContent = "";
    const entry = { id: newClientId(), text, conversation: state.conversation, socket: null };
    addUserMessage(text, entry.id);
    state.unacked.set(entry.id, entry);
    sendEntry(entry);
    return true;
  }

  function adoptConversation(id, firstText) {
    state.conversation = id;
    root.dataset.conversation = String(id);
    const url = conversationUrl(id);
    history.replaceState({ conversation: id }, "", url);
    const title = firstText.slice(0, TITLE_LENGTH) || T.new_conversation;
    els.heading.textContent = title;
    document.title = title + " · " + document.title;
    for (const current of els.list.querySelectorAll("[aria-current]")) current.removeAttribute("aria-current");
    const item = el("li");
    const link = el("a", { href: url, "aria-current": "page" });
    link.appendChild(el("span", { className: "chat-list-title" }, title));
    item.appendChild(link);
    els.list.prepend(item);
    els.listEmpty.hidden = true;
  }

  // --- forms -------------------------------------------------------------------------------------
  function onForm(frame) {
    if (frame.kind === "proposal" && frame.proposal) {
      if (state.proposals.has(frame.proposal.id)) return;
      const node = buildProposal(frame.proposal, frame.seq);
      append(node);
      bindProposal(node);
    } else if (frame.kind === "choice") {
      const node = buildChoice(frame);
      append(node);
      bindChoice(node);
    }
  }

  function levelLabel(value, label) {
    return Object.prototype.hasOwnProperty.call(T.levels, value) ? T.levels[value] : label;
  }

  function buildProposal(proposal, seq) {
    const id = proposal.id;
    const form = el("form", {
      className: "chat-form chat-proposal",
      "data-seq": seq,
      "data-proposal-id": id,
      "data-hash": proposal.hash,
      "data-status": proposal.status,
      "aria-labelledby": "proposal-" + id + "-legend",
    });
    const fieldset = el("fieldset");
    fieldset.appendChild(el("legend", { id: "proposal-" + id + "-legend" }, T.proposal[proposal.action] || T.proposal.other));
    fieldset.appendChild(el("p", { className: "proposal-summary" }, proposal.summary));
    const fields = el("div", { className: "proposal-fields" });
    for (const name of ["member", "calendar", "level"]) {
      const field = (proposal.fields || {})[name];
      if (!field || (name === "level" && field.value == null)) continue; // a removal has no level to pick
      const wrapper = el("div", { className: "proposal-field" });
      const selectId = "proposal-" + id + "-" + name;
      wrapper.appendChild(el("label", { for: selectId }, T.proposal[name]));
      const select = el("select", { id: selectId, name, "data-original": field.value == null ? "" : field.value });
      for (const option of field.options || []) {
        const label = name === "level" ? levelLabel(option.value, option.label) : option.label;
        const node = el("option", { value: option.value }, label);
        node.selected = String(option.value) === String(field.value);
        select.appendChild(node);
      }
      wrapper.appendChild(select);
      fields.appendChild(wrapper);
    }
    fieldset.appendChild(fields);
    const actions = el("div", { className: "proposal-actions" });
    actions.appendChild(el("button", { type: "button", className: "primary", "data-decision": "confirm" }, T.proposal.confirm));
    actions.appendChild(el("button", { type: "button", "data-decision": "reject" }, T.proposal.reject));
    fieldset.appendChild(actions);
    form.appendChild(fieldset);
    form.appendChild(el("p", { className: "proposal-result", tabindex: "-1" }));
    return form;
  }

  function bindProposal(form) {
    const id = Number(form.dataset.proposalId);
    const record = {
      id,
      hash: form.dataset.hash,
      form,
      fieldset: form.querySelector("fieldset"),
      result: form.querySelector(".proposal-result"),
    };
    state.proposals.set(id, record);
    form.addEventListener("submit", (event) => event.preventDefault());
    for (const button of form.querySelectorAll("button[data-decision]")) {
      button.addEventListener("click", () => decide(record, button.dataset.decision));
    }
  }

  function decide(record, decision) {
    if (record.fieldset.disabled) return;
    const frame = { type: "confirm", proposal: record.id, hash: record.hash, decision };
    const values = {};
    for (const select of record.form.querySelectorAll("select")) {
      if (select.value !== select.dataset.original) {
        values[select.name] = select.name === "level" ? select.value : Number(select.value);
      }
    }
    if (Object.keys(values).length) frame.values = values;
    record.fieldset.disabled = true;
    record.result.textContent = T.proposal.sending;
    record.result.focus();
    state.decision = { frame, resent: false, socket: null };
    if (sendFrame(frame)) state.decision.socket = state.socket; // else it goes out on the next connection
  }

  function onResult(frame) {
    const record = state.proposals.get(frame.proposal);
    if (state.decision && state.decision.frame.proposal === frame.proposal) state.decision = null;
    if (!record) return;
    record.fieldset.disabled = true;
    record.form.dataset.status = frame.status || "";
    record.result.textContent = resultText(frame);
  }

  // The same rules as result_text() in support/views/chat.py. A later result replaces an earlier one.
  function resultText(frame) {
    const texts = T.result;
    const code = frame.code || "";
    // Its own done-sentence; a result stored before proposals had one: its summary.
    if (frame.status === "executed") return frame.done || fmt(texts.executed, { summary: frame.summary || "" });
    if (frame.status === "awaiting_approval") return texts.awaiting_approval;
    if (frame.status === "confirmed") {
      return code === "approved" ? fmt(texts.approved, { reviewer: frame.reviewer || T.roles.support }) : "";
    }
    if (frame.status === "rejected") {
      if (code !== "refused") return texts.rejected;
      const reason = String(frame.reason || "").trim().replace(/\.+$/, ""); // the sentence puts its own full stop
      return fmt(texts.refused, { reason });
    }
    if (frame.status === "expired") return EXPIRED_CODES.has(code) ? texts[code] : texts.expired;
    return texts[code] && (code === "state_changed" || code === "api_refused") ? texts[code] : texts.failed;
  }

  function buildChoice(frame) {
    const group = el("div", {
      className: "chat-form chat-choice",
      role: "group",
      "aria-label": frame.question || T.choice,
      "data-seq": frame.seq,
      "data-field": frame.field,
    });
    group.appendChild(el("p", { className: "choice-prompt" }, T.choice));
    const options = el("div", { className: "choice-options" });
    for (const option of frame.options || []) {
      const label = option.label == null ? "" : String(option.label);
      const shown = frame.field === "level" ? levelLabel(label, label) : label;
      options.appendChild(el("button", { type: "button", "data-label": label }, shown));
    }
    group.appendChild(options);
    return group;
  }

  function bindChoice(group) {
    for (const button of group.querySelectorAll("button[data-label]")) {
      button.addEventListener("click", () => {
        if (button.disabled) return;
        if (sendMessage(button.dataset.label)) {
          button.classList.add("chosen");
          els.input.focus();
        }
      });
    }
  }

  function closeChoices() {
    for (const group of els.log.querySelectorAll(".chat-choice:not([data-answered])")) {
      group.dataset.answered = "true";
      for (const button of group.querySelectorAll("button")) button.disabled = true;
    }
  }

  // --- the page as the server rendered it ---------------------------------------------------------
  function adoptRenderedHistory() {
    for (const node of els.log.querySelectorAll("[data-seq]")) {
      const seq = Number(node.dataset.seq);
      if (seq > state.floor) {
        state.seen.add(seq); // rendered from the database after the page read the last seq
        state.lastSeq = Math.max(state.lastSeq, seq);
      }
    }
    for (const node of els.log.querySelectorAll(".msg[data-message-id]")) {
      const text = node.querySelector(".msg-text");
      const record = {
        node,
        text,
        note: node.querySelector(".msg-note"),
        length: codePoints(text.textContent),
        complete: true,
        id: null,
        sources: node.querySelector(".msg-sources"), // replaced, not doubled, if the message comes again
      };
      bindMessage(record, Number(node.dataset.messageId));
      if (node.dataset.clientId) state.byClientId.set(node.dataset.clientId, record);
    }
    for (const form of els.log.querySelectorAll(".chat-proposal")) bindProposal(form);
    for (const group of els.log.querySelectorAll(".chat-choice")) bindChoice(group);
    els.log.scrollTop = els.log.scrollHeight;
  }

  // --- the welcome's examples -----------------------------------------------------------------------
  // An example goes into the composer and is sent as if typed; what the person had typed comes back after.
  function sendExample(button) {
    const text = button.textContent.trim();
    const draft = els.input.value;
    els.input.value = text;
    const sent = sendMessage(text);
    els.input.value = sent || draft ? draft : text;
    els.input.focus();
  }

  for (const button of els.welcome.querySelectorAll("button.chat-example")) {
    button.addEventListener("click", () => {
      if (!button.disabled) sendExample(button);
    });
  }

  // --- the composer ------------------------------------------------------------------------------
  els.composer.addEventListener("submit", (event) => {
    event.preventDefault();
    if (sendMessage(els.input.value)) els.input.value = "";
    els.input.focus();
  });
  els.input.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault(); // Enter sends; Shift+Enter keeps its new line
    els.composer.requestSubmit ? els.composer.requestSubmit() : els.composer.dispatchEvent(new Event("submit", { cancelable: true }));
  });
  els.input.addEventListener("input", () => {
    if (els.error.textContent) els.error.textContent = "";
  });
  els.reconnect.addEventListener("click", reconnectNow);
  els.cancelHandoff.addEventListener("click", cancelHandoff);
  window.addEventListener("online", reconnectNow);
  window.addEventListener("offline", () => {
    if (!state.connected) setConnection("offline");
  });
  window.addEventListener("pagehide", () => {
    state.ended = true; // leaving the page: no reconnect
    clearTimeout(state.timer);
    state.timer = null;
    if (state.socket) state.socket.close(1000);
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return; // back from the browser's page cache: connect again
    state.ended = false;
    state.socket = null;
    state.connected = false;
    connect();
  });

  // A small handle for the end-to-end tests (and for debugging in the console).
  const api = {
    get conversation() {
      return state.conversation;
    },
    get lastSeq() {
      return state.lastSeq;
    },
    get connected() {
      return state.connected;
    },
    get rendered() {
      return state.rendered.slice();
    },
    get unacknowledged() {
      return Array.from(state.unacked.keys());
    },
    get conversationStatus() {
      return state.conversationStatus;
    },
    onFrame: null, // called with each frame after it was handled
    dropConnection() {
      // Closes the socket as a network failure would: the page reconnects and resumes.
      const socket = state.socket;
      if (!socket) return;
      state.connected = false; // nothing more goes into a closing socket; it is sent again after the reconnect
      socket.close(4000, "test");
    },
  };
  window.alfredChat = api;

  adoptRenderedHistory();
  setConversationStatus(state.conversationStatus, state.assignee);
  connect();
})();
