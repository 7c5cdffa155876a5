"""The grid_sample DCNv2 path against torchvision's kernel and against plain convolution."""

from __future__ import annotations

from unittest import mock

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from pointly.model.engine import config as config_module
from pointly.model.network import deform_conv as deform_conv_module
from pointly.model.network.deform_conv import IMPLEMENTATIONS, deform_conv2d_sampled, modulated_deform_conv2d


def _inputs(n, c, h, w, c_out, k, stride, pad, dil, scale, seed=0):
    g = torch.Generator().manual_seed(seed)
    kh, kw = k
    ho = (h + 2 * pad[0] - dil[0] * (kh - 1) - 1) // stride[0] + 1
    wo = (w + 2 * pad[1] - dil[1] * (kw - 1) - 1) // stride[1] + 1
    x = torch.randn(n, c, h, w, generator=g, dtype=torch.float64)
    offset = torch.randn(n, 2 * kh * kw, ho, wo, generator=g, dtype=torch.float64) * scale
    mask = torch.rand(n, kh * kw, ho, wo, generator=g, dtype=torch.float64)
    weight = torch.randn(c_out, c, kh, kw, generator=g, dtype=torch.float64)
    bias = torch.randn(c_out, generator=g, dtype=torch.float64)
    return x, offset, mask, weight, bias


CASES = [  # (n, c, h, w, c_out, kernel, stride, padding, dilation, offset scale)
    (1, 4, 9, 11, 3, (3, 3), (1, 1), (1, 1), (1, 1), 2.0),
    (2, 3, 8, 7, 5, (3, 3), (1, 1), (1, 1), (1, 1), 6.0),  # many samples fall off the map
    (1, 2, 10, 12, 4, (3, 2), (2, 1), (1, 0), (1, 2), 1.5),
    (2, 3, 7, 9, 2, (1, 1), (1, 1), (0, 0), (1, 1), 0.7),
    (1, 3, 1, 1, 2, (3, 3), (1, 1), (1, 1), (1, 1), 0.4),  # a 1×1 map (P7 of a tiny image)
    (1, 5, 13, 6, 3, (5, 3), (3, 2), (2, 1), (2, 1), 3.0),
]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("with_mask", [True, False])
def test_values_and_gradients_match_torchvision(case, with_mask):
    n, c, h, w, c_out, k, stride, pad, dil, scale = case
    tensors = _inputs(n, c, h, w, c_out, k, stride, pad, dil, scale)
    ours_in = [t.clone().requires_grad_() for t in tensors]
    ref_in = [t.clone().requires_grad_() for t in tensors]
    x, off, mask, weight, bias = ours_in
    ours = deform_conv2d_sampled(
        x, off, weight, bias, stride=stride, padding=pad, dilation=dil, mask=mask if with_mask else None
    )
    x2, off2, mask2, weight2, bias2 = ref_in
    ref = tv_deform_conv2d(
        x2, off2, weight2, bias2, stride=stride, padding=pad, dilation=dil, mask=mask2 if with_mask else None
    )
    assert ours.shape == ref.shape
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    upstream = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    names = ["input", "offset", "mask", "weight", "bias"]
    for name, a, b in zip(names, ours_in, ref_in):
        if name == "mask" and not with_mask:
            continue
        # Offsets sitting exactly on integer coordinates have a kinked bilinear weight; random float64
        # offsets never do, so the one-sided derivatives agree.
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-7, msg=f"gradient of {name}")


def test_zero_offsets_and_unit_mask_are_a_plain_convolution():
    x, off, _, weight, bias = _inputs(2, 3, 8, 9, 4, (3, 3), (1, 1), (1, 1), (1, 1), 0.0)
    out = deform_conv2d_sampled(
        x, off.zero_(), weight, bias, padding=1, mask=torch.ones(2, 9, 8, 9, dtype=torch.float64)
    )
    torch.testing.assert_close(out, F.conv2d(x, weight, bias, padding=1))


def test_integer_offset_shifts_the_input():
    """Every tap moved one pixel right = a convolution whose zero padding moved from left to right."""
    x, off, _, weight, _ = _inputs(1, 2, 6, 7, 3, (3, 3), (1, 1), (1, 1), (1, 1), 0.0)
    off = torch.zeros_like(off)
    off[:, 1::2] = 1.0  # x offsets of all nine taps
    out = deform_conv2d_sampled(x, off, weight, None, padding=1)
    torch.testing.assert_close(out, F.conv2d(F.pad(x, (0, 2, 1, 1)), weight, None))


