"""Training targets: one :class:`TrainTargets` per image, and their per-level form for the losses.

:class:`TrainTargets` is the single interface between supervision and the losses. Full
supervision (:func:`full_targets`, from a COCO panoptic label map) fills exact soft masks and
``valid ≡ 1``; point supervision (``pointly.pointgen.targets.build``) fills rasterised shapes and
``valid = 0`` where no shape says anything. Everything lives on the stride-4 grid of the
(resized, augmented, not yet padded) image; :meth:`TrainTargets.pad_to` pads it to the batch's
padded grid, with ``valid = 1`` in the padding (padding is background for every class, as in the
official code).

:func:`build_level_targets` turns a batch of them into what the position losses (paper Eq. (1))
and the kernel selection need per FPN level P3..P7, following docs/panoptic_fcn_spec.md §2.2–2.4: Gaussian centre
heatmaps (CenterNet radius, ``pointly.pointgen.targets.centers``), soft stuff-region maps thresholded at
0.5, the level assignment by INSTANCE_SCALES, and the level ``valid`` maps. What it needs besides
the targets is a :class:`TargetSettings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

import numpy as np
import torch
import torch.nn.functional as F

from pointly.pointgen.targets.centers import draw_gaussian, gaussian_radius, mass_center


def stride4_size(h: int, w: int) -> tuple[int, int]:
    """The stride-4 size of an ``h × w`` image: ``(int(h/4+0.5), int(w/4+0.5))`` (docs/panoptic_fcn_spec.md §2.2)."""
    return int(h / 4 + 0.5), int(w / 4 + 0.5)


@dataclass
class TrainTargets:
    """Per-image supervision on the stride-4 grid (H4, W4).

    * ``thing_masks`` (n, H4, W4) float in [0, 1]: soft instance masks (full) or shapes (points).
    * ``thing_classes`` (n,) int64: contiguous thing class 0..T-1.
    * ``thing_centers`` (n, 2) float: centre (x, y) in stride-4 pixel coordinates (mass centre of
      the mask, or the mean of the points).
    * ``thing_boxes`` (n, 4) float: box x1, y1, x2, y2 in input (resized) pixels; its
      sqrt(area) chooses the FPN levels and its size the Gaussian radius.
    * ``stuff_masks`` (m, H4, W4) float: soft stuff-class maps (class 0 = all things, crowd included).
    * ``stuff_classes`` (m,) int64: contiguous stuff class 0..S-1.
    * ``valid`` (H4, W4) float: 1 = supervised, 0 = ignored by every loss.
    * ``image_size`` (h, w): the input size in pixels before padding.
    """

    thing_masks: torch.Tensor
    thing_classes: torch.Tensor
    thing_centers: torch.Tensor
    thing_boxes: torch.Tensor
    stuff_masks: torch.Tensor
    stuff_classes: torch.Tensor
    valid: torch.Tensor
    image_size: tuple[int, int] = field(default=(0, 0))

    def pad_to(self, h4: int, w4: int) -> TrainTargets:
        """Zero-pad the maps bottom/right to (h4, w4); ``valid`` is 1 in the padding."""
        hh, ww = self.valid.shape
        if (hh, ww) == (h4, w4):
            return self
        if hh > h4 or ww > w4:
            raise ValueError(f"targets of {hh}x{ww} do not fit a {h4}x{w4} grid")
        pad = (0, w4 - ww, 0, h4 - hh)
        return replace(
            self,
            thing_masks=F.pad(self.thing_masks, pad),
            stuff_masks=F.pad(self.stuff_masks, pad),
            valid=F.pad(self.valid, pad, value=1.0),
        )

    def to(self, device: torch.device | str) -> TrainTargets:
        return replace(
            self,
            **{
                f.name: getattr(self, f.name).to(device)
                for f in fields(self)
                if isinstance(getattr(self, f.name), torch.Tensor)
            },
        )


def downsample4(masks: torch.Tensor, size4: tuple[int, int]) -> torch.Tensor:
    """(n, h, w) binary masks → (n, H4, W4) soft masks by bilinear interpolation (docs/panoptic_fcn_spec.md §2.2/2.3)."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, *size4), dtype=torch.float32)
    return F.interpolate(masks[None].float(), size=size4, mode="bilinear", align_corners=False)[0]


