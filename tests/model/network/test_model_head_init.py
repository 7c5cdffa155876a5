"""Head initialisation (``model.head_init``): the official code's inits, and what they do to the
dynamic mask logits at the start of training (expectations from the official head.py, written out
here, not read from our modules)."""

from __future__ import annotations

import math

import pytest
import torch

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import coco_r50_1x, load_config
from pointly.model.network.panoptic_fcn import PanopticFCN
from pointly.pointgen.base.errors import PointlyError

torch.set_num_threads(2)


def _default_std(conv: torch.nn.Conv2d) -> float:
    """std of PyTorch's default conv init: kaiming_uniform(a=√5) = U(±1/√fan_in)."""
    fan_in = conv.weight[0].numel()
    return 1.0 / math.sqrt(fan_in) / math.sqrt(3.0)


def _msra_std(conv: torch.nn.Conv2d) -> float:
    """std of c2_msra_fill: kaiming_normal(fan_out, relu) = √(2 / fan_out)."""
    fan_out = conv.weight.shape[0] * conv.weight[0, 0].numel()
    return math.sqrt(2.0 / fan_out)


def _mask_logits(model: PanopticFCN, size: int) -> torch.Tensor:
    """Dynamic thing-mask logits at init: kernels from 64 positions of P3 applied to encode_feat."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, size, size, generator=g) * 50.0  # about the spread of mean-subtracted pixels
    with torch.no_grad():
        heads = model.eval().forward_heads(x)
        kernels = model.thing_generator(heads.kernel_feats[0][0].flatten(1).t()[:64])
        return kernels @ heads.encode_feat[0].flatten(1)


@pytest.fixture(scope="module")
def r50_official():
    torch.manual_seed(0)
    return build_panoptic_fcn(coco_r50_1x())


def test_official_preset_uses_the_official_inits(r50_official):
    m = r50_official
    assert coco_r50_1x().model.head_init == "official"
    for gen in (m.thing_generator, m.stuff_generator):
        w = gen.embed_extractor.weight
        assert float(w.std()) == pytest.approx(0.01, rel=0.05)
        assert float(w.mean()) == pytest.approx(0.0, abs=1e-3)
        assert torch.count_nonzero(gen.embed_extractor.bias) == 0
    plain = [m.feature_encoder.encode_head[i] for i in range(3)] + [m.kernel_head.kernel_head[i] for i in range(3)]
    for conv in plain:
        std = float(conv.weight.std())
        assert std == pytest.approx(_default_std(conv), rel=0.05)
        assert abs(std - _msra_std(conv)) > 0.2 * _msra_std(conv)  # and clearly not msra
        bound = 1.0 / math.sqrt(conv.weight[0].numel())
        assert float(conv.weight.abs().max()) <= bound  # uniform, inside PyTorch's bound


def test_official_init_keeps_r50_mask_logits_near_zero(r50_official):
    logits = _mask_logits(r50_official, 256)
    assert float(logits.std()) < 0.1
    assert float((logits.abs() > 5).float().mean()) == 0.0


def test_msra_init_saturates_r50_mask_logits():
    torch.manual_seed(0)
    model = build_panoptic_fcn(load_config("coco_r50_1x", ["model.head_init=msra"]))
    w = model.thing_generator.embed_extractor.weight
    assert float(w.std()) == pytest.approx(_msra_std(model.thing_generator.embed_extractor), rel=0.05)
    logits = _mask_logits(model, 256)
    assert float(logits.std()) > 1.0
    assert float((logits.abs() > 5).float().mean()) > 0.5


def test_head_init_is_checked():
    with pytest.raises(PointlyError, match="head_init"):
        load_config("synthetic_small", ["model.head_init=xavier"])


def test_every_preset_starts_the_heads_from_the_official_init():
    """synthetic_small included: three paired seeds under AdamW put msra 2.0 PQ below (undecided)
    and 7.6 stuff PQ below on every seed (docs/training.md), so it follows the paper."""
    for name in ("synthetic_small", "coco_r50_1x", "coco_r50_3x", "coco_r50_512_3x"):
        assert load_config(name, []).model.head_init == "official", name
