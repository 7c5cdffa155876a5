"""What the PointSup, CVAT and Label Studio converters share: pixels, reference files, results.

**Pixels.** pointly's points are integer pixel indices. Tools with continuous coordinates (CVAT
pixels, Label Studio percentages) put pixel ``i`` at its centre ``i + 0.5`` on export and take
``floor(c)`` on import (d = floor(c), c = d + 0.5: the discrete/continuous rule that PointSup's
mapper uses too). The centre sits half a pixel from both edges, so the rounding of a percentage
never moves a point to the next pixel; writing ``i`` itself would put it on the edge, where a
rounding error of 1e-15 gives ``i - 1`` back.

**Reference file** (``--images-json``): any COCO-like JSON with ``images`` and ``categories``
(COCO instances or panoptic, or a points file). It supplies what a transfer format cannot hold:
image ids and records (with ``license`` and the other keys), category ids and ``isthing``,
``licenses``, and the true boxes of the source segments.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.limits import check_image_size
from pointly.pointgen.base.points_format import file_digest, make_document, validate_points

#: the formats ``pointly export`` / ``pointly import`` know
FORMAT_NAMES = ("pointsup", "cvat", "labelstudio")


def pixel_centre(index: int) -> float:
    """The continuous coordinate of pixel ``index``: its centre."""
    return index + 0.5


def pixel_index(coord: float, size: int) -> int | None:
    """The pixel that continuous ``coord`` falls in, or None when it lies outside ``[0, size]``.

    A coordinate on the far edge (``coord == size``, e.g. 100 %) belongs to the last pixel.
    """
    if not isinstance(coord, (int, float)) or isinstance(coord, bool) or not math.isfinite(coord):
        return None
    if coord < 0 or coord > size:
        return None
    return min(int(math.floor(coord)), size - 1)


def parse_flag(value: Any) -> bool | None:
    """A yes/no attribute as tools write it (``true``/``false``, ``1``/``0``, ``yes``/``no``)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    return None


def read_json(path: str | Path, *, what: str) -> Any:
    """Read a JSON file; a missing, unreadable or malformed file is one PointlyError line."""
    path = Path(path)
    if not path.is_file():
        raise PointlyError("file not found", file=path, fix=f"check the path of the {what}")
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except json.JSONDecodeError as exc:
        raise PointlyError(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            file=path,
            fix=f"pass a {what}; the file may be truncated",
        ) from None
    except UnicodeDecodeError:
        raise PointlyError("not a UTF-8 text file", file=path, fix=f"pass a {what}") from None


@dataclass
class Reference:
    """The records of a ``--images-json`` file, indexed for the converters."""

    path: Path
    images: list[dict]
    categories: list[dict]
    licenses: list[dict] | None
    #: (image_id, segment id) -> the source record (instances annotation or panoptic segment)
    segments: dict[tuple[int, int], dict] = field(default_factory=dict)

    def image_by_name(self, name: str) -> dict | None:
        """The image record whose ``file_name`` is ``name`` (or, failing that, whose base name is
        ``name``'s base name, when exactly one is)."""
        exact = [im for im in self.images if im["file_name"] == name]
        if exact:
            return exact[0]
        base = name.replace("\\", "/").rsplit("/", 1)[-1]
        same = [im for im in self.images if im["file_name"].replace("\\", "/").rsplit("/", 1)[-1] == base]
        return same[0] if len(same) == 1 else None

    def category_by_name(self, name: str, *, record: str, file: Path | str) -> dict:
        """The category named ``name``; an unknown or ambiguous name is one PointlyError line."""
        found = [c for c in self.categories if c["name"] == name]
        if len(found) == 1:
            return found[0]
        if not found:
            raise PointlyError(
                f"label {name!r} is not a category of {self.path.name}",
                file=file,
                record=record,
                fix="correct the label or pass the category file it comes from",
            )
        raise PointlyError(
            f"{self.path.name} has {len(found)} categories named {name!r}",
            file=file,
            record=record,
            fix="give the categories of the reference file distinct names",
        )


