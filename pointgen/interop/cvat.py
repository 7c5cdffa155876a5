"""CVAT for images 1.1 XML: pointly points to ``<points>`` shapes and back.

Layout (CVAT's "CVAT for images 1.1" annotation format)::

    <annotations>
      <version>1.1</version>
      <meta><task>... <labels><label><name>person</name><type>points</type>
        <attributes> isthing, negative (checkboxes) </attributes></label> ...</labels></task></meta>
      <image id="139" name="000000000139.jpg" width="640" height="426">
        <points label="person" source="manual" occluded="0" points="431.50,201.50;440.50,262.50"
                z_order="0" group_id="1">
          <attribute name="isthing">true</attribute>
          <attribute name="negative">false</attribute>
        </points>
      </image>
    </annotations>

* A category is a label (by name); every category is declared in the meta, used or not.
* A segment is one ``<points>`` shape holding all its points at pixel centres (``x + 0.5``,
  two decimals, as CVAT writes them). When it has negative points (label 0) it is split, in
  point order, into runs of one label, each a shape; the runs of negatives have ``negative`` =
  true. All shapes of a segment carry its ``group_id`` (1, 2, ... over the file), so CVAT's
  grouping keeps them one segment and the import restores the points in their order.
* Thing or stuff is the ``isthing`` checkbox attribute, declared per label with the category's
  value as its default and written on every shape.
* ``<image id>`` is pointly's image id; CVAT matches images by ``name`` when it reads the file.

Import: shapes with the same non-zero ``group_id`` in one image are one segment, any other
``<points>`` shape is a segment of its own; a point is ``floor`` of its coordinates. Boxes,
polygons, masks, tags and skeletons are skipped with a warning; video tracks are refused. Image
ids and category ids come from the reference file when one is given, else from ``<image id>``
and the order of the labels.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.limits import check_image_size
from pointly.pointgen.interop.common import (
    Reference,
    check_unique_file_names,
    check_unique_names,
    imported_document,
    parse_flag,
    pixel_centre,
    pixel_index,
    refuse_crowd,
    refuse_times,
    resolve_categories,
    resolve_image,
)

ISTHING_ATTR = "isthing"
NEGATIVE_ATTR = "negative"
_SKIPPED_SHAPES = ("box", "polygon", "polyline", "mask", "cuboid", "ellipse", "skeleton", "tag")


def _text(parent: ET.Element, tag: str, text: str) -> ET.Element:
    el = ET.SubElement(parent, tag)
    el.text = text
    return el


def _checkbox(parent: ET.Element, name: str, default: bool) -> None:
    attr = ET.SubElement(parent, "attribute")
    _text(attr, "name", name)
    _text(attr, "mutable", "False")
    _text(attr, "input_type", "checkbox")
    _text(attr, "default_value", "true" if default else "false")
    _text(attr, "values", "true" if default else "false")


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _runs(coords: list, labels: list) -> list[tuple[bool, list]]:
    """The points split into maximal runs of one label, in order: (negative, points) pairs."""
    runs: list[tuple[bool, list]] = []
    for p, lab in zip(coords, labels):
        if runs and runs[-1][0] == (lab == 0):
            runs[-1][1].append(p)
        else:
            runs.append((lab == 0, [p]))
    return runs


def export_cvat(doc: Mapping, *, file: Path | str, drop_times: bool = False) -> tuple[bytes, list[str]]:
    """The CVAT for images 1.1 XML of a points document, and warning lines."""
    names = check_unique_names(doc, file=file, fmt="CVAT")
    check_unique_file_names(doc, file=file, fmt="CVAT")
    refuse_crowd(doc, file=file, fmt="CVAT")
    refuse_times(doc, file=file, fmt="CVAT", drop_times=drop_times)
    isthing = {c["id"]: c.get("isthing", 1) == 1 for c in doc["categories"]}

    root = ET.Element("annotations")
    _text(root, "version", "1.1")
    task = ET.SubElement(ET.SubElement(root, "meta"), "task")
    _text(task, "name", "pointly points")
    _text(task, "size", str(len(doc["images"])))
    _text(task, "mode", "annotation")
    labels = ET.SubElement(task, "labels")
    for c in doc["categories"]:
        label = ET.SubElement(labels, "label")
        _text(label, "name", c["name"])
        _text(label, "type", "points")
        attrs = ET.SubElement(label, "attributes")
        _checkbox(attrs, ISTHING_ATTR, isthing[c["id"]])
        _checkbox(attrs, NEGATIVE_ATTR, False)

    by_image: dict[int, list[Mapping]] = {im["id"]: [] for im in doc["images"]}
    for a in doc["annotations"]:
        by_image[a["image_id"]].append(a)
    group = 0
    for im in doc["images"]:
        image = ET.SubElement(
            root,
            "image",
            {"id": str(im["id"]), "name": im["file_name"], "width": str(im["width"]), "height": str(im["height"])},
        )
        for a in by_image[im["id"]]:
            group += 1
            for negative, pts in _runs(a["point_coords"], a["point_labels"]):
                text = ";".join(f"{pixel_centre(x):.2f},{pixel_centre(y):.2f}" for x, y in pts)
                shape = ET.SubElement(
                    image,
                    "points",
                    {
                        "label": names[a["category_id"]],
                        "source": "manual",
                        "occluded": "0",
                        "points": text,
                        "z_order": "0",
                        "group_id": str(group),
                    },
                )
                _text(shape, "attribute", _flag(isthing[a["category_id"]])).set("name", ISTHING_ATTR)
                _text(shape, "attribute", _flag(negative)).set("name", NEGATIVE_ATTR)
    warnings = []
    dropped = sum(1 for a in doc["annotations"] if "point_times" in a)
    if dropped:
        warnings.append(f"dropped the point_times of {dropped} annotations (--drop-times)")
    ET.indent(root, space="  ")
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="utf-8") + b"\n", warnings


def _parse(path: Path) -> ET.Element:
    """The root element of a CVAT XML file; DTDs and entities are refused, not expanded."""
    if not path.is_file():
        raise PointlyError("file not found", file=path, fix="check the path of the CVAT XML")
    data = path.read_bytes()
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise PointlyError(
            "the XML declares a DTD or entities, which CVAT files never do",
            file=path,
            fix="pass the annotations.xml of a 'CVAT for images 1.1' export",
        )
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        line, col = exc.position
        raise PointlyError(
            f"not valid XML at line {line} column {col}",
            file=path,
            fix="pass the annotations.xml of a 'CVAT for images 1.1' export",
        ) from None
    if root.tag != "annotations":
        raise PointlyError(
            f"the root element is <{root.tag}>, not <annotations>",
            file=path,
            fix="pass the annotations.xml of a 'CVAT for images 1.1' export",
        )
    if root.find("track") is not None:
        raise PointlyError(
            "the file holds video tracks ('CVAT for video')", file=path, fix="export the task as 'CVAT for images 1.1'"
        )
    version = (root.findtext("version") or "").strip()
    if version != "1.1":
        raise PointlyError(
            f"CVAT XML version {version or '(none)'}; pointly reads version 1.1",
            file=path,
            fix="export the task as 'CVAT for images 1.1'",
        )
    return root


def _declared_labels(root: ET.Element) -> tuple[list[str], dict[str, bool | None]]:
    """Label names in meta order (skeleton parts left out) and their declared ``isthing``."""
    names: list[str] = []
    marks: dict[str, bool | None] = {}
    meta = root.find("meta")
    for label in meta.iter("label") if meta is not None else ():
        name = label.findtext("name")
        if name is None or label.find("parent") is not None or name in marks:
            continue
        names.append(name)
        marks[name] = None
        for attr in label.iter("attribute"):
            if (attr.findtext("name") or "").strip() == ISTHING_ATTR:
                marks[name] = parse_flag(attr.findtext("default_value") or "")
    return names, marks


def _int_attr(el: ET.Element, key: str, *, path: Path, record: str, minimum: int | None = None) -> int:
    raw = el.get(key)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise PointlyError(
            f"attribute {key}={raw!r} is not an integer",
            file=path,
            record=record,
            fix=f"give <{el.tag}> an integer {key}",
        ) from None
    if minimum is not None and value < minimum:
        raise PointlyError(
            f"attribute {key}={value} is below {minimum}",
            file=path,
            record=record,
            fix=f"give <{el.tag}> a {key} of at least {minimum}",
        )
    return value


def _points(text: str | None, width: int, height: int, *, path: Path, record: str) -> list[list[int]]:
    """``x0,y0;x1,y1;...`` continuous coordinates -> pixel indices (floor)."""
    fix = "points are 'x0,y0;x1,y1;...' inside the image"
    if not text or not text.strip():
        raise PointlyError("the points attribute is empty", file=path, record=record, fix=fix)
    out = []
    for j, pair in enumerate(text.strip().split(";")):
        try:
            x, y = (float(v) for v in pair.split(","))
        except ValueError:
            raise PointlyError(f"point {j} {pair!r} is not 'x,y'", file=path, record=record, fix=fix) from None
        px, py = pixel_index(x, width), pixel_index(y, height)
        if px is None or py is None:
            raise PointlyError(
                f"point {j} ({x}, {y}) lies outside the {width}x{height} image", file=path, record=record, fix=fix
            )
        out.append([px, py])
    return out


def import_cvat(path: Path, *, ref: Reference | None = None) -> tuple[dict, list[str]]:
    """Read a CVAT for images 1.1 XML file as a points document (see the module docstring)."""
    root = _parse(path)
    declared, declared_marks = _declared_labels(root)
    marks: dict[str, bool | None] = {}
    images: list[dict] = []
    segments: list[dict] = []  # {"image": record, "label", "coords", "labels", "record"}
    skipped: dict[str, int] = {}
    for el in root.findall("image"):
        record = f"<image id={el.get('id')!r} name={el.get('name')!r}>"
        name = el.get("name")
        if not name:
            raise PointlyError("an image has no name", file=path, record=record, fix="give every <image> a name")
        width = _int_attr(el, "width", path=path, record=record, minimum=1)
        height = _int_attr(el, "height", path=path, record=record, minimum=1)
        check_image_size(width, height, file=path, record=record)
        rec = resolve_image(name, width, height, ref, file=path, record=record)
        if rec is None:
            rec = {
                "id": _int_attr(el, "id", path=path, record=record),
                "file_name": name,
                "width": width,
                "height": height,
            }
        if any(im["id"] == rec["id"] for im in images):
            raise PointlyError(
                f"a second image with id {rec['id']}",
                file=path,
                record=record,
                fix="list every image once, with its own id",
            )
        images.append(rec)
        groups: dict[int, dict] = {}
        for k, shape in enumerate(el):
            if shape.tag in _SKIPPED_SHAPES:
                skipped[shape.tag] = skipped.get(shape.tag, 0) + 1
                continue
            if shape.tag != "points":
                continue
            srec = f"{record} shape {k} <points>"
            label = shape.get("label")
            if not label:
                raise PointlyError(
                    "a <points> shape has no label", file=path, record=srec, fix="give every shape a label"
                )
            attrs = {a.get("name"): (a.text or "") for a in shape.findall("attribute")}
            negative = parse_flag(attrs.get(NEGATIVE_ATTR, "false"))
            thing = parse_flag(attrs[ISTHING_ATTR]) if ISTHING_ATTR in attrs else declared_marks.get(label)
            if negative is None or (ISTHING_ATTR in attrs and thing is None):
                raise PointlyError(
                    "the isthing/negative attribute is not true or false",
                    file=path,
                    record=srec,
                    fix="use true or false",
                )
            if thing is not None:
                if marks.get(label) is not None and marks[label] != thing:
                    raise PointlyError(
                        f"label {label!r} is marked both thing and stuff",
                        file=path,
                        record=srec,
                        fix="give every shape of a label the same isthing",
                    )
                marks[label] = thing
            coords = _points(shape.get("points"), width, height, path=path, record=srec)
            group_id = _int_attr(shape, "group_id", path=path, record=srec) if shape.get("group_id") else 0
            seg = groups.get(group_id) if group_id else None
            if seg is None:
                seg = {"image": rec, "label": label, "coords": [], "labels": []}
                segments.append(seg)
                if group_id:
                    groups[group_id] = seg
            elif seg["label"] != label:
                raise PointlyError(
                    f"group_id {group_id} holds labels {seg['label']!r} and {label!r}",
                    file=path,
                    record=srec,
                    fix="one group is one segment of one category",
                )
            seg["coords"].extend(coords)
            seg["labels"].extend([0 if negative else 1] * len(coords))
    used = list(dict.fromkeys(s["label"] for s in segments))
    names = used if ref is not None else declared + [n for n in used if n not in declared_marks]
    for name in names:
        if marks.get(name) is None:
            marks[name] = declared_marks.get(name)
    cats, ids = resolve_categories(names, marks, ref, file=path)
    anns = [
        {
            "image_id": s["image"]["id"],
            "category_id": ids[s["label"]],
            "iscrowd": 0,
            "point_coords": s["coords"],
            "point_labels": s["labels"],
        }
        for s in segments
    ]
    doc = imported_document(path, "cvat", images, cats, anns, ref)
    warnings = []
    if skipped:
        kinds = ", ".join(f"{n} <{tag}>" for tag, n in sorted(skipped.items()))
        warnings.append(f"skipped shapes that are not points: {kinds}")
    return doc, warnings
