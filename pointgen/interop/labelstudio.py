"""Label Studio JSON: pointly points to keypoint tasks and back.

One task per image (Label Studio's JSON export: a list of tasks)::

    {"id": 139,
     "data": {"image": "<prefix>000000000139.jpg",
              "pointly": {"image_id": 139, "file_name": "000000000139.jpg", "width": 640, "height": 426}},
     "annotations": [{"result": [...], "lead_time": 9.0, "was_cancelled": false, "ground_truth": false}]}

Each point is a ``keypointlabels`` region (``from_name`` "label", ``to_name`` "image"):
``value.x``/``value.y`` are the pixel centre in percent of ``original_width``/``original_height``
(``(x + 0.5) / width * 100``; Label Studio's own pixel snapping puts keypoints on pixel centres
too), ``value.keypointlabels`` the category name. The points of one segment stay one segment
through Label Studio's region nesting: the first point is the segment's region, every other
point names it in ``parentID`` (Label Studio's editor keeps a region's ``parentID`` and writes it
back when it saves or exports). A negative point (label 0) has ``is_positive: false``, Label Studio's own mark
for negative keypoints. Thing or stuff is a per-region ``choices`` result of the control "kind"
(``thing`` / ``stuff``) on the segment's first point. ``lead_time`` is the image's measured
active seconds (:mod:`pointly.pointgen.interop.leadtime`); ``data.pointly`` keeps the image id,
file name and size, which Label Studio stores with the task untouched.

Import reads Label Studio's exports as they come: regions without ``parentID`` are segments of
their own, ``is_positive`` and "kind" are optional, the image is ``data.image`` (or the only
text field of ``data``), its file name is ``data.pointly.file_name``, the ``d=`` path of a local-files URL, or the
base name of the URL (without the 8-digit prefix Label Studio gives uploads), its size comes
from the reference file, ``data.pointly`` or the results' ``original_width``/``original_height``;
a point is ``floor(x / 100 * width)``. Of
several submitted annotations of a task the last is used (with a warning); cancelled ones and
predictions are ignored; results of other types are skipped with a warning.

One module, though long: export and import of one format share its field names and checks;
most of the length is import validation with one-line messages.
"""

from __future__ import annotations

import math
import posixpath
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.limits import check_image_size
from pointly.pointgen.interop.common import (
    Reference,
    check_unique_names,
    imported_document,
    pixel_centre,
    pixel_index,
    read_json,
    refuse_crowd,
    resolve_categories,
)
from pointly.pointgen.interop.leadtime import SPREAD_NOTE, lead_times, spread

FROM_NAME = "label"
TO_NAME = "image"
KIND_NAME = "kind"
#: drawn size of an exported keypoint, in pixels (Label Studio stores it in percent of the width)
KEYPOINT_SIZE_PX = 3.0
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{8}-(.+)$")


def _region_id(ann_id: int, j: int) -> str:
    return f"a{ann_id}-p{j}"


