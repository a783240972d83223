// Taskdeck's keyboard shortcuts, on every page: "/" focuses the page's search or filter box;
// "j" and "k" select the next and previous row of the page's tables (any row with a link);
// Enter or "o" opens the selected row's link; "?" shows the list of shortcuts (a <dialog> in
// base.html; Esc closes it). Nothing fires while typing in a field or with Ctrl, Alt or Meta
// held. The selection is the focused link of the row, so it is visible and a screen reader
// reads it; it survives htmx swapping the rows (polling) by following the row's link.
(() => {
  "use strict";

  const SELECTED = "kbd-selected";
  // Inputs that take no text: shortcuts still work while one of these has the focus.
  const NOT_TEXT = new Set(["checkbox", "radio", "button", "submit", "reset", "image", "file", "range", "color"]);
  const SEARCH = [
    "[data-shortcut-search]",
    "main input[type='search']",
    "main form[role='search'] input:not([type='hidden'])",
    "main form[method='get' i] input[name='q']",
    "main form[method='get' i] input:not([type]), main form[method='get' i] input[type='text']",
  ];

  let selectedHref = null; // the selected row, by its link: rows are replaced by polling

  function isTyping(element) {
    if (!element || element === document.body) {
      return false;
    }
    if (element.isContentEditable) {
      return true;
    }
    const tag = element.tagName;
    if (tag === "TEXTAREA" || tag === "SELECT") {
      return true;
    }
    return tag === "INPUT" && !NOT_TEXT.has((element.type || "").toLowerCase());
  }

  const visible = (element) => element.getClientRects().length > 0;

  function rowLink(row) {
    return row.querySelector("a[href]");
  }

  function rows() {
    return [...document.querySelectorAll("main table tr")].filter(
      (row) => !row.closest("thead") && rowLink(row) && visible(row),
    );
  }

  function searchBox() {
    for (const selector of SEARCH) {
      const found = [...document.querySelectorAll(selector)].find((el) => visible(el) && !el.disabled);
      if (found) {
        return found;
      }
    }
    return null;
  }

  function selectedRow(all) {
    return all.find((row) => row.classList.contains(SELECTED)) || null;
  }

  function select(row, focus) {
    for (const old of document.querySelectorAll(`main tr.${SELECTED}`)) {
      if (old !== row) {
        old.classList.remove(SELECTED);
      }
    }
    row.classList.add(SELECTED);
    const link = rowLink(row);
    selectedHref = link.getAttribute("href");
    if (focus) {
      link.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }

  function move(step) {
    const all = rows();
    if (!all.length) {
      return;
    }
    const current = selectedRow(all);
    let index = current ? all.indexOf(current) + step : step > 0 ? 0 : all.length - 1;
    index = Math.max(0, Math.min(all.length - 1, index));
    select(all[index], true);
  }

  function openSelected() {
    const row = selectedRow(rows());
    if (!row) {
      return false;
    }
    rowLink(row).click();
    return true;
  }

  function help() {
    return document.getElementById("shortcuts-help");
  }

  let returnFocus = null;

  function showHelp() {
    const dialog = help();
    if (!dialog || dialog.open) {
      return;
    }
    returnFocus = document.activeElement;
    dialog.showModal();
  }

  document.addEventListener("keydown", (event) => {
    if (event.defaultPrevented || event.isComposing || event.ctrlKey || event.metaKey || event.altKey) {
      return;
    }
    const dialog = help();
    if (dialog && dialog.open) {
      return; // the dialog's own keys: Esc closes it, Tab stays in it
    }
    const target = event.target;
    if (isTyping(target)) {
      return;
    }
    switch (event.key) {
      case "/": {
        const box = searchBox();
        if (box) {
          event.preventDefault();
          box.focus();
          if (typeof box.select === "function") {
            box.select();
          }
        }
        break;
      }
      case "j":
      case "k":
        event.preventDefault();
        move(event.key === "j" ? 1 : -1);
        break;
      case "o":
        if (openSelected()) {
          event.preventDefault();
        }
        break;
      case "Enter": {
        // A focused link or button does its own Enter; this opens the selected row only when
        // nothing else has the focus (after an htmx swap took the focused link away, say).
        const active = document.activeElement;
        if ((!active || active === document.body) && openSelected()) {
          event.preventDefault();
        }
        break;
      }
      case "?":
        if (help()) {
          event.preventDefault();
          showHelp();
        }
        break;
      default:
        break;
    }
  });

  document.addEventListener("close", (event) => {
    if (event.target === help() && returnFocus && returnFocus.isConnected) {
      returnFocus.focus();
    }
    returnFocus = null;
  }, true);

  // A swap replaced the rows: select the same row again (by its link), and give it back the
  // focus if the swap took it away. Another row, or nothing, if that run left the page.
  document.addEventListener("htmx:afterSettle", () => {
    if (selectedHref === null) {
      return;
    }
    const all = rows();
    if (selectedRow(all)) {
      return;
    }
    const again = all.find((row) => rowLink(row).getAttribute("href") === selectedHref);
    if (again) {
      const lost = !document.activeElement || document.activeElement === document.body;
      select(again, lost);
    }
  });

  // A click on a row's link (or anywhere in it) makes it the selected row.
  document.addEventListener("click", (event) => {
    const row = event.target.closest && event.target.closest("main table tr");
    if (row && !row.closest("thead") && rowLink(row)) {
      select(row, false);
    }
  });
})();
