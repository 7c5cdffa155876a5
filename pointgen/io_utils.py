"""Atomic file writing: never leave a half-written output behind.

Everything pointly writes goes to a temporary file in the destination folder first and is then
renamed over the final name (``os.replace`` is atomic on POSIX), so an interrupted run leaves
either the old file or the new one, never a truncated one.
"""
from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Iterator


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, fsync: bool = True, **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    # mkstemp creates 0600 files; give the output the permissions a plain open() would (0666 - umask)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON (UTF-8, sorted keys off, stable separators) atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent, ensure_ascii=False,
                  separators=None if indent else (",", ":"))
        fh.write("\n")


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write raw bytes atomically."""
    with atomic_open(path, "wb") as fh:
        fh.write(data)


def save_figure_atomic(fig: Any, path: str | Path, *, dpi: int = 110) -> Path:
    """Save a matplotlib figure as PNG atomically and close it; returns ``path``."""
    import matplotlib.pyplot as plt

    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi)
    plt.close(fig)
    return path
