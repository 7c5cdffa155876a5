"""Points that travel: ``pointly export`` / ``pointly import`` for PointSup, CVAT and Label Studio.

One entry point per direction, dispatching to the module of each format
(:mod:`~pointly.pointgen.interop.pointsup`, :mod:`~pointly.pointgen.interop.cvat`,
:mod:`~pointly.pointgen.interop.labelstudio`). Both read and check everything first and write the
output atomically at the end, so a mistake (one :class:`PointlyError` line) leaves no output.
Guide: docs/interop.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_bytes_atomic, write_json_atomic
from pointly.pointgen.base.points_format import load_points, save_points
from pointly.pointgen.interop.common import FORMAT_NAMES, Reference, load_reference


def _check_format(fmt: str, option: str) -> None:
    if fmt not in FORMAT_NAMES:
        raise PointlyError(f"unknown format {fmt!r}", record=option, fix=f"choose one of {', '.join(FORMAT_NAMES)}")


def export_document(
    doc: dict,
    fmt: str,
    *,
    file: Path | str,
    ref: Reference | None = None,
    points: int | None = None,
    seed: int = 0,
    include_stuff: bool = False,
    drop_times: bool = False,
    image_prefix: str = "",
    idle_cutoff: float = 60.0,
) -> tuple[bytes | Any, list[str]]:
    """The exported content of a points document (bytes for CVAT, JSON data otherwise) and
    warning lines. Options belong to formats: ``points``/``seed``/``include_stuff``/``ref`` to
    PointSup, ``image_prefix``/``idle_cutoff`` to Label Studio, ``drop_times`` to PointSup and CVAT."""
    _check_format(fmt, "--to")
    if fmt == "pointsup":
        from pointly.pointgen.interop.pointsup import export_pointsup

        return export_pointsup(
            doc, file=file, points=points, seed=seed, include_stuff=include_stuff, drop_times=drop_times, ref=ref
        )
    if fmt == "cvat":
        from pointly.pointgen.interop.cvat import export_cvat

        return export_cvat(doc, file=file, drop_times=drop_times)
    from pointly.pointgen.interop.labelstudio import export_labelstudio

    return export_labelstudio(doc, file=file, image_prefix=image_prefix, idle_cutoff=idle_cutoff)


def export_file(
    points_path: str | Path, fmt: str, output: str | Path, *, images_json: str | Path | None = None, **options: Any
) -> list[str]:
    """Read a points JSON, convert it to ``fmt`` and write ``output`` atomically; returns warnings."""
    _check_format(fmt, "--to")
    points_path = Path(points_path)
    ref = load_reference(images_json) if images_json is not None else None
    doc = load_points(points_path, categories=ref.categories if ref is not None else None)
    content, warnings = export_document(doc, fmt, file=points_path, ref=ref, **options)
    if isinstance(content, bytes):
        write_bytes_atomic(output, content)
    else:
        write_json_atomic(output, content)
    return warnings


def import_document(path: str | Path, fmt: str, *, images_json: str | Path | None = None) -> tuple[dict, list[str]]:
    """A points document read from a file in ``fmt``, and warning lines."""
    _check_format(fmt, "--from")
    path = Path(path)
    ref = load_reference(images_json) if images_json is not None else None
    if not path.is_file():
        raise PointlyError("file not found", file=path, fix=f"check the path of the {fmt} file")
    if fmt == "pointsup":
        from pointly.pointgen.interop.pointsup import import_pointsup

        return import_pointsup(path, ref=ref)
    if fmt == "cvat":
        from pointly.pointgen.interop.cvat import import_cvat

        return import_cvat(path, ref=ref)
    from pointly.pointgen.interop.labelstudio import import_labelstudio

    return import_labelstudio(path, ref=ref)


def import_file(
    path: str | Path, fmt: str, output: str | Path, *, images_json: str | Path | None = None
) -> tuple[dict, list[str]]:
    """Read ``path`` in ``fmt`` and write the points JSON ``output`` atomically."""
    doc, warnings = import_document(path, fmt, images_json=images_json)
    save_points(output, doc)
    return doc, warnings
