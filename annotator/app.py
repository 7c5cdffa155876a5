"""The Gradio point annotator: canvas, segments list, keyboard shortcuts, progress and cost.

Layout: the canvas (a ``gr.Image`` whose ``select`` event gives the clicked pixel) on the left;
category search, shortcut buttons, the segments list, progress and measured cost on the right.
All state lives in :class:`~pointly.annotator.store.ProjectStore` on the server, keyed by the
logged-in user (``request.username``; ``local`` without ``--users``), so a page refresh shows
exactly what is on disk and a restart resumes where each annotator was.

Every UI action has a twin API endpoint (``/click``, ``/undo``, ...; see docs/annotator.md)
that calls the same :class:`AnnotatorApp` method, so the gradio_client tests exercise the code
path of the browser. UI events use ``trigger_mode="multiple"`` (Gradio would otherwise drop
clicks that arrive while one is processed) and no concurrency limit, so one user's click never
waits for another's. The page script sends one user's actions one at a time, in order.

A canvas click carries what its tab shows (image, category, current segment, box mode; see
:class:`~pointly.annotator.store.TabView`) and its label (Shift+click: a point not in the
segment), so two tabs of one annotator never redirect each other's clicks; a click that carries
no such view comes from a page that is not synchronised with the server and is refused with a
message. The read-only API endpoints (``/export``, ``/export_pointsup``, ``/images``,
``/categories``) return documents, never server paths; API arguments are checked for their JSON
type (a float or string coordinate is an error of the call, never rounded). The HTTP guard
(:mod:`~pointly.annotator.guard`) refuses uploads and serves each canvas render only to its own user.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import anyio
import gradio as gr
from starlette.middleware import Middleware

from pointly.annotator.guard import Guard
from pointly.annotator.images import ImageCatalog, ImageSkipped
from pointly.annotator.journal import check_user_name
from pointly.annotator.preview import preview_masks, preview_options
from pointly.annotator.render import DisplayImage, overlay_from_masks, render, write_jpeg
from pointly.annotator.store import ActionRefused, ProjectStore, TabView
from pointly.annotator.timing import PAPER_SECONDS_PER_POINT, POLYGON_SECONDS
from pointly.annotator.users import make_auth
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.interop.pointsup import export_pointsup

log = logging.getLogger(__name__)

DEFAULT_USER = "local"
STATIC = Path(__file__).with_name("static")
SHORTCUTS = [
    ("click", "a point in the current segment"),
    ("Shift+click", "a point NOT in the current segment (hollow ring)"),
    ("1 … 9, 0", "pick one of the first ten categories"),
    ("search box", "pick any category"),
    ("N", "new instance (thing categories)"),
    ("B", "box mode: the next two clicks are opposite corners of the instance's box"),
    ("X", "remove the current instance's box"),
    ("Z / Ctrl+Z", "undo the last point"),
    ("Del", "delete the current segment"),
    ("← / →", "previous / next image"),
    ("T", "toggle the target preview"),
]
#: a canvas render stays on disk this long for the browser to fetch it (the newest ones always stay)
RENDER_KEEP_SECONDS = 120.0
RENDER_KEEP_NEWEST = 4
#: the answer to a canvas click that does not say what its tab shows
NOT_SYNCHRONISED = "click NOT stored: this page is not synchronised with the server yet; click again"


class AnnotatorApp:
    """The handlers of the annotator, independent of Gradio (unit-testable)."""

    def __init__(
        self, store: ProjectStore, *, preview_shape: str = "concave", preview_dilation: str | None = None
    ) -> None:
        self.store = store
        self.catalog: ImageCatalog = store.catalog
        self.preview_options = preview_options(preview_shape, preview_dilation)
        self.render_dir = Path(tempfile.mkdtemp(prefix="pointly-render-"))
        self._displays: OrderedDict[str, DisplayImage] = OrderedDict()
        self._overlays: OrderedDict[tuple, Any] = OrderedDict()
        self._cache_lock = threading.Lock()
        self._renders: dict[str, deque[tuple[float, Path]]] = {}
        self.digit_categories = [c["id"] for c in store.categories[:10]]
        self._order_locks: dict[str, asyncio.Lock] = {}

    async def in_order(self, user: str, work):
        """Run ``work`` (blocking) in a worker thread, in the order the user's events arrived.

        Gradio starts events concurrently; without this two requests of one annotator could run
        at the same time. An ``asyncio.Lock`` is FIFO, so each annotator's actions run one after
        another in arrival order, while other annotators' actions run in parallel (their own
        locks; the work itself is in threads). Arrival order is the order of the user's actions
        because the page sends one action at a time, each after the previous one's response
        (the ordered queue of static/annotator.js); requests sent concurrently (API clients)
        are applied in whatever order they arrive."""
        lock = self._order_locks.get(user)
        if lock is None:
            lock = self._order_locks[user] = asyncio.Lock()
        async with lock:
            return await anyio.to_thread.run_sync(work)

    # ------------------------------------------------------------------ images
    def display(self, name: str) -> DisplayImage:
        """The display-scaled image (cached); :class:`ImageSkipped` when it cannot be decoded."""
        with self._cache_lock:
            d = self._displays.get(name)
            if d is not None:
                self._displays.move_to_end(name)
                return d
        d = DisplayImage.from_rgb(self.catalog.load(name))
        with self._cache_lock:
            self._displays[name] = d
            while len(self._displays) > 8:
                self._displays.popitem(last=False)
        return d

    def _current(self, user: str) -> tuple[str | None, list[str]]:
        """Ensure ``user`` has a decodable image open; returns it and notes on skipped images."""
        notes: list[str] = []
        for _ in range(len(self.catalog) + 1):
            name = self.store.ensure_open(user)
            if name is None:
                return None, notes + ["no free readable image left"]
            try:
                self.display(name)
                return name, notes
            except ImageSkipped as exc:
                notes.append(f"skipped {name}: {exc}")
                self.store.mark_unreadable(name, str(exc))
                notes.extend(self.store.navigate(user, +1))
        return None, notes

    # ------------------------------------------------------------------ actions (shared by UI and API)
    def act(self, user: str, action: str, *args: Any) -> list[str]:
        """Run one store action for ``user``; returns messages (refusals included, never raises
        for a user's mistake).

        ``click_display`` takes display pixels ``(x, y)`` and, from the canvas, the clicking tab's
        :class:`TabView` (the point goes to that tab's image, category and segment) and the
        point's label (1 in the segment, 0 not in it); ``click`` takes original pixels and a label."""
        try:
            if action == "navigate":
                return self.store.navigate(user, int(args[0]))
            if action == "click_display" and len(args) == 4:  # a canvas click with its tab's view
                x, y, view, label = args
                if view.image not in self.store.index:
                    return [f"no image named {view.image!r} in the project"]
                self.store.click(user, *self.display(view.image).to_original(float(x), float(y)), view, label)
                return []
            name, notes = self._current(user)
            if name is None:
                return notes
            if action == "click_display":
                x, y = self.display(name).to_original(float(args[0]), float(args[1]))
                self.store.click(user, x, y)
            elif action == "click":
                self.store.click(user, int(args[0]), int(args[1]), label=int(args[2]) if len(args) > 2 else 1)
            elif action == "box_mode":
                self.store.set_box_mode(user, not self.store.user_state(user).box_mode)
            elif action == "box":
                self.store.set_box(user, *(int(v) for v in args[:4]))
            elif action == "remove_box":
                if not self.store.remove_box(user):
                    notes.append("the current segment has no box")
            elif action == "undo":
                if not self.store.undo(user):
                    notes.append("nothing to undo on this image")
            elif action == "new":
                self.store.new_instance(user)
            elif action == "delete":
                if not self.store.delete_segment(user, *args):
                    notes.append("no segment selected")
            elif action == "select":
                self.store.select_segment(user, str(args[0]))
            elif action == "category":
                self.store.pick_category(user, self.category_id(args[0]))
            elif action == "digit":
                k = int(args[0])
                if not 0 <= k < len(self.digit_categories):
                    return [f"no category on key {(k + 1) % 10}"]
                self.store.pick_category(user, self.digit_categories[k])
            elif action == "preview":
                self.store.set_preview(user, not self.store.user_state(user).preview)
            elif action == "open":
                self.store.open(user, str(args[0]))
            elif action == "noop":
                pass
            else:  # pragma: no cover - programming error
                raise RuntimeError(f"unknown action {action!r}")
            return notes
        except (ActionRefused, PointlyError, ImageSkipped) as exc:
            return [str(exc)]
        except (ValueError, TypeError, IndexError) as exc:  # a malformed API argument
            return [f"bad argument for {action}: {exc}"]

    def category_id(self, value: Any) -> int:
        """A category id from an id, a numeric string or a category name."""
        if type(value) is int or (isinstance(value, str) and value.strip().lstrip("-").isdigit()):
            cid = int(value)
            if cid in self.store.cat_by_id:
                return cid
        for c in self.store.categories:
            if c["name"] == value:
                return c["id"]
        raise ActionRefused(f"unknown category {value!r}")

    # ------------------------------------------------------------------ project listings and export
    def export_document(self) -> dict:
        """The project's points JSON as a document (what ``points.json`` holds); the files on the
        server are rewritten first, so they hold the same."""
        self.store.flush(force=True)
        return self.store.to_document()

    def image_list(self) -> list[dict]:
        """Every image of the project (:meth:`ProjectStore.image_records`)."""
        return self.store.image_records()

    def category_list(self) -> list[dict]:
        """The project's categories (``id``, ``name``, ``isthing``, ...) with the digit ``key``
        that picks each of the first ten (None for the others)."""
        keys = {cid: str((i + 1) % 10) for i, cid in enumerate(self.digit_categories)}
        return [{**c, "key": keys.get(c["id"])} for c in self.store.categories]

    # ------------------------------------------------------------------ views
    def state(self, user: str, messages: list[str] | None = None) -> dict:
        """Everything the UI shows for ``user`` as plain JSON (the API twins return this)."""
        store = self.store
        u = store.user_state(user)
        name = u.image if u.image and store.holder.get(u.image) == user else None
        segs = store.snapshot(name) if name else []
        timing, seg_seconds = store.image_timing(name) if name else (None, {})
        done, total = store.progress()
        secs, npts = store.user_timing(user)
        segments = []
        for k, s in enumerate(segs):
            cat = store.cat_by_id[s.category_id]
            segments.append(
                {
                    "id": s.sid,
                    "index": k,
                    "category_id": s.category_id,
                    "category": cat["name"],
                    "kind": "thing" if s.isthing else "stuff",
                    "points": [[p.x, p.y] for p in s.points],
                    "labels": [p.label for p in s.points],
                    "negatives": sum(1 for p in s.points if p.label == 0),
                    "bbox": list(s.bbox) if s.bbox is not None else None,
                    "exported": s.positive,
                    "seconds": round(seg_seconds.get(s.sid, 0.0), 2),
                }
            )
        cat = store.cat_by_id.get(u.category_id) if u.category_id is not None else None
        entry = self.catalog.entry(name) if name else None
        return {
            "user": user,
            "image": name,
            "image_index": store.index[name] if name else None,
            "images_total": len(store.names),
            "width": entry.width if entry else None,
            "height": entry.height if entry else None,
            "category": cat["name"] if cat else None,
            "category_id": u.category_id,
            "current_segment": u.segment if any(s["id"] == u.segment for s in segments) else None,
            "segments": segments,
            "points_on_image": sum(len(s["points"]) for s in segments),
            "preview": u.preview,
            "goal": store.goal,
            "box_mode": u.box_mode,
            "corner": list(u.corner[1:]) if u.corner and u.corner[0] == name else None,
            "images_done": done,
            "images_readable": total,
            "image_active_seconds": round(timing.seconds, 2) if timing else 0.0,
            "user_active_seconds": round(secs, 2),
            "user_points": npts,
            "seconds_per_point": round(secs / npts, 3) if npts else None,
            "messages": list(messages or []),
        }

    def canvas(self, user: str, st: dict) -> str | None:
        """Render the canvas of ``st`` to a JPEG; returns its path (None without an image)."""
        name = st["image"]
        if name is None:
            return None
        d = self.display(name)
        segs = self.store.snapshot(name)
        overlay = None
        if st["preview"]:
            # a point never changes once placed: its count and the last one's time say which points
            key = (
                name,
                tuple((s.sid, s.category_id, len(s.points), s.points[-1].t if s.points else None) for s in segs),
            )
            with self._cache_lock:
                overlay = self._overlays.get(key)
            if overlay is None:
                image = self.store.catalog.load(name) if self.preview_options.shape == "watershed" else None
                pm = preview_masks(segs, self.store.cat_by_id, d.width, d.height, self.preview_options, image=image)
                overlay = overlay_from_masks(d, list(enumerate(pm.masks)))
                with self._cache_lock:
                    self._overlays[key] = overlay
                    while len(self._overlays) > 16:
                        self._overlays.popitem(last=False)
        rgb = render(d, segs, st["current_segment"], overlay, st["corner"])
        return str(self._new_render(user, rgb))

    def _new_render(self, user: str, rgb: Any) -> Path:
        """Write a render into ``user``'s own folder under a random name; delete old ones.

        The page fetches the file right after the response (Gradio serves the render folder in
        place, and the HTTP guard serves a user's folder to that user only), so a render is
        kept :data:`RENDER_KEEP_SECONDS`, and the newest few always.
        """
        folder = self.render_dir / check_user_name(user)
        folder.mkdir(exist_ok=True)
        path = write_jpeg(rgb, folder / f"{secrets.token_urlsafe(24)}.jpg")
        now = time.monotonic()
        kept = self._renders.setdefault(user, deque())
        kept.append((now, path))
        while len(kept) > RENDER_KEEP_NEWEST and now - kept[0][0] > RENDER_KEEP_SECONDS:
            kept.popleft()[1].unlink(missing_ok=True)
        return path

    def status_markdown(self, st: dict) -> str:
        if st["image"] is None:
            head = "**No image open.**"
        else:
            head = (
                f"**{st['image']}** — image {st['image_index'] + 1} / {st['images_total']} · "
                f"category: **{st['category'] or '— pick one (1–9, search)'}** · "
                f"{st['points_on_image']} points on this image"
            )
            if st["box_mode"]:
                head += (
                    " · **box mode: click the opposite corner**"
                    if st["corner"]
                    else " · **box mode: click one corner of the box**"
                )
        msgs = "".join(f"\n\n⚠ {m}" for m in st["messages"])
        return head + msgs

    def info_markdown(self, st: dict) -> str:
        spp = st["seconds_per_point"]
        lines = [
            f"**Progress:** {st['images_done']} / {st['images_readable']} images annotated; "
            f"goal {st['goal']} points per segment.",
            f"**This image:** {st['image_active_seconds']:.1f} s active.",
            f"**You ({st['user']}):** {st['user_points']} points in {st['user_active_seconds']:.1f} s "
            f"active = **{spp:.2f} s/point**"
            if spp is not None
            else f"**You ({st['user']}):** no points yet.",
            f"Paper: {PAPER_SECONDS_PER_POINT} s/point; a polygon mask costs {POLYGON_SECONDS:.0f} s "
            f"per thing (= {POLYGON_SECONDS / PAPER_SECONDS_PER_POINT:.0f} points). "
            f"Idle gaps over {self.store.idle_cutoff:.0f} s are not counted.",
        ]
        return "\n\n".join(lines)

    def segment_choices(self, st: dict) -> list[tuple[str, str]]:
        """The segments list: every point (in or not in the segment) counts toward the goal; the
        points not in it, a box, and a segment not written out yet are named."""
        out = []
        for s in st["segments"]:
            text = f"#{s['index'] + 1} {s['category']} ({s['kind']}) · {len(s['points'])}/{st['goal']} pts"
            if s["negatives"]:
                text += f" ({s['negatives']} not in)"
            if s["bbox"] is not None:
                text += " · box"
            if not s["exported"]:
                text += " · needs a point in it"
            out.append((text + f" · {s['seconds']:.1f} s", s["id"]))
        return out


# ---------------------------------------------------------------------- Gradio wiring
def _user(request: Any) -> str:
    name = getattr(request, "username", None) if request is not None else None
    return name or DEFAULT_USER


def tab_click(shown: Any) -> tuple[TabView, int] | None:
    """What a canvas click carries: the acknowledged state its tab shows (the JSON of the hidden
    ``#pointly-ack`` box), to which the page script adds the point's ``label`` (0 for a
    Shift+click; 1 when absent). None when there is no state or it is malformed: the page is not
    synchronised with the server."""
    try:
        d = json.loads(shown) if isinstance(shown, str) and shown else None
    except json.JSONDecodeError:
        return None
    if not isinstance(d, dict) or not isinstance(d.get("image"), str):
        return None
    cid, seg, box, label = d.get("category_id"), d.get("segment"), d.get("box_mode", False), d.get("label", 1)
    if (
        not (cid is None or type(cid) is int)
        or not (seg is None or isinstance(seg, str))
        or type(box) is not bool
        or label not in (0, 1)
        or type(label) is bool
    ):
        return None
    return TabView(d["image"], cid, seg, box), label


def integer_argument(name: str, value: Any, what: str, allowed: tuple[int, ...] | None = None) -> int:
    """``value`` when it is a JSON integer (and one of ``allowed``); a one-line
    :class:`PointlyError` otherwise. API arguments are never rounded or parsed: a float
    coordinate or a string "12" is a mistake of the caller, not a pixel."""
    if type(value) is not int:
        raise PointlyError(
            f"{name} must be an integer ({what}), got {value!r} ({type(value).__name__})",
            fix=f"pass {name} as a JSON integer",
        )
    if allowed is not None and value not in allowed:
        raise PointlyError(
            f"{name} must be {' or '.join(map(str, allowed))} ({what}), got {value}",
            fix=f"pass {name} as one of {', '.join(map(str, allowed))}",
        )
    return value


def text_argument(name: str, value: Any, what: str) -> str:
    """``value`` when it is a string; a one-line :class:`PointlyError` otherwise."""
    if not isinstance(value, str):
        raise PointlyError(
            f"{name} must be a string ({what}), got {value!r} ({type(value).__name__})",
            fix=f"pass {name} as a JSON string",
        )
    return value


def build_blocks(app: AnnotatorApp):
    """The Gradio Blocks of the annotator (launch it with :func:`launch`)."""
    store = app.store
    cat_choices = [(f"{c['name']} ({'thing' if c['isthing'] else 'stuff'})", c["id"]) for c in store.categories]
    key_help = " · ".join(
        f"**{(i + 1) % 10}** {store.cat_by_id[cid]['name']}" for i, cid in enumerate(app.digit_categories)
    )
    shortcuts = "\n".join(f"| {k} | {v} |" for k, v in SHORTCUTS)

    # renders are served in place from their per-user folders (the guard checks the owner),
    # never copied into Gradio's shared cache
    gr.set_static_paths([app.render_dir])
    with gr.Blocks(title="pointly annotator", analytics_enabled=False, delete_cache=(600, 1200)) as demo:
        with gr.Row():
            with gr.Column(scale=4):
                status = gr.Markdown(elem_id="pointly-status")
                canvas = gr.Image(
                    type="filepath",
                    interactive=False,
                    show_label=False,
                    buttons=[],
                    format="jpeg",
                    elem_id="pointly-canvas",
                    height=640,
                )
            with gr.Column(scale=2, min_width=300):
                category = gr.Dropdown(
                    choices=cat_choices,
                    value=None,
                    label="Category (type to search)",
                    filterable=True,
                    elem_id="pointly-category",
                )
                gr.Markdown("Keys: " + key_help, elem_id="pointly-digit-help")
                with gr.Row():
                    b_new = gr.Button("New instance (N)", elem_id="pointly-new", size="sm")
                    b_undo = gr.Button("Undo (Z)", elem_id="pointly-undo", size="sm")
                    b_del = gr.Button("Delete segment (Del)", elem_id="pointly-delete", size="sm", variant="stop")
                with gr.Row():
                    b_box = gr.Button("Box (B)", elem_id="pointly-box", size="sm")
                    b_unbox = gr.Button("Remove box (X)", elem_id="pointly-remove-box", size="sm")
                with gr.Row():
                    b_prev = gr.Button("← Previous", elem_id="pointly-prev", size="sm")
                    b_next = gr.Button("Next →", elem_id="pointly-next", size="sm")
                    b_prev_t = gr.Button("Target preview (T)", elem_id="pointly-preview", size="sm")
                segments = gr.Radio(choices=[], label="Segments (select to continue)", elem_id="pointly-segments")
                info = gr.Markdown(elem_id="pointly-info")
                gr.Markdown("**Shortcuts**\n\n| key | action |\n|---|---|\n" + shortcuts, elem_id="pointly-shortcuts")
                b_export = gr.Button("Export points JSON", elem_id="pointly-export", size="sm")
                gr.Markdown(
                    f"Project files on the server: `{store.dir.resolve()}` (`points.json`, "
                    f"`pointsup.json`, `journal/`; rewritten within a second of each change).",
                    elem_id="pointly-files",
                )
                ack = gr.Textbox(visible="hidden", elem_id="pointly-ack", show_label=False)
                exported = gr.Textbox(visible="hidden", elem_id="pointly-export-doc", show_label=False)
                digits = [
                    gr.Button(f"digit {(i + 1) % 10}", elem_id=f"pointly-digit-{(i + 1) % 10}", visible="hidden")
                    for i in range(10)
                ]

        # the acknowledged state (ack) is the last output of every event: the page script reads it
        # from each response as what its tab shows (static/annotator.js)
        outputs = [canvas, status, segments, category, info, ack]

        def view(user: str, messages: list[str]):
            _, notes = app._current(user)  # resume / skip undecodable images, with a message
            st = app.state(user, messages + notes)
            path = app.canvas(user, st)
            ack_text = json.dumps(
                {
                    "image": st["image"],
                    "points": st["points_on_image"],
                    "segment": st["current_segment"],
                    "category": st["category"],
                    "category_id": st["category_id"],
                    "preview": st["preview"],
                    "box_mode": st["box_mode"],
                    "corner": st["corner"],
                }
            )
            return (
                path,
                app.status_markdown(st),
                gr.update(choices=app.segment_choices(st), value=st["current_segment"]),
                gr.update(value=st["category_id"]),
                app.info_markdown(st),
                ack_text,
            )

        def ui(action: str, *args: Any):
            async def handler(request: gr.Request):
                user = _user(request)
                return await app.in_order(user, lambda: view(user, app.act(user, action, *args)))

            return handler

        async def on_select(shown: str, evt: gr.SelectData, request: gr.Request):
            """A canvas click; ``shown`` is what the clicking tab shows (its acknowledged state)
            and the point's label."""
            user = _user(request)
            click = tab_click(shown)
            if click is None:
                return await app.in_order(user, lambda: view(user, [NOT_SYNCHRONISED]))
            if not evt.index or len(evt.index) != 2:
                return await app.in_order(user, lambda: view(user, ["click inside the image"]))
            x, y = evt.index[0], evt.index[1]
            return await app.in_order(user, lambda: view(user, app.act(user, "click_display", x, y, *click)))

        async def on_export(request: gr.Request) -> str:
            """The points JSON for the Export button, in turn after the user's earlier actions."""
            return await app.in_order(_user(request), lambda: json.dumps(app.export_document()))

        async def on_category(value, request: gr.Request):
            user = _user(request)
            return await app.in_order(
                user, lambda: view(user, app.act(user, "category", value) if value is not None else [])
            )

        async def on_segment(value, request: gr.Request):
            user = _user(request)
            return await app.in_order(user, lambda: view(user, app.act(user, "select", value) if value else []))

        # queue=False: each event is one POST whose response is its result, which the page script
        # (static/annotator.js) takes as the acknowledgement before it sends the next action;
        # trigger_mode="multiple": the page script already sends one action at a time, and Gradio
        # must not drop a repeated key (N N, Del Del) whose previous result is still being shown.
        common = dict(
            outputs=outputs,
            concurrency_limit=None,
            show_progress="hidden",
            queue=False,
            api_visibility="private",
            trigger_mode="multiple",
        )
        # the page script's view of this tab and the click's label, taken when the click is sent
        # (Gradio's copy of the ack box can lag one response behind); the box's own value without the script
        canvas.select(
            on_select, ack, js="(shown) => [window.pointlyClickView ? window.pointlyClickView() : shown]", **common
        )
        category.input(on_category, category, **common)
        segments.input(on_segment, segments, **common)
        b_new.click(ui("new"), None, **common)
        b_undo.click(ui("undo"), None, **common)
        b_del.click(ui("delete"), None, **common)
        b_prev.click(ui("navigate", -1), None, **common)
        b_next.click(ui("navigate", +1), None, **common)
        b_prev_t.click(ui("preview"), None, **common)
        b_box.click(ui("box_mode"), None, **common)
        b_unbox.click(ui("remove_box"), None, **common)
        # the document comes back in a hidden box, and the page saves it as a file (static/annotator.js)
        b_export.click(on_export, None, **dict(common, outputs=[exported])).then(
            None,
            exported,
            exported,
            js="(doc) => { window.pointlyDownload(doc, 'points.json'); return ''; }",
            queue=False,
            show_progress="hidden",
        )
        for i, b in enumerate(digits):
            b.click(ui("digit", i), None, **common)
        demo.load(ui("noop"), None, **common)

        # ---- twin API endpoints: the same AnnotatorApp.act code path, JSON state back. Arguments
        # are checked for their JSON type first (Gradio passes them as sent): a mistake is an error
        # of the call (gradio_client raises it), not a message in a state.
        async def api_state(user: str, action: str, *args: Any) -> dict:
            def work() -> dict:
                msgs = app.act(user, action, *args)
                _, notes = app._current(user)
                return app.state(user, msgs + notes)

            return await app.in_order(user, work)

        def checked(make_args):
            """Run ``make_args`` (the argument checks); a mistake becomes the call's error."""
            try:
                return make_args()
            except PointlyError as exc:
                raise gr.Error(str(exc), print_exception=False) from None

        async def api_click(x: int, y: int, request: gr.Request, label: int = 1) -> dict:
            """Add the point (x, y) (original-image pixel indices) to the current segment; label 1 =
            in the segment (default), 0 = not in it. In box mode: a box corner."""
            args = checked(
                lambda: (
                    integer_argument("x", x, "a pixel column"),
                    integer_argument("y", y, "a pixel row"),
                    integer_argument("label", label, "1 in the segment, 0 not in it", (0, 1)),
                )
            )
            return await api_state(_user(request), "click", *args)

        async def api_box(x0: int, y0: int, x1: int, y1: int, request: gr.Request) -> dict:
            """Give the current thing instance the box with opposite corner pixels (x0, y0), (x1, y1)
            (original-image pixel indices, both inside the box); a new instance when there is none."""
            args = checked(
                lambda: tuple(
                    integer_argument(n, v, "a pixel index") for n, v in (("x0", x0), ("y0", y0), ("x1", x1), ("y1", y1))
                )
            )
            return await api_state(_user(request), "box", *args)

        async def api_remove_box(request: gr.Request) -> dict:
            """Remove the box of the current segment."""
            return await api_state(_user(request), "remove_box")

        async def api_box_mode(request: gr.Request) -> dict:
            """Toggle box mode: the next two clicks are opposite corners of the instance's box."""
            return await api_state(_user(request), "box_mode")

        async def api_category(category: str | int, request: gr.Request) -> dict:
            """Pick a category by name or id."""
            if type(category) is not int:
                checked(lambda: text_argument("category", category, "a category name or an integer id"))
            return await api_state(_user(request), "category", category)

        async def api_select(segment: str, request: gr.Request) -> dict:
            """Make a segment (its id from the state) current."""
            checked(lambda: text_argument("segment", segment, "a segment id from the state"))
            return await api_state(_user(request), "select", segment)

        async def api_open(image: str, request: gr.Request) -> dict:
            """Open an image by its name in the project (no other path is accepted)."""
            checked(lambda: text_argument("image", image, "an image file_name from /images"))
            return await api_state(_user(request), "open", image)

        async def api_navigate(step: int, request: gr.Request) -> dict:
            """Move to the next (+1) or previous (-1) free image."""
            checked(lambda: integer_argument("step", step, "the direction", (1, -1)))
            return await api_state(_user(request), "navigate", step)

        async def api_undo(request: gr.Request) -> dict:
            """Undo the last point on the current image."""
            return await api_state(_user(request), "undo")

        async def api_new(request: gr.Request) -> dict:
            """The next click starts a new instance."""
            return await api_state(_user(request), "new")

        async def api_delete(request: gr.Request) -> dict:
            """Delete the current segment."""
            return await api_state(_user(request), "delete")

        async def api_preview(request: gr.Request) -> dict:
            """Toggle the target preview."""
            return await api_state(_user(request), "preview")

        async def api_get_state(request: gr.Request) -> dict:
            """The current state of the calling annotator."""
            return await api_state(_user(request), "noop")

        async def api_export(request: gr.Request) -> dict:
            """The project's points JSON document (points.json and pointsup.json on the server are
            rewritten first)."""
            return await app.in_order(_user(request), app.export_document)

        async def api_export_pointsup(request: gr.Request) -> dict:
            """The things of the project as a detectron2 PointSup COCO JSON document."""

            def work() -> dict:
                doc = app.export_document()
                return export_pointsup(doc, file=store.dir / "pointsup.json", drop_times=True)[0]

            return await app.in_order(_user(request), work)

        def api_images() -> list:
            """Every image of the project: id (the COCO id with --images-json), coco_id, file_name,
            width, height, readable, problem, segments, exported_segments."""
            return app.image_list()

        def api_categories() -> list:
            """The project's categories: id, name, isthing, ... and the digit key picking it."""
            return app.category_list()

        for fn, name in [
            (api_click, "click"),
            (api_box, "set_box"),
            (api_remove_box, "remove_box"),
            (api_box_mode, "toggle_box_mode"),
            (api_category, "pick_category"),
            (api_select, "select_segment"),
            (api_open, "open_image"),
            (api_navigate, "navigate"),
            (api_undo, "undo"),
            (api_new, "new_instance"),
            (api_delete, "delete_segment"),
            (api_preview, "toggle_preview"),
            (api_get_state, "state"),
            (api_export, "export"),
            (api_export_pointsup, "export_pointsup"),
            (api_images, "images"),
            (api_categories, "categories"),
        ]:
            gr.api(fn, api_name=name, concurrency_limit=None)

    return demo


def page_head() -> str:
    """The keyboard-shortcut and click-keeping script, inlined into the page head."""
    js = (STATIC / "annotator.js").read_text(encoding="utf-8")
    return f"<script>{js}</script>"


def launch(
    app: AnnotatorApp,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    users: dict[str, str] | None = None,
    block: bool = True,
):
    """Start the server; with ``host`` other than localhost a users file is required."""
    if host not in ("127.0.0.1", "localhost", "::1") and not users:
        raise PointlyError(
            f"--host {host} exposes the annotator to the network without login",
            fix="pass --users FILE (name:password lines) or keep --host 127.0.0.1",
        )
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    demo = build_blocks(app)
    demo.queue(default_concurrency_limit=None)
    app.store.start_flusher()
    css = (STATIC / "app.css").read_text(encoding="utf-8")
    guard = Middleware(Guard, renders=app.render_dir, default_user=DEFAULT_USER)
    try:
        return demo.launch(
            server_name=host,
            server_port=port,
            auth=make_auth(users) if users else None,
            auth_message="pointly annotator: log in with your annotator name",
            prevent_thread_lock=not block,
            show_error=True,
            quiet=True,
            head=page_head(),
            css=css,
            footer_links=["api"],
            ssr_mode=False,
            app_kwargs={"middleware": [guard]},
        )
    except OSError as exc:
        if "empty port" in str(exc) or "address already in use" in str(exc).lower():
            raise PointlyError(f"port {port} on {host} is in use", fix="pass another --port") from None
        raise
