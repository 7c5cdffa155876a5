"""Panoptic FCN heads (docs/panoptic_fcn_spec.md §1): semantic-FPN encoder, feature encoder, position head (DCNv2),
kernel head, thing/stuff kernel generators.

Module and attribute names follow the official detectron2 code so that its state-dict keys
(docs/panoptic_fcn_spec.md §4.1) load here unchanged: ``semantic_fpn.p4.2.norm.weight``,
``position_head.position_head.position_head_head_1.offset_mask_conv.weight``,
``kernel_head.kernel_head.kernel_head_head_1.weight``, ``feature_encoder.encode_head.encode_head_head_1.bias``,
``thing_generator.embed_extractor.weight`` ...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .choices import HEAD_INITS
from .deform_conv import modulated_deform_conv2d


def coord_features(x: torch.Tensor) -> torch.Tensor:
    """CoordConv: append the row (vertical) coordinate, then the column coordinate, each
    ``linspace(-1, 1)`` over the map's own size (docs/panoptic_fcn_spec.md §1, §7 item 3)."""
    n, _, h, w = x.shape
    ys = torch.linspace(-1, 1, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1, 1, w, device=x.device, dtype=x.dtype)
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([yy, xx]).unsqueeze(0).expand(n, -1, -1, -1)
    return torch.cat([x, coords], dim=1)


def c2_msra_fill(module: nn.Conv2d) -> None:
    """detectron2's ``c2_msra_fill``: Kaiming normal (fan_out, ReLU), zero bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def init_head_conv(module: nn.Conv2d, init: str) -> None:
    """A head's plain conv under ``init`` (``model.head_init``): ``msra`` applies ``c2_msra_fill``;
    ``official`` leaves PyTorch's default, as dvlab-research/PanopticFCN's ``head.py`` does for the
    encoder's and the heads' convs. (With ``msra`` on the generators too, R50's dynamic mask logits
    start with std ≈ 12, almost all saturated, which the official SGD cannot recover from.)"""
    if init not in HEAD_INITS:
        raise ValueError(f"head init must be one of {HEAD_INITS}, got {init!r}")
    if init == "msra":
        c2_msra_fill(module)


class Conv2d(nn.Conv2d):
    """detectron2-style conv with optional ``norm`` and ``activation`` children (key ``…norm.weight``)."""

    def __init__(self, *args, norm: nn.Module | None = None, activation: bool = False, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.norm = norm
        self.use_relu = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = super().forward(x)
        if self.norm is not None:
            x = self.norm(x)
        return F.relu(x, inplace=True) if self.use_relu else x  # in place: conv/GN outputs are not saved for backward


def group_norm(channels: int, groups: int) -> nn.GroupNorm:
    return nn.GroupNorm(min(groups, channels), channels)


class SemanticFPN(nn.Module):
    """Panoptic-FPN semantic branch without predictor: P2:1, P3:1, P4:2, P5:3 × [3×3 conv, GN, ReLU]
    each followed by ×2 bilinear upsampling (not on P2), summed at stride 4."""

    def __init__(self, *, in_channels: int, channels: int, groups: int = 32, norm: str = "GN") -> None:
        super().__init__()
        for level, n in (("p2", 1), ("p3", 1), ("p4", 2), ("p5", 3)):
            layers: list[nn.Module] = []
            for i in range(n):
                conv = Conv2d(
                    in_channels if i == 0 else channels,
                    channels,
                    3,
                    padding=1,
                    bias=norm != "GN",
                    norm=group_norm(channels, groups) if norm == "GN" else None,
                    activation=True,
                )
                c2_msra_fill(conv)
                layers.append(conv)
                if level != "p2":
                    layers.append(nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False))
            self.add_module(level, nn.Sequential(*layers))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = self.p2(feats[0])
        for name, f in zip(("p3", "p4", "p5"), feats[1:4]):
            out = out + getattr(self, name)(f)
        return out


class FeatureEncoder(nn.Module):
    """encode_feat: CoordConv + ``num_convs`` × [3×3 conv with bias, ReLU] (the last conv too, so
    encode_feat ≥ 0)."""

    def __init__(
        self, *, in_channels: int, channels: int = 64, num_convs: int = 3, coord: bool = True, init: str = "official"
    ) -> None:
        super().__init__()
        self.coord = coord
        layers = []
        c_in = in_channels + (2 if coord else 0)
        for i in range(num_convs):
            conv = Conv2d(c_in, channels, 3, padding=1, bias=True, activation=True)
            init_head_conv(conv, init)
            layers.append((f"encode_head_head_{i + 1}", conv))
            c_in = channels
        self.encode_head = nn.Sequential()
        for name, conv in layers:
            self.encode_head.add_module(name, conv)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.coord:
            x = coord_features(x)
        return self.encode_head(x)


class DeformConv(nn.Module):
    """Modulated deformable conv (DCNv2) weight without bias, plus GN ``norm`` and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, impl: str = "auto") -> None:
        super().__init__()
        self.impl = impl
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 3, 3))
        nn.init.kaiming_uniform_(self.weight, nonlinearity="relu")  # detectron2 ModulatedDeformConv init
        self.norm = group_norm(out_channels, groups)

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = modulated_deform_conv2d(x, offset, self.weight, mask, padding=1, impl=self.impl)
        return F.relu(self.norm(x), inplace=True)


