// execlog viewer: the trace's side panel and live updates. No inline handlers, no other host:
// every request goes to this server and every fragment it returns is rendered (and escaped)
// there.
"use strict";

(function () {
  const dataNode = document.getElementById("page-data");
  if (!dataNode) {
    return;
  }
  const data = JSON.parse(dataNode.textContent);
  const panel = document.getElementById("panel");
  let selected = new URLSearchParams(window.location.search).get("selected");

  function current() {
    const shown = panel.querySelector("[data-selected]");
    return selected || (shown ? shown.dataset.selected : null);
  }

  function markSelected() {
    const chosen = current();
    document.querySelectorAll("#waterfall .row").forEach(function (row) {
      row.classList.toggle("selected", row.dataset.exec === chosen);
    });
  }

  async function fetchHTML(url) {
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) {
      throw new Error(url + ": " + response.status);
    }
    const text = await response.text();
    return new DOMParser().parseFromString(text, "text/html");
  }

  async function show(executionId) {
    const doc = await fetchHTML("/execution/" + encodeURIComponent(executionId) + "/panel");
    const body = doc.querySelector(".panel-body");
    if (body) {
      panel.replaceChildren(document.importNode(body, true));
    }
    selected = executionId;
    const url = new URL(window.location.href);
    url.searchParams.set("selected", executionId);
    window.history.replaceState(null, "", url);
    markSelected();
  }

  document.addEventListener("click", function (event) {
    const row = event.target.closest("#waterfall .row");
    if (!row || event.target.closest("a") || event.metaKey || event.ctrlKey) {
      return;
    }
    event.preventDefault();
    show(row.dataset.exec).catch(function (error) { console.error(error); });
  });

  async function refresh() {
    const url = "/trace/" + encodeURIComponent(data.correlation_id) + "/waterfall";
    const doc = await fetchHTML(url);
    const fresh = doc.getElementById("waterfall");
    const old = document.getElementById("waterfall");
    if (fresh && old) {
      old.replaceWith(document.importNode(fresh, true));
      markSelected();
    }
    return fresh && fresh.dataset.running === "1";
  }

  function poll() {
    window.setTimeout(function () {
      refresh().then(function (running) {
        if (running) {
          poll();
        } else if (current()) {
          show(current()).catch(function (error) { console.error(error); });
          document.querySelectorAll(".summary .live").forEach(function (mark) { mark.remove(); });
        }
      }).catch(function () { poll(); });
    }, 2000);
  }

  markSelected();
  if (data.live) {
    poll();
  }
})();
