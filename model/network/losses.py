"""Panoptic FCN losses (docs/panoptic_fcn_spec.md §2.4–2.5), ignore-aware.

The segmentation losses and the stuff-region loss take the per-pixel ``valid`` weights of
:class:`pointly.model.network.gt.TrainTargets`: an ignored pixel (valid = 0) contributes to no sum and no
normaliser. The thing-centre loss is never masked: every thing has points, so the centre heatmap
is determined everywhere. With ``valid ≡ 1`` (full supervision) the values are exactly the
official ones; there is no second implementation.

* Paper Eq. (1), position loss: :func:`sigmoid_focal_loss` (RetinaNet form, α = 0.25, γ = 2) on
  the Gaussian-soft centre heatmaps (things, ÷ number of instance–level assignments) and on the
  soft stuff-region maps (stuff, mean over the valid pixels per image and class, ÷ batch size).
* Paper Eq. (5), weighted dice: :func:`dice_loss` ``1 − 2Σ p t v / (Σ p² v + Σ t² v)``; for a
  thing, the k = POS_NUM kernels at the top-k centre scores inside its mask each predict the
  whole mask, and their dice values are averaged with the *live* (not detached) normalised
  scores as weights; for stuff, one kernel per present class and level, unweighted.
* Paper Eq. (6), total: ``L = λ_pos (L_pos_th + L_pos_st) + λ_seg (L_seg_th + L_seg_st)``
  with λ_pos = 1, λ_seg = 3.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch import nn

from pointly.model.network.heads import dynamic_masks

if TYPE_CHECKING:
    from pointly.model.network.gt import LevelTargets, TrainTargets
    from pointly.model.network.panoptic_fcn import HeadOutputs


@dataclass(frozen=True)
class LossSettings:
    """The loss weights and constants of :func:`compute_losses`.

    * ``position_weight``: λ_pos of paper Eq. (6), on both position (focal) losses.
    * ``segment_weight``: λ_seg of paper Eq. (6), on both segmentation (dice) losses.
    * ``focal_alpha``, ``focal_gamma``: α and γ of the focal loss (paper Eq. (1)); α < 0 turns the
      α weighting off.
    * ``dice_eps``: floor of the dice denominator (paper Eq. (5)).
    * ``pos_num``: k, the kernels per thing instance and level taken at the top-k centre scores
      inside its mask (POS_NUM).
    * ``mask_centre_loss``: mask the thing-centre focal loss with the ``valid`` map too (the first
      point-supervision design, kept only as a study baseline; the centre heatmap is known
      everywhere, so normally false).
    """

    position_weight: float
    segment_weight: float
    focal_alpha: float
    focal_gamma: float
    dice_eps: float
    pos_num: int
    mask_centre_loss: bool


def sigmoid_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Paper Eq. (1): element-wise RetinaNet focal loss with soft targets ``t ∈ [0, 1]``:
    ``α_t (1 − p_t)^γ · BCE(x, t)``, ``p_t = p t + (1 − p)(1 − t)``, ``α_t = α t + (1 − α)(1 − t)``."""
    logits = logits.float()
    targets = targets.float()
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss


def dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, valid: torch.Tensor | None = None, eps: float = 1e-8
) -> torch.Tensor:
    """Paper Eq. (5) (one term): ``1 − 2 Σ p t v / max(Σ p² v + Σ t² v, eps)`` per row, ``p = σ(logits)``.

    ``logits``, ``targets`` (K, P); ``valid`` (P,) or (K, P) pixel weights (None = all 1).
    """
    p = torch.sigmoid(logits.float())
    t = targets.float()
    if valid is None:
        num = 2 * (p * t).sum(-1)
        den = (p * p).sum(-1) + (t * t).sum(-1)
    else:
        v = valid.float()
        num = 2 * (p * t * v).sum(-1)
        den = (p * p * v).sum(-1) + (t * t * v).sum(-1)
    return 1 - num / den.clamp(min=eps)


