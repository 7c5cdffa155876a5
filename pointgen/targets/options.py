"""How points become targets: :class:`TargetOptions` (every field a CLI option of ``pointly targets``
and ``pointly train``), the dilation parser of ``--dilation``, and the defaults.

docs/targets.md has the table of rules and, under "Defaults, and why", how the defaults were chosen.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.shapes import PARTS, SHAPES

#: units of ``TargetOptions.dilation``: a fraction of the input image's longer side, or input pixels
DILATION_UNITS = ("relative", "pixels")
#: how overlapping shapes share a pixel (``TargetOptions.overlap``): ``nearest`` = a thing's shape
#: beats a stuff shape, and between shapes of one kind the segment of the nearest point wins (a tie
#: is ignored); ``exclusive`` = a pixel claimed twice is ignored for both (a baseline of the studies)
OVERLAPS = ("nearest", "exclusive")
#: the dilation radius ``--dilation on`` means: a fraction of the image's longer side, chosen by the
#: target-quality study (docs/targets.md, "Defaults, and why"); training draws from DEFAULT_DILATION_RANGE
DEFAULT_DILATION = 0.02
DEFAULT_DILATION_RANGE = (0.01, 0.03)
#: the hull shapes (pointgen.targets.shapes) and the image-aware regions (pointgen.targets.regions)
TARGET_SHAPES = SHAPES + ("watershed",)

__all__ = [
    "DEFAULT_DILATION",
    "DEFAULT_DILATION_RANGE",
    "DILATION_UNITS",
    "OVERLAPS",
    "TARGET_SHAPES",
    "TargetOptions",
    "parse_dilation",
]


@dataclass(frozen=True)
class TargetOptions:
    """How points become targets (every field is a CLI option of ``pointly targets``/``train``).

    * ``shape``: ``"convex"`` or ``"concave"`` hull of a segment's points, or ``"watershed"``: the
      region the segment's points grow to over the image's colour edges, uncertain pixels ignored
      (:mod:`pointly.pointgen.targets.regions`; needs the image, and takes no dilation).
    * ``concave_ratio``: shapely's ``concave_hull`` ratio in [0, 1] (1 = convex hull; smaller is
      tighter). Default chosen by the target-quality study (docs/targets.md).
    * ``point_radius``: radius of the disc around a single point and half-width of the capsule of
      two or collinear points, in input-image pixels.
    * ``dilation``: ``None`` (off), a radius, or a ``(min, max)`` range drawn uniformly per call.
    * ``dilation_units``: ``"relative"`` (fraction of the input image's longer side) or
      ``"pixels"`` (input-image pixels).
    * ``parts``: ``"delaunay"`` (shapes from the triangulation of all the image's points: never a
      foreign point inside, one part per cluster) or ``"hull"`` (one hull per segment; baseline).
    * ``overlap``: ``"nearest"`` (thing beats stuff, nearest point within a kind) or
      ``"exclusive"`` (a pixel claimed twice is ignored; baseline).
    * ``size_correction``: read a segment's size (FPN level, Gaussian radius) from its points'
      box grown by ``(n + 1) / (n − 1)`` (:func:`~pointly.pointgen.targets.build.object_box`); off = the shape's box (baseline).
    """

    shape: str = "concave"
    concave_ratio: float = 0.3
    point_radius: float = 6.0
    dilation: float | tuple[float, float] | None = None
    dilation_units: str = "relative"
    parts: str = "delaunay"
    overlap: str = "nearest"
    size_correction: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.dilation, list):
            object.__setattr__(self, "dilation", tuple(self.dilation))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`PointlyError` on an out-of-range option."""
        if self.shape not in TARGET_SHAPES:
            raise PointlyError(
                f"unknown shape {self.shape!r}", record="--shape", fix=f"use one of {', '.join(TARGET_SHAPES)}"
            )
        if not (0.0 <= float(self.concave_ratio) <= 1.0):
            raise PointlyError(
                f"concave ratio {self.concave_ratio} is outside [0, 1]",
                record="--concave-ratio",
                fix="1 is the convex hull, 0 the tightest",
            )
        if not (math.isfinite(self.point_radius) and self.point_radius > 0):
            raise PointlyError(f"point radius {self.point_radius} must be a positive number", record="--point-radius")
        if self.parts not in PARTS:
            raise PointlyError(
                f"unknown parts rule {self.parts!r}", record="--parts", fix=f"use one of {', '.join(PARTS)}"
            )
        if self.overlap not in OVERLAPS:
            raise PointlyError(
                f"unknown overlap rule {self.overlap!r}", record="--overlap", fix=f"use one of {', '.join(OVERLAPS)}"
            )
        if self.dilation_units not in DILATION_UNITS:
            raise PointlyError(
                f"unknown dilation units {self.dilation_units!r}",
                record="--dilation",
                fix=f"use one of {', '.join(DILATION_UNITS)}",
            )
        d = self.dilation
        if d is None:
            return
        values = d if isinstance(d, tuple) else (d,)
        if len(values) not in (1, 2) or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values
        ):
            raise PointlyError(
                f"dilation {d!r} must be a non-negative radius or a (min, max) range",
                record="--dilation",
                fix="e.g. 0.02, 0.01:0.03 or 8px",
            )
        if len(values) == 2 and values[0] > values[1]:
            raise PointlyError(
                f"dilation range {d!r} has min > max", record="--dilation", fix="write MIN:MAX with MIN <= MAX"
            )
        if self.dilation_units == "relative" and max(values) > 0.5:
            raise PointlyError(
                f"relative dilation {d!r} exceeds half the image side",
                record="--dilation",
                fix="relative radii are fractions, e.g. 0.02; use NNpx for pixels",
            )

    def dilation_radius(self, width: int, height: int, rng: np.random.Generator | None = None) -> float:
        """The dilation radius for one call, in input pixels (0.0 when off).

        A range needs ``rng`` (one uniform draw per call); a fixed radius draws nothing.
        """
        d = self.dilation
        if d is None:
            return 0.0
        if isinstance(d, tuple):
            lo, hi = (float(d[0]), float(d[1])) if len(d) == 2 else (float(d[0]), float(d[0]))
            if hi > lo:
                if rng is None:
                    raise ValueError("a dilation range needs rng (a numpy Generator)")
                r = float(rng.uniform(lo, hi))
            else:
                r = lo
        else:
            r = float(d)
        return r * max(width, height) if self.dilation_units == "relative" else r

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (for resolved-config files)."""
        out = asdict(self)
        if isinstance(self.dilation, tuple):
            out["dilation"] = list(self.dilation)
        return out


def parse_dilation(text: str | None) -> tuple[float | tuple[float, float] | None, str]:
    """Parse a CLI dilation: ``off``, ``on`` (:data:`DEFAULT_DILATION`), ``0.02``, ``0.01:0.03``
    (relative to the longer image side) or ``8px``, ``4:12px`` (input pixels).

    Returns ``(dilation, units)`` for :class:`TargetOptions`.
    """
    if text is None:
        return None, "relative"
    t = str(text).strip().lower()
    if t in ("", "off", "none", "0", "no"):
        return None, "relative"
    if t in ("on", "yes", "default"):
        return DEFAULT_DILATION, "relative"
    units = "relative"
    if t.endswith("px"):
        units, t = "pixels", t[:-2]
    try:
        parts = [float(p.replace("px", "")) for p in t.split(":")]
    except ValueError:
        raise PointlyError(
            f"cannot read dilation {text!r}",
            record="--dilation",
            fix="write off, a radius (0.02), a range (0.01:0.03), or pixels (8px, 4:12px)",
        ) from None
    if len(parts) == 1:
        return parts[0], units
    if len(parts) == 2:
        return (parts[0], parts[1]), units
    raise PointlyError(f"cannot read dilation {text!r}", record="--dilation", fix="a range has two numbers, MIN:MAX")
