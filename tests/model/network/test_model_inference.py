"""Inference pieces on crafted inputs: peak NMS, candidates, Fast-NMS kernel fusion, maskness,
panoptic merge, and the public predict() contract."""

from __future__ import annotations

import math

import numpy as np
import torch

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import synthetic_small
from pointly.model.network.inference import (
    PanopticPrediction,
    fuse_kernels,
    maskness_rescore,
    merge_panoptic,
    smooth_and_peaks,
    stuff_candidates,
    thing_candidates,
    to_original,
)


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def test_smooth_and_peaks_by_hand():
    p = torch.zeros(1, 1, 3, 3)
    p[0, 0, 1, 1] = 0.9
    p[0, 0, 1, 2] = 0.6
    out = smooth_and_peaks(p, 3)[0, 0]
    # centre: (0.9 + (0.9 + 0.6)/9) / 2; the neighbour is no local maximum → 0
    assert abs(float(out[1, 1]) - (0.9 + 1.5 / 9) / 2) < 1e-6
    assert float((out > 0).sum()) == 1


def test_thing_candidates_topk_and_threshold():
    logits = torch.full((2, 4, 4), -10.0)
    logits[0, 0, 0] = 3.0
    logits[1, 3, 3] = 2.0
    logits[1, 0, 3] = -2.5  # smoothed score about 0.04: below 0.05
    feats = torch.arange(3 * 16, dtype=torch.float32).reshape(3, 4, 4)
    scores, classes, kern = thing_candidates(logits, feats, 3, 50, 0.05)
    assert classes.tolist() == [0, 1]
    torch.testing.assert_close(kern, torch.stack([feats[:, 0, 0], feats[:, 3, 3]]))
    assert scores[0] > scores[1]


def test_stuff_candidates_pool_over_full_level():
    logits = torch.full((3, 2, 2), -5.0)
    logits[1, :, 0] = 2.0  # class 1 wins the left column
    logits[2, :, 1] = 0.0  # class 2 the right one with p = 0.5
    feats = torch.tensor([[[1.0, 2.0], [3.0, 4.0]]])
    scores, classes, kern = stuff_candidates(logits, feats, 0.05)
    assert classes.tolist() == [1, 2]
    torch.testing.assert_close(scores, torch.tensor([1 / (1 + math.exp(-2)), 0.5]))
    # region sum ÷ full level area (4), not the region area (checklist 5)
    torch.testing.assert_close(kern, torch.tensor([[(1 + 3) / 4], [(2 + 4) / 4]]))


def test_fuse_kernels_fast_nms_semantics():
    # sorted by score; cos(0°,20°) = 0.94, cos(20°,40°) = 0.94, cos(0°,40°) = 0.77
    k = torch.tensor([unit(0), unit(20), unit(40), unit(0), unit(90), unit(91)])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    classes = torch.tensor([0, 0, 0, 1, 0, 0])
    fk, fs, fc = fuse_kernels(k, scores, classes, 0.9, True)
    # 0 keeps and absorbs 1; 2's first similar kernel is 1 (suppressed) → 2 disappears, although
    # nothing kept is similar to it; 3 has another class; 4 absorbs 5.
    torch.testing.assert_close(fs, torch.tensor([0.9, 0.6, 0.5]))
    assert fc.tolist() == [0, 1, 0]
    torch.testing.assert_close(fk[0], (k[0] + k[1]) / 2)
    torch.testing.assert_close(fk[1], k[3])
    torch.testing.assert_close(fk[2], (k[4] + k[5]) / 2)
    # class-agnostic: 3 (0°) is now absorbed by 0
    fk, fs, fc = fuse_kernels(k, scores, classes, 0.9, False)
    torch.testing.assert_close(fs, torch.tensor([0.9, 0.5]))
    torch.testing.assert_close(fk[0], (k[0] + k[1] + k[3]) / 3)


def test_maskness_rescore():
    probs = torch.tensor([[0.9, 0.5, 0.1], [0.2, 0.3, 0.1]])
    got = maskness_rescore(probs, torch.tensor([0.8, 0.7]), 0.4)
    torch.testing.assert_close(got, torch.tensor([0.8 * 0.7, 0.0]))


def test_to_original_crops_padding_before_resizing():
    probs = torch.zeros(1, 4, 4)
    probs[0, :2, :2] = 1.0  # the resized image covers the top-left 8 × 8 of the padded 16 × 16
    out = to_original(probs, (8, 8), (4, 4))
    assert out.shape == (1, 4, 4)
    assert float(out.min()) > 0.4  # everything inside the image; the padding was cropped away


