// Taskdeck's one script. The Content-Security-Policy allows no eval, so htmx cannot run
// `hx-trigger="every 1s [condition]"` filters; regions marked `data-poll` poll with a plain
// `every Ns` trigger, and this skips their requests while the tab is hidden.
document.addEventListener("htmx:beforeRequest", (event) => {
  const source = event.detail.elt;
  if (document.visibilityState !== "visible" && source.hasAttribute("data-poll")) {
    event.preventDefault();
  }
});
