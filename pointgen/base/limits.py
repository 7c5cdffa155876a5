"""The pixel budget: an image larger than it is refused before anything is allocated for it.

Image sizes come from JSON records (``width``, ``height``) long before any pixel is read, and a
mistyped size (200000 x 200000) would make the target builder or a PNG decoder allocate tens of
GiB. Every reader of image records calls :func:`check_image_size`. The budget is 50 megapixels by
default (about 12x a 20-megapixel photo's worth of working arrays stays well inside a laptop's
memory); ``pointly --max-megapixels N`` or the environment variable ``POINTLY_MAX_PIXELS``
change it.
"""

from __future__ import annotations

import os
from pathlib import Path

from pointly.pointgen.base.errors import PointlyError

DEFAULT_MAX_PIXELS = 50_000_000
ENV_VAR = "POINTLY_MAX_PIXELS"

_override: int | None = None


def set_max_pixels(pixels: int | None) -> None:
    """Set the budget for this process (``None``: back to the environment or the default)."""
    global _override
    _override = None if pixels is None else int(pixels)


def max_pixels() -> int:
    """The budget in pixels: :func:`set_max_pixels`, else ``POINTLY_MAX_PIXELS``, else 50 MP."""
    if _override is not None:
        return _override
    raw = os.environ.get(ENV_VAR)
    if raw is None:
        return DEFAULT_MAX_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise PointlyError(
            f"{ENV_VAR}={raw!r} is not a number", fix="set it to a pixel count, e.g. 100000000"
        ) from None
    if value < 1:
        raise PointlyError(f"{ENV_VAR}={raw!r} must be at least 1")
    return value


def _whole(value: object) -> int | None:
    """``value`` as an int when it is a whole number (640 or 640.0), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def check_image_size(width: object, height: object, *, file: str | Path | None, record: str | None) -> tuple[int, int]:
    """The size as two ints; refuses one that is not two positive whole numbers or exceeds the
    pixel budget."""
    w, h = _whole(width), _whole(height)
    if w is None or h is None:
        raise PointlyError(
            f"width and height must be whole numbers, got {width!r} x {height!r}",
            file=file,
            record=record,
            fix="give the image size in pixels",
        )
    width, height = w, h
    if width < 1 or height < 1:
        raise PointlyError(
            f"image size {width}x{height} is not positive",
            file=file,
            record=record,
            fix="give the image size in pixels",
        )
    budget = max_pixels()
    if width * height > budget:
        raise PointlyError(
            f"image size {width}x{height} ({width * height / 1e6:.0f} MP) exceeds the {budget / 1e6:g} MP pixel budget",
            file=file,
            record=record,
            fix="correct the size, or raise the budget with pointly --max-megapixels N",
        )
    return width, height
