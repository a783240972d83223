// Taskdeck's time display. Every <time datetime="…"> on a page carries its instant (the server
// writes it in UTC, "2026-12-05T14:03:12Z"); this re-renders its text in the viewer's chosen
// display, which the server puts on <body data-time-display>: "relative" (3 min ago), "local"
// (the browser's zone) or "utc". The other renderings go in the title, so the absolute time is
// on hover in every mode. Without this script the server's text stands, and reads correctly.
// The header's toggle stores the choice per user (POST, CSRF) and re-renders in place; times
// that htmx swaps in (polled rows) are rendered as they arrive. An element with
// data-time-fixed keeps the server's text (and gets the renderings on hover): so do a
// schedule's next fire times, which read in the schedule's own zone, where "clocks change"
// markers and the cron the user typed make sense.
(() => {
  "use strict";

  const MODES = ["relative", "local", "utc"];
  // An ISO 8601 instant with a time and a zone (Z or an offset); fractions beyond milliseconds
  // are dropped, as Date does not take them everywhere. Dates alone and zone-less times (whose
  // instant is ambiguous) are left as the server wrote them.
  const ISO = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?\s*(Z|[+-]\d{2}:?\d{2})$/i;

  const FIXED = "[data-time-fixed], .fire-times time";

  const pad = (n) => String(n).padStart(2, "0");

  function parse(value) {
    const match = ISO.exec((value || "").trim());
    if (!match) {
      return null;
    }
    const fraction = match[3] ? match[3].slice(0, 4) : "";
    let zone = match[4].toUpperCase();
    if (zone !== "Z" && zone.length === 5) {
      zone = `${zone.slice(0, 3)}:${zone.slice(3)}`;
    }
    const date = new Date(`${match[1]}T${match[2]}${fraction}${zone}`);
    return Number.isNaN(date.getTime()) ? null : date;
  }

  // The same words as the server's `relative_time` (tasks_app/templatetags/taskdeck.py).
  function relative(date, now) {
    const delta = (now - date) / 1000;
    const seconds = Math.floor(Math.abs(delta));
    if (seconds < 1) {
      return "just now";
    }
    let amount = "";
    for (const [size, unit] of [[86400, "d"], [3600, "h"], [60, "min"], [1, "s"]]) {
      if (seconds >= size) {
        amount = `${Math.floor(seconds / size)} ${unit}`;
        break;
      }
    }
    return delta > 0 ? `${amount} ago` : `in ${amount}`;
  }

  function zoneName(date) {
    try {
      const parts = new Intl.DateTimeFormat(undefined, { timeZoneName: "short" }).formatToParts(date);
      const part = parts.find((p) => p.type === "timeZoneName");
      if (part) {
        return part.value;
      }
    } catch (error) {
      // No Intl: fall back to the offset below.
    }
    const offset = -date.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    return `UTC${sign}${pad(Math.floor(Math.abs(offset) / 60))}:${pad(Math.abs(offset) % 60)}`;
  }

  function local(date) {
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
      `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())} ${zoneName(date)}`;
  }

  function utc(date) {
    return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ` +
      `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} UTC`;
  }

  function currentMode() {
    const mode = document.body ? document.body.dataset.timeDisplay : "";
    return MODES.includes(mode) ? mode : "";
  }

  function renderOne(element, mode, now) {
    const date = parse(element.getAttribute("datetime"));
    if (!date) {
      return;
    }
    const texts = { relative: relative(date, now), local: local(date), utc: utc(date) };
    const fixed = element.matches(FIXED);
    const others = fixed ? [texts[mode], ...MODES.filter((m) => m !== mode).map((m) => texts[m])]
      : mode === "relative" ? [texts.local, texts.utc]
        : mode === "local" ? [texts.utc, texts.relative] : [texts.local, texts.relative];
    // In a zone that is UTC, local and UTC read the same: say it once.
    const title = [...new Set(others.map((t) => t.replace(/ (UTC|GMT)$/, " UTC")))].join(" · ");
    if (!fixed && element.textContent !== texts[mode]) {
      element.textContent = texts[mode];
    }
    element.title = title;
    element.dataset.timeShown = mode;
  }

  function render(root) {
    const mode = currentMode();
    if (!mode || !root) {
      return;
    }
    const now = Date.now();
    const scope = root.querySelectorAll ? root : document;
    if (scope.matches && scope.matches("time[datetime]")) {
      renderOne(scope, mode, now);
    }
    for (const element of scope.querySelectorAll("time[datetime]")) {
      renderOne(element, mode, now);
    }
  }

  function showMode(mode) {
    document.body.dataset.timeDisplay = mode;
    for (const button of document.querySelectorAll(".time-toggle button[name='time_display']")) {
      button.setAttribute("aria-pressed", String(button.value === mode));
    }
    render(document);
  }

  // The toggle: store the choice (the form's own POST, with its CSRF token, answered in JSON),
  // then re-render in place. Should the request fail, the form is posted the plain way, which
  // shows the server's answer.
  document.addEventListener("submit", (event) => {
    const form = event.target;
    const button = event.submitter;
    if (!form.classList || !form.classList.contains("time-toggle") || !button || !button.value) {
      return;
    }
    event.preventDefault();
    const data = new FormData(form);
    data.set("time_display", button.value);
    const token = data.get("csrfmiddlewaretoken") || "";
    fetch(form.action, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": token },
    }).then((response) => {
      if (!response.ok) {
        throw new Error(`HTTP ${response.status}`);
      }
      return response.json();
    }).then((answer) => {
      showMode(answer.time_display);
    }).catch(() => {
      const field = document.createElement("input");
      field.type = "hidden";
      field.name = "time_display";
      field.value = button.value;
      form.append(field);
      form.submit();
    });
  });

  // htmx fires htmx:load on the body first, then on every element it swaps in.
  document.addEventListener("htmx:load", (event) => render(event.target));
  render(document);
  // Relative times age: refresh them (all of them: titles carry the relative time too).
  setInterval(() => {
    if (document.visibilityState === "visible") {
      render(document);
    }
  }, 30000);
})();
