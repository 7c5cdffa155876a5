"""Label Studio's ``lead_time`` and pointly's ``point_times``: one number per image, both ways.

Label Studio records one number per annotation (one image): ``lead_time``, the seconds spent on
it. pointly records one time per point (``point_times``, seconds since the image was opened) and
``pointly cost`` measures an image's *active* seconds from them: the gaps between consecutive
points, without gaps over the idle cut-off (:func:`pointly.pointgen.points.cost.measured_seconds`).

* Export: ``lead_time`` = the image's active seconds under the cut-off (60 s unless told
  otherwise), the same number ``pointly cost`` reports for it.
* Import: the points of the annotation, in the order Label Studio lists them, get evenly spaced
  times ``t_j = lead_time * j / n`` (j = 1..n). The image's measured seconds are then exactly
  ``lead_time`` whenever ``lead_time / n`` is within the cut-off; how the seconds split between
  its segments (in proportion to their points) is an assumption, not a measurement, and the
  imported file says so in ``info.pointly.point_times``.

So pointly -> Label Studio -> pointly keeps every image's measured seconds (same cut-off), and a
Label Studio file's ``lead_time`` becomes what ``pointly cost`` reports as measured.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from pointly.pointgen.points.cost import DEFAULT_IDLE_CUTOFF, measured_seconds

#: how ``info.pointly.point_times`` describes times made from ``lead_time``
SPREAD_NOTE = (
    "spread evenly from Label Studio lead_time: each image's total is measured, "
    "the split between its points and segments is not"
)


def lead_times(doc: Mapping, idle_cutoff: float = DEFAULT_IDLE_CUTOFF) -> dict[int, float]:
    """Image id -> active seconds, for the images whose annotations carry ``point_times``."""
    measured = measured_seconds(doc, idle_cutoff)
    return {} if measured is None else dict(measured["per_image"])


def spread(lead_time: float, counts: Sequence[int]) -> list[list[float]]:
    """Evenly spaced point times for segments of ``counts`` points that took ``lead_time`` seconds.

    Point ``j`` (1-based, over all segments in order) gets ``lead_time * j / n``; the last point
    of the image lands on ``lead_time`` itself.
    """
    n = sum(counts)
    if n == 0:
        return [[] for _ in counts]
    if not (math.isfinite(lead_time) and lead_time >= 0):
        raise ValueError(f"lead_time must be a finite number >= 0, got {lead_time!r}")
    out, j = [], 0
    for k in counts:
        out.append([lead_time * (j + i + 1) / n for i in range(k)])
        j += k
    last = max(i for i, k in enumerate(counts) if k)
    out[last][-1] = float(lead_time)  # exactly, whatever the rounding of lead_time * n / n
    return out
