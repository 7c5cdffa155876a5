"""Panoptic FCN (Li et al., "Fully Convolutional Networks for Panoptic Segmentation", CVPR 2021, and
its TPAMI 2022 extension with point supervision), as the official detectron2 code builds it.

Pipeline (spec §1): image → ResNet + FPN (P2–P7) → semantic-FPN encoder on P2–P5 → feature encoder
(``encode_feat``, stride 4, paper's F_e) and, shared over P3–P7, the position head (object centres,
stuff regions; paper Eq. (1) is its focal loss) and the kernel head (per-position kernel features).
Kernel generators turn selected features into dynamic 1×1 kernels (paper Eq. (2)); kernel fusion
(Eq. (3)) merges duplicates at test time; masks are the kernels applied to ``encode_feat`` (Eq. (4)).
Training minimises Eq. (6) = Eq. (1) position losses + 3 × Eq. (5) weighted dice (see
:mod:`pointly.model.network.losses`).

Public API:

* ``PanopticFCN(cfg)`` — the module; ``forward(images, targets)`` returns the loss dict.
* ``forward_heads(batch)`` → :class:`HeadOutputs` (``encode_feat``, per-level ``center_logits``,
  ``region_logits``, ``kernel_feats``).
* ``predict(images)`` — list of RGB uint8 arrays → list of
  :class:`pointly.model.network.inference.PanopticPrediction`.
* ``preprocess(images)`` — list of (3,H,W) RGB tensors (0–255) → normalised batch padded to 32.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointly.model.engine.config import Config
from pointly.model.network.backbone import Backbone
from pointly.model.network.heads import FeatureEncoder, KernelGenerator, KernelHead, PositionHead, SemanticFPN


@dataclass
class HeadOutputs:
    """Raw head outputs for a padded batch.

    ``encode_feat`` (N, C_enc, Hp/4, Wp/4); per level P3..P7: ``center_logits`` (N, num_things, Hl, Wl),
    ``region_logits`` (N, num_stuff, Hl, Wl), ``kernel_feats`` (N, C_kernel, Hl, Wl).
    """

    encode_feat: torch.Tensor
    center_logits: list[torch.Tensor]
    region_logits: list[torch.Tensor]
    kernel_feats: list[torch.Tensor]


class PanopticFCN(nn.Module):
    """The Panoptic FCN network; see the module docstring."""

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        m = cfg.model
        g = m.gn_groups
        self.backbone = Backbone(
            m.backbone.depth, m.backbone.norm, m.backbone.stride_in_1x1, m.backbone.freeze_at, m.fpn.channels, g
        )
        self.semantic_fpn = SemanticFPN(m.fpn.channels, m.semantic_fpn.channels, g, m.semantic_fpn.norm)
        self.feature_encoder = FeatureEncoder(
            m.semantic_fpn.channels,
            m.feature_encoder.channels,
            m.feature_encoder.num_convs,
            m.feature_encoder.coord,
            m.head_init,
        )
        self.position_head = PositionHead(
            m.fpn.channels,
            m.position_head.channels,
            m.position_head.num_convs,
            m.thing.num_classes,
            m.stuff.num_classes,
            m.position_head.deform,
            g,
            m.thing.bias,
            m.stuff.bias,
            m.position_head.deform_impl,
            m.head_init,
        )
        self.kernel_head = KernelHead(
            m.fpn.channels, m.kernel_head.channels, m.kernel_head.num_convs, m.kernel_head.coord, g, m.head_init
        )
        self.thing_generator = KernelGenerator(m.kernel_head.channels, m.feature_encoder.channels, m.head_init)
        self.stuff_generator = KernelGenerator(m.kernel_head.channels, m.feature_encoder.channels, m.head_init)
        self.register_buffer("pixel_mean", torch.tensor(cfg.input.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(cfg.input.pixel_std).view(3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ input
    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, images: list[torch.Tensor]) -> torch.Tensor:
        """RGB (3,H,W) 0–255 tensors → (N,3,Hp,Wp): channel order per ``input.format`` (BGR by
        default, with the official RGB-ordered mean applied to B,G,R: spec checklist item 1),
        minus mean, divided by std, zero-padded bottom/right to a multiple of ``size_divisibility``."""
        div = self.cfg.input.size_divisibility
        hp = max(int(im.shape[-2]) for im in images)
        wp = max(int(im.shape[-1]) for im in images)
        hp, wp = -(-hp // div) * div, -(-wp // div) * div
        batch = torch.zeros(len(images), 3, hp, wp, device=self.device)
        for i, im in enumerate(images):
            x = im.to(self.device, torch.float32)
            if self.cfg.input.format.upper() == "BGR":
                x = x.flip(0)
            x = (x - self.pixel_mean) / self.pixel_std
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch

    # ------------------------------------------------------------------ heads
    def forward_heads(self, batch: torch.Tensor) -> HeadOutputs:
        """Run backbone, encoder and the shared heads on a normalised, padded batch.

        For inference on the CPU (autograd off) the batch goes in channels-last (NHWC): oneDNN's
        convolutions, the frozen-BN and ReLU passes and the DCNv2 sampling run faster on it (R50-FPN
        forward ≈ 1.2× faster at 800 short side, ``benchmarks/results_inference.md``); values are the
        same up to float rounding. Training stays NCHW: there it gained nothing at R50 and cost 12 %
        on ``synthetic_small`` (``benchmarks/results_model.md``)."""
        if batch.device.type == "cpu" and self.cfg.model.cpu_channels_last and not torch.is_grad_enabled():
            batch = batch.contiguous(memory_format=torch.channels_last)
        feats = self.backbone(batch)  # P2..P7
        encode_feat = self.feature_encoder(self.semantic_fpn(feats[:4]))
        centers, regions, kernels = [], [], []
        for f in feats[1:]:
            c, r = self.position_head(f)
            centers.append(c)
            regions.append(r)
            kernels.append(self.kernel_head(f))
        return HeadOutputs(encode_feat, centers, regions, kernels)

    # ------------------------------------------------------------------ training
    def forward(self, images: list[torch.Tensor], targets: list) -> dict[str, torch.Tensor]:
        """Training step: ``images`` RGB (3,h,w) tensors, ``targets`` one
        :class:`pointly.model.network.gt.TrainTargets` per image → weighted losses (paper Eq. (6))."""
        from pointly.model.network.gt import build_level_targets
        from pointly.model.network.losses import compute_losses

        batch = self.preprocess(images)
        heads = self.forward_heads(batch)
        h4, w4 = heads.encode_feat.shape[-2:]
        padded = [t.pad_to(h4, w4).to(self.device) for t in targets]
        level_shapes = [tuple(c.shape[-2:]) for c in heads.center_logits]
        level_targets = build_level_targets(padded, level_shapes, self.cfg)
        return compute_losses(self, heads, padded, level_targets, self.cfg)

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, images: list[np.ndarray]):
        """RGB uint8 HxWx3 arrays → one :class:`~pointly.model.network.inference.PanopticPrediction` each.

        Each image runs alone (batch size 1, the official semantics) at ``input.min_size_test`` /
        ``max_size_test``; masks are cropped to the resized image before resizing to the original.
        """
        from pointly.model.network.inference import predict_image

        was_training = self.training
        self.eval()
        try:
            return [predict_image(self, im) for im in images]
        finally:
            self.train(was_training)


def count_parameters(model: nn.Module, *, include_buffers: bool = False) -> int:
    """Number of parameter (and optionally persistent buffer) elements."""
    n = sum(p.numel() for p in model.parameters())
    if include_buffers:
        n += sum(
            b.numel() for k, b in model.state_dict().items() if not any(k == pk for pk, _ in model.named_parameters())
        )
    return n


def interpolate(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize with align_corners=False (detectron2's and the official code's choice)."""
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)
