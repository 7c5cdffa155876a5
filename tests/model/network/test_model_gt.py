"""GT generation (spec §2.2–2.4): things/stuff/void from a panoptic label map, level assignment,
Gaussian radius and peak values, stuff thresholding, padding."""

from __future__ import annotations

import math

import numpy as np
import torch

from pointly.model.engine.build import target_settings
from pointly.model.engine.config import coco_r50_1x
from pointly.model.network.gt import TrainTargets, build_level_targets, full_targets, stride4_size
from pointly.pointgen.targets.centers import gaussian_radius


def _scene():
    lm = np.full((64, 96), 50, dtype=np.int64)  # stuff segment 50 (category 200)
    lm[:8, :] = 0  # void
    lm[16:48, 16:48] = 1  # thing (category 1), 32 × 32
    lm[20:30, 60:90] = 2  # crowd thing (category 2)
    segs = [
        dict(id=1, category_id=1, iscrowd=0, bbox=[16, 16, 32, 32]),
        dict(id=2, category_id=2, iscrowd=1, bbox=[60, 20, 30, 10]),
        dict(id=50, category_id=200, iscrowd=0, bbox=[0, 8, 96, 56]),
    ]
    return lm, segs


def test_full_targets_things_stuff_void():
    lm, segs = _scene()
    t = full_targets(lm, segs, {1: 0, 2: 1}, {200: 1})
    assert stride4_size(64, 96) == (16, 24)
    assert t.thing_masks.shape == (1, 16, 24)  # crowd dropped from things
    assert t.thing_classes.tolist() == [0]
    torch.testing.assert_close(t.thing_boxes, torch.tensor([[16.0, 16.0, 48.0, 48.0]]))
    # a 32-px square on a 4-aligned grid is exactly 8 × 8 ones at stride 4; mass centre = its middle
    assert float(t.thing_masks.sum()) == 64.0 and set(t.thing_masks.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(t.thing_centers, torch.tensor([[7.5, 7.5]]))
    # semantic: things (crowd included) → class 0, stuff → 1; void → neither (all negative)
    assert t.stuff_classes.tolist() == [0, 1]
    things_area = (32 * 32 + 10 * 30) / 16
    assert abs(float(t.stuff_masks[0].sum()) - things_area) < 1e-4
    assert float(t.stuff_masks[:, :2].sum()) == 0.0  # void rows at stride 4
    assert float(t.valid.min()) == 1.0  # void is negative, not ignored (spec §2.2)


def test_pad_to_keeps_valid_in_padding():
    lm, segs = _scene()
    t = full_targets(lm, segs, {1: 0, 2: 1}, {200: 1}).pad_to(16, 32)
    assert t.thing_masks.shape == (1, 16, 32) and float(t.thing_masks[..., 24:].sum()) == 0
    assert float(t.valid[:, 24:].min()) == 1.0


def test_gaussian_radius_hand_values():
    # spec §2.3: a 64 px box at P3 (stride 8 → 8 × 8 cells) gives r = 2
    assert gaussian_radius(64 / 8, 64 / 8, 0.7) == 2
    # r3 by hand for 8 × 8: (-22.4 + sqrt(22.4² + 4·2.8·19.2)) / 2 = 2.19
    r3 = (-2 * 0.7 * 16 + math.sqrt((2 * 0.7 * 16) ** 2 + 4 * 2.8 * 0.3 * 64)) / 2
    assert int(r3) == 2


def test_level_assignment_and_heatmap_peak():
    cfg = coco_r50_1x()
    cfg.model.thing.num_classes, cfg.model.stuff.num_classes = 3, 2
    h4 = w4 = 32  # 128 × 128 padded input
    mask = torch.zeros(1, h4, w4)
    mask[0, 8:24, 8:24] = 1.0
    t = TrainTargets(
        mask,
        torch.tensor([2]),
        torch.tensor([[15.5, 15.5]]),
        torch.tensor([[32.0, 32.0, 96.0, 96.0]]),
        torch.zeros(0, h4, w4),
        torch.zeros(0, dtype=torch.int64),
        torch.ones(h4, w4),
        (128, 128),
    )
    shapes = [(16, 16), (8, 8), (4, 4), (2, 2), (1, 1)]
    levels = build_level_targets([t], shapes, target_settings(cfg))
    # sqrt(64·64) = 64 lies in P3 [1, 64], P4 [32, 128] and P5 [64, 256] (inclusive bounds)
    assert [int(lv.thing_assign[0].numel()) for lv in levels] == [1, 1, 1, 0, 0]
    heat = levels[0].center_heatmap[0, 2]
    cx = cy = math.floor(15.5 * 16 / 32)  # 7
    assert float(heat[cy, cx]) == 1.0 and float(heat.max()) == 1.0
    sigma = 5 / 3  # radius 2 → σ = (2r+1)/3
    assert abs(float(heat[cy, cx + 1]) - math.exp(-1 / (2 * sigma**2))) < 1e-6
    assert abs(float(heat[cy + 2, cx + 2]) - math.exp(-8 / (2 * sigma**2))) < 1e-6
    assert float(heat[cy, cx + 3]) == 0.0  # outside the 5 × 5 kernel
    assert float(levels[0].center_heatmap[0, :2].sum()) == 0.0  # other classes untouched


def test_stuff_level_threshold():
    cfg = coco_r50_1x()
    cfg.model.thing.num_classes, cfg.model.stuff.num_classes = 1, 3
    s = torch.zeros(1, 8, 8)
    s[0, :, :3] = 1.0  # 3 of 8 columns; at half resolution one column is 0.5, kept
    s[0, 0, 7] = 1.0  # a lone pixel: 0.25 after downsampling → dropped
    t = TrainTargets(
        torch.zeros(0, 8, 8),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros(0, 2),
        torch.zeros(0, 4),
        s,
        torch.tensor([2]),
        torch.ones(8, 8),
        (32, 32),
    )
    lv = build_level_targets([t], [(4, 4)] * 5, target_settings(cfg))[0]
    st = lv.stuff_target[0, 2]
    torch.testing.assert_close(st[:, 0], torch.ones(4))
    torch.testing.assert_close(st[:, 1], torch.full((4,), 0.5))
    assert float(st[:, 2:].sum()) == 0.0
    assert lv.stuff_present[0].tolist() == [0]
