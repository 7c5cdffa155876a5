"""PQ on the real data in shared/ against two other implementations, with perturbed predictions.

1. ``reference_pq`` below: a plain per-image re-statement of panopticapi's algorithm (written
   here from its description, independent of hotcoco and of pointly's wrapper).
2. panopticapi's own ``pq_compute_single_core`` / ``PQStat.pq_average`` from the registry
   package ``panopticapi-lite`` (a reformatted copy of cocodataset/panopticapi). Its
   install pins numpy < 2, so the wheel is only downloaded (``pip download --no-deps``, cached in
   pytest's cache folder) and its module imported from there; the test is skipped when the
   registry is unreachable. ``POINTLY_PANOPTICAPI_WHEEL`` may point at a local copy of the wheel.

Predictions are made from the ground truth by dropping, merging, shifting and relabelling
segments, covering crowd regions and painting or filling VOID, with random segment ids. All
three must agree to 1e-12 on every number.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import zipfile
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pointly.model.engine.evaluation import pq_compute

DATASETS = {
    "coco_panoptic_val2017": ("panoptic_val2017.json", "panoptic"),
    "coconut_val2017_139": ("panoptic.json", "panoptic"),
    "dsb2018_nuclei": ("panoptic.json", "panoptic"),
}
PERTURBATIONS = ("identity", "drop", "merge", "shift", "relabel", "crowd", "void", "mix1", "mix2")
TOL = 1e-12


# ----------------------------------------------------------------------------- independent reference
def _read_ids(path: Path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def reference_pq(gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path) -> dict:
    """panopticapi's PQ, restated: per-image matching, counts summed over images, then averaged."""
    gt_doc = json.loads(gt_json.read_text())
    pred_doc = json.loads(pred_json.read_text())
    cats = {c["id"]: c for c in gt_doc["categories"]}
    preds = {a["image_id"]: a for a in pred_doc["annotations"]}
    iou_sum, tp, fp, fn = defaultdict(float), defaultdict(int), defaultdict(int), defaultdict(int)
    for g_ann in gt_doc["annotations"]:
        p_ann = preds[g_ann["image_id"]]
        g_map = _read_ids(gt_dir / g_ann["file_name"])
        p_map = _read_ids(pred_dir / p_ann["file_name"])
        g_segs = {s["id"]: s for s in g_ann["segments_info"]}
        p_segs = {s["id"]: dict(s) for s in p_ann["segments_info"]}
        p_ids, p_counts = np.unique(p_map, return_counts=True)
        for i, n in zip(p_ids.tolist(), p_counts.tolist()):
            if i:
                p_segs[i]["area"] = n  # predicted area from the PNG
        # pixel counts of every (gt id, pred id) pair
        pairs = defaultdict(int)
        key = g_map * (1 << 24) + p_map
        k_ids, k_counts = np.unique(key, return_counts=True)
        for k, n in zip(k_ids.tolist(), k_counts.tolist()):
            pairs[(k >> 24, k & 0xFFFFFF)] = n
        g_hit, p_hit = set(), set()
        for (gi, pi), inter in pairs.items():
            if gi not in g_segs or pi not in p_segs:
                continue
            g, p = g_segs[gi], p_segs[pi]
            if g["iscrowd"] == 1 or g["category_id"] != p["category_id"]:
                continue
            union = p["area"] + g["area"] - inter - pairs.get((0, pi), 0)
            if inter / union > 0.5:
                tp[g["category_id"]] += 1
                iou_sum[g["category_id"]] += inter / union
                g_hit.add(gi)
                p_hit.add(pi)
        crowd_of = {}
        for gi, g in g_segs.items():
            if gi in g_hit:
                continue
            if g["iscrowd"] == 1:
                crowd_of[g["category_id"]] = gi  # the last crowd region of a category wins
            else:
                fn[g["category_id"]] += 1
        for pi, p in p_segs.items():
            if pi in p_hit:
                continue
            ignored = pairs.get((0, pi), 0)
            if p["category_id"] in crowd_of:
                ignored += pairs.get((crowd_of[p["category_id"]], pi), 0)
            if ignored / p["area"] <= 0.5:
                fp[p["category_id"]] += 1
    out = {"per_class": {}}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        acc = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
        n = 0
        for cid, c in cats.items():
            if isthing is not None and (c["isthing"] == 1) != isthing:
                continue
            denom = tp[cid] + 0.5 * fp[cid] + 0.5 * fn[cid]
            if denom == 0:
                r = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
            else:
                n += 1
                r = {
                    "pq": iou_sum[cid] / denom,
                    "sq": iou_sum[cid] / tp[cid] if tp[cid] else 0.0,
                    "rq": tp[cid] / denom,
                }
                for k in acc:
                    acc[k] += r[k]
            if name == "All":
                out["per_class"][cid] = {**r, "tp": tp[cid], "fp": fp[cid], "fn": fn[cid]}
        out[name] = {k: (v / n if n else 0.0) for k, v in acc.items()}
        out[name]["n"] = n
    return out


