"""The network that :func:`pointly.model.engine.build.build_panoptic_fcn` builds from a config is the
one docs/panoptic_fcn_spec.md describes. Every expectation here comes from outside the code under
test: the spec, the official code's init calls written out as formulas, a hand count, or a second
computation of the same quantity (no value is recorded from an earlier run):

* initialisation by rule, one rule per module kind (spec §1 and the official ``head.py`` /
  ``backbone_utils.py``; the formulas are PyTorch's, fvcore's and detectron2's init functions),
  checked on every state-dict entry of ``synthetic_small`` with ``model.head_init`` = ``official``
  and = ``msra`` (with the DCNv2 position head) and of ``coco_r50_1x``: distribution family, bound
  and standard deviation, to within six standard errors of a sample of that size;
* determinism: the seed alone fixes the weights (same seed → bit-identical, another seed → other
  random tensors, numpy/python generators and the order of config keys or overrides play no part),
  and the construction order the builder documents, checked against a second, by-hand construction;
* state-dict names: every key maps to an official name of spec §4.1 by the renames of spec §4.2
  (written here in the other direction) and back through the converter; the head keys and shapes
  follow from spec §4.1 and the config's widths; six FPN maps P2–P7, five head levels;
* the settings the builder hands the network (against the config, and coco_r50_1x against spec §1.1);
* the loss wiring (spec §2.4–2.5): the four losses, their weights 1 and 3, which heads each loss
  reaches, the batch loss as the normaliser-weighted combination of the single-image losses (so
  also invariant to the image order), gradients on every trainable parameter;
* inference: the documented output structure and merge invariants (spec §3), and the identical
  prediction from a second network loaded from a checkpoint of the first (same weights → same
  output), for both head inits.

The R50 key mapping and parameter count are in test_model_arch.py, what the R50 head inits do to
the mask logits in test_model_head_init.py, the loss formulas in test_model_losses.py and the post-processing steps in
test_model_inference.py.
"""

from __future__ import annotations

import dataclasses
import math
import random
import re
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torch import nn

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.checkpoint import load_checkpoint, write_checkpoint
from pointly.model.engine.config import config_from_dict, config_to_dict, load_config
from pointly.model.engine.train import LOSS_NAMES
from pointly.model.network.backbone import Backbone, official_to_pointly_key
from pointly.model.network.gt import build_level_targets, full_targets
from pointly.model.network.heads import FeatureEncoder, KernelGenerator, KernelHead, PositionHead, SemanticFPN


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These networks are tiny: one thread is as fast as two on an idle machine and many times
    faster on a busy one (no OpenMP barriers waiting for a descheduled thread). Restored after."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# synthetic_small with each head init pinned (the preset's default may move); the msra case also
# takes the DCNv2 position head, the other initialisation branch
OFFICIAL = ("synthetic_small", ("model.head_init=official",))
MSRA_DEFORM = ("synthetic_small", ("model.head_init=msra", "model.position_head.deform=true"))
CASES = {"official": OFFICIAL, "msra_deform": MSRA_DEFORM}
#: the init rules also on the official R50 network: FrozenBN trunk, bottlenecks, DCNv2 at 256 channels
INIT_CASES = {**CASES, "coco_r50_1x": ("coco_r50_1x", ())}

#: spec §1 item 5 / §1.1: BIAS_VALUE of out_inst and out_sem (≈ −log((1 − π)/π) with prior π = 0.1)
CENTRE_BIAS = -2.19


def _build(case: tuple[str, tuple[str, ...]], seed: int = 0):
    name, overrides = case
    torch.manual_seed(seed)
    return build_panoptic_fcn(load_config(name, list(overrides)))


# ------------------------------------------------------------------------- initialisation rules


def _fan_in(w: torch.Tensor) -> int:
    return w[0].numel()


def _fan_out(w: torch.Tensor) -> int:
    return w.shape[0] * w[0, 0].numel()


def _kurtosis(x: torch.Tensor) -> float:
    x = x - x.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


Check = Callable[[str, dict], None]


def _normal(std: Callable[[torch.Tensor], float] | float) -> Check:
    """N(0, std²): mean, std and kurtosis (3) within six standard errors of a sample of n."""

    def check(key: str, state: dict) -> None:
        w = state[key].double().flatten()
        s, n = std(state[key]) if callable(std) else std, w.numel()
        assert abs(float(w.mean())) <= 6 * s / math.sqrt(n), key
        assert float(w.std()) == pytest.approx(s, rel=6 / math.sqrt(2 * n)), key
        assert _kurtosis(w) == pytest.approx(3.0, abs=6 * math.sqrt(24 / n)), key

    return check


