"""Who owns a pixel that several shapes of one kind claim: the nearest-point rule of the corrected
point-supervision targets (docs/point-supervision.md; used by :func:`pointly.pointgen.targets.build.build_targets`).

The claims come from :func:`pointly.pointgen.targets.packed_claims.pack_claims` with each shape's segment id and
the squared ids packed: a pixel claimed once is its claimer's; of a pixel claimed twice, the ids
``a < b`` follow from the id sum ``S`` and the squared-id sum ``Q`` (``b − a = √(2Q − S²)``); a
pixel claimed three times or more asks the candidate shapes with ``shapely.intersects_xy`` at that
pixel only. The winner is the claimer whose nearest point is nearer to the pixel centre; an exact
tie (within 1e-9, relative) is nobody's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import shapely

from pointly.pointgen.targets.sorted_arrays import run_starts

#: pixels per chunk of :func:`segment_distance`
DISTANCE_CHUNK = 2048


def covers(rings: list, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Whether the shape of ring items ``rings`` (output grid) covers the points ``(x, y)``: the
    closed pixel-centre rule of :mod:`pointly.pointgen.targets.raster`, asked of a few pixels only."""
    inside = np.zeros(x.size, bool)
    for item in rings:
        shell, holes = (item[0], item[1:]) if isinstance(item, tuple) else (item, ())
        poly = shapely.Polygon(shell, holes)
        shapely.prepare(poly)
        inside |= shapely.intersects_xy(poly, x, y)
    return inside


def nearest_claimer(
    rows: np.ndarray,
    cols: np.ndarray,
    candidates: Sequence[int],
    rings: Sequence[list],
    boxes: Mapping[int, Sequence[int]],
    points: Sequence[np.ndarray],
) -> np.ndarray:
    """For contested pixels ``(rows, cols)``: the id ``k`` (1-based) of the candidate whose shape
    (``rings[k - 1]``, output grid; ``boxes[k]`` its pixel box) covers the pixel and whose nearest
    point (``points[k - 1]``, output continuous coordinates) is nearest to the pixel centre; 0
    where two are equally near."""
    best = np.full(rows.size, np.inf)
    second = np.full(rows.size, np.inf)
    who = np.zeros(rows.size, np.int32)
    cx, cy = cols + 0.5, rows + 0.5
    for k in candidates:
        x0, y0, x1, y1 = boxes[k]
        idx = np.flatnonzero((rows >= y0) & (rows <= y1) & (cols >= x0) & (cols <= x1))
        if not idx.size:
            continue
        idx = idx[covers(rings[k - 1], cx[idx], cy[idx])]
        if not idx.size:
            continue
        d = segment_distance(cx[idx], cy[idx], points[k - 1])
        closer = d < best[idx]
        second[idx] = np.where(closer, best[idx], np.minimum(second[idx], d))
        best[idx] = np.where(closer, d, best[idx])
        who[idx] = np.where(closer, k, who[idx])
    who[second - best <= 1e-9 * np.maximum(best, 1.0)] = 0
    return who


def min_distance(rows: np.ndarray, cols: np.ndarray, who: np.ndarray, points: Sequence[np.ndarray]) -> np.ndarray:
    """Squared distance from each pixel centre ``(cols + 0.5, rows + 0.5)`` to the nearest point of
    segment ``who`` (1-based ids into ``points``, output continuous coordinates)."""
    d = np.full(rows.size, np.inf)
    order = np.argsort(who, kind="stable")
    starts = run_starts(who[order])
    ks = who[order][starts]
    for k, a, b in zip(ks, starts, np.append(starts[1:], order.size)):
        idx = order[a:b]
        d[idx] = segment_distance(cols[idx] + 0.5, rows[idx] + 0.5, points[int(k) - 1])
    return d


def segment_distance(cx: np.ndarray, cy: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Squared distance from each of the points ``(cx, cy)`` to the nearest of the points ``p``
    (``(P, 2)``): ``min over q of (cx − qx)² + (cy − qy)²``.

    The points go in chunks of :data:`DISTANCE_CHUNK` and ``p`` in chunks of 64, so the
    ``points × p`` temporaries stay small enough for the allocator to reuse them and to stay in
    cache: 1.5× faster than one temporary per segment on a blob of 13 500 contested pixels with
    two claimers (measured; the dilated COCO sample has up to 14 000 contested pixels an image).
    Pruning the points that cannot be nearest to a chunk's box did not pay (the contested blobs
    are as large as the segments: 9 % fewer pairs at this chunk size, measured).
    """
    best = np.full(cx.size, np.inf)
    for c in range(0, cx.size, DISTANCE_CHUNK):
        x, y = cx[c : c + DISTANCE_CHUNK], cy[c : c + DISTANCE_CHUNK]
        part = best[c : c + DISTANCE_CHUNK]
        for i in range(0, p.shape[0], 64):  # bounded memory for segments with many points
            q = p[i : i + 64]
            np.minimum(part, ((x[:, None] - q[None, :, 0]) ** 2 + (y[:, None] - q[None, :, 1]) ** 2).min(1), out=part)
    return best


def contested_owners(
    claims: Any,
    layer: int,
    rows: np.ndarray,
    cols: np.ndarray,
    ids: Sequence[int],
    rings: Sequence[list],
    points: Sequence[np.ndarray],
) -> np.ndarray:
    """Owner (segment id, 0 on a tie) of the box pixels ``(rows, cols)`` that two or more shapes of
    one ``layer`` claim (packed with their segment ids ``ids`` and squares): the claimer with the
    nearest point. Two claimers ``a < b`` are read from the id sum ``S`` and the sum of squares
    ``Q`` (``b − a = √(2Q − S²)``), so only pixels claimed three times or more rasterise the
    candidate shapes again. Only these pixels' fields are read (the caller writes the rest of the
    layer from its box-wide id sum)."""
    own = np.zeros(rows.size, np.int64)
    if not rows.size:
        return own
    count = claims.count(layer, at=(rows, cols))
    total = claims.idsum(layer, at=(rows, cols)).astype(np.int64)
    ys, xs = claims.box_slices()
    two = count == 2
    if two.any():
        r2, c2, s2 = rows[two], cols[two], total[two]
        gap = np.sqrt(2 * claims.squaresum(layer, at=(r2, c2)).astype(np.int64) - s2 * s2)
        a = ((s2 - gap) / 2).round().astype(np.int64)
        b = s2 - a
        r, c = r2 + ys.start, c2 + xs.start
        da, db = min_distance(r, c, a, points), min_distance(r, c, b, points)
        tol = 1e-9 * np.maximum(np.minimum(da, db), 1.0)
        own[two] = np.where(da < db - tol, a, np.where(db < da - tol, b, 0))
    if not two.all():
        r, c = rows[~two] + ys.start, cols[~two] + xs.start
        r0, r1, c0, c1 = r.min(), r.max(), c.min(), c.max()
        boxes = {int(k): b for k, b in zip(ids, claims.boxes[layer])}
        cand = [k for k, b in boxes.items() if b[2] >= b[0] and b[0] <= c1 and b[2] >= c0 and b[1] <= r1 and b[3] >= r0]
        own[~two] = nearest_claimer(r, c, cand, rings, boxes, points)
    return own
