"""Modulated deformable convolution (DCNv2) for the position head, with a faster CPU path.

``torchvision.ops.deform_conv2d`` is the reference and what runs on CUDA. Its CPU kernel builds
the deformed im2col matrix in a scalar loop, which made it 19–35 % of a CPU forward and 45 % of a
CPU training step. :func:`deform_conv2d_sampled` computes the same operation from stock tensor
ops that PyTorch vectorises and parallelises on the CPU: one ``grid_sample`` reads all kernel
taps (bilinear, zero outside the map — torchvision's sampling rule), the modulation mask scales
the sampled columns, and one matmul with the weight finishes the convolution. We wrote it because
it is measurably better on the CPU (``benchmarks/results_inference.md``: about 1.7× faster
forward, 3× faster forward + backward per layer at 256 channels); the tests compare it, values
and all gradients, with torchvision's op. For training, :func:`modulated_deform_conv2d`
checkpoints the sampled path of layers with large maps (their columns are sampled again in the
backward instead of kept: at 800² × 2 images the R50 step's peak memory is 4.2 GiB against 5.1
GiB kept and 3.8 GiB with torchvision's kernel, at no measurable cost in time there). On CUDA
torchvision's kernel stays (not compared with this path there yet: no GPU was lent).

Offsets use torchvision's (and detectron2's) layout: channel ``2k`` is the y offset and ``2k+1``
the x offset of kernel tap ``k`` (row-major over the kernel window); the mask has one channel per
tap.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torchvision.ops import deform_conv2d as torchvision_deform_conv2d

from .choices import DEFORM_IMPLEMENTATIONS as IMPLEMENTATIONS

__all__ = ["deform_conv2d_sampled", "modulated_deform_conv2d", "IMPLEMENTATIONS"]

#: in training, a layer whose sampled columns would take more than this is checkpointed (columns
#: sampled again in the backward): large maps cost memory, small ones would only cost the recompute
#: (≈ 10 % of an R50 step at 512² × 1, whose largest columns take 38 MB)
CHECKPOINT_COLUMNS_BYTES = 64 * 2**20


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_conv2d_sampled(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Deformable convolution with torchvision's signature and semantics, built on ``grid_sample``.

    ``x`` (N, C, H, W), ``offset`` (N, 2·kh·kw, Ho, Wo), ``weight`` (Cout, C, kh, kw), optional
    ``mask`` (N, kh·kw, Ho, Wo) and ``bias`` (Cout). One offset group and ungrouped weights only
    (what Panoptic FCN uses); anything else raises ``ValueError``.
    """
    n, c, h, w = x.shape
    c_out, c_w, kh, kw = weight.shape
    taps = kh * kw
    if c_w != c:
        raise ValueError(
            f"deform_conv2d_sampled: weight has {c_w} input channels, input has {c} (grouped weights unsupported)"
        )
    if offset.shape[1] != 2 * taps:
        raise ValueError(
            f"deform_conv2d_sampled: offset needs {2 * taps} channels (one offset group), got {offset.shape[1]}"
        )
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    if offset.shape[-2:] != (ho, wo) or (mask is not None and (mask.shape[1] != taps or mask.shape[-2:] != (ho, wo))):
        raise ValueError(
            f"deform_conv2d_sampled: offset/mask must be (N, 2·{taps} / {taps}, {ho}, {wo}) for this input"
        )

    dtype, device = offset.dtype, offset.device
    # Sampling position of tap (i, j) at output (y, x): y·sh − ph + i·dh + dy, x·sw − pw + j·dw + dx.
    ky = (torch.arange(kh, device=device, dtype=dtype) * dh).repeat_interleave(kw).view(1, taps, 1, 1)
    kx = (torch.arange(kw, device=device, dtype=dtype) * dw).repeat(kh).view(1, taps, 1, 1)
    oy = (torch.arange(ho, device=device, dtype=dtype) * sh - ph).view(1, 1, ho, 1)
    ox = (torch.arange(wo, device=device, dtype=dtype) * sw - pw).view(1, 1, 1, wo)
    off = offset.view(n, taps, 2, ho, wo)
    py = off[:, :, 0] + (oy + ky)
    px = off[:, :, 1] + (ox + kx)
    # Pixel coordinate p ↦ (2p + 1) / size − 1 is exact under align_corners=False (also for size 1),
    # and grid_sample's zero padding gives out-of-map corners weight 0, as torchvision does.
    grid = torch.stack(((2 * px + 1) / w - 1, (2 * py + 1) / h - 1), dim=-1).view(n, taps * ho, wo, 2)
    # A channels-last input makes grid_sample gather all C channels of a pixel from one place
    # (about 3× faster on the CPU than the NCHW layout at 256 channels).
    cols = F.grid_sample(
        x.contiguous(memory_format=torch.channels_last),
        grid.to(x.dtype),
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )  # (N, C, taps·Ho, Wo)
    cols = cols.reshape(n, c, taps, ho * wo)
    if mask is not None:
        mask = mask.reshape(n, 1, taps, ho * wo).to(cols.dtype)
        # In place when autograd does not need the unmasked columns: a fresh C·k² × H·W tensor costs
        # more in page faults than the multiply itself (8× slower at P3 of an 800-pixel image).
        cols = cols * mask if (cols.requires_grad or mask.requires_grad) else cols.mul_(mask)
    out = torch.matmul(weight.reshape(c_out, c * taps).to(cols.dtype), cols.reshape(n, c * taps, ho * wo))
    if bias is not None:
        out = out + bias.view(1, c_out, 1).to(out.dtype)
    return out.view(n, c_out, ho, wo)


