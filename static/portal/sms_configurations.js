"use strict";
// SMS/MMS configurations: toolbar, Copy Webhook, double-click to open, inline Enable, Verify.
(function () {
  // Translated by Django's JavaScript catalogue (/jsi18n/), loaded before this file; English
  // when it is missing.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, count) => (count === 1 ? one : many));
  const interpolate = window.interpolate
    || ((format, values) => format.replace(/%\((\w+)\)s/g, (match, name) => String(values[name])));
  function csrfToken() {
    const input = document.querySelector("[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function say(element, text, kind) {
    if (!element) return;
    element.textContent = text;
    element.className = kind || "";
  }

  function selectedRows() {
    return Array.from(document.querySelectorAll("#result_list input.action-select:checked")).map(
      (box) => box.closest("tr")
    );
  }

  function showFallback(url) {
    const box = document.getElementById("webhook-fallback");
    const input = document.getElementById("webhook-fallback-input");
    if (!box || !input) return;
    box.hidden = false;
    input.value = url;
    input.focus();
    input.select();
  }

  async function copyText(text) {
    if (!navigator.clipboard || !window.isSecureContext) throw new Error("no clipboard");
    await navigator.clipboard.writeText(text);
  }

  function oneSelected(message, verb) {
    const rows = selectedRows();
    if (rows.length !== 1) {
      say(message, interpolate(rows.length === 0
        ? gettext("Select one configuration, then click %(verb)s.")
        : gettext("Select only one configuration, then click %(verb)s."), { verb }, true), "warning");
      return null;
    }
    return rows[0];
  }

  function setUpList() {
    const message = document.getElementById("toolbar-message");
    const copy = document.getElementById("toolbar-copy-webhook");
    if (!copy) return;
    copy.addEventListener("click", async () => {
      const row = oneSelected(message, gettext("Copy Webhook"));
      if (!row) return;
      const url = row.querySelector("a.config-name").dataset.webhookUrl;
      try {
        await copyText(url);
        say(message, gettext("Webhook URL copied to the clipboard."), "success");
      } catch (error) {
        say(message, gettext("The clipboard is not available here: copy the URL from the box."), "warning");
        showFallback(url);
      }
    });
    document.getElementById("toolbar-edit").addEventListener("click", () => {
      const row = oneSelected(message, gettext("Edit"));
      if (row) window.location.href = row.querySelector("a.config-name").dataset.detailsUrl.replace(/details\/$/, "change/");
    });
    document.getElementById("toolbar-delete").addEventListener("click", () => {
      if (selectedRows().length === 0) {
        say(message, gettext("Select the configurations to delete, then click Delete."), "warning");
        return;
      }
      const form = document.getElementById("changelist-form");
      const action = form.querySelector("select[name=action]");
      action.value = "delete_selected";
      form.querySelector("button[name=index]").click();
    });
    document.getElementById("toolbar-refresh").addEventListener("click", () => window.location.reload());

    document.querySelectorAll("#result_list tbody tr").forEach((row) => {
      row.addEventListener("dblclick", (event) => {
        if (event.target.closest("input, label, a, button")) return;
        const link = row.querySelector("a.config-name");
        if (link) window.location.href = link.dataset.detailsUrl;
      });
    });

    document.querySelectorAll("input.enable-toggle").forEach((toggle) => {
      toggle.addEventListener("change", async () => {
        const label = toggle.parentElement.querySelector(".switch-label");
        const body = new URLSearchParams({ enabled: toggle.checked ? "true" : "false" });
        try {
          const response = await fetch(toggle.dataset.url, {
            method: "POST",
            headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
            body,
            credentials: "same-origin",
          });
          if (!response.ok) throw new Error(String(response.status));
          const data = await response.json();
          toggle.checked = data.enabled;
          label.textContent = data.enabled ? gettext("On") : gettext("Off");
          say(message, data.enabled ? gettext("Configuration enabled.") : gettext("Configuration disabled."), "success");
        } catch (error) {
          toggle.checked = !toggle.checked;
          say(message, gettext("The change was not saved; try again."), "error");
        }
      });
    });
  }

  function setUpDetails() {
    const details = document.querySelector(".config-details");
    if (!details) return;
    const copyButton = document.getElementById("copy-webhook");
    const copyMessage = document.getElementById("copy-message");
    copyButton.addEventListener("click", async () => {
      const input = document.getElementById("webhook-url");
      try {
        await copyText(input.value);
        say(copyMessage, gettext("Copied."), "success");
      } catch (error) {
        input.focus();
        input.select();
        say(copyMessage, gettext("Press Ctrl+C to copy the selected URL."), "warning");
      }
    });

    const rotateForm = document.getElementById("rotate-form");
    rotateForm.addEventListener("submit", (event) => {
      if (!window.confirm(rotateForm.dataset.confirm)) event.preventDefault();
    });

    const form = document.getElementById("verify-form");
    const progress = document.getElementById("verify-progress");
    async function poll() {
      const response = await fetch(details.dataset.verificationUrl, { credentials: "same-origin" });
      const data = await response.json();
      if (data.status === "running") {
        const verifying = gettext("Verifying");
        progress.textContent = progress.textContent.length > verifying.length + 4 ? verifying : progress.textContent + ".";
        window.setTimeout(poll, 700);
      } else {
        window.location.reload();
      }
    }
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      progress.textContent = gettext("Verifying…");
      progress.className = "running";
      const response = await fetch(form.action, {
        method: "POST",
        headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        progress.textContent = gettext("Could not start the verification.");
        return;
      }
      window.setTimeout(poll, 500);
    });
    if (progress.classList.contains("running")) window.setTimeout(poll, 700);
    watchCredentials();
  }

  // The credentials check runs in the background after a save: poll until it has an answer.
  function watchCredentials() {
    const banner = document.getElementById("credentials-check");
    if (!banner || banner.dataset.status !== "checking") return;
    let tries = 0;
    async function check() {
      tries += 1;
      let data;
      try {
        const response = await fetch(banner.dataset.url, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
        });
        if (!response.ok) throw new Error(String(response.status));
        data = await response.json();
      } catch (error) {
        data = { status: "checking" };
      }
      if (data.status === "checking") {
        // Fast at first, then every 10 s: a lost task is published again by the sweeper.
        window.setTimeout(check, tries < 30 ? 1000 : 10000);
        return;
      }
      banner.dataset.status = data.status;
      banner.className = `credentials-banner credentials-${data.status}`;
      const label = banner.dataset[`label${data.status.charAt(0).toUpperCase()}${data.status.slice(1)}`];
      banner.querySelector(".credentials-title").textContent = label || data.label;
      banner.querySelector(".credentials-error").textContent = data.error || "";
      banner.querySelector(".credentials-when").textContent = "";
    }
    window.setTimeout(check, 700);
  }

  document.addEventListener("DOMContentLoaded", () => {
    setUpList();
    setUpDetails();
  });
})();