# ----------------------------------------------------------------------------- panopticapi from the registry
@pytest.fixture(scope="module")
def panopticapi(request):
    """panopticapi's evaluation module, imported from the panopticapi-lite wheel (not installed)."""
    try:
        return importlib.import_module("panopticapi.evaluation")
    except ImportError:
        pass
    wheel = os.environ.get("POINTLY_PANOPTICAPI_WHEEL")
    cache = Path(request.config.cache.mkdir("pointly-panopticapi"))
    if not wheel:
        found = sorted(cache.glob("panopticapi_lite-*.whl"))
        if not found:
            try:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "--quiet",
                        "--timeout",
                        "10",
                        "--retries",
                        "1",
                        "-d",
                        str(cache),
                        "panopticapi-lite==0.2.0",
                    ],
                    check=True,
                    timeout=90,
                    capture_output=True,
                )
            except (subprocess.SubprocessError, OSError) as exc:
                pytest.skip(f"panopticapi-lite could not be downloaded ({exc.__class__.__name__})")
            found = sorted(cache.glob("panopticapi_lite-*.whl"))
        if not found:
            pytest.skip("panopticapi-lite wheel not found after download")
        wheel = found[-1]
    target = cache / "unpacked"
    if not (target / "panopticapi" / "evaluation.py").is_file():
        with zipfile.ZipFile(wheel) as zf:
            zf.extractall(target)
    sys.path.insert(0, str(target))
    try:
        module = importlib.import_module("panopticapi.evaluation")
    finally:
        sys.path.remove(str(target))
    return module


