"""Ignore-aware losses under point supervision: an ignored pixel changes nothing, a negative does.

The losses are the model's own (:mod:`pointly.model.network.losses`, one implementation for full and
point supervision); these tests feed them point targets built by
:func:`pointly.model.engine.point_targets.point_train_targets` and random head outputs, and check

* hand-computed dice values with an ignore mask;
* the stuff focal loss equals an independent numpy restatement (mean over *valid* pixels);
* perturbing any output at an ignored pixel leaves all four losses bit-identical, while
  perturbing it at a negative pixel (inside another segment's shape) changes them;
* gradients are exactly zero at ignored pixels and non-zero at negative ones;
* with full-mask targets (nothing ignored) every pixel receives gradient: same code, no ignore.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from pointly.model.engine.build import loss_settings, target_settings
from pointly.model.engine.config import synthetic_small
from pointly.model.engine.point_targets import point_train_targets
from pointly.model.network.gt import build_level_targets, full_targets
from pointly.model.network.heads import KernelGenerator
from pointly.model.network.losses import compute_losses, dice_loss, sigmoid_focal_loss
from pointly.model.network.panoptic_fcn import HeadOutputs
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.pixel_transform import PixelTransform

SIZE = 64  # input pixels; stride-4 grid 16 × 16; levels P3..P7: 8, 4, 2, 1, 1
CATS = [{"id": i, "name": str(i), "isthing": int(i <= 6)} for i in range(1, 11)]
THING_INDEX = {i: i - 1 for i in range(1, 7)}
STUFF_INDEX = {i: i - 6 for i in range(7, 11)}


def _square(x0, x1, y0, y1, ann_id, cat):
    return {
        "id": ann_id,
        "image_id": 1,
        "category_id": cat,
        "iscrowd": 0,
        "point_coords": [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [(x0 + x1) // 2, (y0 + y1) // 2]],
        "point_labels": [1] * 5,
    }


ANNS = [
    _square(4, 27, 4, 27, 1, 1),  # thing, class 0: stride-4 pixels 1..6
    _square(36, 55, 20, 35, 2, 5),  # thing, class 4: rows 5..8, cols 9..13
    _square(4, 59, 40, 59, 3, 8),
]  # stuff (grass), class 2


@pytest.fixture(scope="module")
def cfg():
    return synthetic_small()


def _targets():
    return point_train_targets(
        ANNS,
        CATS,
        (SIZE, SIZE),
        PixelTransform.identity(SIZE, SIZE),
        THING_INDEX,
        STUFF_INDEX,
        options=TargetOptions(shape="convex"),
    )


class _Gen(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        torch.manual_seed(0)
        c_in, c_out = cfg.model.kernel_head.channels, cfg.model.feature_encoder.channels
        self.thing_generator = KernelGenerator(in_channels=c_in, out_channels=c_out)
        self.stuff_generator = KernelGenerator(in_channels=c_in, out_channels=c_out)


def _heads(cfg, seed=1):
    g = torch.Generator().manual_seed(seed)
    m = cfg.model
    sizes = [8, 4, 2, 1, 1]
    enc = torch.randn(1, m.feature_encoder.channels, 16, 16, generator=g).abs()
    centers = [torch.randn(1, m.thing.num_classes, s, s, generator=g) for s in sizes]
    regions = [torch.randn(1, m.stuff.num_classes, s, s, generator=g) for s in sizes]
    kernels = [torch.randn(1, m.kernel_head.channels, s, s, generator=g) for s in sizes]
    for t in [enc, *centers, *regions, *kernels]:
        t.requires_grad_(True)
    return HeadOutputs(enc, centers, regions, kernels)


def _levels(cfg, heads, targets):
    return build_level_targets([targets], [tuple(c.shape[-2:]) for c in heads.center_logits], target_settings(cfg))


def _compute(cfg, heads, targets, levels, model):
    return compute_losses(
        heads,
        [targets],
        levels,
        thing_generator=model.thing_generator,
        stuff_generator=model.stuff_generator,
        settings=loss_settings(cfg),
    )


def _losses(cfg, heads, targets, model):
    return _compute(cfg, heads, targets, _levels(cfg, heads, targets), model)


def test_dice_hand_computed_with_ignore():
    logits = torch.zeros(1, 4)  # p = 0.5 everywhere
    target = torch.tensor([[1.0, 0.0, 0.0, 1.0]])
    valid = torch.tensor([1.0, 1.0, 0.0, 1.0])  # pixel 2 ignored, pixel 1 a negative
    # 1 − 2·(0.5 + 0.5) / (3·0.25 + 2) = 1 − 2/2.75
    assert dice_loss(logits, target, valid).item() == pytest.approx(1 - 2 / 2.75)
    ignored = logits.clone()
    ignored[0, 2] = 5.0
    assert dice_loss(ignored, target, valid).item() == pytest.approx(1 - 2 / 2.75)
    negative = logits.clone()
    negative[0, 1] = 5.0  # p = σ(5) on a negative: denominator grows
    p = 1 / (1 + math.exp(-5))
    assert dice_loss(negative, target, valid).item() == pytest.approx(1 - 2 / (2 * 0.25 + p * p + 2))


def test_focal_hand_computed():
    # x = 0 (p = 0.5), t = 1: α (1 − p)^γ · ln 2 = 0.25 · 0.25 · ln 2; t = 0: 0.75 · 0.25 · ln 2
    fl = sigmoid_focal_loss(torch.zeros(2), torch.tensor([1.0, 0.0]))
    np.testing.assert_allclose(fl.numpy(), [0.0625 * math.log(2), 0.1875 * math.log(2)], rtol=1e-6)


def test_point_targets_have_ignored_and_negative_pixels():
    t = _targets()
    valid = t.valid.numpy().astype(bool)
    assert 0 < valid.sum() < valid.size
    assert t.thing_classes.tolist() == [0, 4] and t.stuff_classes.tolist() == [0, 2]


def test_stuff_focal_is_mean_over_valid_pixels(cfg):
    """loss_pos_st restated in numpy: per level, per class, mean of the focal loss over the level's
    valid pixels, summed (÷ batch size 1)."""
    t = _targets()
    heads = _heads(cfg)
    levels = _levels(cfg, heads, t)
    got = _compute(cfg, heads, t, levels, _Gen(cfg))["loss_pos_st"].item()
    want = 0.0
    for lvl, lv in enumerate(levels):
        x = heads.region_logits[lvl][0].detach().double().numpy()
        y = lv.stuff_target[0].double().numpy()
        v = lv.valid[0, 0].double().numpy()
        p = 1 / (1 + np.exp(-x))
        ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
        pt = p * y + (1 - p) * (1 - y)
        fl = (0.25 * y + 0.75 * (1 - y)) * ce * (1 - pt) ** 2
        if v.sum() > 0:
            want += ((fl * v).reshape(fl.shape[0], -1).sum(1) / v.sum()).sum()
    assert got == pytest.approx(want, rel=1e-5)


def _perturbed(heads, where, levels=None):
    """A copy of ``heads`` with encode_feat changed at stride-4 pixel ``where`` and each level's
    logits/kernels at the level pixel covering it — only where that level pixel is ignored when
    ``levels`` is given (a P7 pixel covers the whole image, so it is never ignored here)."""
    r, c = where
    enc = heads.encode_feat.detach().clone()
    enc[..., r, c] += 3.0
    out = []
    for maps in (heads.center_logits, heads.region_logits, heads.kernel_feats):
        new = []
        for lvl, m in enumerate(maps):
            m = m.detach().clone()
            s = 16 // m.shape[-1]
            if levels is None or levels[lvl].valid[0, 0, r // s, c // s] == 0:
                m[..., r // s, c // s] += 3.0
            new.append(m)
        out.append(new)
    return HeadOutputs(enc, *out)


def test_ignored_pixel_changes_nothing_negative_pixel_does(cfg):
    t = _targets()
    valid = t.valid.numpy().astype(bool)
    model = _Gen(cfg)
    heads = _heads(cfg)
    base = {k: v.item() for k, v in _losses(cfg, heads, t, model).items()}
    levels = _levels(cfg, heads, t)
    # an ignored stride-4 pixel whose P3 and P4 cells are ignored too
    ignored = (0, 15)
    assert not valid[0:4, 12:16].any()
    assert levels[0].valid[0, 0, 0, 7] == 0 and levels[1].valid[0, 0, 0, 3] == 0
    moved = {k: v.item() for k, v in _losses(cfg, _perturbed(heads, ignored, levels), t, model).items()}
    # the centre heatmap is known everywhere: an ignored pixel still counts for the centre loss
    assert moved["loss_pos_th"] != base["loss_pos_th"]
    assert {k: v for k, v in moved.items() if k != "loss_pos_th"} == {
        k: v for k, v in base.items() if k != "loss_pos_th"
    }
    # a negative pixel: inside the stuff shape, so a negative for both things and for class 0
    negative = (12, 8)
    assert valid[12, 8] and t.thing_masks[:, 12, 8].sum() == 0
    changed = {k: v.item() for k, v in _losses(cfg, _perturbed(heads, negative), t, model).items()}
    assert changed["loss_seg_th"] != base["loss_seg_th"]
    assert changed["loss_pos_th"] != base["loss_pos_th"]
    assert changed["loss_pos_st"] != base["loss_pos_st"]


def test_baseline_masked_centre_loss_ignores_ignored_pixels(cfg):
    """``loss.mask_centre_loss`` (the first design, a study baseline): an ignored pixel changes nothing."""
    import copy

    base_cfg = copy.deepcopy(cfg)
    base_cfg.loss.mask_centre_loss = True
    t = _targets()
    model = _Gen(base_cfg)
    heads = _heads(base_cfg)
    base = {k: v.item() for k, v in _losses(base_cfg, heads, t, model).items()}
    levels = _levels(base_cfg, heads, t)
    moved = {k: v.item() for k, v in _losses(base_cfg, _perturbed(heads, (0, 15), levels), t, model).items()}
    assert moved == base


def test_gradients_zero_exactly_where_ignored(cfg):
    t = _targets()
    heads = _heads(cfg)
    total = sum(_losses(cfg, heads, t, _Gen(cfg)).values())
    total.backward()
    g = heads.encode_feat.grad[0].abs().sum(0).numpy()
    valid = t.valid.numpy().astype(bool)
    assert (g[~valid] == 0).all()
    assert (g[valid] > 0).mean() > 0.95
    # P3 (8 × 8): the level valid map decides
    levels = _levels(cfg, heads, t)
    lv = levels[0].valid[0, 0].numpy().astype(bool)
    gr = heads.region_logits[0].grad[0].abs().sum(0).numpy()
    gc = heads.center_logits[0].grad[0].abs().sum(0).numpy()
    assert (gr[~lv] == 0).all() and (gr[lv] > 0).all()
    assert (gc > 0).all()  # the centre loss is never masked


def test_full_supervision_same_code_nothing_ignored(cfg):
    """Exact masks through the same losses: valid ≡ 1, so every pixel gets gradient."""
    lm = np.full((SIZE, SIZE), 3, dtype=np.int64)
    lm[4:28, 4:28] = 1
    lm[20:36, 36:56] = 2
    segs = [
        {"id": 1, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 24, 24]},
        {"id": 2, "category_id": 5, "iscrowd": 0, "bbox": [36, 20, 20, 16]},
        {"id": 3, "category_id": 8, "iscrowd": 0, "bbox": [0, 0, 64, 64]},
    ]
    t = full_targets(lm, segs, THING_INDEX, STUFF_INDEX)
    assert bool((t.valid == 1).all())
    heads = _heads(cfg)
    total = sum(_losses(cfg, heads, t, _Gen(cfg)).values())
    total.backward()
    assert (heads.encode_feat.grad[0].abs().sum(0) > 0).all()