def full_targets(
    label_map: np.ndarray, segments: list[dict], thing_index: dict[int, int], stuff_index: dict[int, int]
) -> TrainTargets:
    """Fully supervised targets from a (resized, flipped) panoptic label map.

    ``segments``: dicts with ``id``, ``category_id``, ``iscrowd``, ``bbox`` (COCO x, y, w, h in the
    *input* pixels, i.e. already transformed). ``thing_index`` maps a dataset thing category id to
    its contiguous class; ``stuff_index`` maps a stuff category id to 1..S-1 (0 is "things").
    Things: non-crowd thing segments (docs/panoptic_fcn_spec.md §2.1); instances whose stride-4 mask is empty are
    dropped (they have no centre). Semantic map: things (crowd included) → 0, stuff → its class,
    void → ignore, which the official code turns into a negative for every class (docs/panoptic_fcn_spec.md §2.2), so
    ``valid`` is 1 everywhere.
    """
    h, w = label_map.shape
    size4 = stride4_size(h, w)
    lm = torch.from_numpy(np.ascontiguousarray(label_map))
    thing_masks, classes, boxes = [], [], []
    sem = torch.full((h, w), -1, dtype=torch.int64)
    for s in segments:
        cat = int(s["category_id"])
        m = lm == int(s["id"])
        if cat in thing_index:
            sem[m] = 0
            if not s.get("iscrowd", 0):
                thing_masks.append(m)
                classes.append(thing_index[cat])
                x, y, bw, bh = (float(v) for v in s["bbox"])
                boxes.append([x, y, x + bw, y + bh])
        elif cat in stuff_index:
            sem[m] = stuff_index[cat]
    tm = downsample4(torch.stack(thing_masks) if thing_masks else torch.zeros(0, h, w), size4)
    keep = [i for i in range(tm.shape[0]) if bool((tm[i] > 0).any())]
    tm = tm[keep]
    centers = torch.tensor([mass_center(tm[i]) for i in range(tm.shape[0])], dtype=torch.float32).reshape(-1, 2)
    present = sorted(int(c) for c in torch.unique(sem) if c >= 0)
    stuff = torch.stack([sem == c for c in present]) if present else torch.zeros(0, h, w, dtype=torch.bool)
    sm = downsample4(stuff, size4)
    return TrainTargets(
        thing_masks=tm,
        thing_classes=torch.tensor([classes[i] for i in keep], dtype=torch.int64),
        thing_centers=centers,
        thing_boxes=torch.tensor([boxes[i] for i in keep], dtype=torch.float32).reshape(-1, 4),
        stuff_masks=sm,
        stuff_classes=torch.tensor(present, dtype=torch.int64),
        valid=torch.ones(size4),
        image_size=(h, w),
    )


@dataclass
class LevelTargets:
    """Targets of one FPN level for the whole batch.

    ``center_heatmap`` (N, T, Hl, Wl); ``stuff_target`` (N, S, Hl, Wl) soft region map (< 0.5 → 0);
    ``valid`` (N, 1, Hl, Wl); ``thing_assign[b]`` indices of image b's instances assigned to this
    level; ``thing_masks[b]`` (n_b, Hl, Wl) their masks resized to the level (top-k candidates are
    > 0.1); ``stuff_present[b]`` indices into image b's stuff list present at this level and
    ``stuff_maps[b]`` (m_b, Hl, Wl) all of image b's thresholded stuff maps at this level (a present
    class pools its kernel over ``stuff_maps > 0``).
    """

    center_heatmap: torch.Tensor
    stuff_target: torch.Tensor
    valid: torch.Tensor
    thing_assign: list[torch.Tensor]
    thing_masks: list[torch.Tensor]
    stuff_present: list[torch.Tensor]
    stuff_maps: list[torch.Tensor]


