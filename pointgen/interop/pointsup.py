"""detectron2 PointSup files: pointly points to PointSup's COCO JSON and back.

PointSup (detectron2 ``projects/PointSup``) reads a COCO instances JSON whose annotations carry
``point_coords`` (integer ``[x, y]`` pixel indices) and ``point_labels`` (1 inside the object, 0
outside) instead of ``segmentation``; its mapper stacks the points of all instances of an image
into one tensor, so every instance needs the same number of points. The export therefore

* keeps things only (stuff regions are not PointSup instances; ``include_stuff`` keeps them, and
  their categories keep ``isthing: 0``, an extra key detectron2 ignores);
* gives every instance the same count ``N`` (default: the largest count in the file): a shorter
  one repeats its own points in order (point ``k + i`` = point ``i mod k``) and records how many
  it repeated in ``pointly_padding``, which pointly's readers drop again; a longer one keeps a
  seeded sample of ``N`` of its points in their original order;
* writes each instance's object box: the source segment's box from the reference file when it
  has the annotation's ``source_segment_id``, else the annotation's own ``bbox`` unless that is
  only the box of its points (annotator files), else the box of the points, which is counted
  in a warning (PointSup trains its box head on these boxes).

The import accepts PointSup's own files (no ``isthing``: a category is a thing unless the file
or the reference file says otherwise) and the export's, padding removed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import PADDING_KEY, drop_padding, points_bbox, validate_points
from pointly.pointgen.interop.common import Reference, imported_document, read_json, refuse_times

#: annotation keys the export writes (besides the padding marker)
_KEPT = (
    "id",
    "image_id",
    "category_id",
    "iscrowd",
    "bbox",
    "area",
    "point_coords",
    "point_labels",
    "source_segment_id",
)


def _fixed_count(coords: list, labels: list, n: int, rng: np.random.Generator) -> tuple[list, list, int]:
    """``coords``/``labels`` brought to exactly ``n`` entries; returns them and the padding."""
    k = len(coords)
    if k <= n:
        idx = [i % k for i in range(n)]
        return [list(coords[i]) for i in idx], [labels[i] for i in idx], n - k
    keep = sorted(rng.choice(k, size=n, replace=False).tolist())
    return [list(coords[i]) for i in keep], [labels[i] for i in keep], 0


def _object_box(ann: Mapping, doc: Mapping, ref: Reference | None, *, file: Path | str) -> tuple[list, Any, bool]:
    """(bbox, area or None, whether the box is the object's) for one exported annotation."""
    sid = ann.get("source_segment_id")
    if ref is not None and sid is not None:
        src = ref.segments.get((ann["image_id"], sid))
        if src is None:
            raise PointlyError(
                f"source_segment_id {sid} is not a segment of image {ann['image_id']} in {ref.path.name}",
                file=file,
                record=f"annotation id {ann['id']}",
                fix="pass the COCO JSON the points were made from as --images-json",
            )
        if isinstance(src.get("bbox"), list) and len(src["bbox"]) == 4:
            return [float(v) for v in src["bbox"]], src.get("area"), True
    own = ann.get("bbox")
    clicks = points_bbox(ann["point_coords"])
    made_by = doc.get("info", {}).get("pointly", {}).get("made_by") if isinstance(doc.get("info"), dict) else None
    if own is not None and (made_by == "simulator" or [float(v) for v in own] != clicks):
        return [float(v) for v in own], ann.get("area"), True
    return clicks, ann.get("area"), False


def export_pointsup(
    doc: Mapping,
    *,
    file: Path | str,
    points: int | None = None,
    seed: int = 0,
    include_stuff: bool = False,
    drop_times: bool = False,
    ref: Reference | None = None,
) -> tuple[dict, list[str]]:
    """The PointSup JSON of a points document, and warning lines (see the module docstring)."""
    refuse_times(doc, file=file, fmt="PointSup", drop_times=drop_times)
    if points is not None and points < 1:
        raise PointlyError(f"--points must be at least 1, got {points}", fix="pass --points N with N >= 1")
    things = {c["id"] for c in doc["categories"] if c.get("isthing", 1) == 1}
    chosen = [a for a in doc["annotations"] if include_stuff or a["category_id"] in things]
    warnings = []
    left_out = len(doc["annotations"]) - len(chosen)
    if left_out:
        warnings.append(
            f"left out {left_out} stuff segments: they are not PointSup instances (--include-stuff keeps them)"
        )
    n = points if points is not None else max((len(a["point_coords"]) for a in chosen), default=1)
    anns, click_boxes, sampled = [], 0, 0
    for index, a in enumerate(chosen):
        rng = np.random.default_rng([seed, index])
        coords, labels, pad = _fixed_count(a["point_coords"], a["point_labels"], n, rng)
        sampled += len(a["point_coords"]) > n
        bbox, area, true_box = _object_box(a, doc, ref, file=file)
        click_boxes += not true_box
        out = {k: a[k] for k in _KEPT if k in a}
        out.update(
            {
                "iscrowd": int(a.get("iscrowd", 0)),
                "bbox": bbox,
                "area": float(area if area is not None else bbox[2] * bbox[3]),
                "point_coords": [[int(x), int(y)] for x, y in coords],
                "point_labels": [int(v) for v in labels],
            }
        )
        if pad:
            out[PADDING_KEY] = pad
        anns.append(out)
    if sampled:
        warnings.append(f"{sampled} instances had more than {n} points and keep a sample of {n} (seed {seed})")
    if click_boxes:
        warnings.append(
            f"{click_boxes} of {len(anns)} instances have only the box of their points, not the "
            f"object's (pass --images-json with the COCO file the points were made from)"
        )
    cats = [dict(c) for c in doc["categories"] if include_stuff or c["id"] in things]
    out_doc: dict[str, Any] = {"info": dict(doc.get("info", {}))}
    if "licenses" in doc:
        out_doc["licenses"] = [dict(lic) for lic in doc["licenses"]]
    out_doc.update({"images": [dict(im) for im in doc["images"]], "categories": cats, "annotations": anns})
    return out_doc, warnings


def _integer_points(coords: Any, *, file: Path, record: str) -> list[list[int]]:
    """PointSup's integer pixel indices; a fractional coordinate is one PointlyError line."""
    fix = "PointSup point_coords are integer pixel indices [x, y]; floor continuous coordinates first"
    if not isinstance(coords, list):
        raise PointlyError("point_coords is not a list", file=file, record=record, fix=fix)
    out = []
    for j, p in enumerate(coords):
        if not (
            isinstance(p, list)
            and len(p) == 2
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p)
        ):
            raise PointlyError(f"point {j} is not an [x, y] pair of numbers", file=file, record=record, fix=fix)
        if any(float(v) != int(v) for v in p):
            raise PointlyError(f"point {j} {p} is not on integer pixel indices", file=file, record=record, fix=fix)
        out.append([int(p[0]), int(p[1])])
    return out


