/* pointly annotator: keyboard shortcuts and lossless canvas clicks.
 *
 * Keys click the (visible or hidden) buttons of the page, so a shortcut runs exactly the same
 * server handler as the button. Typing in a text field (the category search) is left alone.
 *
 * Clicks: Gradio's Image computes the clicked pixel from the <img> element on "click". Two
 * things lose clicks there: while a new canvas image is loading the element has no natural size
 * (Gradio drops the click), and when the image is swapped between mousedown and mouseup the
 * browser fires no click at all. So a capturing listener takes the click on mousedown (left
 * button), queues its screen position, and replays it, in order, as a synthetic click on the
 * <img> as soon as the image is ready (every render of an image has the same size, so the
 * position maps to the same pixel); the browser's own click on the canvas is then suppressed.
 * Taking the click on mousedown also saves the press duration. */
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
  window.pointlyHeldClicks = 0;  // clicks that had to wait for the image (diagnostics, benchmark)
  function canvasImg() { return document.querySelector("#pointly-canvas img"); }
  function ready(img) { return !!img && img.complete && img.naturalWidth > 0; }
  function onCanvas(target) {
    return !!(target && target.closest && target.closest("#pointly-canvas") &&
              (target.tagName === "IMG" || target.querySelector && target.querySelector("img")));
  }
  function flush() {
    const img = canvasImg();
    if (!ready(img)) { setTimeout(flush, 4); return; }
    while (pending.length) {
      const p = pending.shift();
      img.dispatchEvent(new MouseEvent("click", {
        bubbles: true, cancelable: true, view: window, clientX: p.x, clientY: p.y }));
    }
  }
  document.addEventListener("mousedown", function (ev) {
    if (!ev.isTrusted || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.altKey || ev.shiftKey) return;
    if (!onCanvas(ev.target)) return;
    ev.preventDefault();  // no text selection or image drag on the canvas
    const active = document.activeElement;  // ...but leave the search box, so keys are shortcuts
    if (active && typing(active)) active.blur();
    pending.push({ x: ev.clientX, y: ev.clientY });
    if (!ready(canvasImg())) window.pointlyHeldClicks += 1;
    if (pending.length === 1) flush();
  }, true);
  document.addEventListener("click", function (ev) {
    // the browser's own click on the canvas: already taken on mousedown
    if (ev.isTrusted && onCanvas(ev.target)) { ev.stopPropagation(); ev.preventDefault(); }
  }, true);
})();
