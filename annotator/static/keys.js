/* pointly annotator keyboard shortcuts.
 * Keys click the (visible or hidden) buttons of the page, so a shortcut runs exactly the same
 * server handler as the button. Typing in a text field (the category search) is left alone. */
(function () {
  const KEYS = {
    "n": "pointly-new", "N": "pointly-new",
    "z": "pointly-undo", "Z": "pointly-undo",
    "Delete": "pointly-delete",
    "ArrowLeft": "pointly-prev", "ArrowRight": "pointly-next",
    "t": "pointly-preview", "T": "pointly-preview",
  };
  function press(id) {
    let el = document.getElementById(id);
    if (!el) return false;
    if (el.tagName !== "BUTTON") el = el.querySelector("button") || el;
    el.click();
    return true;
  }
  function typing(target) {
    if (!target) return false;
    const tag = (target.tagName || "").toUpperCase();
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }
  document.addEventListener("keydown", function (ev) {
    if (typing(ev.target)) {
      if (ev.key === "Escape") ev.target.blur();
      return;
    }
    if (ev.altKey || ev.metaKey) return;
    let id = null;
    if (ev.ctrlKey) {
      if (ev.key === "z" || ev.key === "Z") id = "pointly-undo";
    } else if (/^[0-9]$/.test(ev.key)) {
      id = "pointly-digit-" + ev.key;
    } else {
      id = KEYS[ev.key] || null;
    }
    if (id && press(id)) {
      ev.preventDefault();
      ev.stopPropagation();
    }
  }, true);
})();
