"""Who owns a pixel that several shapes of one kind claim: the nearest-point rule of the corrected
point-supervision targets (docs/point-supervision.md; used by :func:`pointly.pointgen.targets.build.build_targets`).

The claims come from :func:`pointly.pointgen.targets.packed_claims.claim_runs` with each shape's segment id
and the squared ids summed: a pixel claimed once is its claimer's; of a pixel claimed twice, the ids
``a < b`` follow from the id sum ``S`` and the squared-id sum ``Q`` (``b − a = √(2Q − S²)``); a
pixel claimed three times or more asks the candidate shapes with ``shapely.intersects_xy`` at that
pixel only. The winner is the claimer whose nearest point is nearer to the pixel centre; an exact
tie (within 1e-9, relative) is nobody's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import shapely

from pointly.pointgen.targets.sorted_arrays import run_starts

#: from this many pixels on, :func:`segment_distance` loops over the points
DISTANCE_LOOP_MIN = 256


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
    segment ``who`` (1-based ids into ``points``, output continuous coordinates).

    All pixels at once (ordered by segment), point slot by point slot: the ``j``-th point of each
    pixel's segment, repeated over the segment's pixels from a table padded with infinite points
    (their distance is infinite, so the minimum is unchanged). The same values as segment by
    segment (:func:`segment_distance`), with one loop over the points for all segments instead
    of one per segment: 1.8× faster on the 3 200 pixel-claimer pairs of five segments of 20
    points, 2.3× on 25 600 pairs (measured against the previous segment-by-segment loop). Fewer
    than :data:`DISTANCE_LOOP_MIN` pixels (the loop's call overhead would dominate), or point counts
    so different that the padding would more than double the work: segment by segment."""
    d = np.full(rows.size, np.inf)
    if not rows.size:
        return d
    order = np.argsort(who, kind="stable")
    starts = run_starts(who[order])
    ks = who[order][starts]
    counts = np.diff(np.append(starts, order.size))
    sizes = np.array([len(points[int(k) - 1]) for k in ks])
    if rows.size < DISTANCE_LOOP_MIN or int(sizes.max()) * rows.size > 2 * int((sizes * counts).sum()):
        for k, a, b in zip(ks, starts, np.append(starts[1:], order.size)):
            idx = order[a:b]
            d[idx] = segment_distance(cols[idx] + 0.5, rows[idx] + 0.5, points[int(k) - 1])
        return d
    table = np.full((int(sizes.max()), 2, ks.size), np.inf)  # (point slot, x or y, segment)
    for i, k in enumerate(ks):
        p = np.asarray(points[int(k) - 1], dtype=np.float64).reshape(-1, 2)
        table[: p.shape[0], :, i] = p
    c = np.stack([cols[order], rows[order]]) + 0.5  # (x or y, pixel), ordered by segment
    best, t, d2 = np.full(rows.size, np.inf), np.empty(c.shape), np.empty(rows.size)
    for slot in table:  # x and y in one array: four calls a slot
        np.subtract(c, np.repeat(slot, counts, axis=1), out=t)  # this slot's point of each pixel's segment
        np.square(t, out=t)
        np.add(t[0], t[1], out=d2)
        np.minimum(best, d2, out=best)
    d[order] = best
    return d


def segment_distance(cx: np.ndarray, cy: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Squared distance from each of the points ``(cx, cy)`` to the nearest of the points ``p``
    (``(P, 2)``): ``min over q of (cx − qx)² + (cy − qy)²``, the same values whichever way.

    Many pixels (:data:`DISTANCE_LOOP_MIN` or more) go point by point through preallocated
    pixel-sized arrays, four in-place ufunc calls a point: 3.4× faster than the broadcast
    ``pixels × points`` temporaries on 1 600 contested pixels and 20 points, 3.6× on 14 000 and
    25 (measured, loaded machine), as no temporary is larger than a pixel array and nothing is
    reduced along a short axis. Few pixels are broadcast against chunks of 64 points at once
    (the per-call overhead of the loop would dominate). Pruning the points that cannot be
    nearest to a chunk's box did not pay (the contested blobs are as large as the segments: 9 %
    fewer pairs, measured).
    """
    p = np.asarray(p, dtype=np.float64).reshape(-1, 2)
    best = np.full(cx.size, np.inf)
    if cx.size >= DISTANCE_LOOP_MIN:
        c, t, d2 = np.stack([cx, cy]), np.empty((2, cx.size)), np.empty(cx.size)
        for q in p[:, :, None]:  # x and y in one array: four calls a point
            np.subtract(c, q, out=t)
            np.square(t, out=t)
            np.add(t[0], t[1], out=d2)
            np.minimum(best, d2, out=best)
        return best
    for i in range(0, p.shape[0], 64):  # bounded memory for segments with many points
        q = p[i : i + 64]
        np.minimum(best, ((cx[None, :] - q[:, 0, None]) ** 2 + (cy[None, :] - q[:, 1, None]) ** 2).min(0), out=best)
    return best


def contested_owners(
    rows: np.ndarray,
    cols: np.ndarray,
    count: np.ndarray,
    idsum: np.ndarray,
    squares: np.ndarray,
    ids: Sequence[int],
    boxes: np.ndarray,
    rings: Sequence[list],
    points: Sequence[np.ndarray],
) -> np.ndarray:
    """Owner (segment id, 0 on a tie) of the pixels ``(rows, cols)`` (output grid) that two or more
    shapes of one layer claim: the claimer with the nearest point. ``count``, ``idsum`` and
    ``squares`` are the layer's claims at those pixels (how many shapes, the sum of their segment
    ids and of the squared ids; :class:`~pointly.pointgen.targets.packed_claims.ClaimRuns`), ``ids``
    and ``boxes`` the segment id and covered pixel box of each of the layer's shapes. Two claimers
    ``a < b`` follow from the id sum ``S`` and the sum of squares ``Q`` (``b − a = √(2Q − S²)``), so
    only pixels claimed three times or more rasterise the candidate shapes again."""
    own = np.zeros(rows.size, np.int64)
    if not rows.size:
        return own
    total = np.asarray(idsum, dtype=np.int64)
    two = count == 2
    if two.any():
        r, c, s2 = rows[two], cols[two], total[two]
        gap = np.sqrt(2 * np.asarray(squares, dtype=np.int64)[two] - s2 * s2)
        a = ((s2 - gap) / 2).round().astype(np.int64)
        b = s2 - a
        both = min_distance(np.concatenate([r, r]), np.concatenate([c, c]), np.concatenate([a, b]), points)
        da, db = both[: r.size], both[r.size :]
        tol = 1e-9 * np.maximum(np.minimum(da, db), 1.0)
        own[two] = np.where(da < db - tol, a, np.where(db < da - tol, b, 0))
    if not two.all():
        r, c = rows[~two], cols[~two]
        r0, r1, c0, c1 = r.min(), r.max(), c.min(), c.max()
        by_id = {int(k): b for k, b in zip(ids, boxes)}
        cand = [k for k, b in by_id.items() if b[2] >= b[0] and b[0] <= c1 and b[2] >= c0 and b[1] <= r1 and b[3] >= r0]
        own[~two] = nearest_claimer(r, c, cand, rings, by_id, points)
    return own
