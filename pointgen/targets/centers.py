"""Object centres and their Gaussian heatmaps, shared by full- and point-supervised training.

Panoptic FCN's position head learns a heatmap with a Gaussian peak at each thing's centre
(docs/model.md, Eq. (1)). With full masks the centre is the *mass centre* of the mask; with points
it is the *simulated centre*, the mean of the points (docs/point-supervision.md). Both, and the
CenterNet radius and Gaussian kernel, live here so that :mod:`pointly.model.network.gt` and
:mod:`pointly.pointgen.targets.build` share one implementation.

Coordinates are pixel indices ``(x, y)`` (x = column, y = row) of the grid the centre is computed on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

import numpy as np

try:  # torch is a dependency, but keep this module importable without it
    import torch
except ImportError:  # pragma: no cover
    torch = None  # type: ignore[assignment]

ArrayLike = Union[np.ndarray, "torch.Tensor"]


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> int:
    """CenterNet's Gaussian radius for a ``height × width`` box (``min_overlap`` 0.7, Panoptic FCN's value).

    The three roots solve for the largest shift of a box's corners that keeps IoU ≥ ``min_overlap``
    in three configurations; as in CenterNet (and Panoptic FCN's copy) each root is divided by 2
    rather than 2a. The result is ``int(max(0, min(r1, r2, r3)))``.
    """
    h, w, m = float(height), float(width), float(min_overlap)
    b1 = h + w
    c1 = w * h * (1 - m) / (1 + m)
    r1 = (b1 + math.sqrt(max(b1 * b1 - 4 * c1, 0.0))) / 2
    b2 = 2 * (h + w)
    c2 = (1 - m) * w * h
    r2 = (b2 + math.sqrt(max(b2 * b2 - 16 * c2, 0.0))) / 2
    a3 = 4 * m
    b3 = -2 * m * (h + w)
    c3 = (m - 1) * w * h
    r3 = (b3 + math.sqrt(max(b3 * b3 - 4 * a3 * c3, 0.0))) / 2
    return int(max(0.0, min(r1, r2, r3)))


def gaussian_kernel(radius: int, sigma_factor: float = 3.0) -> np.ndarray:
    """A ``(2r+1) × (2r+1)`` Gaussian with peak 1 and σ = (2r+1)/``sigma_factor`` (GAUSSIAN_SIGMA 3).

    Values below ``eps · max`` are set to 0, as CenterNet does.
    """
    diameter = 2 * radius + 1
    sigma = diameter / sigma_factor
    y, x = np.ogrid[-radius : radius + 1, -radius : radius + 1]
    kernel = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    kernel[kernel < np.finfo(kernel.dtype).eps * kernel.max()] = 0
    return kernel


def draw_gaussian(heatmap: ArrayLike, cx: int, cy: int, radius: int, sigma_factor: float = 3.0) -> ArrayLike:
    """Max-merge a Gaussian peak centred at integer ``(cx, cy)`` into a 2-D ``heatmap`` in place.

    Works on numpy arrays and torch tensors; the kernel is clipped at the borders. Returns
    ``heatmap`` for convenience.
    """
    kernel = gaussian_kernel(int(radius), sigma_factor)
    height, width = heatmap.shape[-2:]
    cx, cy, r = int(cx), int(cy), int(radius)
    left, right = min(cx, r), min(width - cx, r + 1)
    top, bottom = min(cy, r), min(height - cy, r + 1)
    if left + right <= 0 or top + bottom <= 0 or cx < 0 or cy < 0 or cx >= width or cy >= height:
        return heatmap
    patch = kernel[r - top : r + bottom, r - left : r + right]
    region = heatmap[cy - top : cy + bottom, cx - left : cx + right]
    if torch is not None and isinstance(heatmap, torch.Tensor):
        k = torch.as_tensor(patch, dtype=heatmap.dtype, device=heatmap.device)
        torch.maximum(region, k, out=region)
    else:
        np.maximum(region, patch.astype(region.dtype, copy=False), out=region)
    return heatmap


def mass_center(mask: ArrayLike) -> tuple[float, float]:
    """Unweighted mean ``(x, y)`` of the pixels where ``mask > 0`` (the full-supervision centre).

    Raises ValueError on an empty mask (a caller bug, not a user mistake).
    """
    if torch is not None and isinstance(mask, torch.Tensor):
        ys, xs = torch.nonzero(mask > 0, as_tuple=True)
        if ys.numel() == 0:
            raise ValueError("mass_center of an empty mask")
        return float(xs.double().mean()), float(ys.double().mean())
    ys, xs = np.nonzero(np.asarray(mask) > 0)
    if ys.size == 0:
        raise ValueError("mass_center of an empty mask")
    return float(xs.mean()), float(ys.mean())


def points_center(coords: Iterable[Iterable[float]]) -> tuple[float, float]:
    """The simulated centre of a segment: the mean ``(x, y)`` of its points (docs/point-supervision.md)."""
    arr = np.asarray(list(coords), dtype=np.float64).reshape(-1, 2)
    if arr.shape[0] == 0:
        raise ValueError("points_center of no points")
    return float(arr[:, 0].mean()), float(arr[:, 1].mean())
