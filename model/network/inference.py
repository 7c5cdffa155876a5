"""Panoptic FCN inference, docs/panoptic_fcn_spec.md §3 step by step, one image at a time (the official batch-1 semantics,
without its padding bug: masks are cropped to the resized image before resizing to the original).

1. Per level P3..P7: centre probabilities smoothed with an average pool (3/3/3/5/5; padded zeros
   count), 3×3 peak NMS, per-class then global top-K (K = min(H·W, TOP_NUM/2 = 50)), score
   threshold; stuff by per-pixel argmax, scored by the mean probability over the class's argmax
   region, kernel pooled over that region ÷ full level area (:func:`thing_candidates`,
   :func:`stuff_candidates`).
2. Things: kernels from the thing generator (paper Eq. (2)), Fast-NMS-style class-aware cosine
   kernel fusion ≥ 0.9 (paper Eq. (3), :func:`fuse_kernels`), masks σ(K·F_e) (paper Eq. (4)),
   SOLO maskness rescoring, 0.05 floor, top 100, ×4 upsample → crop → resize → 0.4 threshold.
3. Stuff: generator, fusion by class (mean of kernels and scores across levels), same resizing.
4. Panoptic merge (:func:`merge_panoptic`): things by score ≥ 0.2 with ≤ 50 % overlap, then
   stuff labels of the argmax map (not label 0, "things") with at least ``stuff_area_limit`` free pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pointly.model.network.heads import dynamic_masks

if TYPE_CHECKING:
    from pointly.model.network.panoptic_fcn import HeadOutputs


@dataclass(frozen=True)
class InferenceSettings:
    """The test-time constants of :func:`predict_image` (steps 1–4 of the module docstring).

    * ``num_stuff``: number of stuff classes S, class 0 ("all things") included.
    * ``thing_ids``, ``stuff_ids``: the dataset category id of each contiguous thing class
      0..T-1 and stuff class 1..S-1; empty: segments keep the contiguous index.
    * ``thing_thres``: centre score a thing candidate must exceed (per level).
    * ``stuff_thres``: mean region probability a stuff candidate must exceed (per level).
    * ``top_num``: things kept after rescoring (TOP_NUM); each level proposes
      ``max(top_num // 2, 1)`` candidates.
    * ``pool_sizes``: average-pool size of the centre smoothing, one per level P3..P7.
    * ``similar_thres``: cosine similarity at which kernel fusion merges two kernels (paper Eq. (3)).
    * ``class_specific``: fuse only kernels of the same class.
    * ``inst_thres``: probability that binarises a mask (also the maskness threshold).
    * ``score_floor``: rescored things below it are dropped.
    * ``inst_thresh``: thing score floor in the panoptic merge.
    * ``overlap_thresh``: a thing whose mask is more than this fraction already taken is dropped.
    * ``stuff_area_limit``: a stuff segment needs at least this many free pixels (original size).
    """

    num_stuff: int
    thing_ids: tuple[int, ...]
    stuff_ids: tuple[int, ...]
    thing_thres: float
    stuff_thres: float
    top_num: int
    pool_sizes: tuple[int, ...]
    similar_thres: float
    class_specific: bool
    inst_thres: float
    score_floor: float
    inst_thresh: float
    overlap_thresh: float
    stuff_area_limit: int


@dataclass
class PanopticPrediction:
    """One image's panoptic result at its original resolution.

    ``label_map`` H × W int32 segment ids (0 = void); ``segments`` one dict per id:
    ``id``, ``category_id`` (the dataset's id), ``isthing`` (bool), ``score`` (float), ``area`` (int).
    """

    label_map: np.ndarray
    segments: list[dict] = field(default_factory=list)


def smooth_and_peaks(prob: torch.Tensor, pool_size: int) -> torch.Tensor:
    """``(p + avgpool_k(p)) / 2`` (stride 1, zero padding counted), then keep only 3×3 local maxima."""
    pad = (pool_size - 1) // 2
    p = (prob + F.avg_pool2d(prob, pool_size, stride=1, padding=pad, count_include_pad=True)) / 2
    peak = F.max_pool2d(p, 3, stride=1, padding=1)
    return p * (p == peak).to(p.dtype)


def thing_candidates(
    center_logits: torch.Tensor, kernel_feats: torch.Tensor, pool_size: int, top_num: int, thres: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidates of one level of one image: ``center_logits`` (T, H, W), ``kernel_feats`` (C, H, W)
    → (scores (n,), classes (n,), features (n, C))."""
    t, h, w = center_logits.shape
    p = smooth_and_peaks(torch.sigmoid(center_logits.float())[None], pool_size)[0].reshape(t, h * w)
    k = min(h * w, top_num)
    s_cls, pos_cls = p.topk(k, dim=1)  # per class
    scores, flat = s_cls.flatten().topk(k)  # across classes
    classes = flat // k
    pos = pos_cls.flatten()[flat]
    keep = scores > thres
    scores, classes, pos = scores[keep], classes[keep], pos[keep]
    return scores, classes, kernel_feats.flatten(1)[:, pos].t()


def stuff_candidates(
    region_logits: torch.Tensor, kernel_feats: torch.Tensor, thres: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stuff classes of one level: argmax regions, their mean probability, kernels pooled over the
    region ÷ (H·W) → (scores, classes, features)."""
    r = torch.sigmoid(region_logits.float())
    s, h, w = r.shape
    lab = r.argmax(0)
    onehot = F.one_hot(lab, s).permute(2, 0, 1).to(r.dtype)  # (S, H, W)
    area = onehot.flatten(1).sum(1)
    present = area > 0
    scores = (r * onehot).flatten(1).sum(1) / area.clamp(min=1)
    keep = present & (scores > thres)
    classes = torch.nonzero(keep).flatten()
    feats = torch.einsum("shw,chw->sc", onehot[classes], kernel_feats.float()) / (h * w)
    return scores[classes], classes, feats


def fuse_kernels(
    kernels: torch.Tensor, scores: torch.Tensor, classes: torch.Tensor, thres: float = 0.9, class_specific: bool = True
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Paper Eq. (3), kernel fusion, with the official Fast-NMS behaviour (docs/panoptic_fcn_spec.md §3.3.2).

    Inputs sorted by descending score. ``L[i, j] = (j ≥ i) ∧ cos(k_i, k_j) ≥ thres ∧ same class``.
    ``first(j)`` = the smallest ``i`` with ``L[i, j]`` (j itself when nothing earlier is similar).
    Kernel i is kept iff ``first(i) = i`` (a suppressed kernel still suppresses others); a kept
    kernel becomes the mean of every ``j`` with ``first(j) = i`` (itself included); a kernel whose
    first similar kernel was suppressed disappears. Kept kernels keep their class and score.
    """
    n = kernels.shape[0]
    if n == 0:
        return kernels, scores, classes
    unit = F.normalize(kernels, dim=1)
    sim = unit @ unit.t()
    L = (sim >= thres) | torch.eye(n, dtype=torch.bool, device=kernels.device)
    L = torch.triu(L)
    if class_specific:
        L = L & (classes[:, None] == classes[None, :])
    first = L.to(torch.int8).argmax(0)  # first True row of each column
    keep = first == torch.arange(n, device=kernels.device)
    member = (first[None, :] == torch.arange(n, device=kernels.device)[:, None]).to(kernels.dtype)  # (i, j)
    fused = (member @ kernels) / member.sum(1, keepdim=True).clamp(min=1)
    return fused[keep], scores[keep], classes[keep]


def maskness_rescore(probs: torch.Tensor, scores: torch.Tensor, thres: float = 0.4) -> torch.Tensor:
    """SOLO maskness: ``score × mean(prob over prob > thres)`` (0 for an empty mask)."""
    binary = (probs > thres).to(probs.dtype)
    area = binary.flatten(1).sum(1)
    maskness = (probs * binary).flatten(1).sum(1) / area.clamp(min=1)
    return scores * maskness


def to_original(probs: torch.Tensor, resized_hw: tuple[int, int], original_hw: tuple[int, int]) -> torch.Tensor:
    """Stride-4 maps (n, Hp/4, Wp/4) → ×4 bilinear → crop to the resized image → bilinear to the original."""
    if probs.shape[0] == 0:
        return probs.new_zeros((0, *original_hw))
    h4, w4 = probs.shape[-2:]
    x = F.interpolate(probs[None], size=(4 * h4, 4 * w4), mode="bilinear", align_corners=False)
    x = x[..., : resized_hw[0], : resized_hw[1]]
    return F.interpolate(x, size=original_hw, mode="bilinear", align_corners=False)[0]


def merge_panoptic(
    thing_masks: torch.Tensor,
    thing_scores: torch.Tensor,
    thing_classes: torch.Tensor,
    sem_probs: torch.Tensor,
    *,
    overlap_thresh: float = 0.5,
    stuff_area_limit: int = 4096,
    inst_thresh: float = 0.2,
    stuff_scores: torch.Tensor | None = None,
) -> tuple[np.ndarray, list[dict]]:
    """Heuristic panoptic merge (docs/panoptic_fcn_spec.md §3 step 5; panopticapi / Panoptic-FPN style).

    ``thing_masks`` (n, H, W) bool, ``thing_scores`` (n,), ``thing_classes`` (n,) contiguous thing
    classes; ``sem_probs`` (S, H, W) stuff maps with class 0 = "things". Returns the id map and
    segments with *contiguous* classes (``category`` = thing class or stuff class).
    """
    h, w = sem_probs.shape[-2:]
    seg = torch.zeros((h, w), dtype=torch.int32)
    segments: list[dict] = []
    order = torch.argsort(thing_scores, descending=True)
    next_id = 0
    for i in order.tolist():
        score = float(thing_scores[i])
        if score < inst_thresh:
            break
        mask = thing_masks[i].bool()
        area = int(mask.sum())
        if area == 0:
            continue
        inter = int((mask & (seg > 0)).sum())
        if inter / area > overlap_thresh:
            continue
        if inter > 0:
            mask = mask & (seg == 0)
        next_id += 1
        seg[mask] = next_id
        segments.append(
            {"id": next_id, "category": int(thing_classes[i]), "isthing": True, "score": score, "area": int(mask.sum())}
        )
    sem = sem_probs.argmax(0) if sem_probs.shape[0] else torch.zeros((h, w), dtype=torch.int64)
    for label in torch.unique(sem).tolist():
        if label == 0:
            continue
        mask = (sem == label) & (seg == 0)
        area = int(mask.sum())
        if area < stuff_area_limit:
            continue
        next_id += 1
        seg[mask] = next_id
        score = float(stuff_scores[label]) if stuff_scores is not None else 1.0
        segments.append({"id": next_id, "category": int(label), "isthing": False, "score": score, "area": area})
    return seg.numpy(), segments


def resize_shortest_edge(h: int, w: int, short: int, max_size: int) -> tuple[int, int]:
    """detectron2's ResizeShortestEdge output size (rounded half up)."""
    scale = short / min(h, w)
    nh, nw = h * scale, w * scale
    if max(nh, nw) > max_size:
        s = max_size / max(nh, nw)
        nh, nw = nh * s, nw * s
    return int(nh + 0.5), int(nw + 0.5)


def resize_for_test(rgb: np.ndarray, min_size: int, max_size: int) -> tuple[np.ndarray, tuple[int, int]]:
    """An RGB uint8 image (H × W × 3) resized as at test time (shortest edge ``min_size``, longest
    at most ``max_size``, PIL bilinear) → (resized image, its (h, w))."""
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {rgb.shape}")
    h0, w0 = rgb.shape[:2]
    h, w = resize_shortest_edge(h0, w0, min_size, max_size)
    img = np.asarray(Image.fromarray(rgb.astype(np.uint8)).resize((w, h), Image.BILINEAR))
    return img, (h, w)


@torch.no_grad()
def predict_image(
    heads: HeadOutputs,
    resized_hw: tuple[int, int],
    original_hw: tuple[int, int],
    *,
    thing_generator: nn.Module,
    stuff_generator: nn.Module,
    settings: InferenceSettings,
) -> PanopticPrediction:
    """One image's panoptic result from its head outputs (batch of one): candidates, kernel fusion,
    masks, rescoring, resizing and the merge (steps 1–4 above).

    ``heads``: :class:`~pointly.model.network.panoptic_fcn.HeadOutputs` of the image resized to
    ``resized_hw`` (and padded); ``original_hw``: the size the result is given at;
    ``thing_generator`` / ``stuff_generator``: the kernel generators (paper Eq. (2)).
    :meth:`pointly.model.network.panoptic_fcn.PanopticFCN.predict` runs the network and calls this.
    """
    ic = settings
    (h, w), (h0, w0) = resized_hw, original_hw
    enc = heads.encode_feat[0].float()
    top_k = max(ic.top_num // 2, 1)

    t_scores, t_classes, t_feats, s_scores, s_classes, s_feats = [], [], [], [], [], []
    for lvl in range(len(heads.center_logits)):
        sc, cl, fe = thing_candidates(
            heads.center_logits[lvl][0],
            heads.kernel_feats[lvl][0].float(),
            ic.pool_sizes[lvl],
            top_k,
            ic.thing_thres,
        )
        t_scores.append(sc), t_classes.append(cl), t_feats.append(fe)
        sc, cl, fe = stuff_candidates(heads.region_logits[lvl][0], heads.kernel_feats[lvl][0].float(), ic.stuff_thres)
        s_scores.append(sc), s_classes.append(cl), s_feats.append(fe)

    # things
    scores, classes, feats = torch.cat(t_scores), torch.cat(t_classes), torch.cat(t_feats)
    order = torch.argsort(scores, descending=True)
    scores, classes, feats = scores[order], classes[order], feats[order]
    kernels = thing_generator(feats)
    kernels, scores, classes = fuse_kernels(kernels, scores, classes, ic.similar_thres, ic.class_specific)
    probs = torch.sigmoid(dynamic_masks(kernels, enc)) if kernels.shape[0] else enc.new_zeros((0, *enc.shape[-2:]))
    scores = maskness_rescore(probs, scores, ic.inst_thres)
    order = torch.argsort(scores, descending=True)
    order = order[scores[order] >= ic.score_floor][: ic.top_num]
    probs, scores, classes = probs[order], scores[order], classes[order]
    # The merge stops at the first thing scored below inst_thresh, so only those at or above it are
    # resized to the original size (the result is the same; the ×4 + original-size resize of up to
    # 100 masks was most of the post-processing time).
    enters_merge = scores >= ic.inst_thresh
    probs, scores, classes = probs[enters_merge], scores[enters_merge], classes[enters_merge]
    thing_masks = to_original(probs, (h, w), (h0, w0)) > ic.inst_thres

    # stuff: fuse by class across levels
    num_stuff = ic.num_stuff
    s_sc, s_cl, s_fe = torch.cat(s_scores), torch.cat(s_classes), torch.cat(s_feats)
    sem = enc.new_zeros((num_stuff, h0, w0))
    stuff_score = enc.new_zeros(num_stuff)
    if s_cl.numel():
        s_kern = stuff_generator(s_fe)
        uniq = torch.unique(s_cl)
        fused_k = torch.stack([s_kern[s_cl == c].mean(0) for c in uniq])
        fused_s = torch.stack([s_sc[s_cl == c].mean() for c in uniq])
        s_probs = to_original(torch.sigmoid(dynamic_masks(fused_k, enc)), (h, w), (h0, w0))
        sem[uniq] = s_probs
        stuff_score[uniq] = fused_s

    label_map, segs = merge_panoptic(
        thing_masks.cpu(),
        scores.cpu(),
        classes.cpu(),
        sem.cpu(),
        overlap_thresh=ic.overlap_thresh,
        stuff_area_limit=ic.stuff_area_limit,
        inst_thresh=ic.inst_thresh,
        stuff_scores=stuff_score.cpu(),
    )
    segments = []
    for s in segs:
        ids = ic.thing_ids if s["isthing"] else ic.stuff_ids
        index = s["category"] if s["isthing"] else s["category"] - 1
        cat = int(ids[index]) if ids else index
        segments.append(
            {"id": s["id"], "category_id": cat, "isthing": s["isthing"], "score": s["score"], "area": s["area"]}
        )
    return PanopticPrediction(label_map.astype(np.int32), segments)
