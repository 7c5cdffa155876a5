/* pointly annotator: keyboard shortcuts, lossless canvas clicks, and ONE ordered queue of actions.
 *
 * Order. The server applies each annotator's requests in the order they arrive, but the page
 * would otherwise send a key action and the canvas click right after it as two concurrent HTTP
 * requests, which can arrive (and be applied) the other way round: N then a fast click put the
 * point in the OLD instance. So every state-changing action of the page goes through one queue
 * and is sent only after the previous one was acknowledged (its HTTP response was read, i.e. the
 * server has applied and journaled it):
 *   - keys (digits, N, B, X, Z, Ctrl+Z, Del, arrows, T) and trusted mouse clicks on the pointly
 *     buttons (Export included) are queued as "press" actions and replayed as a click on the
 *     button in turn;
 *   - canvas clicks are queued as "click" actions (see below);
 *   - a category picked in the search box or a segment picked in the list: Gradio sends their
 *     request itself, some 10-20 ms after the choice (after the box loses focus), so a click
 *     made right after could overtake it. The native "change" event of the choice (synchronous,
 *     before any later click) queues an "expect" action, and Gradio's request fills it;
 *   - any other action request of the page (the initial load) is queued by the fetch wrapper as
 *     a "request" action when Gradio sends it.
 * The acknowledgement is observed in a wrapper of window.fetch around Gradio's POSTs to
 * /run/predict (all UI events are queue=False, so that POST's response is the event's result):
 * the first such request after a press/click was triggered (or an "expect" came up) is that
 * action's request. An action that produces no request within NO_REQUEST_MS (EXPECT_MS for a
 * choice, which may legitimately send nothing) releases the queue.
 *
 * Keys click the (visible or hidden) buttons of the page, so a shortcut runs exactly the same
 * server handler as the button. Typing in a text field (the category search) is left alone.
 *
 * Clicks: Gradio's Image computes the clicked pixel from the <img> element on "click". Two
 * things lose clicks there: while a new canvas image is loading the element has no natural size
 * (Gradio drops the click), and when the image is swapped between mousedown and mouseup the
 * browser fires no click at all. So a capturing listener takes the click on mousedown (left
 * button), queues its screen position, and replays it, in order, as a synthetic click on the
 * <img> when it is its turn and the image is ready (every render of an image has the same size,
 * so the position maps to the same pixel); the browser's own click on the canvas is then
 * suppressed. A click outside the drawn picture (which Gradio ignores) is dropped at its turn.
 * Taking the click on mousedown also saves the press duration. A Shift+click is a point NOT in
 * the segment: the action keeps its label (0), and window.pointlyClickView sends it with the tab's
 * state when the replayed click's request is made (Gradio's select event knows no modifier keys).
 *
 * What the tab shows. Every action response carries the acknowledged state (the JSON of the
 * hidden #pointly-ack box, the last output of every event). The queue releases an action only
 * after that response was read, and keeps its state as what this tab shows; a canvas click sends
 * it along (window.pointlyShown, called by the click event's js), so the server stores the point
 * on the image, category and segment this tab shows, even when another tab of the same annotator
 * changed them since.
 *
 * Refusals are visible. A click, key or choice is stored only when the server answers it. When
 * its request fails (server unreachable, restarting, login lost), is answered with an error, or
 * is never sent (Gradio sends nothing while it has lost the connection), the page shows a notice
 * (#pointly-alert) that it was NOT stored and must be made again; clicks still waiting when the
 * page is reloaded (Gradio reloads it once the server is back) are reported on the new page. The
 * notice goes away with the next click the server stores.
 *
 * Export. The Export button's response puts the points JSON in a hidden box; a follow-up step of
 * the same event hands it to window.pointlyDownload, which saves it as a file (a Blob link). */
