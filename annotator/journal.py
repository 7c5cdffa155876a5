"""Append-only, fsync'ed journals: the annotator's source of truth.

Every action of an annotator (open an image, click, undo, new instance, delete a segment, ...)
is one JSON line in ``<project>/journal/<user>.jsonl``. :meth:`Journal.append` returns only after
the line is written and ``fsync``'ed, and the app acknowledges (shows) an action only after that,
so a page refresh, a server restart or ``kill -9`` never loses an acknowledged click. The points
JSON of the project is derived from the journals and can always be rebuilt from them.

A ``kill -9`` in the middle of a write can leave a torn last line; it was never acknowledged, so
:func:`read_events` drops it and :class:`Journal` truncates it before appending again.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pointly.pointgen.base.errors import PointlyError

log = logging.getLogger(__name__)

_USER_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


def check_user_name(user: str) -> str:
    """A user name safe to use as a file name; :class:`PointlyError` otherwise."""
    if not _USER_RE.match(user) or user.startswith("."):
        raise PointlyError(
            f"invalid user name {user!r}", fix="use 1-64 letters, digits, '_', '-', '.', '@' (not starting with '.')"
        )
    return user


def read_events(path: str | Path) -> tuple[list[dict], int]:
    """All complete events of a journal and the byte length of the valid prefix.

    A last line without its newline or not parseable (a torn write) is dropped; a bad line in
    the middle means the file was edited by hand and raises :class:`PointlyError`.
    """
    path = Path(path)
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    events: list[dict] = []
    good = 0
    pos = 0
    lines = data.split(b"\n")
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last:
            if line.strip():
                log.warning("%s: dropping a torn last line (%d bytes, never acknowledged)", path, len(line))
            break
        end = pos + len(line) + 1
        if line.strip():
            try:
                events.append(json.loads(line))
            except json.JSONDecodeError:
                if i == len(lines) - 2 and not lines[-1]:
                    log.warning("%s: dropping an unparseable last line", path)
                    break
                raise PointlyError(
                    f"line {i + 1} is not valid JSON", file=path, fix="the journal was edited; restore it from a backup"
                ) from None
        good = end
        pos = end
    return events, good


class Journal:
    """One annotator's journal file; :meth:`append` is durable when it returns."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.events, good = read_events(self.path)
        self._lock = threading.Lock()
        existed = self.path.exists()
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if not existed:  # make the new directory entry durable too
            dfd = os.open(self.path.parent, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        size = os.fstat(fd).st_size
        if size > good:  # cut the torn tail so the next line starts clean
            os.ftruncate(fd, good)
            os.fsync(fd)
        os.lseek(fd, 0, os.SEEK_END)
        self._fd = fd
        self.seq = self.events[-1].get("seq", len(self.events)) if self.events else 0

    def append(self, event: dict[str, Any]) -> dict[str, Any]:
        """Write ``event`` (adds ``seq``) as one line, fsync it, and return it."""
        with self._lock:
            self.seq += 1
            event = {"seq": self.seq, **event}
            line = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            written = 0
            while written < len(line):
                written += os.write(self._fd, line[written:])
            os.fsync(self._fd)
            self.events.append(event)
            return event

    def close(self) -> None:
        """Close the file descriptor (appending afterwards fails)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __iter__(self) -> Iterator[dict]:
        return iter(list(self.events))
