"""The project's history: per-annotator journals replayed into the in-memory state, and each new
action journaled, then applied.

Every public action of :class:`~pointly.annotator.store.ProjectStore` first decides what the
action means, then appends the event to the user's journal (:meth:`JournalHistory._commit`:
durable when it returns), then applies it to the in-memory state (:meth:`JournalHistory._apply`),
and only then returns, so whatever the UI shows is on disk. Replaying the journals at start-up
(:meth:`JournalHistory._replay`) rebuilds exactly that state, including where each annotator was.
Each annotator has a lock (its journal is written in order); the shared state has a short lock
that is never held during disk I/O.
"""

from __future__ import annotations

import logging
import threading

from pointly.annotator.journal import Journal, check_user_name, read_events
from pointly.annotator.state import ImageState, Point, Segment, UserState

log = logging.getLogger(__name__)


class JournalHistory:
    """The journal part of :class:`~pointly.annotator.store.ProjectStore` (a base class of it): it
    uses the store's ``dir``, ``images``, ``users``, ``holder``, ``cat_by_id``, ``journals``, its
    locks, ``clock``, ``version`` and ``_dirty``."""

    def _replay(self) -> None:
        """Rebuild the state from every journal of the project (at start-up); the annotator who
        opened an image last holds it."""
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

    # ----------------------------------------------------------------- events and the journal
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
            # a click without a label is a point in its segment
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