def test_float32_channels_last_input_matches_torchvision_with_and_without_grad():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(1, 32, 12, 15, generator=g).contiguous(memory_format=torch.channels_last)
    off = torch.randn(1, 18, 12, 15, generator=g) * 2
    mask = torch.rand(1, 9, 12, 15, generator=g)
    weight = torch.randn(16, 32, 3, 3, generator=g) * 0.1
    expected = tv_deform_conv2d(x.contiguous(), off, weight, None, padding=(1, 1), mask=mask)
    torch.testing.assert_close(
        deform_conv2d_sampled(x, off, weight, None, padding=1, mask=mask), expected, rtol=1e-4, atol=1e-4
    )
    with torch.no_grad():  # the in-place masking path
        torch.testing.assert_close(
            deform_conv2d_sampled(x, off, weight, None, padding=1, mask=mask), expected, rtol=1e-4, atol=1e-4
        )


def test_dispatch_and_choices():
    x, off, mask, weight, _ = _inputs(1, 2, 5, 5, 2, (3, 3), (1, 1), (1, 1), (1, 1), 1.0)
    for impl in ("auto", "sampled", "torchvision"):
        torch.testing.assert_close(
            modulated_deform_conv2d(x, off, weight, mask, impl=impl),
            tv_deform_conv2d(x, off, weight, None, padding=(1, 1), mask=mask),
        )
    with pytest.raises(ValueError, match="unknown deformable-conv implementation"):
        modulated_deform_conv2d(x, off, weight, mask, impl="fast")
    assert config_module._CHOICES["model.position_head.deform_impl"] == IMPLEMENTATIONS


def test_unsupported_layouts_are_refused():
    x, off, mask, weight, _ = _inputs(1, 4, 5, 5, 2, (3, 3), (1, 1), (1, 1), (1, 1), 1.0)
    with pytest.raises(ValueError, match="grouped"):
        deform_conv2d_sampled(x, off, weight[:, :2], None, padding=1, mask=mask)
    with pytest.raises(ValueError, match="one offset group"):
        deform_conv2d_sampled(x, torch.cat([off, off], 1), weight, None, padding=1, mask=mask)


def test_training_path_is_checkpointed_and_matches_torchvision_gradients():
    """The dispatcher's training path (checkpointed: columns sampled again in the backward) gives
    torchvision's values and gradients, and keeps no column-sized tensor for the backward."""
    x, off, mask, weight, _ = _inputs(1, 6, 9, 10, 4, (3, 3), (1, 1), (1, 1), (1, 1), 2.0)
    ours_in = [t.clone().requires_grad_() for t in (x, off, mask, weight)]
    ref_in = [t.clone().requires_grad_() for t in (x, off, mask, weight)]
    saved: list[int] = []

    def pack(t):
        saved.append(t.numel())
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        mock.patch.object(deform_conv_module, "CHECKPOINT_COLUMNS_BYTES", 0),
    ):  # this small map too
        ours = modulated_deform_conv2d(ours_in[0], ours_in[1], ours_in[3], ours_in[2], impl="sampled")
    ref = tv_deform_conv2d(ref_in[0], ref_in[1], ref_in[3], None, padding=(1, 1), mask=ref_in[2])
    torch.testing.assert_close(ours, ref, rtol=1e-9, atol=1e-9)
    columns = 6 * 9 * 9 * 10
    assert saved and max(saved) < columns  # only the inputs (and the small grid) are kept
    upstream = torch.randn(ref.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    (ours * upstream).sum().backward()
    (ref * upstream).sum().backward()
    for a, b in zip(ours_in, ref_in):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-7, atol=1e-7)
    saved.clear()  # below the threshold the columns are kept (no recompute for small maps)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        modulated_deform_conv2d(*(t.clone().requires_grad_() for t in (x, off, weight, mask)), impl="sampled")
    assert max(saved) == columns


def test_nan_offsets_give_nan_outputs_instead_of_a_crash():
    """A diverged run's NaN offsets: torchvision's kernel alone reads out of bounds (it crashed the
    process); through the dispatcher both paths give NaN exactly at the affected positions and the
    same values elsewhere."""
    x, off, mask, weight, _ = _inputs(1, 4, 8, 9, 3, (3, 3), (1, 1), (1, 1), (1, 1), 1.5)
    off[0, 0, 2, 3] = float("nan")  # one tap's y offset at one position
    off[0, 7, 5, 5] = float("nan")  # another tap's x offset elsewhere
    off[0, :, 6, 1] = float("nan")  # every offset of a third position
    results = [modulated_deform_conv2d(x, off, weight, mask, impl=impl) for impl in ("sampled", "torchvision")]
    nan_positions = torch.zeros(8, 9, dtype=torch.bool)
    nan_positions[2, 3] = nan_positions[5, 5] = nan_positions[6, 1] = True
    for out in results:
        assert torch.equal(torch.isnan(out[0]).any(0), nan_positions)
    torch.testing.assert_close(results[0][..., ~nan_positions], results[1][..., ~nan_positions])
    everywhere = torch.full_like(off, float("nan"))
    assert torch.isnan(modulated_deform_conv2d(x, everywhere, weight, mask, impl="torchvision")).all()
