"""ResNet trunk + FPN (P2–P7) from torchvision, laid out so the official weights load by renaming.

* :func:`build_resnet` — torchvision ResNet-18/34/50/101 without its classifier, with FrozenBN
  (official; eps 1e-5), trainable BN or GroupNorm, optional MSRA "stride in 1×1" layout (the
  official detectron2 weights put the stage stride on conv1 of the first bottleneck; torchvision
  puts it on conv2) and detectron2's ``FREEZE_AT`` (stem = 1, stem + res2 = 2, ...).
* :class:`Backbone` — the trunk (``bottom_up``) and ``torchvision.ops.FeaturePyramidNetwork``
  with ``LastLevelP6P7`` (P6 from P5, ReLU before P7), sum fusion, nearest top-down upsampling.

Official → our key renames (docs/panoptic_fcn_spec.md §4.2) are in :data:`BACKBONE_RENAMES`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models import resnet18, resnet34, resnet50, resnet101
from torchvision.models.resnet import Bottleneck
from torchvision.ops import FeaturePyramidNetwork, FrozenBatchNorm2d
from torchvision.ops.feature_pyramid_network import LastLevelP6P7

from pointly.pointgen.base.errors import PointlyError

_RESNETS = {18: resnet18, 34: resnet34, 50: resnet50, 101: resnet101}

#: regex → replacement, applied in order to an official detectron2 key (docs/panoptic_fcn_spec.md §4.2)
BACKBONE_RENAMES: list[tuple[str, str]] = [
    (r"^backbone\.bottom_up\.stem\.conv1\.norm\.", "backbone.bottom_up.bn1."),
    (r"^backbone\.bottom_up\.stem\.conv1\.", "backbone.bottom_up.conv1."),
    (
        r"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.norm\.",
        lambda m: f"backbone.bottom_up.layer{int(m.group(1)) - 1}.{m.group(2)}.downsample.1.",
    ),
    (
        r"^backbone\.bottom_up\.res(\d)\.(\d+)\.shortcut\.",
        lambda m: f"backbone.bottom_up.layer{int(m.group(1)) - 1}.{m.group(2)}.downsample.0.",
    ),
    (
        r"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.norm\.",
        lambda m: f"backbone.bottom_up.layer{int(m.group(1)) - 1}.{m.group(2)}.bn{m.group(3)}.",
    ),
    (
        r"^backbone\.bottom_up\.res(\d)\.(\d+)\.conv(\d)\.",
        lambda m: f"backbone.bottom_up.layer{int(m.group(1)) - 1}.{m.group(2)}.conv{m.group(3)}.",
    ),
    (r"^backbone\.fpn_lateral(\d)\.", lambda m: f"backbone.fpn.inner_blocks.{int(m.group(1)) - 2}.0."),
    (r"^backbone\.fpn_output(\d)\.", lambda m: f"backbone.fpn.layer_blocks.{int(m.group(1)) - 2}.0."),
    (r"^backbone\.top_block\.p([67])\.", lambda m: f"backbone.fpn.extra_blocks.p{m.group(1)}."),
]


def official_to_pointly_key(key: str) -> str:
    """Map one official PanopticFCN state-dict key to ours (heads keep the official names)."""
    import re

    for pattern, repl in BACKBONE_RENAMES:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def norm_layer_factory(norm: str, gn_groups: int = 32):
    """``FrozenBN`` | ``BN`` | ``GN`` → a callable ``channels -> nn.Module``."""
    if norm == "FrozenBN":
        return lambda c: FrozenBatchNorm2d(c, eps=1e-5)
    if norm == "BN":
        return nn.BatchNorm2d
    if norm == "GN":
        return lambda c: nn.GroupNorm(min(gn_groups, c), c)
    raise PointlyError(f"unknown backbone norm {norm!r}", fix="use FrozenBN, BN or GN")


class ResNetTrunk(nn.Module):
    """conv1/bn1/relu/maxpool + layer1..4 of a torchvision ResNet; returns C2..C5."""

    def __init__(
        self,
        depth: int = 50,
        norm: str = "FrozenBN",
        stride_in_1x1: bool = True,
        freeze_at: int = 2,
        gn_groups: int = 32,
    ) -> None:
        super().__init__()
        if depth not in _RESNETS:
            raise PointlyError(f"unsupported ResNet depth {depth}", fix="use 18, 34, 50 or 101")
        net = _RESNETS[depth](weights=None, norm_layer=norm_layer_factory(norm, gn_groups))
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        bottleneck = depth >= 50
        if stride_in_1x1 and bottleneck:
            for layer in (self.layer2, self.layer3, self.layer4):
                block = layer[0]
                block.conv1.stride = (2, 2)
                block.conv2.stride = (1, 1)
        expansion = 4 if bottleneck else 1
        self.out_channels = [64 * expansion, 128 * expansion, 256 * expansion, 512 * expansion]
        self.freeze_at = freeze_at
        self.fold_frozen_bn = True  # inference folds FrozenBN into the convs (see _forward_folded)
        stages = [[self.conv1, self.bn1], [self.layer1], [self.layer2], [self.layer3], [self.layer4]]
        for stage in stages[:freeze_at]:
            for module in stage:
                for p in module.parameters():
                    p.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        if self.fold_frozen_bn and not torch.is_grad_enabled() and isinstance(self.bn1, FrozenBatchNorm2d):
            return self._forward_folded(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        c2 = self.layer1(x)
        c3 = self.layer2(c2)
        c4 = self.layer3(c3)
        c5 = self.layer4(c4)
        return [c2, c3, c4, c5]

    def _forward_folded(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The same trunk with every FrozenBN folded into the conv before it (inference only).

        A frozen BN is an affine map per channel, so ``bn(conv(x)) = conv'(x)`` with the weight scaled
        by ``γ/√(σ²+ε)`` and a bias ``β − μ·γ/√(σ²+ε)``; the convolution then adds the bias itself
        and two full passes over every activation (multiply, add) disappear: ≈ 8 % of an R50-FPN
        CPU forward at 800 short side (``benchmarks/results_inference.md``). The folded weights are
        recomputed each call (≈ 25 M multiplies for R50, far less than the passes saved), so they
        can never go stale; the values equal the unfolded trunk's up to float rounding (tested).
        """
        x = self.maxpool(F.relu_(_conv_frozen_bn(self.conv1, self.bn1, x)))
        outs = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                x = _block_folded(block, x)
            outs.append(x)
        return outs


