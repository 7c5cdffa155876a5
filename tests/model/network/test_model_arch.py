"""Architecture: parameter count, official key names (spec §4.1) through the rename table,
CoordConv order, MSRA stride layout, head output shapes."""

from __future__ import annotations

import pytest
import torch

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import coco_r50_1x, synthetic_small
from pointly.model.network.backbone import official_to_pointly_key
from pointly.model.network.heads import coord_features

torch.set_num_threads(2)


@pytest.fixture(scope="module")
def r50():
    return build_panoptic_fcn(coco_r50_1x())


def official_r50_keys() -> dict[str, tuple]:
    """The official checkpoint's keys and shapes, written out from spec §4.1 (not from our model)."""
    keys: dict[str, tuple] = {}

    def norm(prefix: str, c: int) -> None:
        for n in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.norm.{n}"] = (c,)

    keys["backbone.bottom_up.stem.conv1.weight"] = (64, 3, 7, 7)
    norm("backbone.bottom_up.stem.conv1", 64)
    c_in = 64
    for stage, blocks, width in ((2, 3, 64), (3, 4, 128), (4, 6, 256), (5, 3, 512)):
        for b in range(blocks):
            p = f"backbone.bottom_up.res{stage}.{b}"
            keys[f"{p}.conv1.weight"] = (width, c_in, 1, 1)
            norm(f"{p}.conv1", width)
            keys[f"{p}.conv2.weight"] = (width, width, 3, 3)
            norm(f"{p}.conv2", width)
            keys[f"{p}.conv3.weight"] = (4 * width, width, 1, 1)
            norm(f"{p}.conv3", 4 * width)
            if b == 0:
                keys[f"{p}.shortcut.weight"] = (4 * width, c_in, 1, 1)
                norm(f"{p}.shortcut", 4 * width)
            c_in = 4 * width
    for k, c in zip(range(2, 6), (256, 512, 1024, 2048)):
        keys[f"backbone.fpn_lateral{k}.weight"] = (256, c, 1, 1)
        keys[f"backbone.fpn_lateral{k}.bias"] = (256,)
        keys[f"backbone.fpn_output{k}.weight"] = (256, 256, 3, 3)
        keys[f"backbone.fpn_output{k}.bias"] = (256,)
    for p in ("p6", "p7"):
        keys[f"backbone.top_block.{p}.weight"] = (256, 256, 3, 3)
        keys[f"backbone.top_block.{p}.bias"] = (256,)
    for name in ("p2.0", "p3.0", "p4.0", "p4.2", "p5.0", "p5.2", "p5.4"):
        keys[f"semantic_fpn.{name}.weight"] = (256, 256, 3, 3)
        keys[f"semantic_fpn.{name}.norm.weight"] = (256,)
        keys[f"semantic_fpn.{name}.norm.bias"] = (256,)
    for i in (1, 2, 3):
        p = f"position_head.position_head.position_head_head_{i}"
        keys[f"{p}.offset_mask_conv.weight"] = (27, 256, 3, 3)
        keys[f"{p}.offset_mask_conv.bias"] = (27,)
        keys[f"{p}.dcnv2.weight"] = (256, 256, 3, 3)
        keys[f"{p}.dcnv2.norm.weight"] = (256,)
        keys[f"{p}.dcnv2.norm.bias"] = (256,)
        p = f"kernel_head.kernel_head.kernel_head_head_{i}"
        keys[f"{p}.weight"] = (256, 258 if i == 1 else 256, 3, 3)
        keys[f"{p}.norm.weight"] = (256,)
        keys[f"{p}.norm.bias"] = (256,)
        p = f"feature_encoder.encode_head.encode_head_head_{i}"
        keys[f"{p}.weight"] = (64, 258 if i == 1 else 64, 3, 3)
        keys[f"{p}.bias"] = (64,)
    keys["position_head.out_inst.weight"] = (80, 256, 3, 3)
    keys["position_head.out_inst.bias"] = (80,)
    keys["position_head.out_sem.weight"] = (54, 256, 3, 3)
    keys["position_head.out_sem.bias"] = (54,)
    keys["kernel_head.out_conv.weight"] = (256, 256, 3, 3)
    keys["kernel_head.out_conv.bias"] = (256,)
    for g in ("thing_generator", "stuff_generator"):
        keys[f"{g}.embed_extractor.weight"] = (64, 256, 1, 1)
        keys[f"{g}.embed_extractor.bias"] = (64,)
    return keys


