"""The annotation session store: per-annotator journals replayed into the project state.

:class:`ProjectStore` owns a project folder::

    project.json           images folder, categories, stable image ids (written once)
    journal/<user>.jsonl   every action of each annotator, fsync'ed (the source of truth)
    points.json            the project's points JSON, rebuilt from the journals (atomic)
    pointsup.json          the things as a detectron2 PointSup COCO JSON (atomic)

Every public action (:meth:`click`, :meth:`undo`, ...) first decides what the action means,
then appends the event to the user's journal (durable when it returns), then applies it to the
in-memory state, and only then returns, so whatever the UI shows is on disk. Replaying the
journals at start-up rebuilds exactly that state, including where each annotator was.

Every point remembers who clicked it (the journal it came from), so a point that annotator B adds
to a stuff region A started counts for B: in the per-user points and seconds, and in the segment's
``annotators`` list.

A point has a label: 1 = in the segment, 0 = not in it (a negative point; journals written before
labels existed hold only positive points). A thing instance may have an object box, drawn as two
opposite corners in box mode (or set through the API); it is written as the annotation's ``bbox``,
which the PointSup export takes as the object's box. A segment is written to the points JSON once it
has a point in it (label 1): the target builder and PointSup need one.

Concurrency: each annotator has a lock (its journal is written in order); the shared state has a
short lock that is never held during disk I/O, so one user's fsync does not delay another
user's click. Two annotators never write the same image: opening an image takes it; an image
held by another annotator who was active within ``lock_timeout`` seconds is refused.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointly.annotator.images import ImageCatalog
from pointly.annotator.journal import Journal, check_user_name, read_events
from pointly.annotator.timing import DEFAULT_IDLE_CUTOFF, Measured, measure
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_json_atomic
from pointly.pointgen.base.points_format import make_document, points_bbox, validate_points
from pointly.pointgen.interop.pointsup import export_pointsup

log = logging.getLogger(__name__)

PROJECT_FILE = "project.json"
POINTS_FILE = "points.json"
POINTSUP_FILE = "pointsup.json"


class ActionRefused(Exception):
    """An action that is not possible now (no category picked, image held by someone else...).

    The message is shown to the annotator; nothing was written.
    """


@dataclass
class Point:
    x: int
    y: int
    t: float
    user: str
    label: int = 1  # 1 = in the segment, 0 = not in it


@dataclass
class Segment:
    sid: str
    category_id: int
    isthing: bool
    points: list[Point] = field(default_factory=list)
    bbox: list[int] | None = None  # the drawn object box [x, y, w, h] (things only)

    @property
    def positive(self) -> bool:
        """True when a point lies in the segment (label 1): only then is it written out."""
        return any(p.label == 1 for p in self.points)


@dataclass
class ImageState:
    name: str
    opens: list[float] = field(default_factory=list)
    segments: dict[str, Segment] = field(default_factory=dict)  # insertion = creation order
    version: int = 0

    @property
    def first_open(self) -> float | None:
        return min(self.opens) if self.opens else None

    def live_segments(self) -> list[Segment]:
        """The segments shown: those with a point or a box."""
        return [s for s in self.segments.values() if s.points or s.bbox is not None]


@dataclass(frozen=True)
class TabView:
    """What one browser tab shows: the image, the category and the current segment.

    One annotator may have several tabs open; the user's state on the server follows whichever
    tab acted last. A click from a tab carries its view, so the point goes where that tab said it
    would go (its image, its category, its current segment), not where another tab moved since.
    """

    image: str
    category_id: int | None
    segment: str | None
    box_mode: bool = False  # the tab's clicks are box corners


@dataclass
class UserState:
    image: str | None = None
    segment: str | None = None
    category_id: int | None = None
    preview: bool = False
    last_seen: float = 0.0
    segments_made: int = 0
    box_mode: bool = False  # clicks are box corners
    corner: tuple[str, int, int] | None = None  # (image, x, y): the first corner of a box being drawn


class ProjectStore:
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

    # ----------------------------------------------------------------- project file and replay
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

    def _replay(self) -> None:
        last_open: list[tuple[float, str, str]] = []
        for path in sorted((self.dir / "journal").glob("*.jsonl")):
            user = path.stem
            events, _ = read_events(path)
            u = self.users.setdefault(user, UserState())
            for ev in events:
                self._apply(user, ev)
            if events:
                u.last_seen = events[-1].get("t", 0.0)
            if u.image is not None:
                last_open.append((u.last_seen, user, u.image))
        for _, user, image in sorted(last_open):  # the most recent annotator of an image holds it
            self.holder[image] = user
        log.info("replayed %d journal(s)", len(self.users))

    # ----------------------------------------------------------------- events
    def _apply(self, user: str, ev: dict) -> None:
        """Apply one journal event to the in-memory state (no I/O, no checks beyond sanity)."""
        u = self.users.setdefault(user, UserState())
        kind = ev.get("type")
        name = ev.get("image")
        img = self.images.get(name) if name is not None else None
        if name is not None and img is None:
            log.warning("journal of %s names image %r that is no longer in the folder", user, name)
            return
        if kind in ("open", "category", "new", "select", "delete", "box_mode"):
            u.corner = None  # a box being drawn is given up
        if kind == "open":
            img.opens.append(ev["t"])
            u.image, u.segment = name, None
        elif kind == "click":
            seg = self._segment(img, user, ev)
            # journals written before labels existed hold only points in their segment
            seg.points.append(Point(int(ev["x"]), int(ev["y"]), float(ev["t"]), user, int(ev.get("label", 1))))
            u.segment, u.category_id = seg.sid, seg.category_id
        elif kind == "corner":
            u.corner = (name, int(ev["x"]), int(ev["y"]))
        elif kind == "box":
            seg = self._segment(img, user, ev)
            seg.bbox = [int(v) for v in ev["bbox"]] if ev["bbox"] is not None else None
            u.segment, u.category_id = seg.sid, seg.category_id
            u.box_mode, u.corner = False, None
        elif kind == "undo":
            seg = img.segments.get(ev["segment"])
            if seg is not None and 0 <= ev["index"] < len(seg.points):
                seg.points.pop(ev["index"])
                # back to the segment the point came from: the next click continues it
                u.segment, u.category_id = seg.sid, seg.category_id
        elif kind == "delete":
            img.segments.pop(ev["segment"], None)
            if u.segment == ev["segment"]:
                u.segment = None
        elif kind == "select":
            seg = img.segments.get(ev["segment"])
            if seg is not None:
                u.segment, u.category_id = seg.sid, seg.category_id
        elif kind == "category":
            u.category_id = ev["category_id"]
            u.segment = ev.get("segment")
        elif kind == "new":
            u.segment = None
        elif kind == "preview":
            u.preview = bool(ev["on"])
        elif kind == "box_mode":
            u.box_mode = bool(ev["on"])
        if u.box_mode and not self._is_thing(u.category_id):
            u.box_mode = False  # boxes are for thing instances only
        u.last_seen = max(u.last_seen, ev.get("t", 0.0))
        if img is not None:
            img.version += 1
        self.version += 1
        self._dirty = True

    def _segment(self, img: ImageState, user: str, ev: dict) -> Segment:
        """The segment a click or box event names, created by its first event."""
        seg = img.segments.get(ev["segment"])
        if seg is None:
            cat = self.cat_by_id[ev["category_id"]]
            seg = img.segments[ev["segment"]] = Segment(ev["segment"], cat["id"], bool(cat["isthing"]))
            if ev["segment"].startswith(user + "-"):
                self.users[user].segments_made += 1
        return seg

    def _is_thing(self, category_id: int | None) -> bool:
        cat = self.cat_by_id.get(category_id) if category_id is not None else None
        return bool(cat and cat["isthing"])

    def _user_lock(self, user: str) -> threading.Lock:
        with self._meta:
            return self._user_locks.setdefault(user, threading.Lock())

    def _journal(self, user: str) -> Journal:
        with self._meta:
            j = self.journals.get(user)
            if j is None:
                j = self.journals[user] = Journal(self.dir / "journal" / f"{check_user_name(user)}.jsonl")
            return j

    def _commit(self, user: str, ev: dict) -> dict:
        """Journal ``ev`` durably (fsync), then apply it; the caller holds the user's lock."""
        ev = self._journal(user).append({"t": self.clock(), "user": user, **ev})
        with self._state:
            self._apply(user, ev)
        return ev

    def _user(self, user: str) -> UserState:
        check_user_name(user)
        with self._state:
            return self.users.setdefault(user, UserState())

    def _held_image(self, user: str) -> ImageState:
        u = self._user(user)
        if u.image is None:
            raise ActionRefused("no image is open")
        if self.holder.get(u.image) != user:
            raise ActionRefused(f"{u.image} is being annotated by {self.holder.get(u.image)}; move to another image")
        return self.images[u.image]

    # ----------------------------------------------------------------- actions
    def _free_for(self, user: str, name: str, now: float) -> bool:
        other = self.holder.get(name)
        if other is None or other == user:
            return True
        return now - self.users[other].last_seen > self.lock_timeout or self.users[other].image != name

    def open(self, user: str, name: str) -> None:
        """Open (and take) image ``name``; refused when another annotator holds it."""
        with self._user_lock(user):
            self._user(user)
            if name not in self.index:
                raise ActionRefused(f"no image named {name!r} in the project")
            with self._state:
                now = self.clock()
                if not self._free_for(user, name, now):
                    raise ActionRefused(f"{name} is being annotated by {self.holder[name]}")
                prev = self.users[user].image
                if prev is not None and self.holder.get(prev) == user and prev != name:
                    del self.holder[prev]
                self.holder[name] = user  # reserve before the write so nobody else takes it
            self._commit(user, {"type": "open", "image": name})

    def ensure_open(self, user: str) -> str | None:
        """Make sure ``user`` holds an image (resume where they were, or the first free one)."""
        u = self._user(user)
        with self._state:
            current = u.image
            if current is not None and self.holder.get(current) == user:
                return current
        start = self.index.get(current, 0) if current is not None else 0
        name = self.find_free(user, start, +1, include_start=True)
        if name is not None:
            self.open(user, name)
        return name

    def find_free(self, user: str, start: int, step: int, include_start: bool = False) -> str | None:
        """The nearest image from ``start`` in direction ``step`` that is readable and free."""
        n = len(self.names)
        now = self.clock()
        with self._state:
            for k in range(0 if include_start else 1, n + (0 if include_start else 1)):
                i = start + step * k
                if not 0 <= i < n:
                    break
                name = self.names[i]
                if self.catalog.entries[i].problem is None and self._free_for(user, name, now):
                    return name
        return None

    def navigate(self, user: str, step: int) -> list[str]:
        """Move to the next (+1) or previous (-1) free readable image; returns skipped notes."""
        u = self._user(user)
        start = (
            self.index.get(u.image, -1 if step > 0 else len(self.names))
            if u.image
            else (-1 if step > 0 else len(self.names))
        )
        notes = []
        i = start + step
        while 0 <= i < len(self.names):
            e = self.catalog.entries[i]
            if e.problem is not None:
                notes.append(f"skipped {e.file_name}: {e.problem}")
            elif self._free_for(user, e.file_name, self.clock()):
                self.open(user, e.file_name)
                return notes
            else:
                notes.append(f"skipped {e.file_name}: being annotated by {self.holder[e.file_name]}")
            i += step
        notes.append("no further image in this direction")
        return notes

    def mark_unreadable(self, name: str, problem: str) -> None:
        """Record that a catalog image failed to decode (it is skipped from now on)."""
        i = self.index[name]
        e = self.catalog.entries[i]
        if e.problem is None:
            self.catalog.entries[i] = type(e)(e.file_name, e.width, e.height, problem)

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

    # ----------------------------------------------------------------- views and export
    def user_state(self, user: str) -> UserState:
        return self._user(user)

    def snapshot(self, name: str) -> list[Segment]:
        """A copy of the live segments of image ``name`` (creation order)."""
        with self._state:
            return [
                Segment(s.sid, s.category_id, s.isthing, list(s.points), s.bbox)
                for s in self.images[name].live_segments()
            ]

    def _measured(self, name: str) -> tuple[Measured, list[tuple[str, str, int]]]:
        """Measured time of one image (cached per image state) and what each part of it is:
        ``(segment id, clicker, points)`` per annotation id 1, 2, ... of the timing document.

        The timing document has one annotation per segment *and clicker*, so the seconds of each
        point go to whoever clicked it; the image's total is the same as for the exported points
        JSON (each point is charged the gap since the previous point of its image, whatever
        annotation it belongs to).
        """
        with self._state:
            img = self.images[name]
            hit = self._timing_cache.get(name)
            if hit is not None and hit[0] == img.version:
                return hit[1], hit[2]
            entry = self.catalog.entry(name)
            segs = img.live_segments()
            t0 = (
                img.first_open
                if img.first_open is not None
                else min((p.t for s in segs for p in s.points), default=0.0)
            )
            times: dict[tuple[str, str], list[float]] = {}
            category: dict[str, int] = {}
            for seg in segs:
                category[seg.sid] = seg.category_id
                for p in seg.points:
                    times.setdefault((seg.sid, p.user), []).append(round(max(0.0, p.t - t0), 3))
            version = img.version
        parts = [(sid, user, len(ts)) for (sid, user), ts in times.items()]
        anns = [
            {"id": k + 1, "image_id": 1, "category_id": category[sid], "point_times": sorted(ts)}
            for k, ((sid, _), ts) in enumerate(times.items())
        ]
        doc = {
            "images": [{"id": 1, "file_name": name, "width": entry.width, "height": entry.height}],
            "categories": self.categories,
            "annotations": anns,
        }
        m = measure(doc, self.idle_cutoff)
        with self._state:
            self._timing_cache[name] = (version, m, parts)
        return m, parts

    def image_timing(self, name: str) -> tuple[Measured, dict[str, float]]:
        """Measured active time of image ``name`` and its seconds per segment id."""
        m, parts = self._measured(name)
        per_segment: dict[str, float] = {}
        for k, (sid, _, _) in enumerate(parts):
            per_segment[sid] = per_segment.get(sid, 0.0) + m.per_annotation.get(k + 1, 0.0)
        return m, per_segment

    def user_timing(self, user: str) -> tuple[float, int]:
        """Active seconds and timed points of the points ``user`` clicked, over all images
        (in any segment, also in a stuff region another annotator started)."""
        secs, n = 0.0, 0
        with self._state:
            names = [
                name
                for name, img in self.images.items()
                if any(p.user == user for s in img.segments.values() for p in s.points)
            ]
        for name in names:
            m, parts = self._measured(name)
            for k, (_, clicker, count) in enumerate(parts):
                if clicker == user:
                    secs += m.per_annotation.get(k + 1, 0.0)
                    n += count
        return secs, n

    def progress(self) -> tuple[int, int]:
        """(images with at least one segment written out, readable images)."""
        with self._state:
            done = sum(1 for img in self.images.values() if any(s.positive for s in img.live_segments()))
            total = sum(1 for e in self.catalog.entries if e.problem is None)
        return done, total

    def image_records(self) -> list[dict]:
        """Every image of the project in its order: ``id`` (the project's image id: the COCO id
        when the project was opened with ``--images-json``), ``coco_id`` (that COCO id, else None),
        ``file_name``, upright ``width``/``height``, ``readable`` and ``problem``, and how many
        segments it has and how many of them are written out."""
        with self._state:
            out = []
            for e in self.catalog.entries:
                segs = self.images[e.file_name].live_segments()
                out.append(
                    {
                        "id": self.image_ids[e.file_name],
                        "coco_id": self.coco_ids.get(e.file_name),
                        "file_name": e.file_name,
                        "width": e.width,
                        "height": e.height,
                        "readable": e.problem is None,
                        "problem": e.problem,
                        "segments": len(segs),
                        "exported_segments": sum(1 for s in segs if s.positive),
                    }
                )
            return out

    def _image_annotations(self, name: str, image_id: int, first_id: int = 1) -> list[dict]:
        """The points-JSON annotations of one image (segments with a point in them, by first
        point). ``bbox`` is the drawn box, else the box of all the points (which the PointSup
        export recognises as only the box of the clicks)."""
        img = self.images[name]
        segs = sorted((s for s in img.live_segments() if s.positive), key=lambda s: min(p.t for p in s.points))
        if not segs:
            return []
        t0 = img.first_open if img.first_open is not None else min(p.t for s in segs for p in s.points)
        anns = []
        for seg in segs:
            pts = sorted(seg.points, key=lambda p: p.t)
            coords = [[p.x, p.y] for p in pts]
            users = [p.user for p in pts]
            anns.append(
                {
                    "id": first_id + len(anns),
                    "image_id": image_id,
                    "category_id": seg.category_id,
                    "iscrowd": 0,
                    "point_coords": coords,
                    "point_labels": [p.label for p in pts],
                    "point_kinds": ["click"] * len(pts),
                    "point_times": [round(max(0.0, p.t - t0), 3) for p in pts],
                    "bbox": [float(v) for v in seg.bbox] if seg.bbox else points_bbox(coords),
                    # who clicked: the segment's creator first, then any other annotator
                    "annotators": sorted(set(users), key=users.index),
                }
            )
        return anns

    def to_document(self) -> dict:
        """The project's points JSON (annotated images only), deterministic for a given state."""
        with self._state:
            images, anns = [], []
            for name in self.names:
                image_id = self.image_ids[name]
                part = self._image_annotations(name, image_id, len(anns) + 1)
                if not part:
                    continue
                e = self.catalog.entry(name)
                images.append({"id": image_id, "file_name": name, "width": e.width, "height": e.height})
                anns.extend(part)
            users = sorted(u for u, s in self.users.items() if s.last_seen)
            stamps = [p.t for img in self.images.values() for s in img.live_segments() if s.positive for p in s.points]
            prov: dict[str, Any] = {
                "made_by": "annotator",
                "users": users,
                "images_dir": str(self.catalog.root),
                "idle_cutoff": self.idle_cutoff,
            }
            if self.coco_file is not None:
                prov["images_json"] = self.coco_file.name
            if stamps:
                prov["first_point"] = _iso(min(stamps))
                prov["last_point"] = _iso(max(stamps))
            return make_document(images, self.categories, anns, prov)

    def flush(self, force: bool = False) -> bool:
        """Rewrite points.json and pointsup.json atomically when the state changed."""
        with self._state:
            if not (self._dirty or force):
                return False
            self._dirty = False
            doc = self.to_document()
        validate_points(doc, file=self.dir / POINTS_FILE)
        write_json_atomic(self.dir / POINTS_FILE, doc)
        # measured times are not PointSup's; an instance without a drawn box has its clicks' box
        # (PointSup's warning about those is not the annotator's)
        write_json_atomic(
            self.dir / POINTSUP_FILE, export_pointsup(doc, file=self.dir / POINTSUP_FILE, drop_times=True)[0]
        )
        return True

    def start_flusher(self) -> None:
        """Rewrite the points files in the background at most every ``flush_interval`` seconds."""

        def loop() -> None:
            while not self._stop.wait(self._flush_interval):
                try:
                    self.flush()
                except Exception:  # never kill the flusher; the journals stay the truth
                    log.exception("rewriting the points JSON failed")

        self._flusher = threading.Thread(target=loop, name="pointly-flush", daemon=True)
        self._flusher.start()

    def close(self) -> None:
        """Stop the flusher, write the points files a last time and close the journals."""
        self._stop.set()
        if self._flusher is not None:
            self._flusher.join(timeout=5)
        self.flush(force=True)
        for j in self.journals.values():
            j.close()


def corners_box(x0: int, y0: int, x1: int, y1: int) -> list[int]:
    """The COCO box ``[x, y, w, h]`` whose opposite corner pixels are (x0, y0) and (x1, y1), both
    inside it (a pixel is 1×1, as in :func:`pointly.pointgen.base.points_format.points_bbox`)."""
    return [min(x0, x1), min(y0, y1), abs(x1 - x0) + 1, abs(y1 - y0) + 1]


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.timezone.utc).isoformat(timespec="seconds")
