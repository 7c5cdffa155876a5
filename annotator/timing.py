"""Live cost numbers of the annotator, measured with :mod:`pointly.pointgen.points.cost`.

The app shows active seconds per image and per segment and the annotator's seconds per point,
computed by :func:`pointly.pointgen.points.cost.measured_seconds` on the points JSON the project
writes (``point_times`` = server seconds since the image was first opened): each point is charged
the gap since the previous point of its image (or since the opening), gaps above the idle
cut-off (default 60 s) are left out. Using the same function as ``pointly cost`` keeps the live
numbers and the offline report identical. The comparison values are the paper's cost model
(:class:`pointly.pointgen.points.cost.CostModel`: 0.9 s per point, 79 s per polygon mask of a thing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from pointly.pointgen.points.cost import DEFAULT_IDLE_CUTOFF, CostModel, measured_seconds

PAPER_SECONDS_PER_POINT = CostModel().seconds_per_point
POLYGON_SECONDS = CostModel().seconds_per_thing_mask

__all__ = ["DEFAULT_IDLE_CUTOFF", "PAPER_SECONDS_PER_POINT", "POLYGON_SECONDS", "Measured", "measure"]


@dataclass
class Measured:
    """Active seconds and timed points, also per annotation id."""

    seconds: float = 0.0
    points: int = 0
    per_annotation: dict[int, float] = field(default_factory=dict)

    @property
    def seconds_per_point(self) -> float | None:
        return self.seconds / self.points if self.points else None


def measure(doc: Mapping, idle_cutoff: float = DEFAULT_IDLE_CUTOFF) -> Measured:
    """The measured active time of a points document (zero when it has no timed points)."""
    m = measured_seconds(doc, idle_cutoff)
    if m is None:
        return Measured()
    return Measured(
        float(m["active_seconds"]), int(m["points"]), {int(k): float(v) for k, v in m["per_annotation"].items()}
    )