def select_thing_kernels(
    center_logits: torch.Tensor,
    kernel_feats: torch.Tensor,
    masks: torch.Tensor,
    classes: torch.Tensor,
    valid: torch.Tensor,
    k: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k kernel candidates of one image at one level (docs/panoptic_fcn_spec.md §2.4, paper Eq. (5) weights).

    ``center_logits`` (T, H, W), ``kernel_feats`` (C, H, W), ``masks`` (n, H, W) instance masks (or
    shapes) at the level, ``classes`` (n,), ``valid`` (H, W). Candidates are pixels with mask > 0.1
    that are not ignored; guidance is σ(centre logit of the instance's class) there and 0
    elsewhere; the k best give kernels (n, k, C) and weights (n, k) normalised to sum 1 —
    *not detached*, so the dice loss trains the centre head too.
    """
    n = masks.shape[0]
    h, w = masks.shape[-2:]
    cand = (masks > 0.1) & (valid > 0)
    guide = torch.sigmoid(center_logits[classes].float()) * cand
    k = min(k, h * w)
    g, pos = guide.flatten(1).topk(k, dim=1)
    weights = g / g.sum(1, keepdim=True).clamp(min=1e-12)
    feats = kernel_feats.flatten(1)  # (C, HW)
    kern = feats[:, pos.flatten()].t().reshape(n, k, -1)
    return kern, weights


def _global_counts(counts: list[int], device: torch.device) -> tuple[int, list[int]]:
    """(world size, counts summed over all processes) — plain counts without torch.distributed."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return 1, counts
    t = torch.tensor(counts, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dist.get_world_size(), [int(v) for v in t.tolist()]


def compute_losses(
    heads: HeadOutputs,
    targets: list[TrainTargets],
    levels: list[LevelTargets],
    *,
    thing_generator: nn.Module,
    stuff_generator: nn.Module,
    settings: LossSettings,
) -> dict[str, torch.Tensor]:
    """The four weighted losses of paper Eq. (6) for a batch (docs/panoptic_fcn_spec.md §2.5).

    ``heads`` is a :class:`~pointly.model.network.panoptic_fcn.HeadOutputs`; ``targets`` the padded
    per-image :class:`~pointly.model.network.gt.TrainTargets`; ``levels`` the
    :class:`~pointly.model.network.gt.LevelTargets`; ``thing_generator`` / ``stuff_generator`` the
    :class:`~pointly.model.network.heads.KernelGenerator` modules that turn the selected kernel-head
    features into dynamic kernels (paper Eq. (2)).
    """
    lc = settings
    n_img = len(targets)
    enc = heads.encode_feat.float()
    device = enc.device
    thing_gt_num = sum(int(lv.thing_assign[b].numel()) for lv in levels for b in range(n_img))
    n_stuff_local = sum(int(lv.stuff_present[b].numel()) for lv in levels for b in range(n_img))
    # Normalisers over the *global* batch: with W processes each rank's loss is W·(its sum)/(global
    # count), so the mean over ranks (what DDP's gradient averaging optimises) equals the
    # single-process loss of the same global batch. W = 1 gives the official normalisers.
    world, (g_thing, g_stuff, g_img) = _global_counts([thing_gt_num, n_stuff_local, n_img], device)
    norm_th = max(g_thing, 1) / world
    norm_img = g_img / world
    norm_st = max(g_stuff, 1) / world

    pos_th = enc.new_zeros(())
    pos_st = enc.new_zeros(())
    for lvl, lv in enumerate(levels):
        # the centre heatmap is known everywhere (every thing has points, so its simulated centre is
        # known, and the absence of a centre is a label too): not masked by ``valid`` (unless the
        # first design's baseline asks for it)
        fl = sigmoid_focal_loss(heads.center_logits[lvl], lv.center_heatmap, lc.focal_alpha, lc.focal_gamma)
        pos_th = pos_th + (fl * lv.valid if lc.mask_centre_loss else fl).sum()
        fs = sigmoid_focal_loss(heads.region_logits[lvl], lv.stuff_target, lc.focal_alpha, lc.focal_gamma)
        num = (fs * lv.valid).flatten(2).sum(-1)  # (N, S)
        den = lv.valid.flatten(1).sum(-1, keepdim=True)  # (N, 1)
        pos_st = pos_st + torch.where(den > 0, num / den.clamp(min=1e-12), torch.zeros_like(num)).sum()
    pos_th = pos_th / norm_th
    pos_st = pos_st / norm_img

    seg_th = enc.new_zeros(())
    seg_st = enc.new_zeros(())
    n_stuff = 0
    for b, t in enumerate(targets):
        v4 = t.valid.flatten()
        kerns, weights, tgt = [], [], []
        s_kerns, s_tgt = [], []
        for lvl, lv in enumerate(levels):
            idx = lv.thing_assign[b]
            if idx.numel():
                kern, w = select_thing_kernels(
                    heads.center_logits[lvl][b],
                    heads.kernel_feats[lvl][b],
                    lv.thing_masks[b],
                    t.thing_classes[idx],
                    lv.valid[b, 0],
                    lc.pos_num,
                )
                kerns.append(kern)
                weights.append(w)
                tgt.append(t.thing_masks[idx])
            present = lv.stuff_present[b]
            if present.numel():
                region = (lv.stuff_maps[b][present] > 0).to(heads.kernel_feats[lvl].dtype)
                hl, wl = region.shape[-2:]
                # sum over the region / (H_l · W_l): the full level area, as the official code (docs/panoptic_fcn_spec.md §7 item 5)
                pooled = torch.einsum("phw,chw->pc", region, heads.kernel_feats[lvl][b]) / (hl * wl)
                s_kerns.append(pooled)
                s_tgt.append(t.stuff_masks[present])
        if kerns:
            kern = torch.cat(kerns)  # (n, k, C)
            n, k, _ = kern.shape
            dyn = thing_generator(kern.float()).reshape(n * k, -1)
            logits = dynamic_masks(dyn, enc[b]).flatten(1)
            target = torch.cat(tgt).flatten(1).repeat_interleave(k, dim=0)
            d = dice_loss(logits, target, v4, lc.dice_eps).reshape(n, k)
            seg_th = seg_th + (d * torch.cat(weights)).sum()
        if s_kerns:
            dyn = stuff_generator(torch.cat(s_kerns).float())
            logits = dynamic_masks(dyn, enc[b]).flatten(1)
            d = dice_loss(logits, torch.cat(s_tgt).flatten(1), v4, lc.dice_eps)
            seg_st = seg_st + d.sum()
            n_stuff += d.numel()
    # keep every parameter in the graph (DistributedDataParallel needs it) when a batch has no thing
    # or no stuff: a zero-valued term
    if thing_gt_num == 0:
        seg_th = seg_th + 0.0 * sum(p.sum() for p in thing_generator.parameters())
    if n_stuff == 0:
        seg_st = seg_st + 0.0 * sum(p.sum() for p in stuff_generator.parameters())
    zero_ref = 0.0 * (heads.kernel_feats[0].float().sum() + enc.sum())
    seg_th = seg_th / norm_th
    seg_st = seg_st / norm_st
    return {
        "loss_pos_th": lc.position_weight * pos_th,
        "loss_pos_st": lc.position_weight * pos_st,
        "loss_seg_th": lc.segment_weight * seg_th + zero_ref,
        "loss_seg_st": lc.segment_weight * seg_st,
    }