def panopticapi_pq(module, gt_json: Path, gt_dir: Path, pred_json: Path, pred_dir: Path) -> dict:
    """panopticapi's pq_compute without its process pool (single core, same arithmetic)."""
    gt_doc = json.loads(gt_json.read_text())
    pred_doc = json.loads(pred_json.read_text())
    cats = {c["id"]: c for c in gt_doc["categories"]}
    preds = {a["image_id"]: a for a in pred_doc["annotations"]}
    matched = [(g, preds[g["image_id"]]) for g in gt_doc["annotations"]]
    stat = module.pq_compute_single_core(0, matched, str(gt_dir), str(pred_dir), cats)
    out = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        try:
            out[name], per_class = stat.pq_average(cats, isthing=isthing)
        except ZeroDivisionError:  # no category in this group: we report zeros with n = 0
            out[name], per_class = {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, None
        if name == "All":
            out["per_class"] = per_class
    return out


# ----------------------------------------------------------------------------- perturbations
def perturb(
    kind: str, g_map: np.ndarray, g_info: list[dict], cats: dict, rng: np.random.Generator
) -> tuple[np.ndarray, dict[int, int]]:
    """A prediction made from one ground-truth image: (label map, pred id → category id)."""
    p = g_map.copy()
    cat = {s["id"]: s["category_id"] for s in g_info}
    ids = [s["id"] for s in g_info]
    steps = {"mix1": ("drop", "merge", "shift", "void"), "mix2": ("relabel", "crowd", "shift", "merge", "void")}
    for step in steps.get(kind, (kind,)):
        if step == "drop":
            for i in rng.choice(ids, size=max(1, len(ids) // 4), replace=False):
                p[p == i] = 0
        elif step == "merge":
            order = rng.permutation(ids)
            for a, b in zip(order[0::2][:4], order[1::2][:4]):  # b joins a, a's category wins
                p[p == b] = a
        elif step == "shift":
            dy, dx = (int(v) for v in rng.integers(-12, 13, size=2))
            shifted = np.zeros_like(p)
            h, w = p.shape
            shifted[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = p[
                max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
            ]
            p = shifted
        elif step == "relabel":
            all_cats = sorted(cats)
            for i in rng.choice(ids, size=max(1, len(ids) // 3), replace=False):
                cat[int(i)] = int(rng.choice(all_cats))
        elif step == "crowd":
            crowds = [s for s in g_info if s.get("iscrowd")] or [g_info[0]]
            for s in crowds:  # split each crowd region into a same-category part and another part
                ys, xs = np.nonzero(g_map == s["id"])
                if len(ys) == 0:
                    continue
                half = xs < np.median(xs)
                new_id = int(max(cat) + 1)
                p[ys[half], xs[half]] = new_id
                cat[new_id] = s["category_id"] if rng.random() < 0.7 else int(rng.choice(sorted(cats)))
        elif step == "void":
            h, w = p.shape
            for _ in range(3):  # VOID rectangles in the prediction
                y0, x0 = int(rng.integers(0, h)), int(rng.integers(0, w))
                p[y0 : y0 + int(rng.integers(5, h // 3)), x0 : x0 + int(rng.integers(5, w // 3))] = 0
            new_id = int(max(cat) + 1)  # a predicted segment on the ground truth's VOID
            void = g_map == 0
            if void.any():
                p[void & (rng.random(p.shape) < 0.8)] = new_id
                cat[new_id] = int(rng.choice(sorted(cats)))
    # random, unique pred ids (the evaluation must not rely on ids agreeing with the gt)
    present = [int(i) for i in np.unique(p) if i != 0]
    new_ids = rng.choice(np.arange(1, 1 << 24), size=len(present), replace=False)
    out = np.zeros_like(p)
    out_cat = {}
    for old, new in zip(present, new_ids.tolist()):
        out[p == old] = new
        out_cat[new] = cat[old]
    return out, out_cat


def write_predictions(
    ds_root: Path, json_name: str, png_dir: str, kind: str, out: Path, seed: int
) -> tuple[Path, Path]:
    from pointly.pointgen.base.coco import decode_panoptic_png, encode_panoptic_png

    rng = np.random.default_rng(seed)
    doc = json.loads((ds_root / json_name).read_text())
    cats = {c["id"]: c for c in doc["categories"]}
    pred_dir = out / f"pred_{kind}"
    pred_dir.mkdir(parents=True)
    anns = []
    for ann in doc["annotations"]:
        g_map = decode_panoptic_png(ds_root / png_dir / ann["file_name"])
        p_map, p_cat = perturb(kind, g_map, ann["segments_info"], cats, rng)
        Image.fromarray(encode_panoptic_png(p_map)).save(pred_dir / ann["file_name"])
        anns.append(
            {
                "image_id": ann["image_id"],
                "file_name": ann["file_name"],
                "segments_info": [{"id": i, "category_id": c} for i, c in p_cat.items()],
            }
        )
    pred_json = out / f"pred_{kind}.json"
    pred_json.write_text(json.dumps({"annotations": anns}))
    return pred_json, pred_dir


def assert_same(ours: dict, ref: dict, label: str) -> None:
    for name in ("All", "Things", "Stuff"):
        assert ours[name]["n"] == ref[name]["n"], (label, name)
        for k in ("pq", "sq", "rq"):
            assert abs(ours[name][k] - float(ref[name][k])) <= TOL, (label, name, k, ours[name][k], ref[name][k])
    assert list(ours["per_class"]) == list(ref["per_class"]), label
    for cid, r in ref["per_class"].items():
        for k in ("pq", "sq", "rq"):
            assert abs(ours["per_class"][cid][k] - float(r[k])) <= TOL, (label, cid, k)
        for k in ("tp", "fp", "fn"):
            if k in r:
                assert ours["per_class"][cid][k] == r[k], (label, cid, k)


@pytest.fixture(scope="module")
def perturbed_sets(shared_data, tmp_path_factory):
    """Every (dataset, perturbation) prediction folder, written once for the module."""
    root = tmp_path_factory.mktemp("pq_ref")
    sets = []
    for d_i, (ds, (json_name, png_dir)) in enumerate(DATASETS.items()):
        ds_root = shared_data / ds
        for k_i, kind in enumerate(PERTURBATIONS):
            pj, pd = write_predictions(ds_root, json_name, png_dir, kind, root / ds, seed=100 * d_i + k_i)
            sets.append((f"{ds}/{kind}", ds_root / json_name, ds_root / png_dir, pj, pd))
    return sets


def test_perturbations_change_the_score(perturbed_sets):
    """A sanity check of the test itself: the perturbations hurt PQ, identity keeps it at 1."""
    scores = {label: pq_compute(gj, gd, pj, pd)["All"]["pq"] for label, gj, gd, pj, pd in perturbed_sets}
    for ds in DATASETS:
        assert scores[f"{ds}/identity"] == 1.0
        assert all(scores[f"{ds}/{k}"] < 1.0 for k in PERTURBATIONS if k != "identity"), scores


def test_equal_to_the_restated_reference(perturbed_sets):
    for label, gj, gd, pj, pd in perturbed_sets:
        assert_same(pq_compute(gj, gd, pj, pd), reference_pq(gj, gd, pj, pd), label)


def test_equal_to_panopticapi(perturbed_sets, panopticapi):
    for label, gj, gd, pj, pd in perturbed_sets:
        assert_same(pq_compute(gj, gd, pj, pd), panopticapi_pq(panopticapi, gj, gd, pj, pd), label)


def test_hand_edge_cases_equal_to_panopticapi(tmp_path, panopticapi):
    """The hand-made edge cases of test_eval_pq_cases also agree with panopticapi itself."""
    from eval_fixtures import seg, strip, write_set

    gt = {
        1: strip((1, 4), (2, 4)),
        2: strip((1, 2), (2, 6), (3, 2)),
        3: strip((1, 4), (2, 4)),
        4: strip((1, 6), (0, 4)),
        5: strip((1, 3), (2, 3), (3, 4)),
    }
    gi = {
        1: [seg(1, 1, area=4), seg(2, 3, area=4)],
        2: [seg(1, 1, area=2), seg(2, 1, 1, area=6), seg(3, 3, area=2)],
        3: [seg(1, 2, 1, area=4), seg(2, 2, 1, area=4)],
        4: [seg(1, 4, area=6)],
        5: [seg(1, 1, area=3), seg(2, 2, area=3), seg(3, 3, area=4)],
    }
    pred = {
        1: strip((5, 2), (6, 6)),
        2: strip((5, 2), (6, 6), (7, 2)),
        3: strip((5, 4), (0, 4)),
        4: strip((3, 4), (4, 4), (0, 2)),
        5: np.zeros((1, 10), np.int64),
    }
    pi = {
        1: [seg(5, 1), seg(6, 3)],
        2: [seg(5, 1), seg(6, 1), seg(7, 2)],
        3: [seg(5, 2)],
        4: [seg(3, 4), seg(4, 2)],
        5: [],
    }
    gj, gd = write_set(tmp_path, "gt", gt, gi)
    pj, pd = write_set(tmp_path, "pred", pred, pi)
    ours = pq_compute(gj, gd, pj, pd)
    assert_same(ours, panopticapi_pq(panopticapi, gj, gd, pj, pd), "edge cases")
    assert_same(ours, reference_pq(gj, gd, pj, pd), "edge cases (restated)")
