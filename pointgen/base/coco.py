"""Readers for COCO panoptic (JSON + PNG folder) datasets, the records every COCO reader shares,
and :func:`open_dataset`, which opens a panoptic or an instances dataset.

Both readers (this module's :class:`PanopticDataset` and
:class:`~pointly.pointgen.base.coco_instances.InstancesDataset`) give the same view of an image: an
:class:`ImageInfo` and a list of :class:`Segment` records (category, isthing, crowd flag, box,
area, and a boolean mask on demand). Panoptic PNGs encode segment ids as ``R + 256·G + 256²·B``
with 0 = VOID; the reader checks that the ids in the PNG equal ``segments_info`` and that each
segment's area and box agree with its pixels, and reports the first disagreement as a
:class:`PointlyError`. Instance masks may overlap; panoptic ones never do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, UnidentifiedImageError

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.limits import check_image_size

if TYPE_CHECKING:
    from pointly.pointgen.base.coco_instances import InstancesDataset


@dataclass(frozen=True)
class Category:
    """A COCO category; ``isthing`` is True for countable objects, False for stuff."""

    id: int
    name: str
    isthing: bool
    supercategory: str = ""
    color: tuple[int, int, int] | None = None

    def to_json(self) -> dict:
        out = {"id": self.id, "name": self.name, "isthing": int(self.isthing), "supercategory": self.supercategory}
        if self.color is not None:
            out["color"] = list(self.color)
        return out


@dataclass(frozen=True)
class ImageInfo:
    """One image record: id, file name, size (width, height)."""

    id: int
    file_name: str
    width: int
    height: int

    def to_json(self) -> dict:
        return {"id": self.id, "file_name": self.file_name, "width": self.width, "height": self.height}


@dataclass
class Segment:
    """One thing instance or stuff region of an image.

    ``segment_id`` is the panoptic segment id (panoptic datasets) or the annotation id (instances).
    ``bbox`` is COCO ``[x, y, w, h]`` as stored in the JSON. ``mask`` is a boolean ``H × W`` array.
    """

    segment_id: int
    category_id: int
    isthing: bool
    iscrowd: bool
    bbox: tuple[float, float, float, float]
    area: float
    mask: np.ndarray = field(repr=False)


def decode_panoptic_png(path: str | Path, *, dtype: type = np.int64) -> np.ndarray:
    """Decode a COCO panoptic PNG into an ``H × W`` array of segment ids (0 = VOID).

    ``id = R + 256·G + 256²·B``. The ids are assembled in uint32 (they fit in 24 bits) and
    converted to ``dtype`` (int64 by default); ``dtype=np.uint32`` skips the conversion, which
    the simulator uses. Palette, RGBA and grey PNGs are converted to RGB first.
    """
    path = Path(path)
    if not path.is_file():
        raise PointlyError(
            "panoptic PNG not found", file=path, fix="check --panoptic-dir and the file_name in the JSON"
        )
    try:
        with Image.open(path) as im:
            rgb = np.asarray(im if im.mode == "RGB" else im.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        # PIL raises SyntaxError ("broken PNG file") for some damaged chunks, OSError for truncation
        raise PointlyError(
            f"unreadable PNG ({exc.__class__.__name__})", file=path, fix="the file is damaged; re-export it"
        ) from None
    ids = rgb[..., 2].astype(np.uint32)
    ids <<= 8
    ids |= rgb[..., 1]
    ids <<= 8
    ids |= rgb[..., 0]
    return ids if dtype is np.uint32 else ids.astype(dtype)


def encode_panoptic_png(ids: np.ndarray) -> np.ndarray:
    """Inverse of :func:`decode_panoptic_png`: ``H × W`` ids → ``H × W × 3`` uint8 RGB."""
    ids = np.asarray(ids, dtype=np.int64)
    return np.stack([ids % 256, (ids // 256) % 256, ids // 65536], axis=-1).astype(np.uint8)


def load_json_object(path: str | Path, what: str) -> dict:
    """Read a JSON file that must hold an object; every problem is one :class:`PointlyError` line.

    ``what`` names the file in the message (e.g. "panoptic JSON").
    """
    path = Path(path)
    if not path.is_file():
        raise PointlyError(f"{what} not found", file=path, fix="check the path")
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except json.JSONDecodeError as exc:
        raise PointlyError(
            f"not valid JSON: {exc.msg} at line {exc.lineno}", file=path, fix="the file may be truncated; re-create it"
        ) from None
    except UnicodeDecodeError:
        raise PointlyError("not a UTF-8 text file", file=path, fix=f"pass the {what} file") from None
    if not isinstance(doc, dict):
        raise PointlyError(f"not a COCO JSON object (expected the {what})", file=path)
    return doc


def records(doc: Mapping, key: str, path: Path) -> list:
    """``doc[key]`` as a list of records ([] when absent); anything else is one error line."""
    value = doc.get(key, [])
    if not isinstance(value, list):
        raise PointlyError(
            f"'{key}' is a {type(value).__name__}, not a list",
            file=path,
            record=key,
            fix=f"'{key}' must be a list of records (COCO format)",
        )
    return value


def read_categories(doc: Mapping, path: Path, *, default_isthing: bool | None) -> dict[int, Category]:
    """The ``categories`` of a COCO document by id; ``default_isthing`` for records without
    ``isthing`` (None: the field is required)."""
    cats = {}
    for i, c in enumerate(records(doc, "categories", path)):
        try:
            isthing = bool(c["isthing"]) if "isthing" in c else default_isthing
            if isthing is None:
                raise KeyError("isthing")
            color = tuple(int(v) for v in c["color"]) if "color" in c else None
            cats[int(c["id"])] = Category(int(c["id"]), str(c["name"]), isthing, str(c.get("supercategory", "")), color)
        except (KeyError, TypeError, ValueError) as exc:
            raise PointlyError(
                f"missing or bad field {exc}",
                file=path,
                record=f"categories[{i}]",
                fix="categories need id, name and isthing",
            ) from None
    if not cats:
        raise PointlyError("no categories", file=path, fix="a COCO file needs a categories list")
    return cats


def read_images(doc: Mapping, path: Path) -> list[ImageInfo]:
    """The ``images`` of a COCO document, checked (fields, pixel limits, unique ids)."""
    out, seen = [], set()
    for i, im in enumerate(records(doc, "images", path)):
        try:
            image_id, file_name, width, height = int(im["id"]), str(im["file_name"]), im["width"], im["height"]
        except (KeyError, TypeError, ValueError) as exc:
            raise PointlyError(
                f"missing or bad field {exc}",
                file=path,
                record=f"images[{i}]",
                fix="images need id, file_name, width and height",
            ) from None
        size = check_image_size(width, height, file=path, record=f"images[{i}] (id {image_id})")
        info = ImageInfo(image_id, file_name, *size)
        if info.id in seen:
            raise PointlyError(
                f"duplicate image id {info.id}", file=path, record=f"images[{i}]", fix="give every image a unique id"
            )
        seen.add(info.id)
        out.append(info)
    return out


def mask_bbox(mask: np.ndarray) -> tuple[float, float, float, float]:
    """The COCO ``[x, y, w, h]`` box of a boolean mask (pixel-aligned, as panopticapi computes it)."""
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1))


def is_number(v: object) -> bool:
    """True for a finite int or float (not a bool)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def _check_segment_info(s: object, path: Path, record: str) -> None:
    """A ``segments_info`` entry needs an integer ``id`` and ``category_id``; ``area`` and
    ``bbox`` (``[x, y, w, h]``), when present, must be numbers, so that later checks never crash."""
    fix = "segments_info entries need id, category_id, and numeric area / bbox [x, y, w, h]"
    if not isinstance(s, Mapping):
        raise PointlyError("segment record is not an object", file=path, record=record, fix=fix)
    for key in ("id", "category_id"):
        if isinstance(s.get(key), bool) or not isinstance(s.get(key), int):
            raise PointlyError(f"missing or non-integer {key}: {s.get(key)!r}", file=path, record=record, fix=fix)
    if "area" in s and not is_number(s["area"]):
        raise PointlyError(f"segment {s['id']}: area {s['area']!r} is not a number", file=path, record=record, fix=fix)
    box = s.get("bbox")
    if "bbox" in s and not (isinstance(box, list) and len(box) == 4 and all(is_number(v) for v in box)):
        raise PointlyError(f"segment {s['id']}: bbox {box!r} is not [x, y, w, h]", file=path, record=record, fix=fix)