def load_reference(path: str | Path) -> Reference:
    """Read a ``--images-json`` file: COCO instances, COCO panoptic or a points JSON."""
    path = Path(path)
    doc = read_json(path, what="COCO JSON with images and categories")
    fix = "pass a COCO JSON with images (id, file_name, width, height) and categories (id, name)"
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("images"), list)
        or not isinstance(doc.get("categories"), list)
    ):
        raise PointlyError("not a COCO JSON with images and categories lists", file=path, fix=fix)
    images, seen = [], set()
    for i, im in enumerate(doc["images"]):
        if not (
            isinstance(im, dict)
            and type(im.get("id")) is int
            and isinstance(im.get("file_name"), str)
            and type(im.get("width")) is int
            and type(im.get("height")) is int
            and im["width"] >= 1
            and im["height"] >= 1
        ):
            raise PointlyError(
                "an image needs an integer id, a file_name and integer width and height >= 1",
                file=path,
                record=f"images[{i}]",
                fix=fix,
            )
        if im["id"] in seen:
            raise PointlyError(
                f"duplicate image id {im['id']}", file=path, record=f"images[{i}]", fix="give every image a unique id"
            )
        check_image_size(im["width"], im["height"], file=path, record=f"images[{i}] (id {im['id']})")
        seen.add(im["id"])
        images.append(im)
    cats, seen = [], set()
    for i, c in enumerate(doc["categories"]):
        if not (isinstance(c, dict) and type(c.get("id")) is int and isinstance(c.get("name"), str)):
            raise PointlyError(
                "a category needs an integer id and a name", file=path, record=f"categories[{i}]", fix=fix
            )
        if "isthing" in c and c["isthing"] not in (0, 1):
            raise PointlyError(
                f"isthing must be 0 or 1, got {c['isthing']!r}",
                file=path,
                record=f"categories[{i}] (id {c['id']})",
                fix="use 1 for things, 0 for stuff",
            )
        if c["id"] in seen:
            raise PointlyError(
                f"duplicate category id {c['id']}",
                file=path,
                record=f"categories[{i}]",
                fix="give every category a unique id",
            )
        seen.add(c["id"])
        cats.append(c)
    licenses = doc.get("licenses") if isinstance(doc.get("licenses"), list) else None
    ref = Reference(path, images, cats, licenses)
    for ann in doc.get("annotations") or []:
        if not isinstance(ann, dict):
            continue
        if isinstance(ann.get("segments_info"), list):  # COCO panoptic: one record per image
            for seg in ann["segments_info"]:
                if isinstance(seg, dict) and "id" in seg:
                    ref.segments[(ann.get("image_id"), seg["id"])] = seg
        elif "id" in ann and "image_id" in ann:  # COCO instances
            ref.segments[(ann["image_id"], ann["id"])] = ann
    return ref


def resolve_categories(
    names: list[str], declared_isthing: Mapping[str, bool | None], ref: Reference | None, *, file: Path | str
) -> tuple[list[dict], dict[str, int]]:
    """Category records and a name -> id map for a format that names categories by label.

    With a reference file its categories (ids, names, ``isthing``) are used, all of them; a
    label it lacks is an error, and so is a thing/stuff mark in the file that contradicts it.
    Without one, the labels get ids 1, 2, ... in ``names`` order. ``isthing`` comes from the
    file's own mark, else the reference file, else 1 (thing).
    """
    if ref is None:
        cats = []
        for k, name in enumerate(names, start=1):
            mark = declared_isthing.get(name)
            cats.append({"id": k, "name": name, "isthing": 1 if mark is None else int(mark)})
        return cats, {c["name"]: c["id"] for c in cats}
    cats = [dict(c) for c in ref.categories]
    by_id = {c["id"]: c for c in cats}
    ids: dict[str, int] = {}
    for name in names:
        rec = ref.category_by_name(name, record=f"label {name!r}", file=file)
        ids[name] = rec["id"]
        mark = declared_isthing.get(name)
        if mark is not None and "isthing" in rec and int(mark) != rec["isthing"]:
            kind = "a thing" if mark else "stuff"
            raise PointlyError(
                f"label {name!r} is marked {kind} here but has isthing {rec['isthing']} in {ref.path.name}",
                file=file,
                record=f"label {name!r}",
                fix="correct the mark or the category file",
            )
        if mark is not None:
            by_id[rec["id"]]["isthing"] = int(mark)
    for c in cats:
        c.setdefault("isthing", 1)
    return cats, ids


