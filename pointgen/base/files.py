"""Guarded output: outputs are checked before any work, and written atomically.

Two halves of one promise, "a mistake leaves no partial output":

* :func:`check_output` runs when a command reads its options, before it reads any input or
  writes anything. It refuses a location that cannot be written (probed by creating and removing
  a temporary file, which is the only test that also holds for root and for read-only mounts), a
  path below an existing file, and a folder where a file is expected (or the reverse).
* Everything pointly writes goes to a temporary file in the destination folder first and is then
  renamed over the final name (``os.replace`` is atomic on POSIX), so an interrupted run leaves
  either the old file or the new one, never a truncated one. An existing output file is replaced.

Errors of the file system on the way (permission, a file in the path, a full disk) become one
:class:`~pointly.pointgen.base.errors.PointlyError` line naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pointly.pointgen.base.errors import PointlyError

#: errno values that mean "this location cannot take the output" (not a bug in pointly)
_LOCATION_ERRNOS = {
    errno.EACCES,
    errno.EPERM,
    errno.EROFS,
    errno.EEXIST,
    errno.ENOTDIR,
    errno.EISDIR,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.ENAMETOOLONG,
    errno.ELOOP,
}


def location_error(exc: OSError, path: str | Path, *, option: str | None = None) -> PointlyError:
    """The one-line error for a file-system refusal ``exc`` while writing ``path``."""
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        reason = "a file stands where a folder is needed on this path"
    return PointlyError(
        f"cannot write here: {reason}",
        file=path,
        record=option,
        fix="choose a writable location that is not below a file",
    )


def is_location_error(exc: BaseException) -> bool:
    """Whether ``exc`` is the file system refusing a location (as opposed to a bug)."""
    return isinstance(exc, OSError) and exc.errno in _LOCATION_ERRNOS


def _existing_ancestor(path: Path) -> Path:
    """The deepest existing path on the way to ``path`` (``path`` itself when it exists)."""
    probe = path.absolute()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe


def check_output(path: str | Path, *, folder: bool = False, option: str | None = None) -> Path:
    """Check, before any work, that ``path`` can be written as a file (or, with ``folder``, as a
    folder to create or fill); return it. Raises :class:`PointlyError` naming ``option``.

    Nothing is left behind: the probe file is removed, and missing folders are not created here.
    """
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise PointlyError(
            "is a file, but a folder is expected here", file=path, record=option, fix="name a folder (new or existing)"
        )
    if not folder and path.is_dir():
        raise PointlyError(
            "is a folder, but a file is expected here", file=path, record=option, fix="name a file inside the folder"
        )
    anchor = _existing_ancestor(path if folder else path.parent)
    if not anchor.is_dir():
        raise PointlyError(
            f"{anchor} is a file, so nothing can be written below it",
            file=path,
            record=option,
            fix="choose a location that is not below a file",
        )
    try:
        fd, probe = tempfile.mkstemp(prefix=".pointly-probe-", dir=anchor)
    except OSError as exc:
        raise PointlyError(
            f"cannot write in {anchor}: {exc.strerror or exc}",
            file=path,
            record=option,
            fix="choose a writable location",
        ) from None
    os.close(fd)
    os.unlink(probe)
    return path


def missing_folders(path: str | Path) -> list[Path]:
    """The folders on the way to ``path`` (itself included) that do not exist yet, deepest
    first: what a failed command must remove again to leave no trace."""
    out = []
    probe = Path(path).absolute()
    while not probe.exists() and probe != probe.parent:
        out.append(probe)
        probe = probe.parent
    return out


def remove_empty_folders(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) where they are empty; keep anything that holds files."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


@contextlib.contextmanager
def refused_location(path: str | Path) -> Iterator[None]:
    """File-system refusals (:func:`is_location_error`) inside the block become one
    :class:`PointlyError` line naming ``path``; other errors pass unchanged."""
    try:
        yield
    except OSError as exc:
        if not is_location_error(exc):
            raise
        raise location_error(exc, path) from None


def make_folder(path: str | Path) -> Path:
    """``mkdir -p`` with file-system refusals as one :class:`PointlyError` line."""
    path = Path(path)
    with refused_location(path):
        path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", *, fsync: bool = True, **kwargs: Any) -> Iterator[IO]:
    """Open a temporary sibling of ``path`` for writing; rename it over ``path`` on success.

    On an exception the temporary file and the folders created for it are removed, and ``path``
    is left untouched.
    """
    path = Path(path)
    created = missing_folders(path.parent)
    make_folder(path.parent)
    try:
        with refused_location(path):
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except BaseException:
        remove_empty_folders(created)
        raise
    # mkstemp creates 0600 files; give the output the permissions a plain open() would (0666 - umask)
    os.chmod(tmp, 0o666 & ~_umask())
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        with refused_location(path):
            os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        remove_empty_folders(created)
        raise


@contextlib.contextmanager
def staged_folder(folder: str | Path) -> Iterator[Path]:
    """Write a command's several outputs all or nothing: yield a private staging folder inside
    ``folder``; on success move each staged file to the same place under ``folder`` (an atomic
    rename each, replacing a file of the same name); on any failure remove the staging folder,
    and the folders this call created.

    A run that fails half-way (a damaged PNG at image 40) thus leaves the output folder as it was.
    """
    folder = Path(folder)
    created = missing_folders(folder)
    make_folder(folder)
    stage = Path(tempfile.mkdtemp(prefix=".pointly-staging-", dir=folder))
    try:
        yield stage
        for src in sorted(p for p in stage.rglob("*") if not p.is_dir()):
            dst = folder / src.relative_to(stage)
            make_folder(dst.parent)
            with refused_location(dst):
                os.replace(src, dst)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        remove_empty_folders(created)
        raise
    shutil.rmtree(stage, ignore_errors=True)


def _umask() -> int:
    """The process umask (read by setting and restoring it; there is no getter)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json_atomic(path: str | Path, obj: Any, *, indent: int | None = None) -> None:
    """Write ``obj`` as JSON (UTF-8, sorted keys off, stable separators) atomically."""
    with atomic_open(path, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=indent, ensure_ascii=False, separators=None if indent else (",", ":"))
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
