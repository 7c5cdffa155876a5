"""The points JSON (pointgen/base/points_format.py): round trip, validation messages, PointSup compatibility.

``pointsup_load`` below is an independent re-statement of what detectron2 expects from a points
file, step by step: pycocotools' ``COCO`` index, ``load_coco_json(json, root, name,
["point_coords", "point_labels"])`` (detectron2/data/datasets/coco.py) and the PointSup mapper
(projects/PointSup/point_sup/dataset_mapper.py + detection_utils.py). It raises AssertionError
naming the record and field that detectron2 would choke on or silently mangle.
"""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
from simulate_fixtures import PANOPTIC_SETS

from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.points.simulate import SimulationOptions, simulate


def pointsup_load(doc: dict, *, sample_points: int = 0) -> list[dict]:
    """Mimic detectron2's COCO loader + PointSup mapper on a COCO-with-points document.

    Returns per image ``{"image_id", "boxes" (XYXY), "classes" (contiguous), "point_coords"
    (K×P×2, continuous = index + 0.5), "point_labels" (K×P)}`` for the non-crowd instances.
    """
    # pycocotools COCO.createIndex
    for key in ("images", "annotations", "categories"):
        assert isinstance(doc.get(key), list), f"top level: {key} must be a list"
    imgs = {im["id"]: im for im in doc["images"]}
    cats = {c["id"]: c for c in doc["categories"]}
    img_to_anns: dict[int, list] = {i: [] for i in imgs}
    for i, a in enumerate(doc["annotations"]):
        for k in ("id", "image_id", "category_id"):
            assert k in a, f"annotations[{i}]: COCO index needs {k}"
        assert a["image_id"] in imgs, f"annotations[{i}]: image_id {a['image_id']} not in images"
        img_to_anns[a["image_id"]].append(a)
    # load_coco_json with a dataset name: contiguous ids from the sorted category ids
    cat_ids = sorted(cats)
    id_map = {v: i for i, v in enumerate(cat_ids)}
    ann_ids = [a["id"] for a in doc["annotations"]]
    assert len(set(ann_ids)) == len(ann_ids), "annotation ids are not unique"
    ann_keys = ["iscrowd", "bbox", "keypoints", "category_id", "point_coords", "point_labels"]
    out = []
    for img_id in sorted(imgs):
        im = imgs[img_id]
        for k in ("file_name", "height", "width"):
            assert k in im, f"image {img_id}: needs {k}"
        h, w = im["height"], im["width"]
        objs = []
        for a in img_to_anns[img_id]:
            rec = f"annotation id {a['id']}"
            assert a.get("ignore", 0) == 0, f"{rec}: 'ignore' is not supported"
            obj = {k: a[k] for k in ann_keys if k in a}
            assert "bbox" in obj and len(obj["bbox"]) == 4, f"{rec}: bbox must be [x, y, w, h]"
            assert all(isinstance(v, (int, float)) for v in obj["bbox"]), f"{rec}: bbox numbers"
            assert not a.get("segmentation"), f"{rec}: a segmentation would be used as a mask"
            assert obj["category_id"] in id_map, f"{rec}: category_id {obj['category_id']} unknown"
            obj["category_id"] = id_map[obj["category_id"]]
            assert obj.get("iscrowd", 0) in (0, 1), f"{rec}: iscrowd must be 0 or 1"
            assert "point_coords" in obj and "point_labels" in obj, f"{rec}: point keys missing"
            objs.append(obj)
        # PointSup mapper (training): crowd dropped, points shifted to pixel centres
        annos = [o for o in objs if o.get("iscrowd", 0) == 0]
        coords, labels, boxes, classes = [], [], [], []
        for o in annos:
            pc = np.array(o["point_coords"])
            assert pc.ndim == 2 and pc.shape[1] == 2, "point_coords must be K x 2"
            assert np.issubdtype(pc.dtype, np.integer), "point_coords must be integer pixel indices"
            pl = np.array(o["point_labels"])
            assert pl.shape == (pc.shape[0],), "one label per point"
            assert set(pl.tolist()) <= {0, 1}, "point_labels must be 0 or 1"
            c = pc.astype(np.float64) + 0.5
            inside = ((c >= 0) & (c <= np.array([w, h]))).all(axis=1)
            assert inside.all(), "a point outside the image would get label -1"
            x, y, bw, bh = o["bbox"]
            assert bw > 0 and bh > 0, "an empty box is filtered out by filter_empty_instances"
            if sample_points > 0:
                idx = np.random.default_rng(0).choice(len(pc), sample_points, replace=len(pc) < sample_points)
                c, pl = c[idx], pl[idx]
            coords.append(c)
            labels.append(pl)
            boxes.append([x, y, x + bw, y + bh])
            classes.append(o["category_id"])
        if coords:
            sizes = {len(c) for c in coords}
            assert len(sizes) == 1, f"image {img_id}: torch.stack needs equal point counts, got {sizes}"
        out.append(
            {
                "image_id": img_id,
                "boxes": np.array(boxes).reshape(-1, 4),
                "classes": classes,
                "point_coords": np.stack(coords) if coords else np.zeros((0, 0, 2)),
                "point_labels": np.stack(labels) if labels else np.zeros((0, 0)),
            }
        )
    return out


