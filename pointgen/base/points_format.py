"""The points JSON: read, write and validate the one interchange format of pointly.

The format (docs/formats.md) is a COCO-style file whose annotations carry
detectron2 PointSup's ``point_coords`` (integer ``[x, y]`` pixel indices, x = column, y = row)
and ``point_labels`` (1 inside the segment, 0 an explicit negative), plus pointly's optional
``point_kinds``, ``point_times`` and ``source_segment_id``. ``info.pointly`` records the format
version and how the points were made. A JSON Schema ships with the package
(``pointgen/points_schema.json``); :func:`validate_points` applies it and then the checks a schema cannot
express (references between records, parallel list lengths, points inside the image).

Documents are plain ``dict`` objects as ``json.load`` returns them, so anything that reads COCO
reads ours.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_json_atomic
from pointly.pointgen.base.limits import check_image_size

FORMAT_VERSION = "1.0"
POINT_KINDS = ("random", "boundary", "click")


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the points format (shipped as ``points_schema.json``)."""
    text = resources.files("pointly.pointgen").joinpath("points_schema.json").read_text("utf-8")
    return json.loads(text)


def file_digest(path: str | Path) -> str:
    """``sha256:<hex>`` of a file's bytes; recorded in ``info.pointly.source_digest``."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


def _record_name(doc: Mapping, path: list) -> str:
    """Name a record for an error message, e.g. ``annotations[3] (id 17, image_id 5)``."""
    if not path:
        return "top level"
    name = str(path[0])
    if len(path) >= 2 and isinstance(path[1], int):
        name = f"{path[0]}[{path[1]}]"
        try:
            rec = doc[path[0]][path[1]]
            ids = [f"{k} {rec[k]}" for k in ("id", "image_id") if isinstance(rec, Mapping) and k in rec]
            if ids:
                name += f" ({', '.join(ids)})"
        except (KeyError, IndexError, TypeError):
            pass
        rest = path[2:]
    else:
        rest = path[1:]
    if rest:
        name += " field " + ".".join(str(p) for p in rest)
    return name


_POINT_KEYS = ("point_coords", "point_labels", "point_kinds", "point_times")
_KIND_SET = frozenset(POINT_KINDS)


def _is_int(v: Any) -> bool:
    return type(v) is int


def _points_plainly_valid(ann: Any) -> bool:
    """True when the per-point arrays of ``ann`` are certainly valid under the schema.

    A fast, stricter-than-schema check (plain Python ints, exact enum members): jsonschema checks
    every point on its own, far too slow for a simulated COCO-sized file. Anything this check does
    not accept goes through the full schema instead.
    """
    if not isinstance(ann, Mapping):
        return False
    coords = ann.get("point_coords", [])
    labels = ann.get("point_labels", [])
    if not (isinstance(coords, list) and isinstance(labels, list)):
        return False
    for p in coords:
        if not (type(p) is list and len(p) == 2 and _is_int(p[0]) and _is_int(p[1])):
            return False
    if not all(_is_int(v) and (v == 0 or v == 1) for v in labels):
        return False
    if "point_kinds" in ann:
        kinds = ann["point_kinds"]
        if not (isinstance(kinds, list) and all(type(k) is str and k in _KIND_SET for k in kinds)):
            return False
    if "point_times" in ann:
        times = ann["point_times"]
        if not (isinstance(times, list) and all(type(t) in (int, float) and t >= 0 for t in times)):
            return False
    return True


def _schema_view(doc: Mapping) -> Any:
    """``doc`` with the per-point arrays emptied when they are plainly valid (see above).

    Error paths are unchanged (same records, same indices), so messages name the same record and
    field as a full validation; when any annotation needs the full check, ``doc`` is returned.
    """
    anns = doc.get("annotations")
    if not isinstance(anns, list) or not all(_points_plainly_valid(a) for a in anns):
        return doc
    view = dict(doc)
    view["annotations"] = [{k: ([] if k in _POINT_KEYS else v) for k, v in a.items()} for a in anns]
    return view


def validate_points(doc: Any, *, file: str | Path | None = None) -> None:
    """Check ``doc`` against the schema and the cross-record rules; raise :class:`PointlyError`.

    Rules beyond the schema: ids unique per list; every annotation names an existing image and
    category; ``point_labels`` (and ``point_kinds``/``point_times`` when present) as long as
    ``point_coords``; every point inside its image (0 <= x < width, 0 <= y < height); at least one
    point per annotation.
    """
    fix = "see docs/formats.md for the points JSON format"
    if not isinstance(doc, Mapping):
        raise PointlyError("not a JSON object", file=file, fix=fix)
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(_schema_view(doc)), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        path = list(err.absolute_path)
        raise PointlyError(f"{err.message}", file=file, record=_record_name(doc, path), fix=fix)

    for section in ("images", "categories", "annotations"):
        seen: set[int] = set()
        for i, rec in enumerate(doc[section]):
            if rec["id"] in seen:
                raise PointlyError(
                    f"duplicate id {rec['id']}",
                    file=file,
                    record=f"{section}[{i}]",
                    fix="give every record a unique id",
                )
            seen.add(rec["id"])
    for i, im in enumerate(doc["images"]):
        check_image_size(im["width"], im["height"], file=file, record=f"images[{i}] (id {im['id']})")
    images = {im["id"]: im for im in doc["images"]}
    categories = {c["id"] for c in doc["categories"]}
    for i, ann in enumerate(doc["annotations"]):
        rec = _record_name(doc, ["annotations", i])
        image = images.get(ann["image_id"])
        if image is None:
            raise PointlyError(
                f"image_id {ann['image_id']} is not in images",
                file=file,
                record=rec,
                fix="add the image record or correct image_id",
            )
        if ann["category_id"] not in categories:
            raise PointlyError(
                f"unknown category_id {ann['category_id']}",
                file=file,
                record=rec,
                fix="add the category to categories or correct category_id",
            )
        n = len(ann["point_coords"])
        if n == 0:
            raise PointlyError("no points", file=file, record=rec, fix="drop the annotation or add at least one point")
        for key in ("point_labels", "point_kinds", "point_times"):
            if key in ann and len(ann[key]) != n:
                raise PointlyError(
                    f"{key} has {len(ann[key])} entries but point_coords has {n}",
                    file=file,
                    record=rec,
                    fix="give one entry per point",
                )
        w, h = image["width"], image["height"]
        for j, (x, y) in enumerate(ann["point_coords"]):
            if not (0 <= x < w and 0 <= y < h):
                raise PointlyError(
                    f"point {j} ({x}, {y}) lies outside the {w}x{h} image",
                    file=file,
                    record=rec,
                    fix="points are integer pixel indices with 0 <= x < width, 0 <= y < height",
                )
        if "point_times" in ann and any(not math.isfinite(t) for t in ann["point_times"]):
            raise PointlyError("point_times holds a non-finite number", file=file, record=rec)


def load_points(path: str | Path, *, categories: Iterable[Mapping] | None = None) -> dict:
    """Read and validate a points JSON file; every problem is one :class:`PointlyError` line.

    Files from other tools are read as well: a category without ``isthing`` (a COCO instances or
    PointSup file) takes it from ``categories`` (the records of a category file, matched by id)
    when given, else it is a thing (:func:`fill_isthing`); trailing PointSup padding marked by
    ``pointly_padding`` is dropped again (:func:`drop_padding`). Every other key is kept as read.
    """
    path = Path(path)
    if not path.is_file():
        raise PointlyError("file not found", file=path, fix="check the path of the points JSON")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise PointlyError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            file=path,
            fix="the file may be truncated; regenerate it",
        ) from None
    except UnicodeDecodeError:
        raise PointlyError("not a UTF-8 text file", file=path, fix="pass a points JSON file") from None
    if isinstance(doc, dict):
        fill_isthing(doc, categories)
    validate_points(doc, file=path)
    drop_padding(doc, file=path)
    return doc


def fill_isthing(doc: dict, categories: Iterable[Mapping] | None = None) -> int:
    """Give every category of ``doc`` that lacks ``isthing`` one; return how many were filled.

    COCO instances files and PointSup files have no ``isthing``. The value comes from the record
    with the same id in ``categories`` (a category file, e.g. COCO panoptic categories) when it
    holds one, else 1: a category is a thing unless a category file says otherwise. Records that
    are not objects are left for :func:`validate_points` to report.
    """
    known: dict[Any, int] = {}
    for c in categories or ():
        if isinstance(c, Mapping) and c.get("isthing") in (0, 1, True, False):
            known[c.get("id")] = int(c["isthing"])
    filled = 0
    cats = doc.get("categories")
    for c in cats if isinstance(cats, list) else ():
        if isinstance(c, dict) and "isthing" not in c:
            c["isthing"] = known.get(c.get("id"), 1)
            filled += 1
    return filled


#: annotation key written by ``pointly export --to pointsup``: how many trailing entries of
#: point_coords/point_labels only repeat the annotation's own points to reach a fixed count
PADDING_KEY = "pointly_padding"


def drop_padding(doc: Mapping, *, file: str | Path | None = None) -> int:
    """Remove the PointSup padding that :data:`PADDING_KEY` marks; return the points removed.

    The padding repeats an annotation's own points cyclically (point ``k + i`` is point
    ``i mod k``), so removing it gives back exactly the points that were exported. A marker that
    does not describe such a tail is refused rather than guessed at.
    """
    removed = 0
    for i, ann in enumerate(doc["annotations"]):
        if PADDING_KEY not in ann:
            continue
        pad = ann[PADDING_KEY]
        coords, labels = ann["point_coords"], ann["point_labels"]
        n = len(coords)
        record = _record_name(doc, ["annotations", i])
        fix = f"remove {PADDING_KEY} from the record or restore the padded points"
        if type(pad) is not int or not 0 <= pad < n:
            raise PointlyError(
                f"{PADDING_KEY} must be an integer from 0 to {n - 1}, got {pad!r}", file=file, record=record, fix=fix
            )
        k = n - pad
        if any(coords[j] != coords[j % k] or labels[j] != labels[j % k] for j in range(k, n)):
            raise PointlyError(f"the last {pad} points do not repeat the first {k}", file=file, record=record, fix=fix)
        for key in ("point_coords", "point_labels", "point_kinds", "point_times"):
            if key in ann:
                ann[key] = ann[key][:k]
        del ann[PADDING_KEY]
        removed += pad
    return removed


def save_points(path: str | Path, doc: Mapping, *, validate: bool = True) -> None:
    """Validate and write a points document atomically (temp file, then rename).

    The bytes depend only on the document: keys keep their insertion order and no timestamps are
    added here, so the same input gives the same file.
    """
    if validate:
        validate_points(doc, file=path)
    write_json_atomic(path, doc)


def make_document(
    images: Iterable[Mapping],
    categories: Iterable[Mapping],
    annotations: Iterable[Mapping],
    provenance: Mapping[str, Any],
    *,
    licenses: Iterable[Mapping] | None = None,
) -> dict:
    """Assemble a points document with ``info.pointly`` = ``{"format_version", **provenance}``.

    ``provenance`` says how the points were made, e.g. ``{"made_by": "simulator", "points": 20,
    "boundary_share": 0.0, "seed": 0, "source": "panoptic.json", "source_digest": "sha256:..."}``
    or ``{"made_by": "annotator", "users": [...], ...}``. ``licenses`` (COCO's top-level list,
    which image records name by ``license`` id) is kept when given.
    """
    doc: dict[str, Any] = {
        "info": {
            "description": "pointly points annotations",
            "pointly": {"format_version": FORMAT_VERSION, **dict(provenance)},
        },
    }
    if licenses is not None:
        doc["licenses"] = [dict(lic) for lic in licenses]
    doc.update(
        {
            "images": [dict(im) for im in images],
            "categories": [dict(c) for c in categories],
            "annotations": [dict(a) for a in annotations],
        }
    )
    return doc


def annotations_by_image(doc: Mapping) -> dict[int, list[dict]]:
    """Group the annotations of a document by ``image_id`` (images without points map to [])."""
    out: dict[int, list[dict]] = {im["id"]: [] for im in doc["images"]}
    groups: dict[int, list[dict]] = defaultdict(list)
    for ann in doc["annotations"]:
        groups[ann["image_id"]].append(ann)
    out.update(groups)
    return out


def points_bbox(coords: Iterable[Iterable[int]]) -> list[float]:
    """The COCO ``[x, y, w, h]`` box of integer pixel points (a pixel is 1×1, so w = max−min+1)."""
    xs, ys = zip(*coords)
    return [float(min(xs)), float(min(ys)), float(max(xs) - min(xs) + 1), float(max(ys) - min(ys) + 1)]
