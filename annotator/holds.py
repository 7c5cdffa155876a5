"""Which annotator holds which image, and moving between images.

Two annotators never write the same image: opening an image takes it; an image held by another
annotator who was active within ``lock_timeout`` seconds is refused.
"""

from __future__ import annotations

from pointly.annotator.state import ActionRefused, ImageState


class ImageHolds:
    """The image holds of :class:`~pointly.annotator.store.ProjectStore` (a base class of it): it
    uses the store's ``names``, ``index``, ``images``, ``users``, ``holder``, ``catalog``,
    ``lock_timeout``, ``clock``, its locks and its journal (:meth:`_commit`)."""

    def _held_image(self, user: str) -> ImageState:
        u = self._user(user)
        if u.image is None:
            raise ActionRefused("no image is open")
        if self.holder.get(u.image) != user:
            raise ActionRefused(f"{u.image} is being annotated by {self.holder.get(u.image)}; move to another image")
        return self.images[u.image]

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
