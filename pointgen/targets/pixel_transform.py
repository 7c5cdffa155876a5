"""Geometric transforms of pixel coordinates: resize, horizontal flip, crop, pad, stride.

Training builds targets for the *augmented* image at the feature stride, without building the
full-size masks first: the transform is applied to the point coordinates (and to the shapes made
from them), and the shapes are rasterised on the output grid. Every transform used by the data
pipeline is an axis-aligned affine map of **pixel-corner** coordinates (pixel ``(i, j)`` spans
``[j, j+1] × [i, i+1]``, so an input point ``(x, y)`` has its centre at ``(x + 0.5, y + 0.5)``)::

    x_out = ax · x + bx        y_out = ay · y + by

together with the size of the output canvas. ``ax < 0`` means a horizontal flip. Build one by
chaining, in the order the augmentation applies them::

    t = (PixelTransform.identity(640, 480)
         .resize(853, 640)        # ResizeShortestEdge
         .hflip()                 # RandomFlip
         .crop(10, 0, 800, 640)   # optional crop
         .pad(800, 640)           # zero padding bottom/right to a multiple of 32
         .downsample(4))          # stride-4 target grid

An output pixel ``(i, j)`` then covers the input region whose centre is
``((j + 0.5 − bx) / ax, (i + 0.5 − by) / ay)``: at scale ``s`` (identity then ``downsample``)
output pixel centres sit at ``((j + 0.5)/s, (i + 0.5)/s)`` in input pixel-corner coordinates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np


@dataclass(frozen=True)
class PixelTransform:
    """``x_out = ax·x + bx``, ``y_out = ay·y + by`` on pixel-corner coordinates; canvas ``width × height``.

    ``in_width``/``in_height`` are the size of the original image the points live in.
    """

    ax: float
    bx: float
    ay: float
    by: float
    width: int
    height: int
    in_width: int
    in_height: int

    @classmethod
    def identity(cls, width: int, height: int) -> PixelTransform:
        """The transform of an untouched ``width × height`` image."""
        return cls(1.0, 0.0, 1.0, 0.0, int(width), int(height), int(width), int(height))

    # -- chainable steps (each acts on the current canvas) ---------------------------------
    def resize(self, new_width: int, new_height: int) -> PixelTransform:
        """Resize the current canvas to ``new_width × new_height`` (corner coordinates scale)."""
        sx, sy = new_width / self.width, new_height / self.height
        return replace(
            self,
            ax=self.ax * sx,
            bx=self.bx * sx,
            ay=self.ay * sy,
            by=self.by * sy,
            width=int(new_width),
            height=int(new_height),
        )

    def scale(self, factor: float) -> PixelTransform:
        """Resize by ``factor`` with the canvas rounded to whole pixels (``round(w·factor)``)."""
        return self.resize(max(1, round(self.width * factor)), max(1, round(self.height * factor)))

    def hflip(self) -> PixelTransform:
        """Mirror left-right: ``x → width − x`` (pixel ``j`` goes to ``width − 1 − j``)."""
        return replace(self, ax=-self.ax, bx=self.width - self.bx)

    def vflip(self) -> PixelTransform:
        """Mirror top-bottom: ``y → height − y``."""
        return replace(self, ay=-self.ay, by=self.height - self.by)

    def crop(self, x0: int, y0: int, width: int, height: int) -> PixelTransform:
        """Keep the ``width × height`` window whose top-left pixel is ``(x0, y0)``."""
        return replace(self, bx=self.bx - x0, by=self.by - y0, width=int(width), height=int(height))

    def pad(self, width: int, height: int) -> PixelTransform:
        """Pad bottom/right to ``width × height`` (coordinates unchanged, canvas grows)."""
        if width < self.width or height < self.height:
            raise ValueError(f"pad to {width}x{height} is smaller than the canvas {self.width}x{self.height}")
        return replace(self, width=int(width), height=int(height))

    def downsample(self, stride: float) -> PixelTransform:
        """The grid of a feature map at ``stride``: coordinates ÷ stride, canvas ``ceil(size / stride)``."""
        if stride <= 0:
            raise ValueError("stride must be positive")
        f = 1.0 / stride
        return replace(
            self,
            ax=self.ax * f,
            bx=self.bx * f,
            ay=self.ay * f,
            by=self.by * f,
            width=int(math.ceil(self.width / stride - 1e-9)),
            height=int(math.ceil(self.height / stride - 1e-9)),
        )

    # -- applying -------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        """The output canvas as ``(height, width)``."""
        return self.height, self.width

    @property
    def mean_scale(self) -> float:
        """Geometric mean of ``|ax|`` and ``|ay|``: how many output pixels one input pixel spans."""
        return math.sqrt(abs(self.ax * self.ay))

    def apply(self, xy: np.ndarray) -> np.ndarray:
        """Map continuous ``(N, 2)`` corner coordinates ``(x, y)`` to the output canvas."""
        xy = np.asarray(xy, dtype=np.float64)
        out = np.empty_like(xy)
        out[..., 0] = self.ax * xy[..., 0] + self.bx
        out[..., 1] = self.ay * xy[..., 1] + self.by
        return out

    def point_centres(self, coords: np.ndarray) -> np.ndarray:
        """Output continuous coordinates of the centres of integer input pixels ``(x, y)``."""
        return self.apply(np.asarray(coords, dtype=np.float64) + 0.5)

    def point_pixels(self, coords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Output pixel ``(cols, rows)`` holding each input pixel's centre, and a mask of those on the canvas."""
        c = self.point_centres(coords)
        cols = np.floor(c[:, 0]).astype(np.int64)
        rows = np.floor(c[:, 1]).astype(np.int64)
        inside = (cols >= 0) & (cols < self.width) & (rows >= 0) & (rows < self.height)
        return cols, rows, inside

    def affine_matrix(self) -> list[float]:
        """The ``[a, b, d, e, xoff, yoff]`` matrix of ``shapely.affinity.affine_transform``."""
        return [self.ax, 0.0, 0.0, self.ay, self.bx, self.by]
