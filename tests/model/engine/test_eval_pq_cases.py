"""PQ on hand-made label maps whose expected values are worked out by hand in each test.

Conventions: images are 1 × N strips so pixel counts are easy to follow; ``seg(id, cat)`` is a
segments_info entry. PQ = ΣIoU / (TP + ½FP + ½FN), SQ = ΣIoU / TP, RQ = TP / (TP + ½FP + ½FN),
averaged over the categories that have any TP, FP or FN.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from eval_fixtures import CATS, seg, strip, write_set
from PIL import Image

from pointly.model.engine.evaluation import format_table, pq_compute, pq_from_arrays, results_to_json
from pointly.pointgen.base.coco import encode_panoptic_png
from pointly.pointgen.base.errors import PointlyError


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-12


def test_iou_exactly_half_is_not_a_match_and_above_is():
    # gt: person 1 on px 0-3 (area 4), sky 2 on px 4-7 (area 4)
    gt = strip((1, 4), (2, 4))
    gt_info = [seg(1, 1), seg(2, 3)]
    # pred: person on px 0-1 (I=2, U=2+4-2=4, IoU 0.5 -> no match: FN + FP),
    #       sky on px 2-7 (I=4, U=6+4-4=6, IoU 2/3 -> match)
    pred = strip((5, 2), (6, 6))
    r = pq_from_arrays([(gt, gt_info)], [(pred, [seg(5, 1), seg(6, 3)])], CATS)
    pc = r["per_class"]
    assert (pc[1]["tp"], pc[1]["fp"], pc[1]["fn"]) == (0, 1, 1)
    assert pc[1]["pq"] == 0.0 and pc[1]["sq"] == 0.0 and pc[1]["rq"] == 0.0
    assert (pc[3]["tp"], pc[3]["fp"], pc[3]["fn"]) == (1, 0, 0)
    assert close(pc[3]["pq"], 2 / 3) and close(pc[3]["sq"], 2 / 3) and pc[3]["rq"] == 1.0
    assert close(r["All"]["pq"], (0 + 2 / 3) / 2) and r["All"]["n"] == 2
    assert close(r["All"]["sq"], (0 + 2 / 3) / 2) and close(r["All"]["rq"], 0.5)
    assert r["Things"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 1}
    assert close(r["Stuff"]["pq"], 2 / 3) and r["Stuff"]["n"] == 1
    # one more pixel for the person: I=3, U=4 -> IoU 0.75, matched; sky then I=4, U=5 -> 0.8
    pred2 = strip((5, 3), (6, 5))
    r2 = pq_from_arrays([(gt, gt_info)], [(pred2, [seg(5, 1), seg(6, 3)])], CATS)
    assert close(r2["per_class"][1]["pq"], 0.75) and close(r2["per_class"][3]["pq"], 0.8)
    assert close(r2["All"]["pq"], (0.75 + 0.8) / 2)


def test_unseen_categories_are_zero_and_left_out_of_the_averages():
    gt = strip((1, 4), (2, 4))
    r = pq_from_arrays([(gt, [seg(1, 1), seg(2, 3)])], [(gt, [seg(1, 1), seg(2, 3)])], CATS)
    assert r["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 2}
    for cid in (2, 4, 9):  # never in gt or pred: reference reports 0.0 (hotcoco says -1.0)
        assert {k: r["per_class"][cid][k] for k in ("pq", "sq", "rq")} == {"pq": 0.0, "sq": 0.0, "rq": 0.0}
    assert list(r["per_class"]) == [1, 2, 3, 4, 9]  # the ground truth's category order


def test_union_subtracts_only_prediction_on_void():
    # gt: person on px 0-3, VOID on px 4-7. pred: person on all 8 px.
    # I=4, U = 8 + 4 - 4 - |pred ∩ VOID| (4) = 4 -> IoU 1.0
    gt = strip((1, 4), (0, 4))
    pred = strip((7, 8))
    r = pq_from_arrays([(gt, [seg(1, 1)])], [(pred, [seg(7, 1)])], CATS)
    assert r["per_class"][1]["tp"] == 1 and r["per_class"][1]["pq"] == 1.0
    # but a prediction spilling onto another ground-truth segment is penalised:
    # gt person px 0-3, sky px 4-7; pred person on all 8 -> I=4, U=8 -> 0.5 -> no match
    gt2 = strip((1, 4), (2, 4))
    r2 = pq_from_arrays([(gt2, [seg(1, 1), seg(2, 3)])], [(pred, [seg(7, 1)])], CATS)
    pc = r2["per_class"]
    assert (pc[1]["tp"], pc[1]["fp"], pc[1]["fn"]) == (0, 1, 1)
    assert (pc[3]["tp"], pc[3]["fp"], pc[3]["fn"]) == (0, 0, 1)
    assert r2["All"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 2}


def test_void_share_of_an_unmatched_prediction():
    # gt: sky px 0-5, VOID px 6-9. A car predicted on px 4-7: 2 px on sky, 2 px on VOID.
    # VOID share 2/4 = 0.5 is not > 0.5 -> counts as FP. On px 5-7 (1 sky, 2 void): 2/3 > 0.5 -> ignored.
    gt = strip((1, 6), (0, 4))
    gt_info = [seg(1, 3)]
    pred_a = strip((3, 4), (4, 4), (0, 2))  # sky px 0-3 (IoU 4/6 matched), car px 4-7
    r = pq_from_arrays([(gt, gt_info)], [(pred_a, [seg(3, 3), seg(4, 2)])], CATS)
    assert (r["per_class"][2]["fp"], r["per_class"][2]["tp"]) == (1, 0)
    assert close(r["per_class"][3]["pq"], 4 / 6)
    assert close(r["All"]["pq"], (4 / 6 + 0) / 2) and r["All"]["n"] == 2
    pred_b = strip((3, 5), (4, 3), (0, 2))  # sky px 0-4 (IoU 5/6), car px 5-7
    r = pq_from_arrays([(gt, gt_info)], [(pred_b, [seg(3, 3), seg(4, 2)])], CATS)
    assert r["per_class"][2]["fp"] == 0 and r["All"]["n"] == 1
    assert close(r["All"]["pq"], 5 / 6)


def test_crowd_regions():
    # gt: person 1 px 0-1 (normal), person 2 px 2-7 (crowd), sky 3 px 8-9.
    gt = strip((1, 2), (2, 6), (3, 2))
    gt_info = [seg(1, 1), seg(2, 1, crowd=1), seg(3, 3)]
    # pred: person px 0-1 (TP IoU 1), person px 2-7 (on the crowd: ignored, never TP),
    # car px 8-9 on sky (FP for car, FN for sky), so the crowd is neither FN nor TP.
    pred = strip((5, 2), (6, 6), (7, 2))
    r = pq_from_arrays([(gt, gt_info)], [(pred, [seg(5, 1), seg(6, 1), seg(7, 2)])], CATS)
    pc = r["per_class"]
    assert (pc[1]["tp"], pc[1]["fp"], pc[1]["fn"]) == (1, 0, 0) and pc[1]["pq"] == 1.0
    assert (pc[2]["tp"], pc[2]["fp"], pc[2]["fn"]) == (0, 1, 0)
    assert (pc[3]["tp"], pc[3]["fp"], pc[3]["fn"]) == (0, 0, 1)
    assert close(r["All"]["pq"], 1 / 3) and r["All"]["n"] == 3
    # a car on the person crowd is not excused (different category): FP
    pred2 = strip((5, 2), (6, 6), (7, 2))
    r2 = pq_from_arrays([(gt, gt_info)], [(pred2, [seg(5, 1), seg(6, 2), seg(7, 3)])], CATS)
    assert r2["per_class"][2]["fp"] == 1 and r2["per_class"][3]["pq"] == 1.0
    assert close(r2["All"]["pq"], (1 + 0 + 1) / 3)


def test_only_the_last_crowd_region_of_a_category_counts():
    # two person crowds: id 1 on px 0-3, id 2 on px 4-7; segments_info lists 1 then 2.
    gt = strip((1, 4), (2, 4))
    gt_info = [seg(1, 1, crowd=1), seg(2, 1, crowd=1)]
    # a person on the first crowd is an FP (only crowd 2 is remembered), one on the second is ignored
    r = pq_from_arrays([(gt, gt_info)], [(strip((5, 4), (0, 4)), [seg(5, 1)])], CATS)
    assert (r["per_class"][1]["fp"], r["All"]["n"]) == (1, 1) and r["All"]["pq"] == 0.0
    r = pq_from_arrays([(gt, gt_info)], [(strip((0, 4), (5, 4)), [seg(5, 1)])], CATS)
    assert r["All"]["n"] == 0 and r["per_class"][1]["fp"] == 0
    # reversed order in segments_info flips which one is remembered
    r = pq_from_arrays([(gt, gt_info[::-1])], [(strip((5, 4), (0, 4)), [seg(5, 1)])], CATS)
    assert r["All"]["n"] == 0


def test_all_void_prediction_and_empty_groups():
    gt = strip((1, 3), (2, 3), (3, 4))
    gt_info = [seg(1, 1), seg(2, 2), seg(3, 3)]
    r = pq_from_arrays([(gt, gt_info)], [(np.zeros_like(gt), [])], CATS)
    assert r["All"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 3}
    assert all(r["per_class"][c]["fn"] == 1 for c in (1, 2, 3))
    # only things anywhere: the reference divides by zero for Stuff; we report 0.0 with n = 0
    things = strip((1, 5), (2, 5))
    r = pq_from_arrays([(things, [seg(1, 1), seg(2, 2)])], [(things, [seg(1, 1), seg(2, 2)])], CATS)
    assert r["Stuff"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
    assert r["Things"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 2}


def test_ground_truth_area_comes_from_the_json():
    # gt person covers px 0-3 but its JSON area says 10: U = 4 + 10 - 4 = 10 -> IoU 0.4, no match
    gt = strip((1, 4), (0, 6))
    r = pq_from_arrays([(gt, [seg(1, 1, area=10)])], [(gt, [seg(1, 1)])], CATS)
    assert (r["per_class"][1]["tp"], r["per_class"][1]["fp"], r["per_class"][1]["fn"]) == (0, 1, 1)
    r = pq_from_arrays([(gt, [seg(1, 1)])], [(gt, [seg(1, 1)])], CATS)  # area counted: 4
    assert r["per_class"][1]["pq"] == 1.0


def test_counts_accumulate_over_images_before_dividing():
    # image A: person matched with IoU 3/4; image B: person missed (FN) and a car FP.
    a_gt, a_pred = strip((1, 4)), strip((1, 3), (0, 1))
    # a_pred: I=3, U=3+4-3-0=4 -> 0.75
    b_gt, b_pred = strip((1, 4)), strip((2, 4))
    r = pq_from_arrays([(a_gt, [seg(1, 1)]), (b_gt, [seg(1, 1)])], [(a_pred, [seg(1, 1)]), (b_pred, [seg(2, 2)])], CATS)
    # person: ΣIoU 0.75, TP 1, FN 1 -> PQ 0.75 / 1.5 = 0.5, SQ 0.75, RQ 1/1.5
    p = r["per_class"][1]
    assert close(p["pq"], 0.5) and close(p["sq"], 0.75) and close(p["rq"], 2 / 3)
    assert r["per_class"][2]["fp"] == 1
    assert close(r["Things"]["pq"], 0.25) and r["Things"]["n"] == 2
    assert close(r["All"]["rq"], (2 / 3 + 0) / 2)


def test_in_memory_errors():
    gt = strip((1, 4))
    with pytest.raises(PointlyError, match="shape"):
        pq_from_arrays([(gt, [seg(1, 1)])], [(strip((1, 5)), [seg(1, 1)])], CATS)
    with pytest.raises(PointlyError, match="unknown category_id 77"):
        pq_from_arrays([(gt, [seg(1, 1)])], [(gt, [seg(1, 77)])], CATS)
    with pytest.raises(PointlyError, match="1 ground-truth images but 2"):
        pq_from_arrays([(gt, [seg(1, 1)])], [(gt, [seg(1, 1)])] * 2, CATS)
    with pytest.raises(PointlyError, match="segment 1 is in the PNG but not in segments_info"):
        pq_from_arrays([(gt, [seg(1, 1)])], [(gt, [])], CATS)
    with pytest.raises(PointlyError, match="twice"):
        pq_from_arrays([(gt, [seg(1, 1)])], [(gt, [seg(1, 1), seg(1, 2)])], CATS)


@pytest.fixture()
def pair(tmp_path):
    gt = {1: strip((1, 4), (2, 4)), 2: strip((3, 8))}
    gi = {1: [seg(1, 1, area=4), seg(2, 3, area=4)], 2: [seg(3, 4, area=8)]}
    gj, gd = write_set(tmp_path, "gt", gt, gi)
    pj, pd = write_set(tmp_path, "pred", gt, {1: [seg(1, 1), seg(2, 3)], 2: [seg(3, 4)]})
    return tmp_path, gj, gd, pj, pd


def test_files_round_trip_and_json_shape(pair):
    _, gj, gd, pj, pd = pair
    r = pq_compute(gj, gd, pj, pd)
    assert r["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 3}
    assert set(r) == {"All", "Things", "Stuff", "per_class"}
    # default folders: the JSON path without .json (panopticapi's rule)
    assert pq_compute(gj, None, pj)["All"]["n"] == 3
    doc = json.loads(json.dumps(results_to_json(r)))
    assert doc["per_class"]["1"]["pq"] == 1.0 and doc["Stuff"]["n"] == 2
    table = format_table(r, CATS)
    assert "| All | 100.0 | 100.0 | 100.0 | 3 |" in table and "never-seen" not in table
    assert "2 categories in neither ground truth nor prediction are not listed" in table  # car, never-seen
    assert "| never-seen | 9 | — |" in format_table(r, CATS, all_categories=True)


def test_pred_dir_defaults_to_where_predict_writes(pair, tmp_path):
    """predictions.json with panoptic/ beside it (pointly predict's layout) is found without
    --pred-dir; panopticapi's rule (the JSON path without .json) still wins when that folder exists."""
    import shutil

    _, gj, gd, pj, pd = pair
    out = tmp_path / "pred"
    shutil.copytree(pd, out / "panoptic")
    shutil.copy(pj, out / "predictions.json")
    assert pq_compute(gj, gd, out / "predictions.json")["All"]["n"] == 3
    (out / "predictions").mkdir()  # an empty folder named by panopticapi's rule is taken first
    with pytest.raises(PointlyError, match="not found"):
        pq_compute(gj, gd, out / "predictions.json")


def test_file_errors_are_one_line_pointly_errors(pair):
    root, gj, gd, pj, pd = pair
    with pytest.raises(PointlyError, match="prediction panoptic JSON not found"):
        pq_compute(gj, gd, root / "nope.json", pd)
    with pytest.raises(PointlyError, match="prediction PNG folder not found"):
        pq_compute(gj, gd, pj, root / "nodir")
    (pd / "0002.png").unlink()
    with pytest.raises(PointlyError, match="predicted PNG 0002.png not found"):
        pq_compute(gj, gd, pj, pd)
    doc = json.loads(pj.read_text())
    doc["annotations"] = doc["annotations"][:1]
    pj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="no prediction for image_id 2"):
        pq_compute(gj, gd, pj, pd)
    pj.write_text('{"annotations": [')
    with pytest.raises(PointlyError, match="not valid JSON"):
        pq_compute(gj, gd, pj, pd)
    doc = json.loads(gj.read_text())
    del doc["annotations"][0]["segments_info"][0]["area"]
    gj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="lacks area"):
        pq_compute(gj, gd, gj, gd)