def test_merge_panoptic_crafted():
    h, w = 10, 10
    masks = torch.zeros(4, h, w, dtype=torch.bool)
    masks[0, 0:4, 0:5] = True  # 20 px, best score
    masks[1, 0:4, 2:7] = True  # 20 px, 12 overlap = 60 % → dropped
    masks[2, 2:6, 4:9] = True  # 20 px, 2 overlapping with 0 (10 %) → keeps 18 free pixels
    masks[3, 8:10, 0:10] = True  # score 0.1 < 0.2 → never used
    scores = torch.tensor([0.9, 0.8, 0.7, 0.1])
    classes = torch.tensor([3, 3, 1, 0])
    sem = torch.zeros(3, h, w)
    sem[1] = 0.6  # stuff 1 everywhere...
    sem[2, 7:, :] = 0.9  # ...except the last 3 rows (stuff 2, 30 px)
    sem[0, :, 9] = 0.95  # "things" label in the last column: never a segment
    seg, segs = merge_panoptic(
        masks,
        scores,
        classes,
        sem,
        overlap_thresh=0.5,
        stuff_area_limit=25,
        inst_thresh=0.2,
        stuff_scores=torch.tensor([0.0, 0.4, 0.3]),
    )
    assert [(s["id"], s["category"], s["isthing"], s["area"]) for s in segs] == [
        (1, 3, True, 20),
        (2, 1, True, 18),
        (3, 1, False, 100 - 20 - 18 - 3 - 7 - 30 + 3),
        (4, 2, False, 27),
    ]
    assert (seg[0:4, 0:5] == 1).all() and seg[2, 5] == 2 and seg[3, 4] == 1
    assert (seg[:, 9][:7] == 0).all()  # the "things" stuff label stays void where no thing
    # stuff 1 keeps 25 free pixels, stuff 2 27: a limit of 26 drops stuff 1 only (area < limit)
    seg, segs = merge_panoptic(masks, scores, classes, sem, stuff_area_limit=26)
    assert [(s["category"], s["isthing"]) for s in segs] == [(3, True), (1, True), (2, False)]
    assert (seg[4:7, 0:4] == 0).all()


def test_predict_contract():
    cfg = synthetic_small()
    torch.manual_seed(0)
    model = build_panoptic_fcn(cfg)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (100, 140, 3), dtype=np.uint8), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8)]
    out = model.predict(images)
    assert len(out) == 2 and all(isinstance(o, PanopticPrediction) for o in out)
    valid_ids = set(cfg.thing_ids) | set(cfg.stuff_ids)
    for o, im in zip(out, images):
        assert o.label_map.shape == im.shape[:2] and o.label_map.dtype == np.int32
        ids = set(np.unique(o.label_map).tolist()) - {0}
        assert ids == {s["id"] for s in o.segments}
        for s in o.segments:
            assert s["category_id"] in valid_ids and s["area"] == int((o.label_map == s["id"]).sum())
            assert s["isthing"] == (s["category_id"] in cfg.thing_ids)
    assert model.training  # predict restores the mode


def test_predict_under_autocast_matches_float32():
    """AMP inference (here CPU bfloat16 autocast; float16 on CUDA) runs the network in low precision
    and everything after it in float32: the same contract, and on a model whose maps are clear-cut
    the same panoptic result as float32."""
    cfg = synthetic_small()
    cfg.model.position_head.deform = True  # the DCNv2 path under autocast as well
    torch.manual_seed(0)
    model = build_panoptic_fcn(cfg).eval()
    with torch.no_grad():  # a confident stuff map: the merge outcome must not hinge on rounding
        model.position_head.out_sem.bias.zero_()
        model.position_head.out_sem.bias[1] = 6.0
    rgb = np.random.default_rng(0).integers(0, 255, (96, 120, 3), dtype=np.uint8)
    (ref,) = model.predict([rgb])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        (amp,) = model.predict([rgb])
    assert amp.label_map.shape == rgb.shape[:2] and amp.label_map.dtype == np.int32
    assert set(np.unique(amp.label_map).tolist()) - {0} == {s["id"] for s in amp.segments}
    assert [(s["category_id"], s["area"]) for s in amp.segments] == [
        (s["category_id"], s["area"]) for s in ref.segments
    ]
