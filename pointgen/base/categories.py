"""Category lists shipped with pointly, and a reader for user category files.

``data/categories/synthetic.json`` holds the ten classes of the synthetic dataset
(:mod:`pointly.data.synth`); ``data/categories/coco_panoptic.json`` the 133 COCO panoptic
categories (80 things, 53 stuff), copied from the official ``panoptic_coco_categories.json``.
Both are lists of COCO panoptic category records: ``id``, ``name``, ``isthing`` (0/1),
``supercategory``, ``color`` ([r, g, b]).

The files ship in the ``pointly.data`` package and are found through ``importlib.resources``
(:func:`builtin_path`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pointly.pointgen.base.errors import PointlyError

#: short names accepted by :func:`load_categories` -> file inside data/categories/
BUILTIN = {"synthetic": "synthetic.json", "coco": "coco_panoptic.json", "coco_panoptic": "coco_panoptic.json"}


def builtin_path(name: str) -> Path:
    """The path of a shipped category file (``'synthetic'`` or ``'coco'``)."""
    return Path(str(resources.files("pointly.data").joinpath("categories", BUILTIN[name])))


def load_categories(name_or_path: str | Path) -> list[dict]:
    """Return the category records of a shipped list (``'synthetic'``, ``'coco'``) or of a file.

    A file may hold either a list of categories or a COCO document with a ``categories`` list.
    Every record must have an integer ``id`` (unique), a string ``name`` and ``isthing`` 0/1;
    ``supercategory`` defaults to ``""``; ``color`` must be three integers 0..255 when present.
    Anything else raises :class:`PointlyError` naming the file and the record.
    """
    if isinstance(name_or_path, str) and name_or_path in BUILTIN:
        path = builtin_path(name_or_path)
    else:
        path = Path(name_or_path)
    fix = "a categories file is a JSON list of {id, name, isthing, supercategory, color}"
    if not path.is_file():
        raise PointlyError(
            "categories file not found", file=path, fix=f"pass one of {sorted(BUILTIN)} or an existing JSON file"
        )
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PointlyError(f"not valid JSON ({exc.__class__.__name__})", file=path, fix=fix) from None
    if isinstance(doc, dict) and "categories" in doc:
        doc = doc["categories"]
    if not isinstance(doc, list) or not doc:
        raise PointlyError("no list of categories", file=path, fix=fix)
    out: list[dict] = []
    seen: set[int] = set()
    for i, rec in enumerate(doc):
        where = f"categories[{i}]"
        if not isinstance(rec, dict):
            raise PointlyError("not an object", file=path, record=where, fix=fix)
        cid, name, isthing = rec.get("id"), rec.get("name"), rec.get("isthing")
        if not isinstance(cid, int) or isinstance(cid, bool):
            raise PointlyError(f"id {cid!r} is not an integer", file=path, record=where, fix=fix)
        if cid in seen:
            raise PointlyError(f"duplicate id {cid}", file=path, record=where, fix="give every category a unique id")
        seen.add(cid)
        if not isinstance(name, str) or not name:
            raise PointlyError("missing name", file=path, record=f"{where} (id {cid})", fix=fix)
        if isthing not in (0, 1) or isinstance(isthing, float):
            raise PointlyError(f"isthing {isthing!r} is not 0 or 1", file=path, record=f"{where} (id {cid})", fix=fix)
        clean = {"id": cid, "name": name, "isthing": int(isthing), "supercategory": str(rec.get("supercategory", ""))}
        if "color" in rec:
            color = rec["color"]
            if (
                not isinstance(color, list)
                or len(color) != 3
                or not all(isinstance(v, int) and 0 <= v <= 255 for v in color)
            ):
                raise PointlyError(
                    f"color {color!r} is not three integers 0..255", file=path, record=f"{where} (id {cid})", fix=fix
                )
            clean["color"] = list(color)
        out.append(clean)
    return out
