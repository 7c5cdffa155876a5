"""Reader for COCO instances datasets (``instances_*.json``): polygons, compressed RLE and
uncompressed RLE (whose ``counts`` is a list), decoded by pycocotools.

It gives the view of :mod:`pointly.pointgen.base.coco` (an :class:`~pointly.pointgen.base.coco.ImageInfo`
and :class:`~pointly.pointgen.base.coco.Segment` records per image); instance masks may overlap.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from pointly.pointgen.base.coco import (
    ImageInfo,
    Segment,
    is_number,
    load_json_object,
    mask_bbox,
    read_categories,
    read_images,
    records,
)
from pointly.pointgen.base.errors import PointlyError


class InstancesDataset:
    """A COCO instances dataset (``instances_*.json``): polygons, RLE or uncompressed RLE.

    COCO instance files carry no ``isthing``: every category is a thing unless the category
    record says otherwise.
    """

    kind = "instances"

    def __init__(self, json_path: str | Path) -> None:
        self.json_path = Path(json_path)
        doc = load_json_object(self.json_path, "instances JSON")
        self.categories = read_categories(doc, self.json_path, default_isthing=True)
        self.images = read_images(doc, self.json_path)
        self._by_id = {im.id: im for im in self.images}
        self._anns: dict[int, list[dict]] = {im.id: [] for im in self.images}
        ann_ids: set[int] = set()
        for i, ann in enumerate(records(doc, "annotations", self.json_path)):
            rec = f"annotations[{i}]"
            try:
                image_id, cat = int(ann["image_id"]), int(ann["category_id"])
                ann["segmentation"], ann["id"]
            except (KeyError, TypeError, ValueError) as exc:
                raise PointlyError(
                    f"missing or bad field {exc}",
                    file=self.json_path,
                    record=rec,
                    fix="instance annotations need id, image_id, category_id, segmentation",
                ) from None
            if ann["id"] in ann_ids:
                raise PointlyError(
                    f"duplicate annotation id {ann['id']}",
                    file=self.json_path,
                    record=rec,
                    fix="give every annotation a unique id",
                )
            ann_ids.add(ann["id"])
            if image_id not in self._by_id:
                raise PointlyError(
                    f"image_id {image_id} is not in images",
                    file=self.json_path,
                    record=f"{rec} (id {ann['id']})",
                    fix="add the image record",
                )
            if cat not in self.categories:
                raise PointlyError(
                    f"unknown category_id {cat}",
                    file=self.json_path,
                    record=f"{rec} (id {ann['id']})",
                    fix="add the category or correct it",
                )
            box = ann.get("bbox")
            if ("bbox" in ann and not (isinstance(box, list) and len(box) == 4 and all(is_number(v) for v in box))) or (
                "area" in ann and not is_number(ann["area"])
            ):
                raise PointlyError(
                    f"malformed bbox {box!r} or area {ann.get('area')!r}",
                    file=self.json_path,
                    record=f"{rec} (id {ann['id']})",
                    fix="bbox must be 4 numbers [x, y, w, h] and area a number",
                )
            self._anns[image_id].append(ann)
        self.raw = doc

    def image(self, image_id: int) -> ImageInfo:
        return self._by_id[image_id]

    def annotations(self, image_id: int) -> list[dict]:
        return list(self._anns.get(image_id, []))

    def rle(self, ann: Mapping, image: ImageInfo) -> dict:
        """The annotation's segmentation as compressed RLE (pycocotools)."""
        from pycocotools import mask as mask_utils

        seg = ann["segmentation"]
        h, w = image.height, image.width
        try:
            if isinstance(seg, list):  # polygons; parts are merged
                polys = [p for p in seg if len(p) >= 6]
                if not polys:
                    raise ValueError("no polygon with 3 or more vertices")
                return mask_utils.merge(mask_utils.frPyObjects(polys, h, w))
            if isinstance(seg, dict) and isinstance(seg.get("counts"), list):  # uncompressed RLE
                if list(seg["size"]) != [h, w]:
                    raise ValueError(f"RLE size {seg['size']} is not the image's {[h, w]}")
                return mask_utils.frPyObjects(seg, h, w)
            if isinstance(seg, dict):
                if list(seg["size"]) != [h, w]:
                    raise ValueError(f"RLE size {seg['size']} is not the image's {[h, w]}")
                counts = seg["counts"].encode("ascii") if isinstance(seg["counts"], str) else seg["counts"]
                return {"size": seg["size"], "counts": counts}
            raise ValueError("segmentation is neither polygons nor RLE")
        except (ValueError, TypeError, KeyError) as exc:
            raise PointlyError(
                f"bad segmentation: {exc}",
                file=self.json_path,
                record=f"annotation id {ann.get('id')} (image_id {image.id})",
                fix="fix or drop this annotation",
            ) from None

    def segments(self, image_id: int, *, with_masks: bool = True) -> list[Segment]:
        """All instance annotations of an image, each with its decoded boolean mask."""
        from pycocotools import mask as mask_utils

        image = self._by_id[image_id]
        out = []
        for ann in self._anns.get(image_id, []):
            cat = self.categories[int(ann["category_id"])]
            if with_masks:
                mask = mask_utils.decode(self.rle(ann, image)).astype(bool)
            else:
                mask = np.zeros((0, 0), bool)
            bbox = tuple(float(v) for v in ann["bbox"]) if "bbox" in ann else mask_bbox(mask)
            area = float(ann["area"]) if "area" in ann else float(mask.sum())
            out.append(Segment(int(ann["id"]), cat.id, cat.isthing, bool(ann.get("iscrowd", 0)), bbox, area, mask))
        return out

    def __iter__(self) -> Iterator[ImageInfo]:
        return iter(self.images)

    def __len__(self) -> int:
        return len(self.images)