def import_pointsup(path: Path, *, ref: Reference | None = None) -> tuple[dict, list[str]]:
    """Read a PointSup JSON (detectron2's or pointly's export) as a points document."""
    doc = read_json(path, what="PointSup COCO JSON")
    fix = "pass a COCO instances JSON whose annotations carry point_coords and point_labels"
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(k), list) for k in ("images", "categories", "annotations")
    ):
        raise PointlyError("not a COCO JSON with images, categories and annotations lists", file=path, fix=fix)
    ref_cats = {c["id"]: c for c in ref.categories} if ref is not None else {}
    cats = []
    for i, c in enumerate(doc["categories"]):
        if not isinstance(c, dict):
            raise PointlyError("a category is not an object", file=path, record=f"categories[{i}]", fix=fix)
        c = dict(c)
        other = ref_cats.get(c.get("id"))
        if ref is not None and other is not None and other.get("name") != c.get("name"):
            raise PointlyError(
                f"category {c.get('id')} is {c.get('name')!r} here but {other.get('name')!r} in {ref.path.name}",
                file=path,
                record=f"categories[{i}]",
                fix="pass the category file of this data set",
            )
        if "isthing" not in c:
            c["isthing"] = int(other["isthing"]) if other is not None and "isthing" in other else 1
        elif other is not None and "isthing" in other and c["isthing"] != other["isthing"]:
            raise PointlyError(
                f"category {c.get('id')} has isthing {c['isthing']} here but {other['isthing']} in {ref.path.name}",
                file=path,
                record=f"categories[{i}]",
                fix="correct isthing in one of the files",
            )
        cats.append(c)
    anns = []
    for i, a in enumerate(doc["annotations"]):
        record = f"annotations[{i}]" + (f" (id {a['id']})" if isinstance(a, dict) and "id" in a else "")
        if not isinstance(a, dict) or "point_coords" not in a or "point_labels" not in a:
            raise PointlyError(
                "no point_coords/point_labels: not a PointSup annotation", file=path, record=record, fix=fix
            )
        out = {k: a[k] for k in _KEPT if k in a}
        out["point_coords"] = _integer_points(a["point_coords"], file=path, record=record)
        labels = a["point_labels"]
        if isinstance(labels, list) and all(v in (0, 1) and not isinstance(v, bool) for v in labels):
            out["point_labels"] = [int(v) for v in labels]  # 1.0 -> 1; anything else is validated below
        if PADDING_KEY in a:
            out[PADDING_KEY] = a[PADDING_KEY]
        anns.append(out)
    provisional = {"images": doc["images"], "categories": cats, "annotations": anns}
    validate_points(provisional, file=path)
    removed = drop_padding(provisional, file=path)
    info = doc.get("info") if isinstance(doc.get("info"), dict) else {}
    extra: dict[str, Any] = {}
    if isinstance(info.get("pointly"), dict):
        extra["source_pointly"] = info["pointly"]
    licenses = doc.get("licenses") if isinstance(doc.get("licenses"), list) else None
    out_doc = imported_document(
        path, "pointsup", doc["images"], cats, anns, ref, licenses=licenses, extra=extra, info=info, renumber=False
    )
    warnings = [f"removed {removed} padding points (pointly_padding)"] if removed else []
    return out_doc, warnings
