"""``pointly simulate --edge-is-boundary``: the image's outermost rows and columns count as
boundary pixels, on both source kinds (panoptic PNGs, instance RLE), and the points file says so.
Expected counts are worked out by hand from the documented pool rule (docs/formats.md)."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils
from simulate_fixtures import write_panoptic

from pointly.cli.main import main

CATS = [
    {"id": 1, "name": "ball", "isthing": 1, "supercategory": "ball"},
    {"id": 2, "name": "grass", "isthing": 0, "supercategory": "grass"},
]


def _kinds(doc: dict, category_id: int) -> list[str]:
    (ann,) = [a for a in doc["annotations"] if a["category_id"] == category_id]
    return ann["point_kinds"]


def test_panoptic_stuff_around_a_thing(tmp_path):
    # 8 x 8: grass everywhere but a 2 x 2 ball at rows 3-4, columns 3-4
    ids = np.full((8, 8), 2, np.int64)
    ids[3:5, 3:5] = 1
    js, png = write_panoptic(tmp_path / "d", {1: ids}, CATS, {1: {1: {"category_id": 1}, 2: {"category_id": 2}}})
    docs = {}
    for edge in (False, True):
        out = tmp_path / f"p{edge}.json"
        args = ["simulate", "--panoptic-json", str(js), "--panoptic-dir", str(png), "-n", "20",
                "--boundary-share", "1", "-o", str(out), "--no-progress"]  # fmt: skip
        assert main(args + (["--edge-is-boundary"] if edge else [])) == 0
        docs[edge] = json.loads(out.read_text())
    # the grass's boundary without the edge: the 8 pixels beside the ball, so 8 boundary + 12 random
    assert sorted(_kinds(docs[False], 2)).count("boundary") == 8
    # with the edge: those 8 and the 28 frame pixels, so all 20 points on a boundary
    assert _kinds(docs[True], 2) == ["boundary"] * 20
    (grass,) = [a for a in docs[True]["annotations"] if a["category_id"] == 2]
    for x, y in grass["point_coords"]:
        assert x in (0, 7) or y in (0, 7) or (2 <= x <= 5 and 2 <= y <= 5)
    # the ball touches no edge: all 4 of its pixels, boundary either way
    assert _kinds(docs[True], 1) == _kinds(docs[False], 1) == ["boundary"] * 4
    assert docs[True]["info"]["pointly"]["edge_is_boundary"] is True
    assert "edge_is_boundary" not in docs[False]["info"]["pointly"]  # files without it: False


def test_instances_in_a_corner(tmp_path):
    # 6 x 6 image, one 3 x 3 instance in the top-left corner
    mask = np.zeros((6, 6), np.uint8)
    mask[:3, :3] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    rle["counts"] = rle["counts"].decode("ascii")
    data = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 6, "height": 6}],
        "annotations": [{"id": 5, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": rle,
                         "area": 9, "bbox": [0, 0, 3, 3]}],
        "categories": CATS[:1],
    }  # fmt: skip
    src = tmp_path / "instances.json"
    src.write_text(json.dumps(data))
    kinds = {}
    for edge in (False, True):
        out = tmp_path / f"i{edge}.json"
        args = ["simulate", "--instances-json", str(src), "-n", "8", "--boundary-share", "1", "-o", str(out),
                "--no-progress"]  # fmt: skip
        assert main(args + (["--edge-is-boundary"] if edge else [])) == 0
        kinds[edge] = _kinds(json.loads(out.read_text()), 1)
    # without the edge: the right column and bottom row (5 pixels), then 3 interior points
    assert kinds[False].count("boundary") == 5 and kinds[False].count("random") == 3
    # with it: every pixel but the centre (8), so 8 boundary points
    assert kinds[True] == ["boundary"] * 8
