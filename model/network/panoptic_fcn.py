"""Panoptic FCN (Li et al., "Fully Convolutional Networks for Panoptic Segmentation", CVPR 2021, and
its TPAMI 2022 extension with point supervision), as the official detectron2 code builds it.

Pipeline (docs/panoptic_fcn_spec.md §1): image → ResNet + FPN (P2–P7) → semantic-FPN encoder on P2–P5 → feature encoder
(``encode_feat``, stride 4, paper's F_e) and, shared over P3–P7, the position head (object centres,
stuff regions; paper Eq. (1) is its focal loss) and the kernel head (per-position kernel features).
Kernel generators turn selected features into dynamic 1×1 kernels (paper Eq. (2)); kernel fusion
(Eq. (3)) merges duplicates at test time; masks are the kernels applied to ``encode_feat`` (Eq. (4)).
Training minimises Eq. (6) = Eq. (1) position losses + 3 × Eq. (5) weighted dice (see
:mod:`pointly.model.network.losses`).

Public API:

* ``PanopticFCN(backbone=..., semantic_fpn=..., ..., input_settings=..., loss_settings=...)`` — the
  module, from its submodules and settings (keyword arguments only);
  ``pointly.model.engine.build.build_panoptic_fcn(cfg)`` writes it out from a training config.
  ``forward(images, targets)`` returns the loss dict.
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
from torch import nn

from pointly.model.network.backbone import Backbone
from pointly.model.network.gt import TargetSettings, TrainTargets, build_level_targets
from pointly.model.network.heads import FeatureEncoder, KernelGenerator, KernelHead, PositionHead, SemanticFPN
from pointly.model.network.inference import InferenceSettings, PanopticPrediction, predict_image, resize_for_test
from pointly.model.network.losses import LossSettings, compute_losses


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


@dataclass(frozen=True)
class InputSettings:
    """How images become the network's input (:meth:`PanopticFCN.preprocess`, :meth:`PanopticFCN.predict`).

    * ``pixel_mean``, ``pixel_std``: per-channel mean and std (0–255 scale) subtracted and divided,
      applied in the channel order the network sees (after the ``format`` flip).
    * ``format``: ``"BGR"`` flips the RGB input to B, G, R (the official weights' order); ``"RGB"`` keeps it.
    * ``size_divisibility``: the batch is zero-padded bottom/right to a multiple of it.
    * ``min_size_test``, ``max_size_test``: :meth:`PanopticFCN.predict` resizes each image so that its
      short side is ``min_size_test`` and its long side at most ``max_size_test``.
    """

    pixel_mean: tuple[float, float, float]
    pixel_std: tuple[float, float, float]
    format: str
    size_divisibility: int
    min_size_test: int
    max_size_test: int


class PanopticFCN(nn.Module):
    """The Panoptic FCN network; see the module docstring.

    Every argument is a keyword: the seven submodules, and the settings of the parts that are not
    modules (input normalisation, level targets, losses, inference). ``cpu_channels_last``: run CPU
    inference (autograd off) on channels-last activations (see :meth:`forward_heads`); an
    attribute of the same name can change it later. The engine's builder also attaches its
    training config as ``cfg`` (for checkpoints); nothing in the network reads it.
    """

    def __init__(
        self,
        *,
        backbone: Backbone,
        semantic_fpn: SemanticFPN,
        feature_encoder: FeatureEncoder,
        position_head: PositionHead,
        kernel_head: KernelHead,
        thing_generator: KernelGenerator,
        stuff_generator: KernelGenerator,
        input_settings: InputSettings,
        target_settings: TargetSettings,
        loss_settings: LossSettings,
        inference_settings: InferenceSettings,
        cpu_channels_last: bool = True,
    ) -> None:
        super().__init__()
        # registration order = state-dict order; checkpoints load by key name (the official names, not
        # the official order: it registers the position and kernel heads before the feature encoder)
        self.backbone = backbone
        self.semantic_fpn = semantic_fpn
        self.feature_encoder = feature_encoder
        self.position_head = position_head
        self.kernel_head = kernel_head
        self.thing_generator = thing_generator
        self.stuff_generator = stuff_generator
        self.input_settings = input_settings
        self.target_settings = target_settings
        self.loss_settings = loss_settings
        self.inference_settings = inference_settings
        self.cpu_channels_last = cpu_channels_last
        self.register_buffer("pixel_mean", torch.tensor(input_settings.pixel_mean).view(3, 1, 1), persistent=False)
        self.register_buffer("pixel_std", torch.tensor(input_settings.pixel_std).view(3, 1, 1), persistent=False)

    # ------------------------------------------------------------------ input
    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    def preprocess(self, images: list[torch.Tensor]) -> torch.Tensor:
        """RGB (3,H,W) 0–255 tensors → (N,3,Hp,Wp): channel order per ``input_settings.format`` (BGR by
        default, with the official RGB-ordered mean applied to B,G,R: docs/panoptic_fcn_spec.md §7 item 1),
        minus mean, divided by std, zero-padded bottom/right to a multiple of ``size_divisibility``."""
        div = self.input_settings.size_divisibility
        hp = max(int(im.shape[-2]) for im in images)
        wp = max(int(im.shape[-1]) for im in images)
        hp, wp = -(-hp // div) * div, -(-wp // div) * div
        batch = torch.zeros(len(images), 3, hp, wp, device=self.device)
        bgr = self.input_settings.format.upper() == "BGR"
        for i, im in enumerate(images):
            x = im.to(self.device, torch.float32)
            if bgr:
                x = x.flip(0)
            x = (x - self.pixel_mean) / self.pixel_std
            batch[i, :, : x.shape[1], : x.shape[2]] = x
        return batch

    # ------------------------------------------------------------------ heads
    def forward_heads(self, batch: torch.Tensor) -> HeadOutputs:
        """Run backbone, encoder and the shared heads on a normalised, padded batch.

        For inference on the CPU (autograd off) the batch goes in channels-last (NHWC) when
        ``cpu_channels_last`` is set: oneDNN's convolutions, the frozen-BN and ReLU passes and the
        DCNv2 sampling run faster on it (R50-FPN forward ≈ 1.2× faster at 800 short side,
        ``benchmarks/results_inference.md``); values are the same up to float rounding. Training
        stays NCHW: there it gained nothing at R50 and cost 12 % on ``synthetic_small``
        (``benchmarks/results_model.md``)."""
        if batch.device.type == "cpu" and self.cpu_channels_last and not torch.is_grad_enabled():
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
    def forward(self, images: list[torch.Tensor], targets: list[TrainTargets]) -> dict[str, torch.Tensor]:
        """Training step: ``images`` RGB (3,h,w) tensors, ``targets`` one
        :class:`pointly.model.network.gt.TrainTargets` per image → weighted losses (paper Eq. (6))."""
        batch = self.preprocess(images)
        heads = self.forward_heads(batch)
        h4, w4 = heads.encode_feat.shape[-2:]
        padded = [t.pad_to(h4, w4).to(self.device) for t in targets]
        level_shapes = [tuple(c.shape[-2:]) for c in heads.center_logits]
        level_targets = build_level_targets(padded, level_shapes, self.target_settings)
        return compute_losses(
            heads,
            padded,
            level_targets,
            thing_generator=self.thing_generator,
            stuff_generator=self.stuff_generator,
            settings=self.loss_settings,
        )

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def predict(self, images: list[np.ndarray]) -> list[PanopticPrediction]:
        """RGB uint8 HxWx3 arrays → one :class:`~pointly.model.network.inference.PanopticPrediction` each.

        Each image runs alone (batch size 1, the official semantics) at ``input_settings.min_size_test``
        / ``max_size_test``; masks are cropped to the resized image before resizing to the original.
        """
        was_training = self.training
        self.eval()
        try:
            return [self._predict_one(im) for im in images]
        finally:
            self.train(was_training)

    def _predict_one(self, rgb: np.ndarray) -> PanopticPrediction:
        inp = self.input_settings
        img, resized_hw = resize_for_test(rgb, inp.min_size_test, inp.max_size_test)
        batch = self.preprocess([torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1)])
        heads = self.forward_heads(batch)
        # The network may run under autocast (AMP inference); everything after it runs in float32.
        with torch.autocast(batch.device.type, enabled=False):
            return predict_image(
                heads,
                resized_hw,
                tuple(np.asarray(rgb).shape[:2]),
                thing_generator=self.thing_generator,
                stuff_generator=self.stuff_generator,
                settings=self.inference_settings,
            )
