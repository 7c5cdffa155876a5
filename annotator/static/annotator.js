/* pointly annotator: keyboard shortcuts and lossless canvas clicks.
 *
 * Keys click the (visible or hidden) buttons of the page, so a shortcut runs exactly the same
 * server handler as the button. Typing in a text field (the category search) is left alone.
 *
 * Clicks: Gradio's Image computes the clicked pixel from the <img> element, and while a new
 * canvas PNG is loading the element has no natural size, so Gradio drops a click that lands in
 * that moment (tens of ms after every update). A capturing listener holds such clicks and
 * replays them, in order and at the same screen position, as soon as the image is ready again
 * (every render of an image has the same size, so the position maps to the same pixel). */
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

  const pending = [];
  window.pointlyHeldClicks = 0;  // how many clicks had to be held (diagnostics, benchmark)
  function canvasImg() { return document.querySelector("#pointly-canvas img"); }
  function ready(img) { return !!img && img.complete && img.naturalWidth > 0; }
  function flush() {
    const img = canvasImg();
    if (!ready(img)) { setTimeout(flush, 4); return; }
    while (pending.length) {
      const p = pending.shift();
      img.dispatchEvent(new MouseEvent("click", {
        bubbles: true, cancelable: true, view: window, clientX: p.x, clientY: p.y }));
    }
  }
  document.addEventListener("click", function (ev) {
    if (!ev.isTrusted || !ev.target || !ev.target.closest || !ev.target.closest("#pointly-canvas")) return;
    if (ev.target.closest("button") && ev.target.tagName !== "IMG" && !ev.target.querySelector("img")) return;
    if (ready(canvasImg()) && pending.length === 0) return;  // the normal path: Gradio handles it
    ev.stopPropagation();
    ev.preventDefault();
    pending.push({ x: ev.clientX, y: ev.clientY });
    window.pointlyHeldClicks += 1;
    if (pending.length === 1) setTimeout(flush, 0);
  }, true);
})();