def resolve_image(
    name: str, width: int | None, height: int | None, ref: Reference | None, *, file: Path | str, record: str
) -> dict | None:
    """The reference image record for ``name``, checked against the size the file states.

    Returns None without a reference file; an image the reference lacks, or one whose size
    disagrees, is one PointlyError line.
    """
    if ref is None:
        return None
    rec = ref.image_by_name(name)
    if rec is None:
        raise PointlyError(
            f"image {name!r} is not in {ref.path.name}",
            file=file,
            record=record,
            fix="pass the COCO JSON that lists these images",
        )
    if (width is not None and width != rec["width"]) or (height is not None and height != rec["height"]):
        raise PointlyError(
            f"image {name!r} is {width}x{height} here but {rec['width']}x{rec['height']} in {ref.path.name}",
            file=file,
            record=record,
            fix="pass the COCO JSON of these very images",
        )
    return rec


def imported_document(
    path: Path,
    fmt: str,
    images: Iterable[Mapping],
    categories: Iterable[Mapping],
    annotations: Iterable[Mapping],
    ref: Reference | None,
    *,
    licenses: Iterable[Mapping] | None = None,
    extra: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
    renumber: bool = True,
) -> dict:
    """Assemble and validate the points document of an import.

    Annotation ids become 1, 2, ... in file order (formats without ids), or are kept with
    ``renumber=False``. ``info.pointly`` records ``made_by: "import"``, the format, the file name
    and digest (and the reference file). ``info`` keeps the source's own info keys; ``licenses``
    default to the reference file's.
    """
    anns = []
    for k, a in enumerate(annotations, start=1):
        anns.append({"id": k, **{key: v for key, v in a.items() if key != "id"}} if renumber else dict(a))
    prov: dict[str, Any] = {
        "made_by": "import",
        "imported_from": fmt,
        "source": path.name,
        "source_digest": file_digest(path),
    }
    if ref is not None:
        prov["images_json"] = ref.path.name
    prov.update(extra or {})
    if licenses is None and ref is not None:
        licenses = ref.licenses
    doc = make_document(images, categories, anns, prov, licenses=licenses)
    for key, value in (info or {}).items():
        if key != "pointly":
            doc["info"][key] = value
    validate_points(doc, file=path)
    return doc


def used_categories(doc: Mapping) -> set[int]:
    """Ids of the categories that some annotation of ``doc`` uses."""
    return {a["category_id"] for a in doc["annotations"]}


def check_unique_names(doc: Mapping, *, file: Path | str, fmt: str) -> dict[int, str]:
    """Category id -> name, refusing names that a label-named format could not tell apart."""
    names: dict[str, int] = {}
    for c in doc["categories"]:
        name = c["name"]
        if not name.strip():
            raise PointlyError(
                f"category {c['id']} has an empty name, which {fmt} cannot use as a label",
                file=file,
                record=f"category id {c['id']}",
                fix="give the category a name",
            )
        if name in names:
            raise PointlyError(
                f"categories {names[name]} and {c['id']} are both named {name!r}; {fmt} names categories by label",
                file=file,
                record=f"category id {c['id']}",
                fix="give every category a distinct name",
            )
        names[name] = c["id"]
    return {v: k for k, v in names.items()}


def check_unique_file_names(doc: Mapping, *, file: Path | str, fmt: str) -> None:
    """Refuse two images with one file name: the tools match images by name."""
    seen: dict[str, int] = {}
    for im in doc["images"]:
        if im["file_name"] in seen:
            raise PointlyError(
                f"images {seen[im['file_name']]} and {im['id']} are both named "
                f"{im['file_name']!r}; {fmt} tells images apart by name",
                file=file,
                record=f"image id {im['id']}",
                fix="give every image a distinct file_name",
            )
        seen[im["file_name"]] = im["id"]


def refuse_crowd(doc: Mapping, *, file: Path | str, fmt: str) -> None:
    """Crowd regions: CVAT and Label Studio points have no place for ``iscrowd``."""
    for a in doc["annotations"]:
        if a.get("iscrowd", 0):
            raise PointlyError(
                f"a crowd region (iscrowd 1) cannot be marked in {fmt}; it would come back as a single segment",
                file=file,
                record=f"annotation id {a['id']}",
                fix="drop crowd annotations (simulate without --include-crowd)",
            )


def refuse_times(doc: Mapping, *, file: Path | str, fmt: str, drop_times: bool) -> None:
    """``point_times`` that a format cannot hold: refused unless the user drops them knowingly."""
    if drop_times:
        return
    for a in doc["annotations"]:
        if "point_times" in a:
            raise PointlyError(
                f"{fmt} cannot hold point_times (the measured seconds of each point)",
                file=file,
                record=f"annotation id {a['id']}",
                fix="pass --drop-times to export without them (cost then models the seconds)",
            )