def _uniform(bound: Callable[[torch.Tensor], float], weight_of: Callable[[str], str] = lambda k: k) -> Check:
    """U(±bound): inside the bound; for a large sample also reaching it, std bound/√3, kurtosis 1.8
    (tolerances six standard errors; for the kurtosis the normal-theory one, which is larger)."""

    def check(key: str, state: dict) -> None:
        w = state[key].double().flatten()
        b, n = bound(state[weight_of(key)]), w.numel()
        assert float(w.abs().max()) <= b, key
        assert torch.count_nonzero(w) > 0, key
        if n >= 1000:
            assert float(w.abs().max()) >= b * (1 - 20 / n), key  # P(all below) ≈ e^-20
            assert abs(float(w.mean())) <= 6 * b / math.sqrt(3 * n), key
            assert float(w.std()) == pytest.approx(b / math.sqrt(3), rel=6 * math.sqrt(0.8) / (2 * math.sqrt(n))), key
            assert _kurtosis(w) == pytest.approx(1.8, abs=6 * math.sqrt(24 / n)), key

    return check


def _const(value: float) -> Check:
    def check(key: str, state: dict) -> None:
        assert torch.equal(state[key], torch.full_like(state[key], value)), key

    return check


def _msra_std(w: torch.Tensor) -> float:
    """fvcore c2_msra_fill = kaiming_normal(fan_out, relu): std √(2 / fan_out)."""
    return math.sqrt(2 / _fan_out(w))


def _torch_default_bound(w: torch.Tensor) -> float:
    """PyTorch's Conv2d default: kaiming_uniform(a=√5) → U(±1/√fan_in), the bias U(±1/√fan_in) too."""
    return 1 / math.sqrt(_fan_in(w))


def _c2_xavier_bound(w: torch.Tensor) -> float:
    """fvcore c2_xavier_fill = kaiming_uniform(a=1): gain 1, U(±√(3 / fan_in))."""
    return math.sqrt(3 / _fan_in(w))


def _dcn_bound(w: torch.Tensor) -> float:
    """detectron2 ModulatedDeformConv: kaiming_uniform(nonlinearity=relu): U(±√(6 / fan_in))."""
    return math.sqrt(6 / _fan_in(w))


def _bias_to_weight(key: str) -> str:
    return key[: -len("bias")] + "weight"


def init_rules(head_init: str) -> list[tuple[str, Check]]:
    """(key regex, check) for every state-dict entry, from spec §1 and the official code:

    * ResNet trunk (random, no ImageNet file): torchvision's init, kaiming_normal(fan_out, relu)
      convs, norm weight 1 / bias 0 (FrozenBN buffers: mean 0, var 1);
    * FPN laterals, outputs, P6/P7: c2_xavier_fill, bias 0 (detectron2 FPN, LastLevelP6P7fromP5);
    * semantic FPN: c2_msra_fill, GN 1/0 (spec §1 item 3);
    * feature encoder (spec §1 item 4), position-head and kernel-head plain convs: PyTorch's
      default for ``official``, c2_msra_fill for ``msra`` (bias 0);
    * DCNv2 (spec §1 item 5): the offset/mask conv at PyTorch's default, the deformable weight
      detectron2's kaiming_uniform(relu); neither depends on head_init;
    * out_inst / out_sem: N(0, 0.01), bias −2.19; kernel out_conv: N(0, 0.01), bias 0 (spec §1 item 5);
    * generators (spec §1 item 6): N(0, 0.01), bias 0 (``official``) or c2_msra_fill (``msra``).
    """
    plain_weight = _uniform(_torch_default_bound) if head_init == "official" else _normal(_msra_std)
    plain_bias = _uniform(_torch_default_bound, _bias_to_weight) if head_init == "official" else _const(0.0)
    generator = _normal(0.01) if head_init == "official" else _normal(_msra_std)
    trunk_conv = r"backbone\.bottom_up\.(conv1|layer\d\.\d+\.(conv\d|downsample\.0))"
    trunk_norm = r"backbone\.bottom_up\.(bn1|layer\d\.\d+\.(bn\d|downsample\.1))"
    fpn = r"backbone\.fpn\.((inner|layer)_blocks\.\d\.0|extra_blocks\.p[67])"
    pos = r"position_head\.position_head\.position_head_head_\d"
    gn_conv = rf"(semantic_fpn\.p\d\.\d|kernel_head\.kernel_head\.kernel_head_head_\d|{pos}(\.dcnv2)?)"
    return [
        (rf"{trunk_conv}\.weight", _normal(_msra_std)),
        (rf"{trunk_norm}\.(weight|running_var)", _const(1.0)),
        (rf"{trunk_norm}\.(bias|running_mean)", _const(0.0)),
        (rf"{fpn}\.weight", _uniform(_c2_xavier_bound)),
        (rf"{fpn}\.bias", _const(0.0)),
        (r"semantic_fpn\.p\d\.\d\.weight", _normal(_msra_std)),
        (rf"{gn_conv}\.norm\.weight", _const(1.0)),
        (rf"{gn_conv}\.norm\.bias", _const(0.0)),
        (r"feature_encoder\.encode_head\.encode_head_head_\d\.weight", plain_weight),
        (r"feature_encoder\.encode_head\.encode_head_head_\d\.bias", plain_bias),
        (rf"{pos}\.weight", plain_weight),
        (rf"{pos}\.offset_mask_conv\.weight", _uniform(_torch_default_bound)),
        (rf"{pos}\.offset_mask_conv\.bias", _uniform(_torch_default_bound, _bias_to_weight)),
        (rf"{pos}\.dcnv2\.weight", _uniform(_dcn_bound)),
        (r"position_head\.out_(inst|sem)\.weight", _normal(0.01)),
        (r"position_head\.out_(inst|sem)\.bias", _const(CENTRE_BIAS)),
        (r"kernel_head\.kernel_head\.kernel_head_head_\d\.weight", plain_weight),
        (r"kernel_head\.out_conv\.weight", _normal(0.01)),
        (r"kernel_head\.out_conv\.bias", _const(0.0)),
        (r"(thing|stuff)_generator\.embed_extractor\.weight", generator),
        (r"(thing|stuff)_generator\.embed_extractor\.bias", _const(0.0)),
    ]