class DeformLayer(nn.Module):
    """A plain 3×3 conv predicts 27 channels: 0–17 the (dy, dx) offsets per tap (torchvision's layout,
    identical to detectron2's), 18–26 the sigmoid modulation mask; then :class:`DeformConv`."""

    def __init__(self, in_channels: int, out_channels: int, groups: int, impl: str = "auto") -> None:
        super().__init__()
        self.offset_mask_conv = nn.Conv2d(in_channels, 27, 3, padding=1)  # PyTorch default init (official)
        self.dcnv2 = DeformConv(in_channels, out_channels, groups, impl)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        om = self.offset_mask_conv(x)
        offset, mask = om[:, :18], om[:, 18:].sigmoid()
        return self.dcnv2(x, offset.to(x.dtype), mask.to(x.dtype))


class PositionHead(nn.Module):
    """Object centres (``out_inst``, one channel per thing class) and stuff regions (``out_sem``)."""

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        num_convs: int,
        num_things: int,
        num_stuff: int,
        deform: bool = True,
        groups: int = 32,
        thing_bias: float = -2.19,
        stuff_bias: float = -2.19,
        deform_impl: str = "auto",
        init: str = "official",
    ) -> None:
        super().__init__()
        self.position_head = nn.Sequential()
        c_in = in_channels
        for i in range(num_convs):
            if deform:
                layer: nn.Module = DeformLayer(c_in, channels, groups, deform_impl)
            else:
                layer = Conv2d(
                    c_in, channels, 3, padding=1, bias=False, norm=group_norm(channels, groups), activation=True
                )
                init_head_conv(layer, init)
            self.position_head.add_module(f"position_head_head_{i + 1}", layer)
            c_in = channels
        self.out_inst = nn.Conv2d(channels, num_things, 3, padding=1)
        self.out_sem = nn.Conv2d(channels, num_stuff, 3, padding=1)
        for layer, bias in ((self.out_inst, thing_bias), (self.out_sem, stuff_bias)):
            nn.init.normal_(layer.weight, mean=0.0, std=0.01)
            nn.init.constant_(layer.bias, bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.position_head(x)
        return self.out_inst(x), self.out_sem(x)


class KernelHead(nn.Module):
    """Per-position kernel features: CoordConv + ``num_convs`` × [3×3 conv, GN, ReLU] + ``out_conv``."""

    def __init__(
        self,
        *,
        in_channels: int,
        channels: int,
        num_convs: int,
        coord: bool = True,
        groups: int = 32,
        init: str = "official",
    ) -> None:
        super().__init__()
        self.coord = coord
        self.kernel_head = nn.Sequential()
        c_in = in_channels + (2 if coord else 0)
        for i in range(num_convs):
            conv = Conv2d(c_in, channels, 3, padding=1, bias=False, norm=group_norm(channels, groups), activation=True)
            init_head_conv(conv, init)
            self.kernel_head.add_module(f"kernel_head_head_{i + 1}", conv)
            c_in = channels
        self.out_conv = nn.Conv2d(channels, channels, 3, padding=1)
        nn.init.normal_(self.out_conv.weight, mean=0.0, std=0.01)
        nn.init.constant_(self.out_conv.bias, 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.coord:
            x = coord_features(x)
        return self.out_conv(self.kernel_head(x))


class KernelGenerator(nn.Module):
    """Thing or stuff generator (paper Eq. (2), kernel generation): a 1×1 conv with bias
    (``embed_extractor``) turns a kernel-head feature into a dynamic 1×1 conv kernel (no bias)."""

    def __init__(self, *, in_channels: int, out_channels: int, init: str = "official") -> None:
        super().__init__()
        self.embed_extractor = nn.Conv2d(in_channels, out_channels, 1)
        init_head_conv(self.embed_extractor, init)
        if init == "official":  # N(0, 0.01), bias 0: the dynamic mask logits start near 0
            nn.init.normal_(self.embed_extractor.weight, mean=0.0, std=0.01)
            nn.init.constant_(self.embed_extractor.bias, 0.0)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats`` (..., C) → kernels (..., C_enc)."""
        w = self.embed_extractor.weight.flatten(1)
        return F.linear(feats, w, self.embed_extractor.bias)


def dynamic_masks(kernels: torch.Tensor, encode_feat: torch.Tensor) -> torch.Tensor:
    """Paper Eq. (4): mask logits ``P_j = K_j ⊗ F_e``, a dynamic 1×1 conv without bias, as a matmul.

    ``kernels`` (K, C_enc), ``encode_feat`` (C_enc, H, W) → (K, H, W).
    """
    c, h, w = encode_feat.shape
    return (kernels @ encode_feat.reshape(c, h * w)).reshape(-1, h, w)
