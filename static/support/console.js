/* The support console's live parts (/ws/console/, docs/chat-protocol.md).
 *
 * The pages are rendered on the server; this script only keeps them current. It watches the inbox (or one
 * conversation) over the console socket and, when told that something changed, reads the page again and
 * swaps its live part (#console-inbox-list or #console-live-part), so the page shows what a reload would.
 * On a conversation page it also sends the reply form without a reload; a reply that could not be sent
 * stays in the box. Reconnects with backoff, and re-reads the page after a reconnect (nothing missed).
 */
(function () {
  "use strict";

  const root = document.querySelector("[data-live]");
  if (!root) return;
  const T = JSON.parse(document.getElementById("console-strings").textContent);
  const liveText = document.getElementById("console-live-text");
  const part = document.getElementById("console-live-part") || document.getElementById("console-inbox-list");
  const conversation = root.dataset.conversation ? Number(root.dataset.conversation) : null;
  const REFRESH_DELAY = 150; // several events of one change (a message, a status) cost one refresh
  const state = { socket: null, attempt: 0, timer: null, refreshTimer: null, ended: false, refreshing: false, again: false };

  function setLive(name) {
    root.dataset.connection = name;
    liveText.textContent = T[name] || "";
  }

  function connect() {
    if (state.ended) return;
    setLive(state.attempt ? "reconnecting" : "connecting");
    const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws/console/");
    state.socket = socket;
    socket.addEventListener("open", () => {
      socket.send(JSON.stringify({ type: "watch", conversation }));
    });
    socket.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      if (frame.type === "watching") {
        const wasReconnect = state.attempt > 0;
        state.attempt = 0;
        setLive("live");
        if (wasReconnect) scheduleRefresh(); // what changed while the socket was down
        return;
      }
      if (frame.type === "token" || frame.type === "error") return;
      scheduleRefresh();
      if (typeof api.onFrame === "function") api.onFrame(frame);
    });
    socket.addEventListener("close", (event) => {
      if (socket !== state.socket) return;
      state.socket = null;
      if (event.code === 4401) {
        state.ended = true;
        setLive("ended");
        return;
      }
      const delay = Math.min(30000, 1000 * 2 ** state.attempt) * (0.8 + Math.random() * 0.4);
      state.attempt += 1;
      setLive("reconnecting");
      state.timer = setTimeout(connect, delay);
    });
  }

  function scheduleRefresh() {
    clearTimeout(state.refreshTimer);
    state.refreshTimer = setTimeout(refresh, REFRESH_DELAY);
  }

  async function refresh() {
    if (state.refreshing) {
      state.again = true;
      return;
    }
    state.refreshing = true;
    try {
      // live=1: the page without its one-time messages ("Taken over", "Approved"), which stay for the tab that acted.
      const url = new URL(location.href);
      url.searchParams.set("live", "1");
      const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!response.ok) return;
      const page = new DOMParser().parseFromString(await response.text(), "text/html");
      const fresh = page.getElementById(part.id);
      if (fresh) {
        const open = new Set(Array.from(part.querySelectorAll("details[open][data-run]"), (d) => d.dataset.run));
        part.replaceChildren(...Array.from(fresh.childNodes, (node) => document.importNode(node, true)));
        for (const details of part.querySelectorAll("details[data-run]")) {
          if (open.has(details.dataset.run)) details.open = true; // keep what staff unfolded
        }
        syncReplyForm();
        api.refreshes += 1;
      }
    } finally {
      state.refreshing = false;
      if (state.again) {
        state.again = false;
        scheduleRefresh();
      }
    }
  }

  // --- replies (conversation page) -------------------------------------------------------------------
  const form = document.getElementById("console-reply");

  function syncReplyForm() {
    if (!form) return;
    const actions = document.getElementById("console-actions");
    form.hidden = !(actions && actions.dataset.mine === "true");
  }

  function newClientId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") return window.crypto.randomUUID();
    return String(Date.now()) + Math.random().toString(16).slice(2);
  }

  if (form) {
    const box = form.querySelector("textarea");
    const error = document.getElementById("console-reply-error");
    const clientId = form.querySelector("input[name=client_id]");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      if (!box.value.trim()) return;
      if (!clientId.value) clientId.value = newClientId(); // the same id until it is stored: never sent twice
      error.textContent = T.sending;
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      try {
        const response = await fetch(form.action, {
          method: "POST",
          body: new FormData(form),
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        const body = await response.json().catch(() => ({}));
        if (response.ok) {
          box.value = "";
          clientId.value = "";
          error.textContent = "";
          scheduleRefresh();
        } else {
          error.textContent = body.detail || T.failed; // the text stays in the box
        }
      } catch (failure) {
        error.textContent = T.failed;
      } finally {
        button.disabled = false;
        box.focus();
      }
    });
    box.addEventListener("keydown", (event) => {
      if (event.key !== "Enter" || event.shiftKey || event.isComposing) return;
      event.preventDefault();
      form.requestSubmit();
    });
  }

  window.addEventListener("pagehide", () => {
    state.ended = true;
    clearTimeout(state.timer);
    if (state.socket) state.socket.close(1000);
  });
  window.addEventListener("pageshow", (event) => {
    if (!event.persisted) return; // back from the browser's page cache: watch again
    state.ended = false;
    state.socket = null;
    state.attempt = 1; // counted as a reconnect: the page is re-read once watching, so nothing is missed
    connect();
  });

  const api = { refreshes: 0, onFrame: null, refresh };
  window.alfredConsole = api;
  connect();
})();