def level_valid(valid: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(N, H4, W4) → (N, 1, Hl, Wl): a level pixel is supervised if the bilinear-resized stride-4
    ``valid`` is ≥ 0.5 (≡ 1 when nothing is ignored)."""
    v = F.interpolate(valid[:, None].float(), size=size, mode="bilinear", align_corners=False)
    return (v >= 0.5).to(valid.dtype)


@dataclass(frozen=True)
class TargetSettings:
    """What the level-target encoding (:func:`build_level_targets`) needs to know.

    * ``num_things``: number of thing classes T (channels of the centre heatmaps).
    * ``num_stuff``: number of stuff classes S, class 0 ("all things") included (channels of the
      stuff-region maps).
    * ``instance_scales``: one ``(lo, hi)`` pair per level P3..P7: an instance is assigned to a
      level when ``lo ≤ sqrt(box area) ≤ hi`` (box in resized-input pixels; both bounds inclusive).
    * ``min_overlap``: the CenterNet minimum IoU that sets the Gaussian radius of a centre.
    * ``gaussian_sigma``: the divisor of the Gaussian's diameter, ``σ = (2r + 1) / gaussian_sigma``.
    """

    num_things: int
    num_stuff: int
    instance_scales: tuple[tuple[float, float], ...]
    min_overlap: float
    gaussian_sigma: float


def build_level_targets(
    targets: list[TrainTargets], level_shapes: list[tuple[int, int]], settings: TargetSettings
) -> list[LevelTargets]:
    """Per-level targets for a padded batch (all ``targets`` on the same H4 × W4 grid)."""
    n_img = len(targets)
    h4, w4 = targets[0].valid.shape
    hp, wp = 4 * h4, 4 * w4
    device = targets[0].valid.device
    valid = torch.stack([t.valid for t in targets])
    scales = [tuple(s) for s in settings.instance_scales]
    if len(scales) != len(level_shapes):
        raise ValueError(f"{len(scales)} instance scales for {len(level_shapes)} levels")
    out = []
    for lvl, (hl, wl) in enumerate(level_shapes):
        lo, hi = scales[lvl]
        heat = np.zeros((n_img, settings.num_things, hl, wl), dtype=np.float32)
        stuff_t = torch.zeros(n_img, settings.num_stuff, hl, wl, device=device)
        assigns, tmasks, spresent, smaps = [], [], [], []
        for b, t in enumerate(targets):
            boxes = t.thing_boxes.detach().cpu().numpy()
            bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
            size = np.sqrt(np.clip(bw * bh, 0, None))
            idx = np.flatnonzero((size >= lo) & (size <= hi))
            centers = t.thing_centers.detach().cpu().numpy()
            classes = t.thing_classes.detach().cpu().numpy()
            for i in idx:
                cx = min(max(int(np.floor(centers[i, 0] * wl / w4)), 0), wl - 1)
                cy = min(max(int(np.floor(centers[i, 1] * hl / h4)), 0), hl - 1)
                radius = gaussian_radius(bh[i] * hl / hp, bw[i] * wl / wp, settings.min_overlap)
                draw_gaussian(heat[b, classes[i]], cx, cy, radius, settings.gaussian_sigma)
            idx_t = torch.as_tensor(idx, dtype=torch.int64, device=device)
            assigns.append(idx_t)
            if idx.size:
                tmasks.append(
                    F.interpolate(t.thing_masks[idx_t][None], size=(hl, wl), mode="bilinear", align_corners=False)[0]
                )
            else:
                tmasks.append(t.thing_masks.new_zeros((0, hl, wl)))
            if t.stuff_masks.shape[0]:
                s = F.interpolate(t.stuff_masks[None], size=(hl, wl), mode="bilinear", align_corners=False)[0]
                s = s.clamp(max=1.0)
                s = torch.where(s < 0.5, torch.zeros_like(s), s)
                stuff_t[b].index_put_((t.stuff_classes,), s, accumulate=True)
                spresent.append(torch.nonzero(s.flatten(1).amax(1) > 0).flatten())
                smaps.append(s)
            else:
                spresent.append(torch.zeros(0, dtype=torch.int64, device=device))
                smaps.append(t.stuff_masks.new_zeros((0, hl, wl)))
        out.append(
            LevelTargets(
                torch.from_numpy(heat).to(device),
                stuff_t,
                level_valid(valid, (hl, wl)),
                assigns,
                tmasks,
                spresent,
                smaps,
            )
        )
    return out