def _conv_frozen_bn(conv: nn.Conv2d, bn: FrozenBatchNorm2d, x: torch.Tensor) -> torch.Tensor:
    """``bn(conv(x))`` as one convolution with the BN folded into its weight and bias."""
    scale = bn.weight * (bn.running_var + bn.eps).rsqrt()
    weight = conv.weight * scale.view(-1, 1, 1, 1)
    bias = bn.bias - bn.running_mean * scale
    if conv.bias is not None:
        bias = bias + conv.bias * scale
    return F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, conv.groups)


def _block_folded(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """A torchvision BasicBlock / Bottleneck with folded FrozenBNs (its own forward, op for op)."""
    out = F.relu_(_conv_frozen_bn(block.conv1, block.bn1, x))
    if isinstance(block, Bottleneck):
        out = F.relu_(_conv_frozen_bn(block.conv2, block.bn2, out))
        out = _conv_frozen_bn(block.conv3, block.bn3, out)
    else:
        out = _conv_frozen_bn(block.conv2, block.bn2, out)
    identity = x if block.downsample is None else _conv_frozen_bn(block.downsample[0], block.downsample[1], x)
    out += identity
    return F.relu_(out)


class Backbone(nn.Module):
    """ResNet + FPN. ``forward`` returns ``[P2, P3, P4, P5, P6, P7]`` (strides 4…128)."""

    def __init__(
        self,
        *,
        depth: int = 50,
        norm: str = "FrozenBN",
        stride_in_1x1: bool = True,
        freeze_at: int = 2,
        fpn_channels: int = 256,
        gn_groups: int = 32,
    ) -> None:
        super().__init__()
        self.bottom_up = ResNetTrunk(
            depth=depth, norm=norm, stride_in_1x1=stride_in_1x1, freeze_at=freeze_at, gn_groups=gn_groups
        )
        self.fpn = FeaturePyramidNetwork(
            self.bottom_up.out_channels, fpn_channels, extra_blocks=LastLevelP6P7(fpn_channels, fpn_channels)
        )
        self.out_channels = fpn_channels

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = self.bottom_up(x)
        out = self.fpn(OrderedDict((f"c{i + 2}", f) for i, f in enumerate(feats)))
        return list(out.values())