(function () {
  const KEYS = {
    "n": "pointly-new", "N": "pointly-new",
    "z": "pointly-undo", "Z": "pointly-undo",
    "Delete": "pointly-delete",
    "ArrowLeft": "pointly-prev", "ArrowRight": "pointly-next",
    "t": "pointly-preview", "T": "pointly-preview",
    "b": "pointly-box", "B": "pointly-box",
    "x": "pointly-remove-box", "X": "pointly-remove-box",
  };
  const NO_REQUEST_MS = 2000;
  const EXPECT_MS = 500;

  const queue = [];        // actions in the order the user made them
  let inFlight = null;     // the action sent and not yet acknowledged
  let awaiting = null;     // a triggered press/click whose request has not been seen yet
  let imageWait = false;   // a timer polls for the canvas image
  window.pointlyHeldClicks = 0;  // clicks that had to wait (queue busy or image loading); diagnostics
  window.pointlyAcked = 0;       // actions acknowledged by the server (diagnostics, tests)
  window.pointlyDropped = 0;     // canvas clicks outside the drawn picture (Gradio ignores those)
  window.pointlyNotStored = 0;   // clicks and key actions reported as not stored (diagnostics, tests)
  let shown = null;        // the acknowledged state this tab shows (parsed #pointly-ack JSON)
  window.pointlyShown = function () { return shown ? JSON.stringify(shown) : ""; };
  // what a canvas click sends: the tab's state and the label of the click being sent (1 = in the
  // segment, 0 = not in it); "" before the tab has a state (the server refuses the click then)
  window.pointlyClickView = function () {
    if (!shown) return "";
    const label = inFlight && inFlight.kind === "click" ? inFlight.label : 1;
    return JSON.stringify(Object.assign({}, shown, { label: label }));
  };
  // save a text (the exported points JSON) as a file download
  window.pointlyDownload = function (text, name) {
    if (!text) return;
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "application/json" }));
    link.download = name;
    document.body.appendChild(link);
    link.click();
    link.remove();
    setTimeout(function () { URL.revokeObjectURL(link.href); }, 60000);
  };
  const UNSENT_KEY = "pointly-unsent-clicks";
  const COME_BACK = "Click again once the canvas is back (the page reloads by itself when the server returns).";
  // the user's actions whose loss is reported ("request": the page's own requests, e.g. its load)
  const WHAT = { click: "Your click was", press: "Your key or button action was",
                 expect: "Your category or segment choice was" };

  function button(id) {
    let el = document.getElementById(id);
    if (el && el.tagName !== "BUTTON") el = el.querySelector("button") || el;
    return el;
  }
  function typing(target) {
    if (!target) return false;
    const tag = (target.tagName || "").toUpperCase();
    return tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable;
  }
  function canvasImg() { return document.querySelector("#pointly-canvas img"); }
  function ready(img) { return !!img && img.complete && img.naturalWidth > 0; }
  function onCanvas(target) {
    return !!(target && target.closest && target.closest("#pointly-canvas") &&
              (target.tagName === "IMG" || target.querySelector && target.querySelector("img")));
  }
  function inPicture(img, x, y) {
    // Gradio's own mapping (object-fit contain, never scaled above natural size): null outside
    const r = img.getBoundingClientRect();
    const s = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight, 1);
    const px = Math.round((x - r.left - (r.width - img.naturalWidth * s) / 2) / s);
    const py = Math.round((y - r.top - (r.height - img.naturalHeight * s) / 2) / s);
    return px >= 0 && px < img.naturalWidth && py >= 0 && py < img.naturalHeight;
  }

  function enqueue(action) {
    queue.push(action);
    pump();
  }
  function finish(action, stored, why, advice) {
    if (inFlight !== action) return;
    clearTimeout(action.timer);
    if (awaiting === action) awaiting = null;
    inFlight = null;
    if (stored) {
      window.pointlyAcked += 1;
      if (action.kind === "click") clearNotice();
    } else if (WHAT[action.kind]) {
      notStored(WHAT[action.kind] + " NOT stored: this page is not synchronised with the server (" +
                why + "). " + (advice || COME_BACK));
    }
    pump();
  }
  // the server's answer: the action is done once its response was read (its state is what the
  // tab shows from now on); a failed request or an error answer means it was not stored. (A
  // response that arrives but whose body breaks off was applied: the server answers only after
  // the action was journaled.)
  function settle(action, sent) {
    sent.then(function (response) {
      if (response.status === 401 || response.status === 403) {
        finish(action, false, "it no longer knows your login, e.g. after a restart",
               "Reload the page, log in and click again.");
        return;
      }
      if (!response.ok) {
        finish(action, false, "it answered " + response.status, "Click again; reload the page if it happens again.");
        return;
      }
      return response.clone().json().then(ackState, function () { return null; }).then(function (state) {
        if (state) shown = state;
        finish(action, true, "");
      });
    }).catch(function () { finish(action, false, "no answer from the server"); });
  }
  function ackState(body) {  // the #pointly-ack JSON: the last output of every pointly event
    const data = body && body.data;
    try {
      const state = JSON.parse(data[data.length - 1]);
      return state && typeof state === "object" && "image" in state ? state : null;
    } catch (e) { return null; }
  }

  // ---- the notice of actions that were not stored
  function notice(text) {
    const show = function () {
      let el = document.getElementById("pointly-alert");
      if (!el) {
        el = document.createElement("div");
        el.id = "pointly-alert";
        el.setAttribute("role", "alert");
        document.body.appendChild(el);
      }
      el.textContent = text;
      el.hidden = false;
    };
    if (document.body) show(); else document.addEventListener("DOMContentLoaded", show);
  }
  function clearNotice() {
    const el = document.getElementById("pointly-alert");
    if (el) el.hidden = true;
  }
  function notStored(text) {
    window.pointlyNotStored += 1;
    console.warn("pointly: " + text);
    notice("\u26a0 " + text);
  }
  window.addEventListener("pagehide", function () {  // clicks the server never received
    const unsent = queue.filter(function (a) { return a.kind === "click"; }).length +
                   (awaiting && awaiting.kind === "click" ? 1 : 0);
    if (unsent) {
      sessionStorage.setItem(UNSENT_KEY, String(unsent + Number(sessionStorage.getItem(UNSENT_KEY) || 0)));
    }
  });
  const unsent = Number(sessionStorage.getItem(UNSENT_KEY) || 0);
  if (unsent) {
    sessionStorage.removeItem(UNSENT_KEY);
    notStored((unsent === 1 ? "1 click made before the page reloaded was"
                            : unsent + " clicks made before the page reloaded were") +
              " NOT stored (the page was not synchronised with the server): click again.");
  }
  function pump() {
    while (!inFlight && queue.length) {
      const action = queue[0];
      if (action.kind === "click") {
        const img = canvasImg();
        if (!ready(img)) {
          if (!imageWait) {
            imageWait = true;
            setTimeout(function () { imageWait = false; pump(); }, 4);
          }
          return;
        }
        queue.shift();
        if (!inPicture(img, action.x, action.y)) { window.pointlyDropped += 1; continue; }
        const active = document.activeElement;  // leave the search box, so keys are shortcuts
        if (active && typing(active)) active.blur();
        start(action);
        img.dispatchEvent(new MouseEvent("click", {
          bubbles: true, cancelable: true, view: window, clientX: action.x, clientY: action.y }));
      } else if (action.kind === "press") {
        queue.shift();
        const el = button(action.id);
        if (!el) continue;
        start(action);
        el.click();
      } else if (action.kind === "expect" && !action.send) {  // Gradio has not sent it yet
        queue.shift();
        start(action, EXPECT_MS);
      } else {  // "request", or an "expect" whose request Gradio sent while it waited in the queue
        queue.shift();
        inFlight = action;
        settle(action, action.send());
      }
    }
  }
  function start(action, ms) {
    inFlight = awaiting = action;
    action.timer = setTimeout(function () {  // no request came: a choice that sent nothing is
      if (awaiting === action) {             // fine, a click or key that sent nothing was lost
        awaiting = null;
        finish(action, action.kind === "expect", "the page lost its connection and never sent it");
      }
    }, ms || NO_REQUEST_MS);
  }

  // ---- the acknowledgement: Gradio's POST of an event to /run/predict, and its response
  const pageFetch = window.fetch.bind(window);
  function isAction(input, init) {
    const url = typeof input === "string" ? input : (input && (input.url || input.href)) || "";
    const method = ((init && init.method) || (input && input.method) || "GET").toUpperCase();
    return method === "POST" && /\/run\/predict\/?(\?|$)/.test(url);
  }
  window.fetch = function (input, init) {
    if (!isAction(input, init)) return pageFetch(input, init);
    if (awaiting) {  // the request of the press/click just triggered: send it now
      const action = awaiting;
      awaiting = null;
      const sent = pageFetch(input, init);
      settle(action, sent);
      return sent;
    }
    return new Promise(function (resolve, reject) {
      const send = function () {
        const sent = pageFetch(input, init);
        sent.then(resolve, reject);
        return sent;
      };
      const expecting = queue.find(function (a) { return a.kind === "expect" && !a.send; });
      if (expecting) { expecting.send = send; pump(); } else enqueue({ kind: "request", send: send });
    });
  };

  // ---- inputs
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
    if (id && button(id)) {
      ev.preventDefault();
      ev.stopPropagation();
      enqueue({ kind: "press", id: id });
    }
  }, true);
  document.addEventListener("mousedown", function (ev) {
    if (!ev.isTrusted || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!onCanvas(ev.target)) return;
    ev.preventDefault();  // no text selection or image drag on the canvas (the search box is left
                          // when the click's turn comes, see pump: not before a pending choice is sent)
    if (inFlight || queue.length || !ready(canvasImg())) window.pointlyHeldClicks += 1;
    enqueue({ kind: "click", x: ev.clientX, y: ev.clientY, label: ev.shiftKey ? 0 : 1 });
  }, true);
  document.addEventListener("change", function (ev) {
    const t = ev.target;
    if (t && t.closest && (t.closest("#pointly-category") || t.closest("#pointly-segments"))) {
      enqueue({ kind: "expect" });
    }
  }, true);
  document.addEventListener("click", function (ev) {
    if (!ev.isTrusted) return;  // our own replays
    if (onCanvas(ev.target)) {  // the browser's own click on the canvas: already taken on mousedown
      ev.stopPropagation(); ev.preventDefault();
      return;
    }
    const b = ev.target && ev.target.closest && ev.target.closest("button");
    const id = b && (b.id || (b.parentElement && b.parentElement.id) || "");
    if (id && /^pointly-/.test(id) && button(id) === b) {  // a pointly button: in turn, like its key
      ev.stopPropagation(); ev.preventDefault();
      enqueue({ kind: "press", id: id });
    }
  }, true);
})();
