/* The knowledge base console: a live preview of the Markdown being edited, and index states that refresh
   while a worker indexes. The pages work without it (a Preview button; a reload shows the states). */
(function () {
  "use strict";

  const ACTIVE_INDEX_STATES = ["pending", "indexing"];
  const POLL_FIRST_MS = 1000;
  const POLL_MAX_MS = 10000;

  async function getJson(response) {
    const type = response.headers.get("Content-Type") || "";
    return response.ok && type.includes("application/json") ? response.json() : null; // e.g. the login page
  }

  function livePreview() {
    const body = document.getElementById("id_body");
    const preview = document.getElementById("kb-preview");
    if (!body || !preview) return;
    const form = body.form;
    const button = form.querySelector("button[value=preview]");
    let timer = null;
    let sent = 0;

    async function refresh() {
      const request = ++sent;
      const data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.append("body", body.value);
      try {
        const result = await getJson(await fetch(preview.dataset.previewUrl, { method: "POST", body: data, credentials: "same-origin" }));
        if (!result || request !== sent) return; // a newer preview is on its way
        if (result.html.trim()) {
          preview.innerHTML = result.html; // rendered and sanitized (nh3) by the server
        } else {
          const empty = document.createElement("p");
          empty.className = "kb-hint";
          empty.textContent = preview.dataset.empty;
          preview.replaceChildren(empty);
        }
      } catch (error) {
        // offline: the Preview button still works once the connection is back
      }
    }

    body.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(refresh, 300);
    });
    button.addEventListener("click", (event) => {
      event.preventDefault();
      refresh();
    });
  }

  function indexStates() {
    const root = document.querySelector("[data-status-url]");
    if (!root) return;
    const text = document.getElementById("kb-job-text");
    const bar = document.getElementById("kb-job-progress");
    const badges = () => Array.from(document.querySelectorAll("[data-index-state]"));
    const busy = () =>
      root.dataset.jobActive === "true" || badges().some((badge) => ACTIVE_INDEX_STATES.includes(badge.dataset.indexState));
    let delay = POLL_FIRST_MS;

    async function poll() {
      const ids = badges().map((badge) => badge.dataset.articleId).join(",");
      try {
        const status = await getJson(await fetch(`${root.dataset.statusUrl}?ids=${ids}`, { credentials: "same-origin" }));
        if (status) apply(status);
      } catch (error) {
        // offline: try again later
      }
      delay = Math.min(delay * 1.3, POLL_MAX_MS);
      if (busy()) setTimeout(poll, delay);
    }

    function apply(status) {
      for (const badge of badges()) {
        const article = status.articles[badge.dataset.articleId];
        if (!article || article.index_state === badge.dataset.indexState) continue;
        badge.dataset.indexState = article.index_state;
        badge.className = `kb-badge kb-index-${article.index_state}`;
        badge.textContent = article.label;
      }
      if (status.job && text && bar) {
        text.textContent = status.job.text;
        bar.value = status.job.percent;
        bar.textContent = `${status.job.percent}%`;
        bar.hidden = false;
        root.dataset.jobActive = String(status.job.active);
      } else if (!status.job && text && bar && root.dataset.jobActive === "true") {
        // The job it showed indexed nothing (nothing published): it is not one to show.
        text.textContent = root.dataset.noJob || "";
        bar.hidden = true;
        root.dataset.jobActive = "false";
      }
    }

    if (busy()) setTimeout(poll, delay);
  }

  livePreview();
  indexStates();
})();
