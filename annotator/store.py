"""The annotation session store: per-annotator journals replayed into the project state.

:class:`ProjectStore` owns a project folder::

    project.json           images folder, categories, stable image ids (written once)
    journal/<user>.jsonl   every action of each annotator, fsync'ed (the source of truth)
    points.json            the project's points JSON, rebuilt from the journals (atomic)
    pointsup.json          the things as a detectron2 PointSup COCO JSON (atomic)

This module holds the store itself, its project file and the annotation actions (points, boxes,
categories, segments, undo); its other parts are its base classes, one job each: the journals
(:mod:`~pointly.annotator.history`: every action is journaled, then applied, so whatever the UI
shows is on disk), the image holds (:mod:`~pointly.annotator.holds`), the views the UI reads
(:mod:`~pointly.annotator.views`) and the exported files (:mod:`~pointly.annotator.export`). The
in-memory records are in :mod:`~pointly.annotator.state`.

Concurrency: each annotator has a lock (its journal is written in order); the shared state has a
short lock that is never held during disk I/O, so one user's fsync does not delay another
user's click. Two annotators never write the same image: opening an image takes it; an image
held by another annotator who was active within ``lock_timeout`` seconds is refused.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from pointly.annotator.export import StoreExport
from pointly.annotator.history import JournalHistory
from pointly.annotator.holds import ImageHolds
from pointly.annotator.images import ImageCatalog
from pointly.annotator.journal import Journal
from pointly.annotator.state import ActionRefused, ImageState, TabView, UserState, corners_box
from pointly.annotator.timing import DEFAULT_IDLE_CUTOFF
from pointly.annotator.views import StoreViews
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_json_atomic

PROJECT_FILE = "project.json"


class ProjectStore(JournalHistory, ImageHolds, StoreViews, StoreExport):
    """The state of one annotation project, rebuilt from and persisted to its journals."""

    def __init__(
        self,
        project_dir: str | Path,
        catalog: ImageCatalog,
        categories: list[dict],
        *,
        goal: int = 20,
        idle_cutoff: float = DEFAULT_IDLE_CUTOFF,
        lock_timeout: float = 600.0,
        flush_interval: float = 1.0,
        clock: Callable[[], float] = time.time,
        coco_ids: Mapping[str, int] | None = None,
        coco_file: str | Path | None = None,
    ) -> None:
        """``coco_ids`` (image name -> id of a COCO file, ``coco_file``; see
        :func:`pointly.annotator.images.coco_image_ids`) make the project's image ids those of the COCO file."""
        self.dir = Path(project_dir)
        self.coco_ids = dict(coco_ids or {})
        self.coco_file = Path(coco_file) if coco_file is not None else None
        self.catalog = catalog
        self.goal = goal
        self.idle_cutoff = idle_cutoff
        self.lock_timeout = lock_timeout
        self.clock = clock
        self.dir.mkdir(parents=True, exist_ok=True)
        (self.dir / "journal").mkdir(exist_ok=True)
        self.categories = self._init_project(categories)
        self.cat_by_id = {c["id"]: c for c in self.categories}
        self.names = [e.file_name for e in catalog.entries]
        self.index = {n: i for i, n in enumerate(self.names)}
        self.images: dict[str, ImageState] = {n: ImageState(n) for n in self.names}
        self.users: dict[str, UserState] = {}
        self.holder: dict[str, str] = {}  # image -> user holding it
        self.journals: dict[str, Journal] = {}
        self._user_locks: dict[str, threading.Lock] = {}
        self._state = threading.RLock()
        self._meta = threading.Lock()
        self.version = 0
        self._dirty = False
        self._timing_cache: dict[str, tuple] = {}
        self._replay()
        self._flush_interval = flush_interval
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self.flush(force=True)

    # ----------------------------------------------------------------- project file
    def _init_project(self, categories: list[dict]) -> list[dict]:
        path = self.dir / PROJECT_FILE
        ids = {}
        if path.exists():
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
                old_root = meta["images_dir"]
                old_cats = meta["categories"]
                ids = {im["file_name"]: im["id"] for im in meta["images"]}
            except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
                raise PointlyError(
                    "not a pointly annotation project file",
                    file=path,
                    fix="pass a new --project folder or restore project.json",
                ) from None
            if Path(old_root) != self.catalog.root:
                raise PointlyError(
                    f"this project annotates {old_root}, not {self.catalog.root}",
                    file=path,
                    fix="pass the same IMAGES_DIR or a new --project folder",
                )
            if [c["id"] for c in old_cats] != [c["id"] for c in categories]:
                raise PointlyError(
                    "the project was started with other categories",
                    file=path,
                    fix="pass the same --categories or a new --project folder",
                )
            categories = old_cats
        taken = {i: n for n, i in ids.items()}
        source = self.coco_file.name if self.coco_file else "the COCO file"
        fix = "the project's image ids are fixed at its first start; pass a new --project folder"
        for name, coco_id in self.coco_ids.items():
            if ids.get(name, coco_id) != coco_id:
                raise PointlyError(
                    f"image {name!r} has id {ids[name]} in this project but {coco_id} in {source}", file=path, fix=fix
                )
            if taken.get(coco_id, name) != name:
                raise PointlyError(
                    f"id {coco_id} of {name!r} in {source} is image {taken[coco_id]!r} in this project",
                    file=path,
                    fix=fix,
                )
            ids[name] = coco_id
        next_id = max(ids.values(), default=0) + 1
        images = []
        for e in self.catalog.entries:
            if e.file_name not in ids:
                ids[e.file_name] = next_id
                next_id += 1
            images.append({"id": ids[e.file_name], "file_name": e.file_name, "width": e.width, "height": e.height})
        self.image_ids = ids
        write_json_atomic(
            path, {"images_dir": str(self.catalog.root), "categories": categories, "images": images}, indent=1
        )
        return [dict(c) for c in categories]

    # ----------------------------------------------------------------- annotation actions
    def pick_category(self, user: str, category_id: int) -> None:
        """Make ``category_id`` current: a stuff category selects its region on this image;
        a thing category keeps the current instance if it has that category, else the next
        click starts a new instance."""
        if category_id not in self.cat_by_id:
            raise ActionRefused(f"unknown category id {category_id}")
        with self._user_lock(user):
            u = self._user(user)
            with self._state:
                seg = None
                img = self.images.get(u.image) if u.image else None
                if img is not None:
                    cur = img.segments.get(u.segment) if u.segment else None
                    if cur is not None and cur.category_id == category_id and cur.points:
                        seg = cur.sid
                    elif not self.cat_by_id[category_id]["isthing"]:
                        seg = next((s.sid for s in img.live_segments() if s.category_id == category_id), None)
            self._commit(user, {"type": "category", "category_id": category_id, "segment": seg})

    def new_instance(self, user: str) -> None:
        """The next click starts a new segment (a new instance of a thing category)."""
        with self._user_lock(user):
            self._user(user)
            self._commit(user, {"type": "new"})

    def click(self, user: str, x: int, y: int, view: TabView | None = None, label: int = 1) -> dict:
        """Add the point (x, y) (original-image pixel indices) with ``label`` (1 = in the segment,
        0 = not in it) to the current segment; in box mode the click is a box corner instead
        (:meth:`_box_click`).

        With ``view`` (what the clicking tab shows) the point goes to that image, category and
        segment (and the tab's mode decides point or corner), whatever another tab of the same
        annotator did since; the view's image is opened first when the annotator has moved on
        from it (refused when someone else took it). Without ``view`` the annotator's state on
        the server decides (API clients).

        Returns the journal event (the acknowledgement). Raises :class:`ActionRefused` when no
        category is picked, the point lies outside the image, or a point not in the segment is
        placed before any point in it (such a segment could not be written out).
        """
        if label not in (0, 1):
            raise ActionRefused(f"a point's label is 1 (in the segment) or 0 (not in it), not {label!r}")
        if view is not None:
            u = self._user(user)
            with self._state:
                moved = u.image != view.image or self.holder.get(view.image) != user
            if moved:
                self.open(user, view.image)
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                u = self.users[user]
                if view is not None and img.name != view.image:
                    raise ActionRefused(f"{view.image} is no longer open; click again")
                category_id, segment, box_mode = (
                    (view.category_id, view.segment, view.box_mode) if view else (u.category_id, u.segment, u.box_mode)
                )
                x, y = self._inside(img.name, x, y, "point")
                cat = self._category(category_id)
                sid = self._target_segment(img, user, cat, segment)
                if box_mode:
                    ev = self._box_click(img, user, cat, sid, x, y)
                else:
                    seg = img.segments.get(sid)
                    if label == 0 and (seg is None or not seg.positive):
                        raise ActionRefused(
                            "a point NOT in the segment needs a point in it first (click inside without Shift)"
                        )
                    ev = {
                        "type": "click",
                        "image": img.name,
                        "segment": sid,
                        "category_id": cat["id"],
                        "x": x,
                        "y": y,
                        "label": label,
                    }
            return self._commit(user, ev)

    def _inside(self, name: str, x: int, y: int, what: str) -> tuple[int, int]:
        """(x, y) as ints when it is a pixel of image ``name``; :class:`ActionRefused` otherwise."""
        entry = self.catalog.entry(name)
        x, y = int(x), int(y)
        if not (0 <= x < entry.width and 0 <= y < entry.height):
            raise ActionRefused(f"{what} ({x}, {y}) is outside the {entry.width}x{entry.height} image")
        return x, y

    def _category(self, category_id: int | None) -> dict:
        if category_id is None:
            raise ActionRefused("pick a category first (digit keys or the search box)")
        if category_id not in self.cat_by_id:
            raise ActionRefused(f"unknown category id {category_id}")
        return self.cat_by_id[category_id]

    def _target_segment(self, img: ImageState, user: str, cat: dict, segment: str | None) -> str:
        """The id of the segment a click of category ``cat`` goes to, ``segment`` being current:
        a stuff category's one region on the image; a thing's current instance when it has that
        category, else a new instance. The caller holds the state lock."""
        u = self.users[user]
        cur = img.segments.get(segment) if segment else None
        if not cat["isthing"]:
            stuff = next((s for s in img.live_segments() if s.category_id == cat["id"]), None)
            if stuff is not None:
                return stuff.sid
        if cur is not None and cur.category_id == cat["id"]:
            return cur.sid
        return f"{user}-{u.segments_made + 1}"

    def _box_click(self, img: ImageState, user: str, cat: dict, sid: str, x: int, y: int) -> dict:
        """The event of a click in box mode: the first corner, or the box of segment ``sid`` from
        the first corner to this opposite one. The caller holds the state lock."""
        if not cat["isthing"]:
            raise ActionRefused(f"boxes are for thing instances; {cat['name']} is stuff")
        corner = self.users[user].corner
        if corner is None or corner[0] != img.name:
            return {"type": "corner", "image": img.name, "x": x, "y": y}
        return {
            "type": "box",
            "image": img.name,
            "segment": sid,
            "category_id": cat["id"],
            "bbox": corners_box(corner[1], corner[2], x, y),
        }

    def set_box_mode(self, user: str, on: bool) -> None:
        """Turn box mode on (the next two clicks are opposite corners of the current thing
        instance's box) or off; refused for a stuff category or none."""
        with self._user_lock(user):
            u = self._user(user)
            if on and not self._is_thing(u.category_id):
                raise ActionRefused("boxes are for thing instances: pick a thing category first")
            self._commit(user, {"type": "box_mode", "on": bool(on)})

    def set_box(self, user: str, x0: int, y0: int, x1: int, y1: int) -> dict:
        """Give the current thing instance the box with opposite corner pixels (x0, y0) and
        (x1, y1) (a new instance when there is none); replaces its previous box."""
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                u = self.users[user]
                x0, y0 = self._inside(img.name, x0, y0, "corner")
                x1, y1 = self._inside(img.name, x1, y1, "corner")
                cat = self._category(u.category_id)
                if not cat["isthing"]:
                    raise ActionRefused(f"boxes are for thing instances; {cat['name']} is stuff")
                sid = self._target_segment(img, user, cat, u.segment)
                ev = {
                    "type": "box",
                    "image": img.name,
                    "segment": sid,
                    "category_id": cat["id"],
                    "bbox": corners_box(x0, y0, x1, y1),
                }
            return self._commit(user, ev)

    def remove_box(self, user: str) -> bool:
        """Remove the box of the current segment; False when it has none."""
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                seg = img.segments.get(self.users[user].segment or "")
                if seg is None or seg.bbox is None:
                    return False
            self._commit(
                user,
                {"type": "box", "image": img.name, "segment": seg.sid, "category_id": seg.category_id, "bbox": None},
            )
            return True

    def undo(self, user: str) -> bool:
        """Remove the last point placed on the current image; False when there is none."""
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                last = None
                for seg in img.segments.values():
                    for i, p in enumerate(seg.points):
                        if last is None or p.t >= last[0]:
                            last = (p.t, seg.sid, i)
            if last is None:
                return False
            self._commit(user, {"type": "undo", "image": img.name, "segment": last[1], "index": last[2]})
            return True

    def select_segment(self, user: str, sid: str) -> None:
        """Make segment ``sid`` of the current image current (the next clicks continue it)."""
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                if sid not in img.segments:
                    raise ActionRefused(f"no segment {sid!r} on {img.name}")
            self._commit(user, {"type": "select", "image": img.name, "segment": sid})

    def delete_segment(self, user: str, sid: str | None = None) -> bool:
        """Delete segment ``sid`` (default: the current one) with all its points."""
        with self._user_lock(user):
            with self._state:
                img = self._held_image(user)
                sid = sid or self.users[user].segment
                if sid is None or sid not in img.segments:
                    return False
            self._commit(user, {"type": "delete", "image": img.name, "segment": sid})
            return True

    def set_preview(self, user: str, on: bool) -> None:
        with self._user_lock(user):
            self._user(user)
            self._commit(user, {"type": "preview", "on": bool(on)})