@pytest.mark.parametrize("case", INIT_CASES)
def test_every_entry_starts_by_its_rule(case):
    model = _build(INIT_CASES[case])
    state = model.state_dict()
    rules = init_rules(model.cfg.model.head_init)
    for key in state:
        matching = [check for pattern, check in rules if re.fullmatch(pattern, key)]
        assert len(matching) == 1, f"{key}: {len(matching)} rules"
        matching[0](key, state)
    # the rules tell the two inits apart where they should differ (spec §1 item 6, measured there)
    w = state["thing_generator.embed_extractor.weight"]
    assert (float(w.std()) < 0.02) == (model.cfg.model.head_init == "official")


# ------------------------------------------------------------------------------- determinism


def _assert_same_state(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for key in a:
        assert torch.equal(a[key], b[key]), key


@pytest.mark.parametrize("case", CASES)
def test_the_torch_seed_alone_fixes_the_weights(case):
    first = _build(CASES[case], seed=0).state_dict()
    np.random.seed(123)  # other generators do not take part
    random.seed(123)
    _assert_same_state(first, _build(CASES[case], seed=0).state_dict())
    other = _build(CASES[case], seed=1).state_dict()
    for key, value in first.items():
        constant = bool(value.numel() == 0 or torch.all(value == value.flatten()[0]))
        assert torch.equal(value, other[key]) == constant, key  # random entries move, constants do not


def _reverse_keys(doc):
    if isinstance(doc, dict):
        return {k: _reverse_keys(v) for k, v in reversed(list(doc.items()))}
    return doc


def test_the_order_of_config_keys_and_overrides_does_not_matter():
    name, overrides = MSRA_DEFORM
    torch.manual_seed(0)
    forward = build_panoptic_fcn(load_config(name, list(overrides)))
    torch.manual_seed(0)
    backward = build_panoptic_fcn(load_config(name, list(reversed(overrides))))
    _assert_same_state(forward.state_dict(), backward.state_dict())
    doc = config_to_dict(forward.cfg)
    cfg = config_from_dict(_reverse_keys(doc))  # as a checkpoint's or a run's saved config is read
    assert config_to_dict(cfg) == doc
    torch.manual_seed(0)
    _assert_same_state(forward.state_dict(), build_panoptic_fcn(cfg).state_dict())


@pytest.mark.parametrize("case", CASES)
def test_construction_follows_the_documented_order(case):
    """build.py: backbone, semantic FPN, feature encoder, position head, kernel head, thing
    generator, stuff generator, each drawing from torch's global generator in turn. Written out
    again here from the config, the same seed must give the same tensors."""
    model = _build(CASES[case])
    m = model.cfg.model
    torch.manual_seed(0)
    parts = {
        "backbone": Backbone(
            depth=m.backbone.depth,
            norm=m.backbone.norm,
            stride_in_1x1=m.backbone.stride_in_1x1,
            freeze_at=m.backbone.freeze_at,
            fpn_channels=m.fpn.channels,
            gn_groups=m.gn_groups,
        ),
        "semantic_fpn": SemanticFPN(in_channels=m.fpn.channels, channels=m.semantic_fpn.channels, groups=m.gn_groups),
        "feature_encoder": FeatureEncoder(
            in_channels=m.semantic_fpn.channels, channels=m.feature_encoder.channels, init=m.head_init
        ),
        "position_head": PositionHead(
            in_channels=m.fpn.channels,
            channels=m.position_head.channels,
            num_convs=m.position_head.num_convs,
            num_things=len(model.cfg.thing_ids),
            num_stuff=1 + len(model.cfg.stuff_ids),
            deform=m.position_head.deform,
            groups=m.gn_groups,
            init=m.head_init,
        ),
        "kernel_head": KernelHead(
            in_channels=m.fpn.channels,
            channels=m.kernel_head.channels,
            num_convs=m.kernel_head.num_convs,
            groups=m.gn_groups,
            init=m.head_init,
        ),
        "thing_generator": KernelGenerator(
            in_channels=m.kernel_head.channels, out_channels=m.feature_encoder.channels, init=m.head_init
        ),
        "stuff_generator": KernelGenerator(
            in_channels=m.kernel_head.channels, out_channels=m.feature_encoder.channels, init=m.head_init
        ),
    }
    by_hand = {f"{name}.{k}": v for name, part in parts.items() for k, v in part.state_dict().items()}
    state = model.state_dict()
    assert set(state) == set(by_hand)
    for key, value in state.items():
        assert torch.equal(value, by_hand[key]), key


# --------------------------------------------------------------------------- state-dict names

#: spec §4.2 read backwards: our name → the official detectron2 one (heads keep their names)
TO_OFFICIAL: list[tuple[str, Callable[[re.Match], str] | str]] = [
    (r"^backbone\.bottom_up\.conv1\.", "backbone.bottom_up.stem.conv1."),
    (r"^backbone\.bottom_up\.bn1\.", "backbone.bottom_up.stem.conv1.norm."),
    (
        r"^backbone\.bottom_up\.layer(\d)\.(\d+)\.conv(\d)\.",
        lambda g: f"backbone.bottom_up.res{int(g[1]) + 1}.{g[2]}.conv{g[3]}.",
    ),
    (
        r"^backbone\.bottom_up\.layer(\d)\.(\d+)\.bn(\d)\.",
        lambda g: f"backbone.bottom_up.res{int(g[1]) + 1}.{g[2]}.conv{g[3]}.norm.",
    ),
    (
        r"^backbone\.bottom_up\.layer(\d)\.(\d+)\.downsample\.0\.",
        lambda g: f"backbone.bottom_up.res{int(g[1]) + 1}.{g[2]}.shortcut.",
    ),
    (
        r"^backbone\.bottom_up\.layer(\d)\.(\d+)\.downsample\.1\.",
        lambda g: f"backbone.bottom_up.res{int(g[1]) + 1}.{g[2]}.shortcut.norm.",
    ),
    (r"^backbone\.fpn\.inner_blocks\.(\d)\.0\.", lambda g: f"backbone.fpn_lateral{int(g[1]) + 2}."),
    (r"^backbone\.fpn\.layer_blocks\.(\d)\.0\.", lambda g: f"backbone.fpn_output{int(g[1]) + 2}."),
    (r"^backbone\.fpn\.extra_blocks\.(p[67])\.", lambda g: f"backbone.top_block.{g[1]}."),
]

_NORM = r"norm\.(weight|bias|running_mean|running_var)"
#: the official key grammar of spec §4.1 (BasicBlocks have conv1–2, bottlenecks conv1–3)
OFFICIAL_KEYS = [
    rf"backbone\.bottom_up\.stem\.conv1\.(weight|{_NORM})",
    rf"backbone\.bottom_up\.res[2-5]\.\d+\.(conv[1-3]|shortcut)\.(weight|{_NORM})",
    r"backbone\.(fpn_lateral|fpn_output)[2-5]\.(weight|bias)",
    r"backbone\.top_block\.p[67]\.(weight|bias)",
    r"semantic_fpn\.(p2\.0|p3\.0|p4\.[02]|p5\.[024])\.(weight|norm\.(weight|bias))",
    r"position_head\.position_head\.position_head_head_\d\."
    r"(weight|norm\.(weight|bias)|offset_mask_conv\.(weight|bias)|dcnv2\.(weight|norm\.(weight|bias)))",
    r"position_head\.out_(inst|sem)\.(weight|bias)",
    r"kernel_head\.kernel_head\.kernel_head_head_\d\.(weight|norm\.(weight|bias))",
    r"kernel_head\.out_conv\.(weight|bias)",
    r"feature_encoder\.encode_head\.encode_head_head_\d\.(weight|bias)",
    r"(thing|stuff)_generator\.embed_extractor\.(weight|bias)",
]


def _to_official(key: str) -> str:
    for pattern, repl in TO_OFFICIAL:
        new, n = re.subn(pattern, repl, key)
        if n:
            return new
    return key


def expected_head_shapes(cfg) -> dict[str, tuple[int, ...]]:
    """The non-backbone entries of spec §4.1 at the config's widths: CoordConv (+2 channels) on the
    feature encoder's and the kernel head's first conv, not on the position head; GN convs without
    bias; thing channels = thing categories, stuff channels = stuff categories + "things"."""
    m = cfg.model
    fpn, sem, enc = m.fpn.channels, m.semantic_fpn.channels, m.feature_encoder.channels
    pos, ker = m.position_head.channels, m.kernel_head.channels
    things, stuff = len(cfg.thing_ids), 1 + len(cfg.stuff_ids)
    out: dict[str, tuple[int, ...]] = {}

    def gn_conv(prefix: str, c_out: int, c_in: int) -> None:
        out[f"{prefix}.weight"] = (c_out, c_in, 3, 3)
        out[f"{prefix}.norm.weight"] = out[f"{prefix}.norm.bias"] = (c_out,)

    for name in ("p2.0", "p3.0", "p4.0", "p4.2", "p5.0", "p5.2", "p5.4"):
        gn_conv(f"semantic_fpn.{name}", sem, fpn if name.endswith(".0") else sem)
    c_in = sem + 2
    for i in range(1, m.feature_encoder.num_convs + 1):
        out[f"feature_encoder.encode_head.encode_head_head_{i}.weight"] = (enc, c_in, 3, 3)
        out[f"feature_encoder.encode_head.encode_head_head_{i}.bias"] = (enc,)
        c_in = enc
    c_in = fpn
    for i in range(1, m.position_head.num_convs + 1):
        prefix = f"position_head.position_head.position_head_head_{i}"
        if m.position_head.deform:
            out[f"{prefix}.offset_mask_conv.weight"] = (27, c_in, 3, 3)
            out[f"{prefix}.offset_mask_conv.bias"] = (27,)
            gn_conv(f"{prefix}.dcnv2", pos, c_in)
        else:
            gn_conv(prefix, pos, c_in)
        c_in = pos
    for name, c_out in (("out_inst", things), ("out_sem", stuff)):
        out[f"position_head.{name}.weight"] = (c_out, pos, 3, 3)
        out[f"position_head.{name}.bias"] = (c_out,)
    c_in = fpn + 2
    for i in range(1, m.kernel_head.num_convs + 1):
        gn_conv(f"kernel_head.kernel_head.kernel_head_head_{i}", ker, c_in)
        c_in = ker
    out["kernel_head.out_conv.weight"] = (ker, ker, 3, 3)
    out["kernel_head.out_conv.bias"] = (ker,)
    for gen in ("thing_generator", "stuff_generator"):
        out[f"{gen}.embed_extractor.weight"] = (enc, ker, 1, 1)
        out[f"{gen}.embed_extractor.bias"] = (enc,)
    return out


@pytest.mark.parametrize("case", CASES)
def test_state_dict_names_are_the_official_ones(case):
    model = _build(CASES[case])
    state = model.state_dict()
    parts = {"backbone", "semantic_fpn", "feature_encoder", "position_head", "kernel_head"}
    assert {k.split(".")[0] for k in state} == parts | {"thing_generator", "stuff_generator"}
    official = [_to_official(k) for k in state]
    assert len(set(official)) == len(official)
    for ours, theirs in zip(state, official):
        assert any(re.fullmatch(p, theirs) for p in OFFICIAL_KEYS), (ours, theirs)
        assert official_to_pointly_key(theirs) == ours  # and back through the converter's renames
    heads = {k: tuple(v.shape) for k, v in state.items() if not k.startswith("backbone.")}
    assert heads == expected_head_shapes(model.cfg)
    # P2–P5 laterals and outputs, P6/P7 on top (spec §1 item 2)
    fpn = {k.rsplit(".", 1)[0] for k in official if k.startswith(("backbone.fpn_", "backbone.top_block"))}
    assert fpn == {f"backbone.fpn_{kind}{i}" for kind in ("lateral", "output") for i in range(2, 6)} | {
        "backbone.top_block.p6",
        "backbone.top_block.p7",
    }
    groups = model.cfg.model.gn_groups
    for name, module in model.named_modules():
        if isinstance(module, nn.GroupNorm) and not name.startswith("backbone."):
            assert module.num_groups == min(groups, module.num_channels), name


def test_six_pyramid_maps_and_five_head_levels():
    """P2–P7 at strides 4…128 (spec §1 item 2); the heads use P3–P7, one instance scale range and
    one smoothing pool size per level (spec §1.1, §3 step 2)."""
    model = _build(OFFICIAL).eval()
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, 128, 256))
    channels = model.cfg.model.fpn.channels
    assert [tuple(f.shape[1:]) for f in feats] == [
        (channels, 128 // s, max(256 // s, 1)) for s in (4, 8, 16, 32, 64, 128)
    ]
    assert len(model.target_settings.instance_scales) == len(model.inference_settings.pool_sizes) == 5


# ----------------------------------------------------------------------------------- settings


def test_the_builder_attaches_the_config_and_the_settings():
    model = _build(OFFICIAL)
    cfg = model.cfg
    assert cfg.model.head_init == "official"
    assert model.input_settings.min_size_test == cfg.input.min_size_test
    assert model.input_settings.pixel_mean == tuple(cfg.input.pixel_mean)
    assert model.target_settings.instance_scales == tuple(tuple(s) for s in cfg.model.instance_scales)
    assert model.loss_settings.pos_num == cfg.model.thing.pos_num
    assert model.inference_settings.thing_ids == tuple(cfg.thing_ids)
    assert model.inference_settings.stuff_ids == tuple(cfg.stuff_ids)
    assert model.inference_settings.stuff_area_limit == cfg.inference.stuff_area_limit
    assert model.cpu_channels_last == cfg.model.cpu_channels_last


def test_coco_r50_1x_is_wired_with_the_spec_defaults():
    """The official R50 1x values of spec §1.1 (written out here) reach the network's settings."""
    model = build_panoptic_fcn(load_config("coco_r50_1x"))
    assert dataclasses.asdict(model.input_settings) == {
        "pixel_mean": (123.675, 116.28, 103.53),
        "pixel_std": (1.0, 1.0, 1.0),
        "format": "BGR",
        "size_divisibility": 32,
        "min_size_test": 800,
        "max_size_test": 1333,
    }
    t = model.target_settings
    assert (t.num_things, t.num_stuff, t.min_overlap, t.gaussian_sigma) == (80, 54, 0.7, 3.0)
    assert t.instance_scales == ((1, 64), (32, 128), (64, 256), (128, 512), (256, 2048))
    s = model.loss_settings
    assert (s.position_weight, s.segment_weight, s.focal_alpha, s.focal_gamma, s.dice_eps, s.pos_num) == (
        1.0,
        3.0,
        0.25,
        2.0,
        1e-8,
        7,
    )
    assert not s.mask_centre_loss  # the official centre loss is never masked
    i = model.inference_settings
    assert (i.num_stuff, i.thing_thres, i.stuff_thres, i.top_num, i.pool_sizes) == (
        54,
        0.05,
        0.05,
        100,
        (3, 3, 3, 5, 5),
    )
    assert (i.similar_thres, i.class_specific, i.inst_thres, i.score_floor) == (0.9, True, 0.4, 0.05)
    assert (i.overlap_thresh, i.stuff_area_limit, i.inst_thresh) == (0.5, 4096, 0.2)
    # spec §1 item 5: the position head is 3 DCNv2 layers, GN(32)
    layers = list(model.position_head.position_head.children())
    assert len(layers) == 3 and all(hasattr(layer, "offset_mask_conv") for layer in layers)
    assert all(layer.dcnv2.norm.num_groups == 32 for layer in layers)


# -------------------------------------------------------------------------------------- losses

H, W = 96, 128  # a multiple of 32: one image pads to the same grid alone and in a batch


def _sample(cfg, things, extra_stuff: bool, seed: int):
    """A noise image with two stuff halves (an optional third stuff band on the right) and square
    things ``(y, x, side, thing class)``."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    lm = np.zeros((H, W), np.int32)
    lm[: H // 2] = 1
    lm[H // 2 :] = 2
    segs = [
        {"id": 1, "category_id": cfg.stuff_ids[0], "iscrowd": 0, "bbox": [0, 0, W, H // 2]},
        {"id": 2, "category_id": cfg.stuff_ids[1], "iscrowd": 0, "bbox": [0, H // 2, W, H - H // 2]},
    ]
    if extra_stuff:
        lm[:, 104:] = 9
        segs.append({"id": 9, "category_id": cfg.stuff_ids[2], "iscrowd": 0, "bbox": [104, 0, W - 104, H]})
    for j, (y, x, s, c) in enumerate(things):
        lm[y : y + s, x : x + s] = 10 + j
        segs.append({"id": 10 + j, "category_id": cfg.thing_ids[c], "iscrowd": 0, "bbox": [x, y, s, s]})
    thing_index = {c: i for i, c in enumerate(cfg.thing_ids)}
    stuff_index = {c: i + 1 for i, c in enumerate(cfg.stuff_ids)}
    image = torch.from_numpy(rgb).permute(2, 0, 1).contiguous()
    return image, full_targets(lm, segs, thing_index, stuff_index)


#: synthetic_small's INSTANCE_SCALES are P3 [1, 32], P4 [16, 64], P5 [32, 128], P6 [64, 256],
#: P7 [128, 512], both bounds inclusive (spec §1.1): sides 30 and 20 sit on P3 and P4, 40 and 48
#: on P4 and P5, so image A has 6 (image, level, instance) assignments and image B 2
THINGS_A = [(10, 12, 30, 0), (50, 60, 20, 1), (20, 70, 40, 2)]
THINGS_B = [(30, 40, 48, 3)]
ASSIGN_A, ASSIGN_B = 6, 2


@pytest.fixture(scope="module")
def small():
    return _build(OFFICIAL)


@pytest.fixture(scope="module")
def samples(small):
    return _sample(small.cfg, THINGS_A, False, 0), _sample(small.cfg, THINGS_B, True, 1)


def _losses(model, samples) -> dict[str, torch.Tensor]:
    return model([s[0] for s in samples], [s[1] for s in samples])


def _stuff_entries(model, sample) -> int:
    """The (level, class) stuff entries of one image: the seg_st normaliser (spec §2.5)."""
    shapes = [(H // s, W // s) for s in (8, 16, 32)] + [(2, 2), (1, 1)]
    levels = build_level_targets([sample[1]], shapes, model.target_settings)
    return sum(int(lv.stuff_present[0].numel()) for lv in levels)


def test_loss_names_weights_and_batch_normalisers(small, samples):
    """Spec §2.5: the four losses; weights 1 (position) and 3 (segmentation); pos_th and seg_th
    divided by the (image, level, instance) count, pos_st by the batch size, seg_st by the stuff
    entry count, so a batch's loss is that weighting of its images' losses (and the image order
    does not matter)."""
    a, b = samples
    with torch.no_grad():
        both = _losses(small, [a, b])
        swapped = _losses(small, [b, a])
        alone_a = _losses(small, [a])
        alone_b = _losses(small, [b])
        weighted = small.loss_settings
        small.loss_settings = dataclasses.replace(weighted, position_weight=1.0, segment_weight=1.0)
        try:
            plain = _losses(small, [a, b])
        finally:
            small.loss_settings = weighted
    assert set(both) == set(LOSS_NAMES) == {"loss_pos_th", "loss_pos_st", "loss_seg_th", "loss_seg_st"}
    for name, value in both.items():
        assert value.ndim == 0 and math.isfinite(float(value)) and float(value) > 0, name
    assert (small.loss_settings.position_weight, small.loss_settings.segment_weight) == (1.0, 3.0)
    for name, weight in (("loss_pos_th", 1.0), ("loss_pos_st", 1.0), ("loss_seg_th", 3.0), ("loss_seg_st", 3.0)):
        torch.testing.assert_close(both[name], weight * plain[name], rtol=1e-6, atol=0)
    n_a, n_b = _stuff_entries(small, a), _stuff_entries(small, b)
    assert n_a != n_b  # image B's third stuff class: the stuff normaliser is not the batch size
    expected = {
        "loss_pos_th": (ASSIGN_A * alone_a["loss_pos_th"] + ASSIGN_B * alone_b["loss_pos_th"]) / (ASSIGN_A + ASSIGN_B),
        "loss_pos_st": (alone_a["loss_pos_st"] + alone_b["loss_pos_st"]) / 2,
        "loss_seg_th": (ASSIGN_A * alone_a["loss_seg_th"] + ASSIGN_B * alone_b["loss_seg_th"]) / (ASSIGN_A + ASSIGN_B),
        "loss_seg_st": (n_a * alone_a["loss_seg_st"] + n_b * alone_b["loss_seg_st"]) / (n_a + n_b),
    }
    for name in LOSS_NAMES:
        torch.testing.assert_close(both[name], expected[name], rtol=1e-4, atol=0)
        torch.testing.assert_close(swapped[name], both[name], rtol=1e-4, atol=0)


#: a probe parameter per part, and the losses that must reach it (spec §2.4–2.5): the focal losses
#: read only their own position-head output; the thing dice reads the kernel features, encode_feat,
#: the thing generator and, through the live (not detached) top-k weights, the centre output; the
#: stuff dice pools kernel features over the ground-truth region, so it never reaches the position
#: head; P2 feeds only the semantic FPN, P3 feeds every head
REACHES = {
    "backbone.fpn.layer_blocks.0.0.weight": {"loss_seg_th", "loss_seg_st"},
    "backbone.fpn.layer_blocks.1.0.weight": set(LOSS_NAMES),
    "semantic_fpn.p2.0.weight": {"loss_seg_th", "loss_seg_st"},
    "feature_encoder.encode_head.encode_head_head_3.weight": {"loss_seg_th", "loss_seg_st"},
    "position_head.position_head.position_head_head_1.weight": {"loss_pos_th", "loss_pos_st", "loss_seg_th"},
    "position_head.out_inst.weight": {"loss_pos_th", "loss_seg_th"},
    "position_head.out_sem.weight": {"loss_pos_st"},
    "kernel_head.out_conv.weight": {"loss_seg_th", "loss_seg_st"},
    "thing_generator.embed_extractor.weight": {"loss_seg_th"},
    "stuff_generator.embed_extractor.weight": {"loss_seg_st"},
}


def test_each_loss_reaches_the_parts_it_reads_and_the_sum_trains_everything(small, samples):
    model = small.train()
    losses = _losses(model, list(samples))
    params = dict(model.named_parameters())
    probes = [params[name] for name in REACHES]
    for loss_name in LOSS_NAMES:
        grads = torch.autograd.grad(losses[loss_name], probes, retain_graph=True, allow_unused=True)
        reached = {name for name, g in zip(REACHES, grads) if g is not None and torch.count_nonzero(g) > 0}
        assert reached == {name for name, want in REACHES.items() if loss_name in want}, loss_name
    trainable = [(n, p) for n, p in params.items() if p.requires_grad]
    assert len(trainable) == len(params)  # synthetic_small freezes nothing (freeze_at 0)
    grads = torch.autograd.grad(sum(losses.values()), [p for _, p in trainable], allow_unused=True)
    for (name, _), g in zip(trainable, grads):
        assert g is not None and bool(torch.isfinite(g).all()) and torch.count_nonzero(g) > 0, name


# ----------------------------------------------------------------------------------- inference


def _same_prediction(a, b) -> bool:
    return np.array_equal(a.label_map, b.label_map) and a.segments == b.segments


@pytest.mark.parametrize("case", CASES)
def test_predictions_are_well_formed_repeatable_and_survive_a_checkpoint(case, tmp_path):
    model = _build(CASES[case])
    with torch.no_grad():  # confident centres, so that things reach the merge
        model.position_head.out_inst.bias.fill_(1.0)
    cfg = model.cfg
    rgb = np.random.default_rng(2).integers(0, 255, (100, 140, 3), dtype=np.uint8)
    (first,) = model.predict([rgb])
    assert model.training  # predict restores the mode
    # spec §3: a label map at the input size, one segment per id, dataset category ids, things
    # scored at least INST_THRESH, stuff with at least STUFF_AREA_LIMIT free pixels
    assert first.label_map.shape == rgb.shape[:2] and first.label_map.dtype == np.int32
    ids = [s["id"] for s in first.segments]
    assert first.segments and len(set(ids)) == len(ids)
    assert set(np.unique(first.label_map).tolist()) - {0} == set(ids)
    for s in first.segments:
        assert s["category_id"] in (cfg.thing_ids if s["isthing"] else cfg.stuff_ids)
        assert s["area"] == int((first.label_map == s["id"]).sum()) > 0
        if s["isthing"]:
            assert cfg.inference.inst_thresh <= s["score"] <= 1.0
        else:
            assert s["area"] >= cfg.inference.stuff_area_limit and 0.0 < s["score"] <= 1.0

    path = tmp_path / "model_final.pth"
    write_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "pointly_checkpoint": 1}, path)
    torch.manual_seed(12345)  # the loader's fresh network starts from other weights than the saved ones
    loaded = load_checkpoint(path)
    assert not loaded.training
    assert config_to_dict(loaded.cfg) == config_to_dict(cfg)
    _assert_same_state(model.state_dict(), loaded.state_dict())
    (again,) = loaded.predict([rgb])  # a second run on the same weights: the same result
    assert _same_prediction(first, again)