def test_png_and_json_disagree(pair):
    root, gj, gd, pj, pd = pair
    doc = json.loads(pj.read_text())
    doc["annotations"][0]["segments_info"].append(seg(42, 2))
    pj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="segment 42 is in segments_info but not in the mask"):
        pq_compute(gj, gd, pj, pd)
    doc["annotations"][0]["segments_info"][-1] = seg(1, 7)
    doc["annotations"][0]["segments_info"] = doc["annotations"][0]["segments_info"][1:]
    pj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="unknown category_id 7"):
        pq_compute(gj, gd, pj, pd)


def test_image_ids_of_any_json_type_and_duplicates(pair):
    root, gj, gd, pj, pd = pair
    for doc_path in (gj, pj):  # string image ids are valid COCO JSON (panopticapi accepts them)
        doc = json.loads(doc_path.read_text())
        for a in doc["annotations"]:
            a["image_id"] = f"img-{a['image_id']}"
        for im in doc.get("images", []):
            im["id"] = f"img-{im['id']}"
        doc_path.write_text(json.dumps(doc))
    assert pq_compute(gj, gd, pj, pd)["All"] == {"pq": 1.0, "sq": 1.0, "rq": 1.0, "n": 3}
    # predictions: the last annotation of an image counts (panopticapi); here an all-VOID one
    doc = json.loads(pj.read_text())
    Image.fromarray(encode_panoptic_png(np.zeros((1, 8), np.int64))).save(pd / "void.png")
    doc["annotations"].append({"image_id": "img-2", "file_name": "void.png", "segments_info": []})
    pj.write_text(json.dumps(doc))
    r = pq_compute(gj, gd, pj, pd)
    assert r["per_class"][4]["fn"] == 1 and r["per_class"][4]["tp"] == 0
    doc = json.loads(gj.read_text())
    doc["annotations"].append(doc["annotations"][0])
    gj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="has two annotations"):
        pq_compute(gj, gd, pj, pd)
    doc["annotations"] = doc["annotations"][:2]
    doc["annotations"][0]["segments_info"][0]["id"] = "1"
    gj.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="not an integer"):
        pq_compute(gj, gd, pj, pd)


def test_broken_or_misshapen_prediction_pngs(pair):
    root, gj, gd, pj, pd = pair
    (pd / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    with pytest.raises(PointlyError, match="0001.png.*readable RGB images"):
        pq_compute(gj, gd, pj, pd)
    Image.fromarray(np.zeros((3, 5, 3), np.uint8)).save(pd / "0001.png")
    with pytest.raises(PointlyError, match="1×8 but the prediction is 3×5"):
        pq_compute(gj, gd, pj, pd)
    Image.fromarray(np.ones((1, 8), np.uint8)).save(pd / "0001.png")
    with pytest.raises(PointlyError, match="Grayscale"):
        pq_compute(gj, gd, pj, pd)
