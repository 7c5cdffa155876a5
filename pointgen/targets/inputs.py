"""One image's points-JSON annotations, read and checked for the target builder.

The image's size, each category's kind (thing or stuff), and each annotation's points as integer
pixel indices with their labels; bad input (points outside the image, NaN, empty segments, no
positive point, unknown categories) raises :class:`PointlyError` naming the file, the annotation
and the fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError


def read_image_size(image_size: Any) -> tuple[int, int]:
    """``(width, height)`` of a ``(width, height)`` pair, an image record dict or an ``ImageInfo``."""
    if isinstance(image_size, Mapping):
        return int(image_size["width"]), int(image_size["height"])
    if hasattr(image_size, "width") and hasattr(image_size, "height"):
        return int(image_size.width), int(image_size.height)
    w, h = image_size
    return int(w), int(h)


def category_isthing(categories: Any) -> dict[int, bool]:
    """``{category id: isthing}`` of ``{id: Category}`` or a list of category dicts (``isthing``
    defaults to 1)."""
    if isinstance(categories, Mapping):
        items = categories.values()
    else:
        items = categories
    out = {}
    for c in items:
        if isinstance(c, Mapping):
            out[int(c["id"])] = bool(c.get("isthing", 1))
        else:
            out[int(c.id)] = bool(c.isthing)
    return out


def annotation_record(ann: Mapping, i: int) -> str:
    """How an error message names annotation ``i``: its id and image id."""
    return f"annotation id {ann.get('id', f'#{i}')} (image_id {ann.get('image_id', '?')})"


def checked_points(ann: Mapping, i: int, width: int, height: int, file: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(coords int (N, 2), labels int (N,))`` of one annotation, or a PointlyError."""
    rec = annotation_record(ann, i)
    raw = ann.get("point_coords")
    if raw is None or len(raw) == 0:
        raise PointlyError(
            "annotation has no points (empty segment)",
            file=file,
            record=rec,
            fix="drop the annotation or give it at least one point",
        )
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise PointlyError(
            "point_coords is not a list of [x, y] numbers",
            file=file,
            record=rec,
            fix="write point_coords as [[x, y], ...]",
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PointlyError(
            "point_coords is not a list of [x, y] pairs",
            file=file,
            record=rec,
            fix="write point_coords as [[x, y], ...]",
        )
    if not np.all(np.isfinite(arr)):
        j = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise PointlyError(
            f"point {j} has a NaN or infinite coordinate",
            file=file,
            record=rec,
            fix="points are integer pixel indices; remove or fix the point",
        )
    outside = (arr[:, 0] < 0) | (arr[:, 0] >= width) | (arr[:, 1] < 0) | (arr[:, 1] >= height)
    if outside.any():
        j = int(np.nonzero(outside)[0][0])
        raise PointlyError(
            f"point {j} ({arr[j, 0]:g}, {arr[j, 1]:g}) lies outside the {width}x{height} image",
            file=file,
            record=rec,
            fix="points are pixel indices with 0 <= x < width, 0 <= y < height",
        )
    coords = np.floor(arr).astype(np.int64)
    labels = np.asarray(ann.get("point_labels", [1] * len(coords)), dtype=np.int64).reshape(-1)
    if labels.shape[0] != coords.shape[0]:
        raise PointlyError(
            f"point_labels has {labels.shape[0]} entries but point_coords has {coords.shape[0]}",
            file=file,
            record=rec,
            fix="give one label per point",
        )
    if not np.any(labels == 1):
        raise PointlyError(
            "annotation has no positive point (all point_labels are 0)",
            file=file,
            record=rec,
            fix="a segment needs at least one point with label 1",
        )
    return coords, labels


def checked_annotations(
    annotations: Sequence[Mapping], isthing: Mapping[int, bool], width: int, height: int, file: Any
) -> list[tuple[Mapping, np.ndarray, np.ndarray]]:
    """``(annotation, coords, labels)`` of every annotation (:func:`checked_points`), in order;
    an unknown ``category_id`` is a :class:`PointlyError`."""
    parsed = []
    for i, ann in enumerate(annotations):
        cat = ann.get("category_id")
        if cat not in isthing:
            raise PointlyError(
                f"unknown category_id {cat}",
                file=file,
                record=annotation_record(ann, i),
                fix="add the category to categories or correct category_id",
            )
        coords, labels = checked_points(ann, i, width, height, file)
        parsed.append((ann, coords, labels))
    return parsed
