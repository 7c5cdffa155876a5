"""Cell claims: which process trains which cell, when several share one study folder.

Jobs of one ``--jobs`` run, shards in other terminals and machines on a shared folder all walk the
grid in the same order and take the next cell that has no row and that nobody else is running.
Static shards (grid positions ``i, i+n, …``) fall out of balance as soon as part of a grid is done
(a resumed study) or cells differ in length (full masks against P5); a claim keeps every process
busy until the grid is empty.

A claim is ``cells/<id>/claim.json`` (host, pid, the process's start time), created under the
folder's lock and refreshed every :data:`HEARTBEAT` seconds by a thread of the process holding it.
It is *stale*, and another process may take it over, when its holder is gone: on the same host,
its pid is dead or belongs to a process started at another time; from another host (a shared
folder), the file was not refreshed for :data:`STALE` seconds (a killed machine). A paused
process on the same host (SIGSTOP) keeps its claim.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

#: seconds between two refreshes of a held claim
HEARTBEAT = 60.0
#: a claim from another host not refreshed for this long is stale
STALE = 10 * HEARTBEAT
CLAIM = "claim.json"

__all__ = ["CLAIM", "HEARTBEAT", "STALE", "Claim", "claim_holder", "try_claim"]


def _start_ticks(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat`` field 22), which
    tells a live process from a later one that reuses its pid; ``None`` where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]  # fields after "(comm)" start at field 3


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _me() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid(), "started": _start_ticks(os.getpid())}


def claim_holder(path: Path, *, now: float | None = None) -> dict | None:
    """The live holder of the claim file ``path`` (its JSON), or ``None`` when there is no claim
    or it is stale (module docstring). An unreadable file (a torn write) is stale."""
    try:
        holder = json.loads(path.read_text(encoding="utf-8"))
        mtime = path.stat().st_mtime
    except (OSError, ValueError):
        return None
    if not isinstance(holder, dict):
        return None
    if holder.get("host") == socket.gethostname():
        pid = holder.get("pid")
        if not isinstance(pid, int) or not _alive(pid):
            return None
        started = holder.get("started")
        return holder if started is None or _start_ticks(pid) in (None, started) else None
    return holder if (time.time() if now is None else now) - mtime < STALE else None


class Claim:
    """A held claim: refreshed by a daemon thread until :meth:`release` (or the process ends)."""

    def __init__(self, path: Path, heartbeat: float = HEARTBEAT):
        self.path = path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat,), daemon=True)
        self._thread.start()

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except OSError:  # removed under us (the folder was cleaned): nothing to refresh
                return

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def try_claim(cell_dir: Path, *, heartbeat: float = HEARTBEAT) -> Claim | None:
    """Claim ``cell_dir`` for this process, or ``None`` when a live holder has it (this process
    included: a cell is never run twice at once). Call it under the folder's lock, so that two
    processes cannot both take over one stale claim."""
    path = Path(cell_dir) / CLAIM
    if claim_holder(path) is not None:
        return None
    cell_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{CLAIM}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(_me()), encoding="utf-8")
    os.replace(tmp, path)
    return Claim(path, heartbeat)
