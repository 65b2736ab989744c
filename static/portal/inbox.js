"use strict";
// Conversation page: poll for new messages every 3 s and refresh the status of pending ones.
// Reply and compose boxes: count UTF-8 bytes and SMS parts as the text is typed.
// Compose page: From as a search box over the user's numbers when they are too many to list.
// Every inbox page: the conversation list live, opt-in notifications, pictures to attach.
(function () {
  // Translated by Django's JavaScript catalogue (/jsi18n/), loaded before this file; English
  // when it is missing.
  const gettext = window.gettext || ((text) => text);
  const ngettext = window.ngettext || ((one, many, count) => (count === 1 ? one : many));
  const interpolate = window.interpolate
    || ((format, values) => format.replace(/%\((\w+)\)s/g, (match, name) => String(values[name])));
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
      const button = element("button", "", gettext("Retry"));
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

  // --- live counter: the same parts as sms/splitting.py split_sms ---------------------------

  const encoder = new TextEncoder();
  // Python's str.isspace(), which split_sms uses to find a word break (JS's \s differs).
  const SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+$/;
  const segmenter =
    typeof Intl !== "undefined" && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: "grapheme" }) : null;

  function utf8Length(text) {
    return encoder.encode(text).length;
  }

  function graphemes(text, limit) {
    const all = segmenter ? Array.from(segmenter.segment(text), (s) => s.segment) : Array.from(text);
    // A grapheme longer than a whole part is cut between code points, as split_sms does.
    return all.flatMap((g) => (utf8Length(g) <= limit ? [g] : Array.from(g)));
  }

  function splitSms(text, limit) {
    if (utf8Length(text) <= limit) return [text];
    const parts = [];
    let current = [];
    let size = 0;
    let lastSpace = -1; // index in `current` just after the last whitespace grapheme
    graphemes(text, limit).forEach((g) => {
      const width = utf8Length(g);
      if (size + width > limit && current.length) {
        if (lastSpace > 0 && lastSpace < current.length) {
          parts.push(current.slice(0, lastSpace).join(""));
          current = current.slice(lastSpace);
        } else {
          parts.push(current.join(""));
          current = [];
        }
        size = current.reduce((sum, c) => sum + utf8Length(c), 0);
        lastSpace = -1;
        if (size + width > limit && current.length) {
          // The word carried over and this grapheme still do not fit: cut the word here.
          parts.push(current.join(""));
          current = [];
          size = 0;
        }
      }
      current.push(g);
      size += width;
      if (SPACE.test(g)) lastSpace = current.length;
    });
    if (current.length) parts.push(current.join(""));
    return parts;
  }

  // The element whose data tell what the chosen DID's configuration does: the selected option
  // of a From list, or the From search box itself, which carries the picked suggestion's data.
  function chosenSender(field) {
    return field.tagName === "SELECT" ? field.selectedOptions[0] : field;
  }

  // What the chosen DID's configuration does with long texts, and whether media are attached.
  function senderSettings(textarea) {
    const field = textarea.dataset.sender ? document.getElementById(textarea.dataset.sender) : null;
    const source = field ? chosenSender(field) : textarea;
    const media = textarea.dataset.media ? document.getElementById(textarea.dataset.media) : null;
    const files = textarea.dataset.attachments ? document.getElementById(textarea.dataset.attachments) : null;
    const attached =
      (media && !media.disabled && Array.from(media.querySelectorAll("input")).some((i) => i.value.trim())) ||
      (files && files.files && files.files.length > 0);
    return { policy: (source && source.dataset.longMessagePolicy) || "split", attached: Boolean(attached) };
  }

  function describe(text, settings, limits) {
    const bytes = utf8Length(text);
    const characters = Array.from(text).length;
    const mms = settings.attached || (bytes > limits.smsBytes && settings.policy === "mms");
    let summary;
    if (mms) {
      summary = interpolate(gettext("%(bytes)s bytes · sent as 1 MMS"), { bytes }, true);
    } else {
      // As message_build_parts: a part of only white space is left out.
      const parts = splitSms(text, limits.smsBytes).filter((part) => part && !SPACE.test(part)).length;
      summary = interpolate(
        ngettext("%(bytes)s bytes · %(parts)s SMS part", "%(bytes)s bytes · %(parts)s SMS parts", parts),
        { bytes, parts },
        true,
      );
    }
    let warning = "";
    if (characters > limits.mmsChars) {
      warning = mms
        ? interpolate(gettext("%(characters)s characters: an MMS holds at most %(limit)s"), { characters, limit: limits.mmsChars }, true)
        : interpolate(gettext("%(characters)s characters: over %(limit)s"), { characters, limit: limits.mmsChars }, true);
    }
    return { summary, warning };
  }

  function attachCounter(textarea) {
    const counter = document.getElementById(textarea.dataset.counter);
    if (!counter) return;
    const limits = {
      smsBytes: Number(counter.dataset.smsBytes || 160),
      mmsChars: Number(counter.dataset.mmsChars || 2048),
    };
    function update() {
      const { summary, warning } = describe(textarea.value, senderSettings(textarea), limits);
      counter.textContent = warning ? `${summary} · ${warning}` : summary;
      counter.classList.toggle("warning", Boolean(warning));
    }
    textarea.addEventListener("input", update);
    const form = textarea.form;
    if (form) {
      form.addEventListener("change", update);
      form.addEventListener("input", (event) => {
        if (event.target !== textarea) update();
      });
    }
    update();
  }

  // Compose page: the attachment fields only for a DID whose configuration sends MMS.
  function attachMediaToggle(field) {
    const media = document.getElementById(field.dataset.media);
    if (!media) return;
    function update() {
      const source = chosenSender(field);
      const on = Boolean(source && source.dataset.channel === "mms");
      media.hidden = !on;
      media.disabled = !on;
    }
    field.addEventListener("change", update);
    field.addEventListener("input", update);
    update();
  }

  // --- From as a search box, for users with more numbers than a list can hold ------------------
  // A WAI-ARIA combobox with a listbox popup: the suggestions come from the server as the digits
  // are typed; arrows move through them, Enter picks one, Escape closes the list. A picked
  // number's channel and long-message policy are copied onto the input for the counter and the
  // attachment fields; the server still checks the number when the form is sent.

  const SEARCH_DELAY_MS = 150;

  function digitsOf(text) {
    return text.replace(/[\s+().-]/g, "");
  }

  function attachSenderSearch(input) {
    const list = document.getElementById(input.getAttribute("aria-controls"));
    const status = document.getElementById(input.dataset.status);
    let senders = [];
    let active = -1;
    let timer = 0;
    let controller = null;

    function setChosen(sender) {
      if (sender) {
        input.dataset.chosen = sender.did;
        input.dataset.channel = sender.channel;
        input.dataset.longMessagePolicy = sender.long_message_policy;
      } else {
        delete input.dataset.chosen;
        delete input.dataset.channel;
        delete input.dataset.longMessagePolicy;
      }
    }

    function highlight(index) {
      active = index;
      Array.from(list.children).forEach((option, i) => option.setAttribute("aria-selected", String(i === index)));
      if (index < 0) {
        input.removeAttribute("aria-activedescendant");
        return;
      }
      const option = list.children[index];
      input.setAttribute("aria-activedescendant", option.id);
      option.scrollIntoView({ block: "nearest" });
    }

    function open() {
      if (!senders.length) return;
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function close() {
      highlight(-1);
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
    }

    function choose(index) {
      const sender = senders[index];
      input.value = sender.did;
      setChosen(sender);
      close();
      input.dispatchEvent(new Event("change", { bubbles: true }));
    }

    function option(sender, index, digits) {
      const li = element("li", "sender-option");
      li.id = `${list.id}-${index}`;
      li.setAttribute("role", "option");
      li.setAttribute("aria-selected", "false");
      li.dataset.did = sender.did;
      const at = digits ? sender.did.indexOf(digits, 1) : -1;
      if (at > 0) {
        li.append(sender.did.slice(0, at), element("mark", "", digits), sender.did.slice(at + digits.length));
      } else {
        li.textContent = sender.did;
      }
      // Keep the focus in the input, so that a click picks the number without a blur first.
      li.addEventListener("mousedown", (event) => event.preventDefault());
      li.addEventListener("click", () => choose(index));
      return li;
    }

    function show(data, digits) {
      senders = data.senders;
      list.replaceChildren(...senders.map((sender, index) => option(sender, index, digits)));
      highlight(-1);
      if (!senders.length) status.textContent = gettext("None of your numbers contains these digits.");
      else if (data.more) status.textContent = interpolate(gettext("The first %(count)s matches: type more digits to narrow them."), { count: senders.length }, true);
      else status.textContent = interpolate(ngettext("%(count)s number matches.", "%(count)s numbers match.", senders.length), { count: senders.length }, true);
      // A whole number typed out is chosen without a pick from the list.
      const whole = digits.length >= 10 ? senders.find((sender) => digitsOf(sender.did).endsWith(digits)) : null;
      if (whole && !input.dataset.chosen) {
        setChosen(whole);
        input.dispatchEvent(new Event("change", { bubbles: true }));
      }
      if (document.activeElement === input && senders.length) open();
      else close();
    }

    async function search() {
      window.clearTimeout(timer);
      if (controller) controller.abort();
      controller = new AbortController();
      const digits = digitsOf(input.value);
      const url = new URL(input.dataset.searchUrl, window.location.href);
      url.searchParams.set("q", input.value);
      try {
        const response = await fetch(url, {
          credentials: "same-origin",
          headers: { Accept: "application/json" },
          signal: controller.signal,
        });
        if (!response.ok) return;
        show(await response.json(), digits);
      } catch (error) {
        // Aborted by a newer search, or a network hiccup: the next keystroke searches again.
      }
    }

    input.addEventListener("input", () => {
      if (input.dataset.chosen && digitsOf(input.value) !== digitsOf(input.dataset.chosen)) setChosen(null);
      window.clearTimeout(timer);
      timer = window.setTimeout(search, SEARCH_DELAY_MS);
    });

    input.addEventListener("keydown", (event) => {
      const expanded = !list.hidden;
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        if (!expanded) {
          if (senders.length) open();
          else search();
          if (event.altKey || !senders.length) return;
        }
        const last = senders.length - 1;
        if (event.key === "ArrowDown") highlight(active < last ? active + 1 : 0);
        else highlight(active > 0 ? active - 1 : last);
      } else if (event.key === "Enter" && expanded && active >= 0) {
        event.preventDefault();
        choose(active);
      } else if (event.key === "Escape" && expanded) {
        event.preventDefault();
        close();
      }
    });

    input.addEventListener("blur", close);
  }

  // A saved reply chosen in the compose box replaces the text (the counter follows).
  function attachTemplatePicker(select) {
    const target = document.getElementById(select.dataset.fills);
    if (!target) return;
    select.addEventListener("change", function () {
      const option = select.selectedOptions[0];
      if (!option || !option.value) return;
      target.value = option.dataset.body || "";
      target.dispatchEvent(new Event("input", { bubbles: true }));
      target.focus();
    });
  }

  // --- pictures attached to an MMS: checked and shown before sending -------------------------

  const PICTURE_TYPES = new Set(["image/jpeg", "image/png", "image/gif"]);

  function attachPictures(input) {
    const box = input.closest(".attach");
    const previews = box.querySelector(".attach-previews");
    const error = box.querySelector(".attach-error");
    const max = Number(input.dataset.max || 3);
    const maxBytes = Number(input.dataset.maxBytes || 1200000);

    function problem(files) {
      if (files.length > max) return input.dataset.tooMany;
      for (const file of files) {
        if (!PICTURE_TYPES.has(file.type)) return `${file.name} ${input.dataset.wrongType}`;
        if (file.size > maxBytes) return `${file.name} ${input.dataset.tooLarge}`;
      }
      return "";
    }

    input.addEventListener("change", () => {
      const files = Array.from(input.files || []);
      previews.replaceChildren();
      const message = problem(files);
      input.setCustomValidity(message);
      error.textContent = message;
      error.hidden = !message;
      if (message) return;
      files.forEach((file) => {
        const item = element("li", "attach-preview");
        const img = element("img");
        img.alt = file.name;
        img.title = file.name;
        item.appendChild(img);
        previews.appendChild(item);
        const reader = new FileReader();
        reader.addEventListener("load", () => {
          img.src = reader.result;
        });
        reader.readAsDataURL(file);
      });
    });
  }

  // --- the conversation list and new-message notifications, live ------------------------------
  // Every inbox page polls the list endpoint: the list page redraws its rows when they change
  // (an ETag makes an unchanged list a 304), and an opted-in user gets a browser notification
  // for each new inbound message while the tab is hidden or shows another conversation.

  const LIVE_MS = 5000;
  const LIVE_HIDDEN_MS = 15000;
  const NOTIFY_KEY = "seed-sms-inbox-notify";

  function notifyWanted() {
    try {
      return window.localStorage.getItem(NOTIFY_KEY) === "on";
    } catch (error) {
      return false;
    }
  }

  function notifyEnabled() {
    return "Notification" in window && Notification.permission === "granted" && notifyWanted();
  }

  function attachNotifyToggle(button) {
    if (!("Notification" in window)) return;
    button.hidden = false;
    function show() {
      const blocked = Notification.permission === "denied";
      const on = notifyEnabled();
      button.textContent = blocked ? button.dataset.labelBlocked : on ? button.dataset.labelOn : button.dataset.labelOff;
      button.setAttribute("aria-pressed", on ? "true" : "false");
      button.disabled = blocked;
    }
    button.addEventListener("click", async () => {
      if (notifyEnabled()) {
        window.localStorage.setItem(NOTIFY_KEY, "off");
      } else {
        const permission = await Notification.requestPermission();
        if (permission === "granted") window.localStorage.setItem(NOTIFY_KEY, "on");
      }
      show();
    });
    show();
  }

  function conversationRow(row) {
    const tr = element("tr", `conversation-row${row.unread ? " unread" : ""}`);
    tr.dataset.conversation = row.id;
    const contact = element("td", "contact-cell");
    const a = element("a", "contact-name", row.name || row.remote);
    a.href = row.url;
    contact.appendChild(a);
    if (row.name) contact.appendChild(element("span", "contact-number", row.remote));
    tr.appendChild(contact);
    tr.appendChild(element("td", "did-cell", row.did));
    const text = element("td", "last-text", row.text);
    text.title = row.text;
    text.dataset.testid = "snippet";
    tr.appendChild(text);
    const when = element("td", "time-cell");
    if (row.at) {
      const time = element("time", "", row.at_display);
      time.dateTime = row.at;
      when.appendChild(time);
    }
    tr.appendChild(when);
    const assigned = element("td", "assigned-cell", row.assigned);
    if (row.ring_group) assigned.appendChild(element("span", "help", ` (${row.ring_group})`));
    tr.appendChild(assigned);
    const unread = element("td", "unread-cell");
    if (row.unread) {
      const badge = element("span", "unread-count", String(row.unread));
      badge.dataset.testid = "unread";
      unread.appendChild(badge);
    }
    tr.appendChild(unread);
    return tr;
  }

  function startLive() {
    const live = document.getElementById("inbox-live");
    if (!live) return;
    const button = document.getElementById("notify-toggle");
    if (button) attachNotifyToggle(button);
    const table = document.querySelector("table.inbox-list[data-live]");
    const current = Number(live.dataset.current || 0);
    let after = Number(live.dataset.after || 0);
    let etag = "";
    let busy = false;
    let last = Date.now();

    async function poll() {
      if (busy) return;
      if (document.hidden && !notifyEnabled()) return;
      if (document.hidden && Date.now() - last < LIVE_HIDDEN_MS) return;
      busy = true;
      last = Date.now();
      try {
        const url = new URL(live.dataset.url, window.location.href);
        url.searchParams.set("after", String(after));
        const headers = { Accept: "application/json" };
        if (etag) headers["If-None-Match"] = etag;
        const response = await fetch(url, { credentials: "same-origin", headers });
        if (response.status === 304 || !response.ok) return;
        etag = response.headers.get("ETag") || "";
        const data = await response.json();
        if (table) {
          const body = table.tBodies[0];
          body.replaceChildren(...data.conversations.map(conversationRow));
          table.hidden = data.conversations.length === 0;
          const empty = document.getElementById("no-conversations");
          if (empty && data.conversations.length) empty.remove();
        }
        if (notifyEnabled()) {
          data.inbound.forEach((message) => {
            // A visible page that shows the message (its conversation, or the list) needs none.
            if (!document.hidden && (message.conversation === current || table)) return;
            const note = new Notification(message.sender, { body: message.text, tag: `sms-${message.id}` });
            note.addEventListener("click", () => {
              window.focus();
              window.location.href = message.url;
            });
          });
        }
        after = Math.max(after, data.after);
      } catch (error) {
        // A network hiccup: the next tick tries again.
      } finally {
        busy = false;
      }
    }

    window.setInterval(poll, LIVE_MS);
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) poll();
    });
  }

  function startAll() {
    start();
    startLive();
    document.querySelectorAll("input.attach-input").forEach(attachPictures);
    document.querySelectorAll("select[data-fills]").forEach(attachTemplatePicker);
    document.querySelectorAll("input[role=combobox][data-search-url]").forEach(attachSenderSearch);
    document.querySelectorAll("select[data-media], input[data-media]").forEach(attachMediaToggle);
    document.querySelectorAll("textarea[data-counter]").forEach(attachCounter);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();