def export_labelstudio(
    doc: Mapping, *, file: Path | str, image_prefix: str = "", idle_cutoff: float = 60.0
) -> tuple[list[dict], list[str]]:
    """Label Studio tasks for a points document, and warning lines (see the module docstring)."""
    names = check_unique_names(doc, file=file, fmt="Label Studio")
    refuse_crowd(doc, file=file, fmt="Label Studio")
    isthing = {c["id"]: c.get("isthing", 1) == 1 for c in doc["categories"]}
    by_image: dict[int, list[Mapping]] = {im["id"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        by_image[a["image_id"]].append(a)
    for image_id, anns in by_image.items():
        timed = {("point_times" in a) for a in anns}
        if len(timed) > 1:
            raise PointlyError(
                f"image {image_id} has point_times on some annotations but not on others; "
                f"Label Studio holds one lead_time per image",
                file=file,
                record=f"image id {image_id}",
                fix="give all its annotations point_times or none",
            )
    seconds = lead_times(doc, idle_cutoff)
    tasks = []
    for im in doc["images"]:
        w, h = im["width"], im["height"]
        frame = {"original_width": w, "original_height": h, "image_rotation": 0}
        result = []
        for a in by_image[im["id"]]:
            root = _region_id(a["id"], 0)
            for j, ((x, y), lab) in enumerate(zip(a["point_coords"], a["point_labels"])):
                geometry = {
                    "x": pixel_centre(x) / w * 100,
                    "y": pixel_centre(y) / h * 100,
                    "width": KEYPOINT_SIZE_PX / w * 100,
                }
                region: dict[str, Any] = {
                    "id": _region_id(a["id"], j),
                    "type": "keypointlabels",
                    "from_name": FROM_NAME,
                    "to_name": TO_NAME,
                    **frame,
                    "origin": "manual",
                    "value": {**geometry, "keypointlabels": [names[a["category_id"]]]},
                }
                if j:
                    region["parentID"] = root
                if lab == 0:
                    region["is_positive"] = False
                result.append(region)
                if j == 0:
                    kind = "thing" if isthing[a["category_id"]] else "stuff"
                    result.append(
                        {
                            "id": root,
                            "type": "choices",
                            "from_name": KIND_NAME,
                            "to_name": TO_NAME,
                            **frame,
                            "origin": "manual",
                            "value": {**geometry, "choices": [kind]},
                        }
                    )
        task: dict[str, Any] = {
            "id": im["id"],
            "data": {
                "image": f"{image_prefix}{im['file_name']}",
                "pointly": {"image_id": im["id"], "file_name": im["file_name"], "width": w, "height": h},
            },
        }
        annotation: dict[str, Any] = {"result": result, "was_cancelled": False, "ground_truth": False}
        if im["id"] in seconds:
            annotation["lead_time"] = seconds[im["id"]]
        task["annotations"] = [annotation] if result else []
        tasks.append(task)
    return tasks, []


# -----------------------------------------------------------------------------------------------
# import


def _image_field(data: Mapping, *, path: Path, record: str) -> str:
    """The URL of the task's image: ``data.image``, or the only text field of ``data``."""
    if isinstance(data.get("image"), str):
        return data["image"]
    texts = [v for k, v in data.items() if isinstance(v, str)]
    if len(texts) == 1:
        return texts[0]
    raise PointlyError(
        "cannot tell which field of data holds the image",
        file=path,
        record=record,
        fix="name the image field data.image",
    )


def _names_of(url: str, meta: Mapping) -> list[str]:
    """File names to try for a task's image, best first."""
    out = []
    if isinstance(meta.get("file_name"), str):
        out.append(meta["file_name"])
    parts = urlsplit(url)
    local = parse_qs(parts.query).get("d")  # /data/local-files/?d=folder/file.jpg
    if local:
        out.append(local[0].lstrip("/"))
    full = unquote(parts.path)
    base = posixpath.basename(full)
    upload = _UPLOAD_PREFIX.match(base)  # Label Studio prefixes uploaded files with 8 hex digits
    if upload:
        out.append(upload.group(1))
    out += [base, full.lstrip("/")]
    return [n for n in dict.fromkeys(out) if n]


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _size(value: Any) -> int | None:
    return value if type(value) is int and value >= 1 else None


def _chosen_annotation(task: Mapping, *, path: Path, record: str, warnings: list[str]) -> tuple[int, Mapping] | None:
    """(index, annotation) of the task's submitted annotation, or None when it has none."""
    anns = task.get("annotations", task.get("completions", []))
    if anns is None:
        anns = []
    if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
        raise PointlyError(
            "annotations is not a list of objects", file=path, record=record, fix="pass Label Studio's JSON export"
        )
    live = [(k, a) for k, a in enumerate(anns) if not a.get("was_cancelled", False)]
    if len(live) > 1:
        warnings.append(f"{record} has {len(live)} submitted annotations; the last one is used")
    return live[-1] if live else None


def _task_image(
    task: Mapping, i: int, regions: list[tuple[str, Mapping]], ref: Reference | None, *, path: Path, record: str
) -> dict:
    """The image record of a task: from the reference file, ``data.pointly`` or the results."""
    data = task.get("data")
    if not isinstance(data, dict):
        raise PointlyError(
            "the task has no data object", file=path, record=record, fix="pass Label Studio's JSON export"
        )
    meta = data.get("pointly") if isinstance(data.get("pointly"), dict) else {}
    names = _names_of(_image_field({k: v for k, v in data.items() if k != "pointly"}, path=path, record=record), meta)
    if not names:
        raise PointlyError(
            "the task names no image file", file=path, record=record, fix="give the task an image URL in data.image"
        )
    sizes = {(r.get("original_width"), r.get("original_height")) for _, r in regions} - {(None, None)}
    if meta.get("width") is not None or meta.get("height") is not None:
        sizes.add((meta.get("width"), meta.get("height")))
    for wh in sizes:
        if _size(wh[0]) is None or _size(wh[1]) is None:
            raise PointlyError(
                f"image size {wh[0]}x{wh[1]} is not two integers >= 1",
                file=path,
                record=record,
                fix="keypoint results need original_width and original_height",
            )
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sorted(sizes))
        raise PointlyError(
            f"the task states several image sizes: {shown}", file=path, record=record, fix="keep one image per task"
        )
    width, height = next(iter(sizes)) if sizes else (None, None)
    if width is not None:
        check_image_size(width, height, file=path, record=record)
    if ref is not None:
        rec = next((ref.image_by_name(n) for n in names if ref.image_by_name(n) is not None), None)
        if rec is None:
            raise PointlyError(
                f"image {names[0]!r} is not in {ref.path.name}",
                file=path,
                record=record,
                fix="pass the COCO JSON that lists these images",
            )
        if width is not None and (width, height) != (rec["width"], rec["height"]):
            raise PointlyError(
                f"image {rec['file_name']!r} is {width}x{height} here but "
                f"{rec['width']}x{rec['height']} in {ref.path.name}",
                file=path,
                record=record,
                fix="pass the COCO JSON of these very images",
            )
        return rec
    if width is None:
        raise PointlyError(
            "the size of the image is unknown: the task has no keypoints and no data.pointly",
            file=path,
            record=record,
            fix="pass --images-json with the COCO JSON of the images",
        )
    image_id = (
        meta.get("image_id")
        if type(meta.get("image_id")) is int
        else task.get("id")
        if type(task.get("id")) is int
        else i + 1
    )
    return {"id": image_id, "file_name": names[0], "width": width, "height": height}


def _group_roots(regions: list[tuple[str, Mapping]], *, path: Path, record: str) -> dict[str, str]:
    """Region id -> id of its segment's first region, following ``parentID`` links."""
    parent = {rid: r.get("parentID") for rid, r in regions}
    roots = {}
    for rid, _ in regions:
        seen, cur = [rid], rid
        while parent.get(cur):
            cur = str(parent[cur])
            if cur not in parent:
                raise PointlyError(
                    f"region {rid} has parentID {cur}, which is no keypoint of this annotation",
                    file=path,
                    record=record,
                    fix="point parentID at a keypoint of the same segment",
                )
            if cur in seen:
                raise PointlyError(
                    f"the parentID links of region {rid} form a loop",
                    file=path,
                    record=record,
                    fix="the first point of a segment has no parentID",
                )
            seen.append(cur)
        roots[rid] = cur
    return roots


def _read_results(
    result: list, *, path: Path, record: str, skipped: dict[str, int]
) -> tuple[list[tuple[str, Mapping]], dict[str, bool]]:
    """The keypoint regions of one annotation (checked) and its thing/stuff marks by region id;
    results of other types are counted in ``skipped``."""
    regions, kinds, region_ids = [], {}, set()
    for r, item in enumerate(result):
        rid = str(item.get("id", ""))
        rrec = f"{record} result[{r}]" + (f" (id {rid})" if rid else "")
        kind = item.get("type")
        value = item.get("value") if isinstance(item.get("value"), dict) else {}
        if kind == "choices" and set(value.get("choices") or []) & {"thing", "stuff"}:
            if len(set(value["choices"])) != 1:
                raise PointlyError(
                    "a region is marked both thing and stuff", file=path, record=rrec, fix="choose thing or stuff"
                )
            kinds[rid] = value["choices"][0] == "thing"
            continue
        if kind != "keypointlabels":
            skipped[str(kind)] = skipped.get(str(kind), 0) + 1
            continue
        if not rid:
            raise PointlyError("a keypoint has no id", file=path, record=rrec, fix="give every region an id")
        if rid in region_ids:
            raise PointlyError(
                f"two keypoints have the id {rid}", file=path, record=rrec, fix="give every region its own id"
            )
        region_ids.add(rid)
        labels = value.get("keypointlabels")
        if not (isinstance(labels, list) and len(labels) == 1 and isinstance(labels[0], str)):
            raise PointlyError(
                f"keypointlabels is {labels!r}, not one label",
                file=path,
                record=rrec,
                fix="give every keypoint exactly one label (its category)",
            )
        if not (_number(value.get("x")) and _number(value.get("y"))):
            raise PointlyError(
                "value.x / value.y are not numbers",
                file=path,
                record=rrec,
                fix="keypoints need x and y in percent of the image size",
            )
        if item.get("image_rotation", 0) not in (0, None):
            raise PointlyError(
                f"image_rotation {item['image_rotation']} is not supported",
                file=path,
                record=rrec,
                fix="rotate the image back to 0 in Label Studio before exporting",
            )
        if "is_positive" in item and not isinstance(item["is_positive"], bool):
            raise PointlyError(
                f"is_positive is {item['is_positive']!r}, not true or false",
                file=path,
                record=rrec,
                fix="use true or false",
            )
        regions.append((rid, item))
    return regions, kinds


def _segments(
    regions: list[tuple[str, Mapping]],
    kinds: Mapping[str, bool],
    image: Mapping,
    marks: dict[str, bool],
    *,
    path: Path,
    record: str,
) -> list[dict]:
    """The segments of one annotation, in the order of their first regions: points as pixel
    indices with labels; a segment's thing/stuff mark is added to ``marks`` (by label)."""
    roots = _group_roots(regions, path=path, record=record)
    groups: dict[str, dict] = {}
    w, h = image["width"], image["height"]
    for rid, item in regions:
        value, root = item["value"], roots[rid]
        label = value["keypointlabels"][0]
        seg = groups.get(root)
        if seg is None:
            seg = groups[root] = {"image_id": image["id"], "label": label, "coords": [], "labels": [], "ids": set()}
        elif seg["label"] != label:
            raise PointlyError(
                f"region {rid} is labelled {label!r} but its segment {seg['label']!r}",
                file=path,
                record=record,
                fix="give all points of a segment one label",
            )
        x, y = pixel_index(value["x"] * w / 100, w), pixel_index(value["y"] * h / 100, h)
        if x is None or y is None:
            raise PointlyError(
                f"keypoint {rid} ({value['x']}%, {value['y']}%) lies outside the image",
                file=path,
                record=record,
                fix="keypoints lie within 0..100 percent",
            )
        seg["coords"].append([x, y])
        seg["labels"].append(0 if item.get("is_positive", True) is False else 1)
        seg["ids"].add(rid)
    for seg in groups.values():
        mark = {kinds[r] for r in seg["ids"] if r in kinds}
        if len(mark) > 1:
            raise PointlyError(
                "a segment is marked both thing and stuff", file=path, record=record, fix="mark a segment once"
            )
        if mark:
            thing = mark.pop()
            if marks.get(seg["label"], thing) != thing:
                raise PointlyError(
                    f"label {seg['label']!r} is marked thing in one segment and stuff in another",
                    file=path,
                    record=record,
                    fix="a category is thing or stuff",
                )
            marks[seg["label"]] = thing
    return list(groups.values())


def import_labelstudio(path: Path, *, ref: Reference | None = None) -> tuple[dict, list[str]]:
    """Read a Label Studio JSON export as a points document (see the module docstring)."""
    tasks = read_json(path, what="Label Studio JSON export")
    if not isinstance(tasks, list):
        raise PointlyError("not a list of tasks", file=path, fix="pass Label Studio's JSON export (a list of tasks)")
    warnings: list[str] = []
    skipped: dict[str, int] = {}
    images, segments, marks = [], [], {}
    any_times = False
    for i, task in enumerate(tasks):
        record = f"tasks[{i}]" + (f" (id {task.get('id')})" if isinstance(task, dict) and "id" in task else "")
        if not isinstance(task, dict):
            raise PointlyError(
                "a task is not an object", file=path, record=record, fix="pass Label Studio's JSON export"
            )
        chosen = _chosen_annotation(task, path=path, record=record, warnings=warnings)
        result = chosen[1].get("result", []) if chosen else []
        arecord = f"{record} annotations[{chosen[0]}]" if chosen else record
        if not isinstance(result, list) or not all(isinstance(r, dict) for r in result):
            raise PointlyError(
                "result is not a list of objects", file=path, record=arecord, fix="pass Label Studio's JSON export"
            )
        regions, kinds = _read_results(result, path=path, record=arecord, skipped=skipped)
        image = _task_image(task, i, regions, ref, path=path, record=record)
        images.append(image)
        image_segs = _segments(regions, kinds, image, marks, path=path, record=arecord)
        segments += image_segs
        lead = chosen[1].get("lead_time") if chosen else None
        if lead is not None and image_segs:
            if not _number(lead) or lead < 0:
                raise PointlyError(
                    f"lead_time {lead!r} is not a number of seconds >= 0",
                    file=path,
                    record=arecord,
                    fix="correct or remove lead_time",
                )
            for seg, times in zip(image_segs, spread(float(lead), [len(s["coords"]) for s in image_segs])):
                seg["times"] = times
            any_times = True
    names = list(dict.fromkeys(s["label"] for s in segments))
    cats, ids = resolve_categories(names, marks, ref, file=path)
    anns = []
    for s in segments:
        ann = {
            "image_id": s["image_id"],
            "category_id": ids[s["label"]],
            "iscrowd": 0,
            "point_coords": s["coords"],
            "point_labels": s["labels"],
        }
        if "times" in s:
            ann["point_times"] = s["times"]
        anns.append(ann)
    extra = {"point_times": SPREAD_NOTE} if any_times else {}
    doc = imported_document(path, "labelstudio", images, cats, anns, ref, extra=extra)
    if skipped:
        warnings.append(
            "skipped results that are not keypoints: " + ", ".join(f"{n} {kind}" for kind, n in sorted(skipped.items()))
        )
    return doc, warnings
