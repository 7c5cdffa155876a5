"""``pointly export --to pointsup`` against an independent statement of PointSup's loader.

``pointsup_batches`` re-states, from detectron2's ``load_coco_json`` and PointSup's
``PointSupDatasetMapper`` / ``annotations_to_instances``, what a point file must satisfy: crowd
instances dropped, ``point_coords`` a K x 2 array of integer pixel indices whose centres
(``+ 0.5``) lie in the image, ``point_labels`` 0/1 with one per point, a non-empty box, and the
per-instance arrays of an image stacked into one array (``torch.stack``), which needs equal
counts. It shares no code with pointly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from simulate_fixtures import INSTANCE_SETS, PANOPTIC_SETS

from pointly.cli.main import main as cli
from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.interop.common import load_reference
from pointly.pointgen.interop.convert import export_document
from pointly.pointgen.points.cost import cost_table
from pointly.pointgen.points.simulate import SimulationOptions, simulate

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def pointsup_batches(doc: dict) -> dict[int, dict[str, np.ndarray]]:
    """image id -> {"coords": (K, P, 2) continuous, "labels": (K, P), "classes": (K,)} as PointSup
    would build them; raises ValueError/AssertionError where it would fail."""
    images = {im["id"]: im for im in doc["images"]}
    contiguous = {cid: i for i, cid in enumerate(sorted(c["id"] for c in doc["categories"]))}
    per_image: dict[int, list] = {i: [] for i in images}
    for a in doc["annotations"]:
        per_image[a["image_id"]].append(a)
    out = {}
    for image_id, anns in per_image.items():
        w, h = images[image_id]["width"], images[image_id]["height"]
        coords, labels, classes = [], [], []
        for a in anns:
            if a.get("iscrowd", 0):
                continue
            pc = np.asarray(a["point_coords"])
            assert pc.ndim == 2 and pc.shape[1] == 2 and np.issubdtype(pc.dtype, np.integer)
            pl = np.asarray(a["point_labels"])
            assert pl.shape == (len(pc),) and set(pl.tolist()) <= {0, 1}
            centres = pc + 0.5
            assert (centres >= 0).all() and (centres[:, 0] <= w).all() and (centres[:, 1] <= h).all()
            assert a["bbox"][2] > 0 and a["bbox"][3] > 0
            coords.append(centres)
            labels.append(pl)
            classes.append(contiguous[a["category_id"]])
        if coords:
            out[image_id] = {"coords": np.stack(coords), "labels": np.stack(labels), "classes": np.array(classes)}
    return out


def simulated(shared_data, name, points):
    if name in PANOPTIC_SETS:
        js, png = PANOPTIC_SETS[name]
        ds = PanopticDataset(shared_data / js, shared_data / png)
    else:
        ds = InstancesDataset(shared_data / INSTANCE_SETS[name])
    return simulate(ds, SimulationOptions(points=points, seed=1)).document


def test_raw_simulation_does_not_stack_but_the_export_does(shared_data, tmp_path):
    doc = simulated(shared_data, "tiny_coco_val", 12)  # some objects have fewer than 12 pixels
    short = [a for a in doc["annotations"] if len(a["point_coords"]) < 12]
    assert short
    things = dict(doc, annotations=[a for a in doc["annotations"] if not a.get("iscrowd", 0)])
    with pytest.raises(ValueError, match="same shape"):
        pointsup_batches(things)
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    ps, _ = export_document(doc, "pointsup", file=path)
    out = tmp_path / "ps.json"
    out.write_text(json.dumps(ps))
    batches = pointsup_batches(json.loads(out.read_text()))
    assert all(b["coords"].shape[1:] == (12, 2) and b["labels"].shape[1] == 12 for b in batches.values())
    assert sum(len(b["classes"]) for b in batches.values()) == len(doc["annotations"])
    # a short instance repeats its own points in order: k, k+1, ... are points 0, 1, ...
    by_id = {a["id"]: a for a in ps["annotations"]}
    for a in short:
        k = len(a["point_coords"])
        got = by_id[a["id"]]
        assert got["point_coords"] == [a["point_coords"][i % k] for i in range(12)]
        assert got["pointly_padding"] == 12 - k


@pytest.mark.parametrize("name", sorted(PANOPTIC_SETS) + sorted(INSTANCE_SETS))
def test_every_real_export_loads_in_pointsup(shared_data, tmp_path, name):
    doc = simulated(shared_data, name, 10)
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    for include_stuff in (False, True):
        ps, _ = export_document(doc, "pointsup", file=path, include_stuff=include_stuff)
        batches = pointsup_batches(ps)
        counts = {len(a["point_coords"]) for a in ps["annotations"]}
        assert counts == {10}
        things = {c["id"] for c in doc["categories"] if c["isthing"]}
        want = sum(1 for a in doc["annotations"] if include_stuff or a["category_id"] in things)
        assert sum(len(b["classes"]) for b in batches.values()) == want
        # PointSup's contiguous classes: only the exported categories count
        assert {c["id"] for c in ps["categories"]} == (
            {c["id"] for c in doc["categories"]} if include_stuff else things
        )
    # with the source JSON, every box is the source segment's box (panoptic segments_info or
    # instances annotations, read here straight from the file)
    js = shared_data / (PANOPTIC_SETS[name][0] if name in PANOPTIC_SETS else INSTANCE_SETS[name])
    source = json.loads(js.read_text())
    boxes = (
        {(r["image_id"], s["id"]): s["bbox"] for r in source["annotations"] for s in r["segments_info"]}
        if name in PANOPTIC_SETS
        else {(a["image_id"], a["id"]): a["bbox"] for a in source["annotations"]}
    )
    ps, warnings = export_document(doc, "pointsup", file=path, include_stuff=True, ref=load_reference(js))
    assert not any("box" in w for w in warnings)
    src = {a["id"]: a for a in doc["annotations"]}
    assert all(
        a["bbox"] == [float(v) for v in boxes[(a["image_id"], src[a["id"]]["source_segment_id"])]]
        for a in ps["annotations"]
    )


def test_fewer_points_keep_a_seeded_sample_in_order(tmp_path):
    doc = formats.make_document(
        [{"id": 1, "file_name": "a.png", "width": 10, "height": 10}],
        [{"id": 1, "name": "a", "isthing": 1}],
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "point_coords": [[i, i] for i in range(8)],
                "point_labels": [1] * 8,
                "bbox": [0.0, 0.0, 8.0, 8.0],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 1,
                "point_coords": [[9, 0]],
                "point_labels": [0],
                "bbox": [9.0, 0.0, 1.0, 1.0],
            },
        ],
        {"made_by": "simulator"},
    )
    path = tmp_path / "p.json"
    one, warnings = export_document(doc, "pointsup", file=path, points=3, seed=5)
    again, _ = export_document(doc, "pointsup", file=path, points=3, seed=5)
    assert one == again
    kept = one["annotations"][0]["point_coords"]
    assert len(kept) == 3 and kept == sorted(kept) and all(p in doc["annotations"][0]["point_coords"] for p in kept)
    assert "pointly_padding" not in one["annotations"][0]
    assert one["annotations"][1]["point_coords"] == [[9, 0]] * 3 and one["annotations"][1]["point_labels"] == [0] * 3
    assert warnings == ["1 instances had more than 3 points and keep a sample of 3 (seed 5)"]
    assert pointsup_batches(one)[1]["coords"].shape == (2, 3, 2)


def test_boxes_come_from_the_source_and_click_boxes_are_reported(shared_data, tmp_path):
    js = shared_data / INSTANCE_SETS["tiny_coco_val"]
    source = json.loads(js.read_text())
    true_box = {a["id"]: a["bbox"] for a in source["annotations"]}
    doc = simulated(shared_data, "tiny_coco_val", 6)
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    ps, warnings = export_document(doc, "pointsup", file=path)
    assert not any("box" in w for w in warnings)
    src = {a["id"]: a for a in doc["annotations"]}
    for a in ps["annotations"]:
        assert a["bbox"] == [float(v) for v in true_box[src[a["id"]]["source_segment_id"]]]
    # the same points as an annotator would save them: the box is the box of the clicks
    clicked = json.loads(json.dumps(doc))
    clicked["info"]["pointly"]["made_by"] = "annotator"
    for a in clicked["annotations"]:
        a["bbox"] = formats.points_bbox(a["point_coords"])
    ps, warnings = export_document(clicked, "pointsup", file=path)
    n = len(ps["annotations"])
    assert warnings == [
        f"{n} of {n} instances have only the box of their points, not the object's "
        f"(pass --images-json with the COCO file the points were made from)"
    ]
    # x from 2 to 5 and y from 3 to 4 give the pixel box [2, 3, 4, 2]
    assert formats.points_bbox([[2, 3], [5, 4]]) == [2.0, 3.0, 4.0, 2.0]
    ps, warnings = export_document(clicked, "pointsup", file=path, ref=load_reference(js))
    assert warnings == []
    assert all(a["bbox"] == [float(v) for v in true_box[a["source_segment_id"]]] for a in ps["annotations"])


def test_cost_of_the_export_equals_the_cost_of_its_things(shared_data, tmp_path, capsys):
    doc = simulated(shared_data, "tiny_coco_val", 12)
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    out = tmp_path / "ps.json"
    assert cli(["export", str(path), "--to", "pointsup", "-o", str(out)]) == 0
    padded = json.loads(out.read_text())
    assert sum(len(a["point_coords"]) for a in padded["annotations"]) == 12 * len(doc["annotations"])
    # the padding repeats points to fill PointSup's arrays; they were never clicked
    assert cost_table(formats.load_points(out)).loc["all", "points"] == sum(
        len(a["point_coords"]) for a in doc["annotations"]
    )
