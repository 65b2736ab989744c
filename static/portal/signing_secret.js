"use strict";
// Signing secrets: Reveal (fetched on demand, audited), Copy to the clipboard, Rotate.
(function () {
  function csrfToken() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  async function post(url) {
    const response = await fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    return response.json();
  }

  function setUp(panel) {
    const value = panel.querySelector(".secret-value");
    const message = panel.querySelector(".secret-message");
    const say = (text, kind) => {
      message.textContent = text;
      message.className = `secret-message ${kind || ""}`;
    };
    let secret = "";

    async function fetchSecret() {
      if (!secret) secret = (await post(panel.dataset.revealUrl)).secret;
      return secret;
    }

    panel.querySelector(".secret-reveal").addEventListener("click", async () => {
      try {
        value.value = await fetchSecret();
        value.select();
        say(panel.dataset.msgShown, "warning");
      } catch (error) {
        say(`${panel.dataset.msgReadFailed} (${error.message})`, "error");
      }
    });

    panel.querySelector(".secret-copy").addEventListener("click", async () => {
      let text;
      try {
        text = await fetchSecret();
      } catch (error) {
        say(`${panel.dataset.msgReadFailed} (${error.message})`, "error");
        return;
      }
      try {
        if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
        await navigator.clipboard.writeText(text);
        say(panel.dataset.msgCopied, "success");
      } catch (error) {
        value.value = text;
        value.select();
        say(panel.dataset.msgNoClipboard, "warning");
      }
    });

    panel.querySelector(".secret-rotate").addEventListener("click", async () => {
      if (!window.confirm(panel.dataset.rotateConfirm)) return;
      try {
        const answer = await post(panel.dataset.rotateUrl);
        secret = answer.secret;
        value.value = secret;
        say(answer.message, "success");
      } catch (error) {
        say(`${panel.dataset.msgRotateFailed} (${error.message})`, "error");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".signing-secret[data-reveal-url]").forEach(setUp);
  });
})();
