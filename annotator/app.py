"""The annotator's handlers, independent of Gradio: one :class:`AnnotatorApp` per server.

All state lives in :class:`~pointly.annotator.store.ProjectStore` on the server, keyed by the
logged-in user (``request.username``; ``local`` without ``--users``), so a page refresh shows
exactly what is on disk and a restart resumes where each annotator was. Every UI action
(:mod:`~pointly.annotator.layout`) and its twin API endpoint (:mod:`~pointly.annotator.api`) call
the same :meth:`AnnotatorApp.act`, so the gradio_client tests exercise the code path of the
browser; each annotator's actions run one at a time, in arrival order (:meth:`AnnotatorApp.in_order`),
while other annotators' actions run in parallel.

A canvas click carries what its tab shows (image, category, current segment, box mode; see
:class:`~pointly.annotator.state.TabView`) and its label (Shift+click: a point not in the
segment), so two tabs of one annotator never redirect each other's clicks.
"""

from __future__ import annotations

import asyncio
import secrets
import tempfile
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path
from typing import Any

import anyio

from pointly.annotator.images import ImageCatalog, ImageSkipped
from pointly.annotator.journal import check_user_name
from pointly.annotator.preview import preview_masks, preview_options
from pointly.annotator.render import DisplayImage, overlay_from_masks, render, write_jpeg
from pointly.annotator.state import ActionRefused
from pointly.annotator.store import ProjectStore
from pointly.annotator.timing import PAPER_SECONDS_PER_POINT, POLYGON_SECONDS
from pointly.pointgen.base.errors import PointlyError

#: the user of a request without login (no ``--users``)
DEFAULT_USER = "local"

#: a canvas render stays on disk this long for the browser to fetch it (the newest ones always stay)
RENDER_KEEP_SECONDS = 120.0
RENDER_KEEP_NEWEST = 4


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


def request_user(request: Any) -> str:
    """The annotator of a Gradio request: its login name, else :data:`DEFAULT_USER`."""
    name = getattr(request, "username", None) if request is not None else None
    return name or DEFAULT_USER