def small_doc() -> dict:
    images = [
        {"id": 5, "file_name": "a.jpg", "width": 16, "height": 12},
        {"id": 6, "file_name": "b.jpg", "width": 8, "height": 8},
    ]
    cats = [
        {"id": 1, "name": "person", "isthing": 1, "supercategory": "person"},
        {"id": 40, "name": "sky", "isthing": 0, "supercategory": "sky"},
    ]
    anns = [
        {
            "id": 1,
            "image_id": 5,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [2.0, 3.0, 4.0, 5.0],
            "area": 20.0,
            "point_coords": [[2, 3], [5, 7], [3, 4]],
            "point_labels": [1, 1, 1],
            "point_kinds": ["random", "boundary", "random"],
            "source_segment_id": 77,
        },
        {
            "id": 2,
            "image_id": 5,
            "category_id": 40,
            "iscrowd": 0,
            "bbox": [0.0, 0.0, 16.0, 12.0],
            "area": 100.0,
            "point_coords": [[15, 11], [0, 0], [9, 1]],
            "point_labels": [1, 1, 1],
        },
        {
            "id": 3,
            "image_id": 6,
            "category_id": 1,
            "point_coords": [[7, 7]],
            "point_labels": [0],
            "point_times": [1.25],
        },
    ]
    return formats.make_document(images, cats, anns, {"made_by": "test", "seed": 3})


def test_round_trip_and_stable_bytes(tmp_path):
    doc = small_doc()
    formats.validate_points(doc)
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    back = formats.load_points(path)
    assert back == doc
    assert back["info"]["pointly"] == {"format_version": formats.FORMAT_VERSION, "made_by": "test", "seed": 3}
    first = path.read_bytes()
    formats.save_points(path, back)
    assert path.read_bytes() == first
    assert formats.annotations_by_image(back) == {5: back["annotations"][:2], 6: back["annotations"][2:]}
    assert formats.points_bbox([[2, 3], [5, 7], [3, 4]]) == [2.0, 3.0, 4.0, 5.0]


@pytest.mark.parametrize(
    "mutate, record, words",
    [
        (
            lambda d: d["annotations"][0].pop("point_labels"),
            "annotations[0] (id 1, image_id 5)",
            "'point_labels' is a required",
        ),
        (
            lambda d: d["annotations"][1]["point_coords"].__setitem__(1, [0.5, 2]),
            "annotations[1] (id 2, image_id 5) field point_coords.1.0",
            "not of type 'integer'",
        ),
        (
            lambda d: d["annotations"][0]["point_labels"].__setitem__(2, 2),
            "annotations[0] (id 1, image_id 5) field point_labels.2",
            "2 is not one of",
        ),
        (
            lambda d: d["annotations"][0]["point_kinds"].__setitem__(0, "guess"),
            "annotations[0] (id 1, image_id 5) field point_kinds.0",
            "'guess' is not one of",
        ),
        (lambda d: d["images"][1].__setitem__("width", 0), "images[1] (id 6) field width", "less than the minimum"),
        (lambda d: d["categories"][0].pop("isthing"), "categories[0] (id 1)", "'isthing' is a required"),
        (
            lambda d: d["annotations"][2]["point_coords"].__setitem__(0, [8, 3]),
            "annotations[2] (id 3, image_id 6)",
            "point 0 (8, 3) lies outside the 8x8 image",
        ),
        (
            lambda d: d["annotations"][0]["point_labels"].pop(),
            "annotations[0] (id 1, image_id 5)",
            "point_labels has 2 entries but point_coords has 3",
        ),
        (
            lambda d: d["annotations"][2].__setitem__("point_times", [1.0, 2.0]),
            "annotations[2] (id 3, image_id 6)",
            "point_times has 2 entries",
        ),
        (
            lambda d: d["annotations"][1].__setitem__("category_id", 99),
            "annotations[1] (id 2, image_id 5)",
            "unknown category_id 99",
        ),
        (
            lambda d: d["annotations"][1].__setitem__("image_id", 7),
            "annotations[1] (id 2, image_id 7)",
            "image_id 7 is not in images",
        ),
        (lambda d: d["annotations"][2].__setitem__("id", 1), "annotations[2]", "duplicate id 1"),
        (
            lambda d: d["annotations"][2].update(point_coords=[], point_labels=[], point_times=[]),
            "annotations[2] (id 3, image_id 6)",
            "no points",
        ),
        (lambda d: d.pop("categories"), "top level", "'categories' is a required"),
    ],
)
def test_validation_errors_name_record_and_field(mutate, record, words):
    doc = small_doc()
    mutate(doc)
    with pytest.raises(PointlyError) as err:
        formats.validate_points(doc, file="x.json")
    msg = err.value.one_line()
    assert msg.startswith(f"x.json: {record}"), msg
    assert words in msg, msg
    assert "\n" not in msg


