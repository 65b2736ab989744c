"use strict";
// The phone simulator: show the thread between the pretend handset and the DID, refreshed.
document.addEventListener("DOMContentLoaded", () => {
  // Translated by Django's JavaScript catalogue (/jsi18n/), loaded before this file; English
  // when it is missing.
  const gettext = window.gettext || ((text) => text);
  const screen = document.getElementById("sandbox-screen");
  if (!screen) return;
  const threadUrl = screen.dataset.threadUrl;
  const refreshMs = Number(screen.dataset.refreshMs);
  const didField = document.getElementById("sandbox-did");
  const handsetField = document.getElementById("sandbox-handset");
  let lastRendered = "";

  function safeHref(url) {
    return /^(https?:\/\/|\/)/i.test(url) ? url : "#";
  }

  function render(data) {
    const key = JSON.stringify(data.messages);
    if (key === lastRendered) { return; }
    lastRendered = key;
    screen.replaceChildren();
    if (!data.messages.length) {
      const empty = document.createElement("p");
      empty.className = "empty";
      empty.textContent = screen.dataset.emptyText || gettext("No messages yet between this handset and this DID.");
      screen.append(empty);
      return;
    }
    for (const message of data.messages) {
      const bubble = document.createElement("div");
      bubble.className = "bubble " + (message.from_handset ? "handset" : "portal");
      bubble.append(document.createTextNode(message.text));
      for (const url of message.media) {
        const link = document.createElement("a");
        link.href = safeHref(url);
        link.target = "_blank";
        link.rel = "noopener noreferrer";
        link.textContent = "📎 " + gettext("media");
        bubble.append(document.createElement("br"), link);
      }
      const meta = document.createElement("span");
      meta.className = "meta";
      meta.textContent = message.at_display + " · " + message.kind.toUpperCase() + " " + message.id + " · " + message.status;
      bubble.append(meta);
      screen.append(bubble);
    }
    screen.scrollTop = screen.scrollHeight;
  }

  async function refresh() {
    const params = new URLSearchParams({did: didField.value, handset: handsetField.value});
    try {
      const response = await fetch(threadUrl + "?" + params, {headers: {"Accept": "application/json"}, credentials: "same-origin"});
      if (response.ok) { render(await response.json()); }
    } catch (error) {
      /* The next tick tries again. */
    }
  }

  const viaField = document.getElementById("sandbox-via");
  // Deliver the way the chosen DID is set up: its webhook, else its URL callback.
  function followDid() {
    const option = didField.selectedOptions[0];
    if (viaField && option && option.dataset.via) { viaField.value = option.dataset.via; }
  }
  followDid();
  didField.addEventListener("change", () => { followDid(); lastRendered = ""; refresh(); });
  handsetField.addEventListener("change", () => { lastRendered = ""; refresh(); });
  refresh();
  setInterval(refresh, refreshMs);
});
