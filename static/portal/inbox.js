"use strict";
// Conversation page: poll for new messages every 3 s and refresh the status of pending ones.
(function () {
  const POLL_MS = 3000;
  const PENDING = new Set(["queued", "sending", "unknown"]);

  function csrfToken() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function link(href, text, external) {
    const a = element("a", "media-link", text);
    a.href = href;
    a.target = "_blank";
    a.rel = external ? "noopener noreferrer" : "noopener";
    return a;
  }

  // Build the same markup as templates/sms/_bubble.html; every text goes through textContent.
  function bubble(message) {
    const li = element("li", `bubble bubble-${message.direction}`);
    li.dataset.id = message.id;
    li.dataset.status = message.status;
    if (message.body) {
      const body = element("div", "bubble-body");
      message.body.split("\n").forEach((line, index) => {
        if (index) body.appendChild(document.createElement("br"));
        body.appendChild(document.createTextNode(line));
      });
      li.appendChild(body);
    }
    if (message.media.length || message.media_links.length) {
      const media = element("div", "bubble-media");
      message.media.forEach((item) => {
        if (item.image) {
          const a = link(item.url, "", false);
          a.className = "";
          const img = element("img");
          img.src = item.url;
          img.alt = item.name;
          img.loading = "lazy";
          a.appendChild(img);
          media.appendChild(a);
        } else {
          media.appendChild(link(item.url, item.name || "attachment", false));
        }
      });
      message.media_links.forEach((url) => media.appendChild(link(url, url, true)));
      li.appendChild(media);
    }
    const meta = element("div", "bubble-meta");
    const time = element("time", "", message.at_display);
    time.dateTime = message.at;
    meta.appendChild(time);
    if (message.direction === "out") {
      meta.appendChild(document.createTextNode(" · "));
      meta.appendChild(element("span", `status status-${message.status}`, message.status_label));
    }
    li.appendChild(meta);
    if (message.error_message) li.appendChild(element("div", "bubble-error", message.error_message));
    if (message.retry_url) {
      const form = element("form", "retry-form");
      form.method = "post";
      form.action = message.retry_url;
      const token = element("input");
      token.type = "hidden";
      token.name = "csrfmiddlewaretoken";
      token.value = csrfToken();
      form.appendChild(token);
      const button = element("button", "", "Retry");
      button.type = "submit";
      form.appendChild(button);
      li.appendChild(form);
    }
    return li;
  }

  function nearBottom() {
    return window.innerHeight + window.scrollY >= document.body.scrollHeight - 80;
  }

  function start() {
    const list = document.getElementById("bubbles");
    if (!list) return;
    let lastId = Number(list.dataset.lastId || 0);
    let busy = false;

    function pendingIds() {
      return Array.from(list.querySelectorAll(".bubble-out"))
        .filter((li) => PENDING.has(li.dataset.status))
        .map((li) => li.dataset.id);
    }

    async function poll() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const url = new URL(list.dataset.pollUrl, window.location.href);
        url.searchParams.set("after", String(lastId));
        const pending = pendingIds();
        if (pending.length) url.searchParams.set("pending", pending.join(","));
        const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const data = await response.json();
        const follow = nearBottom();
        data.updated.forEach((message) => {
          const old = list.querySelector(`.bubble[data-id="${message.id}"]`);
          if (old && old.dataset.status !== message.status) old.replaceWith(bubble(message));
        });
        data.messages.forEach((message) => {
          if (list.querySelector(`.bubble[data-id="${message.id}"]`)) return;
          list.appendChild(bubble(message));
          lastId = Math.max(lastId, message.id);
        });
        if (data.messages.length) {
          const empty = document.getElementById("no-messages");
          if (empty) empty.remove();
          if (follow) window.scrollTo(0, document.body.scrollHeight);
        }
        const form = document.getElementById("reply-form");
        const template = document.getElementById("opted-out-text");
        if (data.opted_out && form && template) form.replaceWith(template.content.cloneNode(true));
      } catch (error) {
        // A network hiccup: the next tick tries again.
      } finally {
        busy = false;
      }
    }

    window.scrollTo(0, document.body.scrollHeight);
    window.setInterval(poll, POLL_MS);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
