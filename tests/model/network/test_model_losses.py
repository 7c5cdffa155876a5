"""Losses: hand-computed focal/dice values, ignore semantics (an ignored pixel changes nothing, a
negative pixel does), equality with the official formulas when nothing is ignored."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from pointly.model.engine.build import loss_settings, target_settings
from pointly.model.engine.config import synthetic_small
from pointly.model.network.gt import TrainTargets, build_level_targets
from pointly.model.network.heads import KernelGenerator
from pointly.model.network.losses import compute_losses, dice_loss, select_thing_kernels, sigmoid_focal_loss
from pointly.model.network.panoptic_fcn import HeadOutputs

LN2 = math.log(2)


def test_focal_hand_values():
    x = torch.zeros(3)
    t = torch.tensor([1.0, 0.0, 0.5])
    got = sigmoid_focal_loss(x, t, 0.25, 2.0)
    # p = 0.5: CE = ln 2, (1 - p_t)^2 = 0.25; alpha_t = 0.25 / 0.75 / 0.5
    want = torch.tensor([0.25 * 0.25 * LN2, 0.75 * 0.25 * LN2, 0.5 * 0.25 * LN2])
    torch.testing.assert_close(got, want)
    # a confident correct prediction costs almost nothing, a confident wrong one a lot
    x = torch.tensor([4.0, -4.0])
    got = sigmoid_focal_loss(x, torch.tensor([1.0, 1.0]))
    p = 1 / (1 + math.exp(-4))
    torch.testing.assert_close(got, torch.tensor([0.25 * (1 - p) ** 2 * -math.log(p), 0.25 * p**2 * -math.log(1 - p)]))


def test_focal_equals_torchvision_on_soft_targets():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 5, 5, generator=g) * 3
    t = torch.rand(2, 3, 5, 5, generator=g)
    torch.testing.assert_close(sigmoid_focal_loss(x, t).sum(), tv_focal(x, t, 0.25, 2.0, reduction="sum"))


def test_dice_hand_values_and_ignore():
    logits = torch.zeros(1, 2)  # p = 0.5, 0.5
    target = torch.tensor([[1.0, 0.0]])
    # 1 - 2·0.5 / (0.25 + 0.25 + 1) = 1/3
    torch.testing.assert_close(dice_loss(logits, target), torch.tensor([1 / 3]))
    # second pixel ignored: 1 - 1 / (0.25 + 1) = 0.2
    valid = torch.tensor([1.0, 0.0])
    torch.testing.assert_close(dice_loss(logits, target, valid), torch.tensor([0.2]))
    # an ignored pixel changes nothing, whatever the prediction there
    assert torch.allclose(dice_loss(torch.tensor([[0.0, 9.0]]), target, valid), torch.tensor([0.2]))
    # a negative (valid) pixel does
    assert not torch.allclose(dice_loss(torch.tensor([[0.0, 9.0]]), target), torch.tensor([1 / 3]))
    # all-ones valid equals no valid
    torch.testing.assert_close(dice_loss(logits, target, torch.ones(2)), dice_loss(logits, target))


def test_topk_candidates_inside_mask_and_weights_live():
    center = torch.full((2, 4, 4), -5.0, requires_grad=True)
    feats = torch.arange(3 * 16, dtype=torch.float32).reshape(3, 4, 4)
    masks = torch.zeros(1, 4, 4)
    masks[0, 1:3, 1:3] = 1.0
    with torch.no_grad():
        center[1, 0, 0] = 5.0  # strong, but outside the mask: never a candidate
        center[1, 1, 1] = 2.0
        center[1, 2, 2] = 1.0
        center[0, 1, 2] = 9.0  # other class: does not guide class 1
    kern, w = select_thing_kernels(center, feats, masks, torch.tensor([1]), torch.ones(4, 4), k=2)
    assert kern.shape == (1, 2, 3)
    torch.testing.assert_close(kern[0, 0], feats[:, 1, 1])
    torch.testing.assert_close(kern[0, 1], feats[:, 2, 2])
    s1, s2 = torch.sigmoid(torch.tensor(2.0)), torch.sigmoid(torch.tensor(1.0))
    torch.testing.assert_close(w[0], torch.stack([s1, s2]) / (s1 + s2))
    w.sum().backward()  # weights are not detached: gradients reach the centre logits
    assert center.grad is not None
    # an ignored pixel inside the mask is no candidate
    valid = torch.ones(4, 4)
    valid[1, 1] = 0
    kern, _ = select_thing_kernels(center.detach(), feats, masks, torch.tensor([1]), valid, k=1)
    torch.testing.assert_close(kern[0, 0], feats[:, 2, 2])


class _Gen(torch.nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.thing_generator = KernelGenerator(in_channels=c_in, out_channels=c_out)
        self.stuff_generator = KernelGenerator(in_channels=c_in, out_channels=c_out)


def _setup(valid: torch.Tensor):
    cfg = synthetic_small()
    cfg.model.thing.num_classes, cfg.model.stuff.num_classes = 2, 3
    cfg.model.thing.pos_num = 2
    h4 = w4 = 16  # a 64 × 64 padded input
    tm = torch.zeros(1, h4, w4)
    tm[0, 4:10, 4:10] = 1.0
    sm = torch.zeros(2, h4, w4)
    sm[0] = tm[0]
    sm[1] = 1 - tm[0]
    t = TrainTargets(
        tm,
        torch.tensor([1]),
        torch.tensor([[6.5, 6.5]]),
        torch.tensor([[16.0, 16.0, 40.0, 40.0]]),
        sm,
        torch.tensor([0, 2]),
        valid,
        (64, 64),
    )
    shapes = [(8, 8), (4, 4), (2, 2), (1, 1), (1, 1)]
    g = torch.Generator().manual_seed(1)
    heads = HeadOutputs(
        torch.rand(1, 4, h4, w4, generator=g),
        [torch.randn(1, 2, *s, generator=g) for s in shapes],
        [torch.randn(1, 3, *s, generator=g) for s in shapes],
        [torch.randn(1, 5, *s, generator=g) for s in shapes],
    )
    return cfg, t, heads, shapes


def _losses(cfg, t, heads, shapes):
    levels = build_level_targets([t], shapes, target_settings(cfg))
    gen = _Gen(5, 4)
    losses = compute_losses(
        heads,
        [t],
        levels,
        thing_generator=gen.thing_generator,
        stuff_generator=gen.stuff_generator,
        settings=loss_settings(cfg),
    )
    return losses, levels


def test_full_supervision_equals_official_formulas():
    cfg, t, heads, shapes = _setup(torch.ones(16, 16))
    losses, levels = _losses(cfg, t, heads, shapes)
    n_assign = sum(int(lv.thing_assign[0].numel()) for lv in levels)
    assert n_assign == 2  # a 24 px box sits on P3 [1, 32] and P4 [16, 64] of synthetic_small
    pos_th = sum(tv_focal(heads.center_logits[i], lv.center_heatmap, reduction="sum") for i, lv in enumerate(levels))
    torch.testing.assert_close(losses["loss_pos_th"], pos_th / n_assign)
    pos_st = sum(
        tv_focal(heads.region_logits[i], lv.stuff_target, reduction="none").mean(dim=(2, 3)).sum()
        for i, lv in enumerate(levels)
    )
    torch.testing.assert_close(losses["loss_pos_st"], pos_st / 1)


def test_ignored_pixels_change_nothing_negative_pixels_do():
    valid = torch.ones(16, 16)
    valid[12:, 12:] = 0  # an ignored corner (P3 pixels 6..7, P4 pixels 3)
    cfg, t, heads, shapes = _setup(valid)
    base, _ = _losses(cfg, t, heads, shapes)

    def perturbed(y0: int, x0: int) -> dict:
        _, _, h2, _ = _setup(valid)
        h2.center_logits[0][..., y0, x0] += 7.0
        h2.region_logits[0][..., y0, x0] -= 7.0
        h2.encode_feat[..., 2 * y0 : 2 * y0 + 2, 2 * x0 : 2 * x0 + 2] += 3.0
        return _losses(cfg, t, h2, shapes)[0]

    same = perturbed(7, 7)  # inside the ignored corner: only the (never masked) centre loss moves
    for k in base:
        if k != "loss_pos_th":
            torch.testing.assert_close(same[k], base[k])
    assert not torch.allclose(same["loss_pos_th"], base["loss_pos_th"])
    other = perturbed(0, 0)  # a supervised negative pixel
    assert all(not torch.allclose(other[k], base[k]) for k in ("loss_pos_th", "loss_pos_st", "loss_seg_st"))


def test_empty_batch_keeps_graph():
    cfg, t, heads, shapes = _setup(torch.ones(16, 16))
    empty = TrainTargets(
        torch.zeros(0, 16, 16),
        torch.zeros(0, dtype=torch.int64),
        torch.zeros(0, 2),
        torch.zeros(0, 4),
        torch.zeros(0, 16, 16),
        torch.zeros(0, dtype=torch.int64),
        torch.ones(16, 16),
        (64, 64),
    )
    losses, _ = _losses(cfg, empty, heads, shapes)
    assert all(torch.isfinite(v) for v in losses.values())
    assert float(losses["loss_seg_th"].detach()) == pytest.approx(0.0)