class PanopticDataset:
    """A COCO panoptic dataset: ``panoptic.json`` plus a folder of PNGs.

    ``check=True`` (the default) verifies, per image, that the PNG's ids equal ``segments_info``,
    that each area equals the pixel count and that each box equals the mask's box (within one
    pixel, since some tools store float boxes).
    """

    kind = "panoptic"

    def __init__(self, json_path: str | Path, png_dir: str | Path, *, check: bool = True) -> None:
        self.json_path = Path(json_path)
        self.png_dir = Path(png_dir)
        if not self.png_dir.is_dir():
            raise PointlyError(
                "panoptic PNG folder not found", file=self.png_dir, fix="pass the folder holding the panoptic PNGs"
            )
        doc = load_json_object(self.json_path, "panoptic JSON")
        self.check = check
        self.categories = read_categories(doc, self.json_path, default_isthing=None)
        self.images = read_images(doc, self.json_path)
        self._by_id = {im.id: im for im in self.images}
        self._anns: dict[int, dict] = {}
        for i, ann in enumerate(records(doc, "annotations", self.json_path)):
            try:
                image_id = int(ann["image_id"])
                ann["file_name"], iter(ann["segments_info"])
            except (KeyError, TypeError, ValueError) as exc:
                raise PointlyError(
                    f"missing or bad field {exc}",
                    file=self.json_path,
                    record=f"annotations[{i}]",
                    fix="panoptic annotations need image_id, file_name, segments_info",
                ) from None
            if image_id in self._anns:
                raise PointlyError(
                    f"a second annotation for image_id {image_id}",
                    file=self.json_path,
                    record=f"annotations[{i}]",
                    fix="keep one panoptic annotation per image",
                )
            self._anns[image_id] = ann
            if int(ann["image_id"]) not in self._by_id:
                raise PointlyError(
                    f"image_id {ann['image_id']} is not in images",
                    file=self.json_path,
                    record=f"annotations[{i}]",
                    fix="add the image record",
                )
            for j, s in enumerate(ann["segments_info"]):
                _check_segment_info(
                    s, self.json_path, f"annotations[{i}] (image_id {ann['image_id']}) segments_info[{j}]"
                )
                if int(s["category_id"]) not in self.categories:
                    raise PointlyError(
                        f"unknown category_id {s['category_id']} in segment {s['id']}",
                        file=self.json_path,
                        record=f"annotations[{i}] (image_id {ann['image_id']})",
                        fix="add the category to categories or correct the segment",
                    )
        self.raw = doc

    def image(self, image_id: int) -> ImageInfo:
        return self._by_id[image_id]

    def segments_info(self, image_id: int) -> list[dict]:
        """The JSON ``segments_info`` of an image (empty if the image has no annotation)."""
        ann = self._anns.get(image_id)
        return [] if ann is None else list(ann["segments_info"])

    def png_path(self, image_id: int) -> Path:
        return self.png_dir / self._anns[image_id]["file_name"]

    def label_map(self, image_id: int) -> np.ndarray:
        """The image's ``H × W`` segment-id map (0 = VOID), checked against the JSON."""
        info = self._by_id[image_id]
        if image_id not in self._anns:
            return np.zeros((info.height, info.width), dtype=np.int64)
        path = self.png_path(image_id)
        ids = decode_panoptic_png(path)
        if ids.shape != (info.height, info.width):
            raise PointlyError(
                f"PNG is {ids.shape[1]}x{ids.shape[0]} but the image record says {info.width}x{info.height}",
                file=path,
                record=f"image_id {image_id}",
                fix="the PNG and the JSON do not belong together",
            )
        if self.check:
            self._check(image_id, ids, path)
        return ids

    def _check(self, image_id: int, ids: np.ndarray, path: Path) -> None:
        infos = self.segments_info(image_id)
        json_ids = {int(s["id"]) for s in infos}
        uniq, counts = np.unique(ids, return_counts=True)
        png_ids = {int(u) for u in uniq if u != 0}
        if png_ids != json_ids:
            extra = sorted(png_ids - json_ids)[:5]
            missing = sorted(json_ids - png_ids)[:5]
            raise PointlyError(
                f"segment ids disagree: in PNG only {extra}, in JSON only {missing}",
                file=path,
                record=f"image_id {image_id}",
                fix="the PNG and segments_info do not belong together",
            )
        count = dict(zip(uniq.tolist(), counts.tolist()))
        for s in infos:
            sid = int(s["id"])
            if "area" in s and int(round(s["area"])) != count[sid]:
                raise PointlyError(
                    f"segment {sid}: area {s['area']} but the PNG has {count[sid]} pixels",
                    file=self.json_path,
                    record=f"image_id {image_id}",
                    fix="recompute the areas from the PNGs",
                )
            if "bbox" in s:
                got = mask_bbox(ids == sid)
                if any(abs(a - b) > 1.0 for a, b in zip(s["bbox"], got)):
                    raise PointlyError(
                        f"segment {sid}: bbox {s['bbox']} but the PNG gives {list(got)}",
                        file=self.json_path,
                        record=f"image_id {image_id}",
                        fix="recompute the boxes from the PNGs",
                    )

    def segments(self, image_id: int, *, with_masks: bool = True) -> list[Segment]:
        """All segments of an image in JSON order, each with its boolean mask."""
        ids = self.label_map(image_id) if with_masks else None
        out = []
        for s in self.segments_info(image_id):
            cat = self.categories[int(s["category_id"])]
            mask = (ids == int(s["id"])) if ids is not None else np.zeros((0, 0), bool)
            bbox = tuple(float(v) for v in s["bbox"]) if "bbox" in s else mask_bbox(mask)
            area = float(s["area"]) if "area" in s else float(mask.sum())
            out.append(Segment(int(s["id"]), cat.id, cat.isthing, bool(s.get("iscrowd", 0)), bbox, area, mask))
        return out

    def __iter__(self) -> Iterator[ImageInfo]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)


def open_dataset(
    *,
    panoptic_json: str | Path | None = None,
    panoptic_dir: str | Path | None = None,
    instances_json: str | Path | None = None,
    check: bool = True,
) -> PanopticDataset | InstancesDataset:
    """Open either a panoptic (JSON + PNG folder) or an instances dataset, with clear errors."""
    if instances_json is not None and (panoptic_json or panoptic_dir):
        raise PointlyError("give either --instances-json or --panoptic-json/--panoptic-dir, not both")
    if instances_json is not None:
        from pointly.pointgen.base.coco_instances import InstancesDataset  # it builds on this module

        return InstancesDataset(instances_json)
    if panoptic_json is None or panoptic_dir is None:
        raise PointlyError(
            "no dataset given", fix="pass --panoptic-json FILE --panoptic-dir DIR, or --instances-json FILE"
        )
    return PanopticDataset(panoptic_json, panoptic_dir, check=check)