def _sampled_padded(
    x: torch.Tensor, offset: torch.Tensor, weight: torch.Tensor, mask: torch.Tensor, padding: int
) -> torch.Tensor:
    return deform_conv2d_sampled(x, offset, weight, None, padding=padding, mask=mask)


def modulated_deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    weight: torch.Tensor,
    mask: torch.Tensor,
    padding: int = 1,
    impl: str = "auto",
) -> torch.Tensor:
    """DCNv2 as the position head runs it; ``impl`` ``"auto"`` picks the sampled path on the CPU and
    torchvision's kernel elsewhere, ``"torchvision"`` / ``"sampled"`` force one."""
    if impl not in IMPLEMENTATIONS:
        raise ValueError(f"unknown deformable-conv implementation {impl!r}; choose one of {', '.join(IMPLEMENTATIONS)}")
    if impl == "sampled" or (impl == "auto" and x.device.type == "cpu"):
        columns_bytes = (
            x.shape[0]
            * x.shape[1]
            * weight.shape[2]
            * weight.shape[3]
            * offset.shape[2]
            * offset.shape[3]
            * x.element_size()
        )
        if (
            columns_bytes > CHECKPOINT_COLUMNS_BYTES
            and torch.is_grad_enabled()
            and any(t.requires_grad for t in (x, offset, weight, mask))
        ):
            # keep only the inputs for the backward and sample the columns again there: one more
            # grid_sample instead of holding two C·9 × H·W matrices until the backward
            return torch.utils.checkpoint.checkpoint(
                _sampled_padded, x, offset, weight, mask, padding, use_reentrant=False
            )
        return deform_conv2d_sampled(x, offset, weight, None, padding=padding, mask=mask)
    offset, mask = _nan_offsets_to_nan_mask(offset, mask)
    return torchvision_deform_conv2d(x, offset, weight, None, padding=(padding, padding), mask=mask)


def _nan_offsets_to_nan_mask(offset: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """torchvision's kernel reads out of bounds on a NaN offset (its range check is false for NaN;
    a map of NaN offsets crashes the process on the CPU, measured), which a diverging training run
    produces. Such a tap samples at offset 0 with a NaN mask instead, so the output is NaN exactly
    where the sampled path's is and the training loop's divergence check reports it."""
    n, c2, h, w = offset.shape
    bad = torch.isnan(offset)
    bad_tap = bad.view(n, c2 // 2, 2, h, w).any(dim=2)
    return offset.masked_fill(bad, 0.0), mask.masked_fill(bad_tap, float("nan"))
