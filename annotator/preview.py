"""Target preview: what the model will learn from the points clicked so far.

The masks come from :func:`pointly.pointgen.targets.build.build_targets` (shape, conflicts, points as
hard labels and dilation exactly as training uses them), so the annotator sees the real training
target, not an approximation. The app draws each segment's final mask translucent in the
segment's colour with an outline; everything outside the masks is ignored by training.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions, parse_dilation

log = logging.getLogger(__name__)


@dataclass
class PreviewMasks:
    """Per-segment boolean masks (original size, same order as the input) and the ignore mask."""

    masks: list[np.ndarray]
    ignore: np.ndarray | None


def preview_options(shape: str = "concave", dilation: str | None = None) -> TargetOptions:
    """Target options of the preview; a dilation range is shown at its largest radius (the
    image-aware ``watershed`` regions take no dilation)."""
    value, units = parse_dilation(None if shape == "watershed" else dilation)
    if isinstance(value, tuple):
        value = max(value)
    return TargetOptions(shape=shape, dilation=value, dilation_units=units)


def preview_masks(
    segments: list,
    categories: dict[int, dict],
    width: int,
    height: int,
    options: TargetOptions | None = None,
    image: np.ndarray | None = None,
) -> PreviewMasks:
    """Training-target masks of ``segments`` (objects with ``category_id`` and ``points`` of
    ``x``/``y``/``label``) on a ``width`` × ``height`` image, from the real target builder.
    ``image`` (the original RGB) is needed by the image-aware shape (``watershed``): the preview
    then shows the region the points grow to, so that the annotator clicks where it is wrong.

    A segment without a point in it (label 1) is not a target (it is not written out either):
    its mask is empty."""
    anns = []
    for k, seg in enumerate(segments):
        if any(p.label == 1 for p in seg.points):
            anns.append(
                {
                    "id": k + 1,
                    "image_id": 1,
                    "category_id": seg.category_id,
                    "iscrowd": 0,
                    "point_coords": [[p.x, p.y] for p in seg.points],
                    "point_labels": [p.label for p in seg.points],
                }
            )
    empty = np.zeros((height, width), bool)
    if not anns:
        return PreviewMasks([empty] * len(segments), None)
    res = build_targets(
        anns, list(categories.values()), (width, height), options=options or TargetOptions(), image=image
    )
    by_id = {t.annotation_id: t.mask for t in res.segments}
    masks = [np.asarray(by_id.get(k + 1, empty), bool) for k in range(len(segments))]
    return PreviewMasks(masks, np.asarray(res.ignore, bool))
