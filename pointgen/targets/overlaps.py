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
        d = min_distance(rows[idx], cols[idx], np.full(idx.size, k), points)
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
    ks, starts = np.unique(who[order], return_index=True)
    for k, a, b in zip(ks, starts, np.append(starts[1:], order.size)):
        idx = order[a:b]
        cx, cy = cols[idx] + 0.5, rows[idx] + 0.5
        p = points[int(k) - 1]
        best = np.full(idx.size, np.inf)
        for i in range(0, p.shape[0], 64):  # bounded memory for segments with many points
            q = p[i : i + 64]
            best = np.minimum(best, ((cx[:, None] - q[None, :, 0]) ** 2 + (cy[:, None] - q[None, :, 1]) ** 2).min(1))
        d[idx] = best
    return d


def resolve_layer(
    claims: Any,
    layer: int,
    count: np.ndarray,
    where: np.ndarray | None,
    ids: Sequence[int],
    rings: Sequence[list],
    points: Sequence[np.ndarray],
) -> np.ndarray:
    """Owner (segment id, 0 = nobody) of each pixel of the claims' box among the shapes of one
    ``layer`` (packed with their segment ids ``ids`` and squares; ``count`` is its claim count):
    the one claimer; where ``where`` marks a pixel claimed by several, the claimer with the nearest
    point, 0 on a tie. Two claimers ``a < b`` are read from the id sum ``S`` and the sum of squares
    ``Q`` (``b − a = √(2Q − S²)``), so only pixels claimed three times or more rasterise the
    candidate shapes again."""
    own = claims.idsum(layer)
    contested = count > 1
    if where is not None:
        contested &= where
    rr, cc = np.nonzero(contested)
    total = own[rr, cc].astype(np.int64)
    own[count != 1] = 0
    if not rr.size:
        return own
    ys, xs = claims.box_slices()
    two = count[rr, cc] == 2
    if two.any():
        r2, c2, s2 = rr[two], cc[two], total[two]
        gap = np.sqrt(2 * claims.squaresum(layer, at=(r2, c2)).astype(np.int64) - s2 * s2)
        a = ((s2 - gap) / 2).round().astype(np.int64)
        b = s2 - a
        rows, cols = r2 + ys.start, c2 + xs.start
        da, db = min_distance(rows, cols, a, points), min_distance(rows, cols, b, points)
        tol = 1e-9 * np.maximum(np.minimum(da, db), 1.0)
        own[r2, c2] = np.where(da < db - tol, a, np.where(db < da - tol, b, 0))
    if not two.all():
        r3, c3 = rr[~two], cc[~two]
        rows, cols = r3 + ys.start, c3 + xs.start
        r0, r1, c0, c1 = rows.min(), rows.max(), cols.min(), cols.max()
        boxes = {int(k): b for k, b in zip(ids, claims.boxes[layer])}
        cand = [k for k, b in boxes.items() if b[2] >= b[0] and b[0] <= c1 and b[2] >= c0 and b[1] <= r1 and b[3] >= r0]
        own[r3, c3] = nearest_claimer(rows, cols, cand, rings, boxes, points)
    return own