def test_r50_parameter_count_and_entries(r50):
    n = sum(p.numel() for p in r50.parameters())
    assert round(n / 1e6, 1) == 37.0  # spec §1: 37.0M
    assert len(r50.state_dict()) == 346  # spec §1: 346 state-dict entries


def test_official_keys_map_one_to_one(r50):
    official = official_r50_keys()
    assert len(official) == 346
    ours = {k: tuple(v.shape) for k, v in r50.state_dict().items()}
    mapped = {official_to_pointly_key(k): shape for k, shape in official.items()}
    assert len(mapped) == len(official)  # the rename is injective
    assert mapped == ours


def test_msra_stride_in_1x1(r50):
    trunk = r50.backbone.bottom_up
    for layer in (trunk.layer2, trunk.layer3, trunk.layer4):
        assert layer[0].conv1.stride == (2, 2) and layer[0].conv2.stride == (1, 1)
    assert trunk.layer1[0].conv1.stride == (1, 1)
    # frozen: stem + res2 (FREEZE_AT=2)
    assert not trunk.conv1.weight.requires_grad and not trunk.layer1[0].conv1.weight.requires_grad
    assert trunk.layer2[0].conv1.weight.requires_grad


def test_coordconv_row_first():
    x = torch.zeros(1, 1, 3, 5)
    out = coord_features(x)
    assert out.shape == (1, 3, 3, 5)
    # channel 1 = row (vertical) coordinate: constant along a row, -1 at the top, 1 at the bottom
    torch.testing.assert_close(out[0, 1], torch.tensor([-1.0, 0.0, 1.0]).view(3, 1).expand(3, 5))
    torch.testing.assert_close(out[0, 2], torch.linspace(-1, 1, 5).view(1, 5).expand(3, 5))


def test_forward_heads_shapes():
    cfg = synthetic_small()
    model = build_panoptic_fcn(cfg).eval()
    batch = torch.randn(2, 3, 128, 160)
    with torch.no_grad():
        out = model.forward_heads(batch)
    assert out.encode_feat.shape == (2, cfg.model.feature_encoder.channels, 32, 40)
    assert (out.encode_feat >= 0).all()  # final ReLU
    sizes = [(16, 20), (8, 10), (4, 5), (2, 3), (1, 2)]
    for lvl, (h, w) in enumerate(sizes):
        assert out.center_logits[lvl].shape == (2, cfg.model.thing.num_classes, h, w)
        assert out.region_logits[lvl].shape == (2, cfg.model.stuff.num_classes, h, w)
        assert out.kernel_feats[lvl].shape == (2, cfg.model.kernel_head.channels, h, w)


@pytest.mark.parametrize("depth", [18, 50])
def test_folded_frozen_bn_trunk_equals_the_module_forward(depth):
    """Inference folds every FrozenBN into its conv; the features must equal the layer-by-layer
    forward (autograd on) with non-trivial BN statistics, MSRA stride layout included."""
    from pointly.model.network.backbone import ResNetTrunk

    trunk = ResNetTrunk(depth, stride_in_1x1=True).eval()
    g = torch.Generator().manual_seed(depth)
    with torch.no_grad():
        for m in trunk.modules():
            if hasattr(m, "running_var"):
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
    x = torch.randn(2, 3, 70, 90, generator=g)
    reference = trunk(x)  # grad enabled: the unfolded module-by-module path
    with torch.no_grad():
        folded = trunk(x)
    assert [f.shape for f in folded] == [r.shape for r in reference]
    for r, f in zip(reference, folded):
        torch.testing.assert_close(f, r.detach(), rtol=1e-4, atol=1e-5 * float(r.abs().max()))


def test_cpu_inference_layout_does_not_change_the_heads():
    """Channels-last inference with the sampled DCNv2 gives the heads of the NCHW / torchvision run."""
    torch.manual_seed(0)
    cfg = coco_r50_1x()
    cfg.model.backbone.depth = 18
    model = build_panoptic_fcn(cfg).eval()
    batch = torch.randn(1, 3, 96, 128)
    with torch.no_grad():
        fast = model.forward_heads(batch)
        model.cpu_channels_last = False
        for m in model.modules():
            if hasattr(m, "impl"):
                m.impl = "torchvision"
        slow = model.forward_heads(batch)
    pairs = (
        [(fast.encode_feat, slow.encode_feat)]
        + list(zip(fast.center_logits, slow.center_logits))
        + list(zip(fast.region_logits, slow.region_logits))
        + list(zip(fast.kernel_feats, slow.kernel_feats))
    )
    for a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))