def test_load_errors(tmp_path):
    with pytest.raises(PointlyError, match="file not found"):
        formats.load_points(tmp_path / "missing.json")
    bad = tmp_path / "trunc.json"
    bad.write_text(json.dumps(small_doc())[:-20])
    with pytest.raises(PointlyError, match=r"trunc\.json: not valid JSON.*truncated"):
        formats.load_points(bad)
    binary = tmp_path / "bin.json"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PointlyError, match="not a UTF-8 text file"):
        formats.load_points(binary)
    arr = tmp_path / "arr.json"
    arr.write_text("[1, 2]")
    with pytest.raises(PointlyError, match="not a JSON object"):
        formats.load_points(arr)
    # save_points validates first and leaves no file behind on an error
    doc = small_doc()
    doc["annotations"][0]["point_labels"] = [1]
    out = tmp_path / "never.json"
    with pytest.raises(PointlyError):
        formats.save_points(out, doc)
    assert not out.exists() and not list(tmp_path.glob(".never.json*"))


def to_pointsup(doc, **kwargs):
    from pointly.pointgen.interop.pointsup import export_pointsup

    return export_pointsup(doc, file="points.json", drop_times=True, **kwargs)[0]


def test_to_pointsup_field_by_field():
    doc = small_doc()
    ps = to_pointsup(doc)
    # stuff dropped, things kept; categories without stuff
    assert [c["id"] for c in ps["categories"]] == [1]
    assert [a["id"] for a in ps["annotations"]] == [1, 3]
    a1, a3 = ps["annotations"]
    assert a1 == {
        "id": 1,
        "image_id": 5,
        "category_id": 1,
        "iscrowd": 0,
        "bbox": [2.0, 3.0, 4.0, 5.0],
        "area": 20.0,
        "point_coords": [[2, 3], [5, 7], [3, 4]],
        "point_labels": [1, 1, 1],
        "source_segment_id": 77,
    }
    # no bbox in the source: the box of the points (one pixel: 1 x 1), area = w*h
    assert a3["bbox"] == [7.0, 7.0, 1.0, 1.0] and a3["area"] == 1.0 and a3["iscrowd"] == 0
    # one point, padded to the file's count 3 by repeating it, marked so that pointly drops it again
    assert a3["point_labels"] == [0, 0, 0] and a3["pointly_padding"] == 2
    loaded = pointsup_load(ps)
    assert [r["image_id"] for r in loaded] == [5, 6]
    assert loaded[0]["classes"] == [0]  # contiguous id of category 1
    assert loaded[0]["boxes"].tolist() == [[2.0, 3.0, 6.0, 8.0]]
    assert loaded[0]["point_coords"].tolist() == [[[2.5, 3.5], [5.5, 7.5], [3.5, 4.5]]]
    both = to_pointsup(doc, include_stuff=True)
    assert [c["id"] for c in both["categories"]] == [1, 40] and len(both["annotations"]) == 3
    assert pointsup_load(both)[0]["classes"] == [0, 1]


def test_to_pointsup_pads_short_instances_for_torch_stack():
    doc = small_doc()
    doc["annotations"].append(
        {
            "id": 9,
            "image_id": 5,
            "category_id": 1,
            "iscrowd": 0,
            "bbox": [10.0, 10.0, 1.0, 1.0],
            "point_coords": [[10, 10]],
            "point_labels": [1],
        }
    )
    doc["annotations"].append(
        {
            "id": 10,
            "image_id": 5,
            "category_id": 1,
            "iscrowd": 1,
            "bbox": [0.0, 0.0, 2.0, 2.0],
            "point_coords": [[0, 0]],
            "point_labels": [1],
        }
    )
    raw = dict(
        doc,
        categories=[c for c in doc["categories"] if c["isthing"]],
        annotations=[a for a in doc["annotations"] if a["category_id"] == 1 and a["image_id"] == 5],
    )  # own counts
    with pytest.raises(AssertionError, match="equal point counts"):
        pointsup_load(raw)
    ps = to_pointsup(doc)
    by_id = {a["id"]: a for a in ps["annotations"]}
    assert by_id[9]["point_coords"] == [[10, 10]] * 3 and by_id[9]["point_labels"] == [1, 1, 1]
    assert by_id[10]["point_coords"] == [[0, 0]] * 3  # crowd: padded too (the mapper drops it anyway)
    assert pointsup_load(ps)[0]["point_coords"].shape == (2, 3, 2)
    assert pointsup_load(raw, sample_points=4)[0]["point_coords"].shape == (2, 4, 2)


def test_simulated_file_loads_in_pointsup(shared_data, tmp_path):
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    ds = PanopticDataset(shared_data / js, shared_data / png)
    doc = simulate(ds, SimulationOptions(points=10, boundary_share=0.2, seed=1, include_crowd=True)).document
    path = tmp_path / "sim.json"
    formats.save_points(path, doc)
    back = formats.load_points(path)
    ps = to_pointsup(back)
    pspath = tmp_path / "pointsup.json"
    pspath.write_text(json.dumps(ps))
    loaded = pointsup_load(json.loads(pspath.read_text()))
    src = {a["id"]: a for a in back["annotations"]}
    things = {c["id"] for c in back["categories"] if c["isthing"]}
    n_instances = sum(len(r["classes"]) for r in loaded)
    assert n_instances == sum(1 for a in back["annotations"] if a["category_id"] in things and not a["iscrowd"])
    for a in ps["annotations"]:
        s = src[a["id"]]
        assert a["category_id"] == s["category_id"] in things
        assert a["bbox"] == s["bbox"] and a["iscrowd"] == s["iscrowd"]
        assert a["point_coords"] == s["point_coords"] and a["point_labels"] == s["point_labels"] == [1] * 10
    for r in loaded:
        assert r["point_coords"].shape[1:] == (10, 2)


def test_make_document_copies_inputs():
    images = [{"id": 1, "file_name": "a.jpg", "width": 2, "height": 2}]
    doc = formats.make_document(images, [], [], {"made_by": "x"})
    doc["images"][0]["id"] = 9
    assert images[0]["id"] == 1
    assert copy.deepcopy(doc)["info"]["pointly"]["made_by"] == "x"


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d["annotations"][0].update(bbox=[1, 2, 3]),  # points plainly valid, error elsewhere
        lambda d: d["annotations"][0]["point_labels"].__setitem__(0, True),  # bool is not 0/1
        lambda d: d["annotations"][0]["point_coords"].__setitem__(0, [2, 3, 4]),
        lambda d: d["annotations"][1].update(point_times=[-1.0, 0.0, 1.0]),
        lambda d: d["annotations"][0].update(point_kinds="random"),
    ],
)
def test_fast_schema_path_reports_like_full_jsonschema(mutate):
    import jsonschema

    doc = small_doc()
    mutate(doc)
    full = sorted(
        jsonschema.Draft202012Validator(formats.schema()).iter_errors(doc), key=lambda e: list(e.absolute_path)
    )[0]
    with pytest.raises(PointlyError) as err:
        formats.validate_points(doc)
    assert err.value.problem == full.message


def test_schema_integer_floats_still_accepted():
    # JSON Schema counts 3.0 as an integer: such a file (not pointly's own output) stays valid
    doc = small_doc()
    doc["annotations"][0]["point_coords"][0] = [2.0, 3.0]
    formats.validate_points(doc)
    assert to_pointsup(doc)["annotations"][0]["point_coords"][0] == [2, 3]


def test_docs_example_is_a_valid_points_file():
    # the example in docs/formats.md must stay a valid document that PointSup's reader accepts
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "formats.md").read_text(encoding="utf-8")
    block = text.split("```json", 1)[1].split("```", 1)[0]
    doc = json.loads(block)
    formats.validate_points(doc)
    assert pointsup_load(to_pointsup(doc))[0]["point_coords"].shape == (1, 3, 2)
    for a in doc["annotations"]:
        assert len(a["point_kinds"]) == len(a["point_coords"]) == len(a["point_labels"])
