"""Pools and draws of many segments of one label map at once (the simulator's panoptic path).

:func:`pointly.pointgen.points.sampling.label_map_pools` + :func:`~pointly.pointgen.points.sampling.sample_one`
handle one segment at a time: a crop, a few masks and ~15 numpy calls per segment, ~40–90 µs
each, which dominated images with many small segments (the 126-nucleus image of shared/data:
2.4–2.7× the PNG decode, benchmarks/results_simulate.md). Here every segment whose search box
(stored box + 2 px) is small is handled in one vectorised pass:

* **pools**: the pixels of all small boxes are gathered into one flat array; membership
  (``ids == segment id``), boundary (the image's :func:`~pointly.pointgen.points.sampling.boundary_map`)
  and per-segment counts and extents come from a handful of whole-array operations;
* **draws**: :func:`floyd_choose` picks ``k`` distinct pool positions per segment for all
  segments and both pools together (Robert Floyd's algorithm, one step per point across all
  segments), from one ``Generator.random`` call for the whole image.

The sampling rule is the module rule of :mod:`~pointly.pointgen.points.sampling` (``round(share·n)``
boundary points, the same fall-backs, interior points first); each segment's points are a
uniform draw without replacement from each pool. Large segments (stuff regions) keep the
one-by-one path, whose per-segment cost is small next to their area.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from pointly.pointgen.points import sampling
from pointly.pointgen.points.sampling import BOUNDARY_KIND, INTERIOR_KIND, SampledPoints, SegmentPools

#: segments whose search box holds at most this many pixels are pooled and drawn in the batch:
#: the gather costs per box pixel more than the one-by-one crops do, the one-by-one path costs
#: ~50 µs per segment more. Measured (median CPU ms per image, one core, limits 0 / 32² / 48² /
#: 64² / 96²): COCO panoptic sample 5.09 / 4.99 / 4.88 / 5.00 / 5.29, nuclei image 10.8 / 8.5 /
#: 7.9 / 8.6 / 8.5
BATCH_BOX_PIXELS = 48 * 48
#: ... when an image has at least this many of them: the batch's fixed cost (~60 numpy calls plus
#: a few per point) is that of about ten segments one by one
BATCH_MIN_SEGMENTS = 16


def floyd_choose(n: np.ndarray, k: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For every row ``r``, ``k[r]`` distinct integers of ``range(n[r])``, uniformly at random.

    Robert Floyd's algorithm, vectorised over rows: for ``j = n − k, …, n − 1`` draw ``t``
    uniformly in ``0..j`` (from ``u[r, step]``, a uniform in [0, 1)); keep ``t`` unless it was
    already chosen, then keep ``j``. Every ``k``-subset is equally likely and exactly ``k`` values
    come out of ``k`` uniforms. Returns ``(rows, u.shape[1])`` int64, ``-1`` after ``k[r]`` values.
    Requires ``0 <= k <= n`` and ``k <= u.shape[1]``.
    """
    n = np.asarray(n, dtype=np.int64)
    k = np.asarray(k, dtype=np.int64)
    rows, width = u.shape
    out = np.empty((rows, width), dtype=np.int64)
    base = n - k
    steps = int(k.max(initial=0))
    # "already chosen?" is one lookup per row in a bitmap over all rows' ranges (row r's values at
    # offset[r] + v), instead of comparing with every earlier pick: O(k) rather than O(k²) work
    offset = np.cumsum(n) - n
    sentinel = int(n.sum())  # never set: where finished rows (whose t may reach n or more) look
    chosen = np.zeros(sentinel + 1, dtype=bool)
    live = np.ones(rows, dtype=bool)
    for step in range(steps):  # rows whose k is done keep stepping; their values are dropped below
        j = base + step
        t = (u[:, step] * (j + 1)).astype(np.int64)
        np.minimum(t, j, out=t)
        at = offset + t
        if step:
            np.minimum(at, sentinel, out=at)
            np.copyto(t, j, where=chosen[at])
            at = offset + t
        out[:, step] = t
        if step + 1 < steps:
            np.greater(k, step, out=live)  # only real picks are marked
            chosen[at[live]] = True
    out[np.arange(width) >= k[:, None]] = -1
    return out


def _pool_counts(
    n_interior: np.ndarray, n_boundary: np.ndarray, points: int, k_boundary: int
) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`pointly.pointgen.points.sampling._pool_counts` (the module's fall-back rule)."""
    k_b = np.minimum(k_boundary, n_boundary)
    k_i = points - k_b
    over = k_i > n_interior
    k_i = np.where(over, n_interior, k_i)
    k_b = np.where(over, points - k_i, k_b)
    few = n_interior + n_boundary <= points
    return np.where(few, n_interior, k_i), np.where(few, n_boundary, k_b)


def _box_array(bboxes: Sequence[Sequence[float] | None] | np.ndarray) -> np.ndarray | None:
    """The boxes as an ``(S, 4)`` float64 array, or None unless every box is four finite numbers."""
    if isinstance(bboxes, np.ndarray) and bboxes.dtype == np.float64:
        arr = bboxes
    else:
        try:
            arr = np.array(bboxes, dtype=np.float64)
        except (TypeError, ValueError):
            return None
    if arr.shape != (len(bboxes), 4) or not np.isfinite(arr).all():
        return None
    return arr


def _crop_boxes(bboxes: Sequence[Sequence[float] | None] | np.ndarray, h: int, w: int, margin: int = 2) -> np.ndarray:
    """``(S, 4)`` int64 ``y0, x0, y1, x1`` of :func:`sampling._crop_box` for every segment
    (vectorised when every box is four finite numbers, else box by box)."""
    arr = _box_array(bboxes)
    if arr is None:
        return np.array([sampling._crop_box(b, h, w, margin) for b in bboxes], dtype=np.int64).reshape(-1, 4)
    x, y, bw, bh = arr.T
    out = np.empty((len(bboxes), 4), dtype=np.int64)
    out[:, 0] = np.clip(np.floor(y) - margin, 0, h)
    out[:, 1] = np.clip(np.floor(x) - margin, 0, w)
    out[:, 2] = np.clip(np.ceil(y + bh) + margin, 0, h)
    out[:, 3] = np.clip(np.ceil(x + bw) + margin, 0, w)
    return out


@dataclass
class LabelMapPools:
    """The pools of every listed segment of one id map: small segments batched, large ones as
    :class:`~pointly.pointgen.points.sampling.SegmentPools`.

    ``pixels[i]`` is segment ``i``'s pixel count and :meth:`bbox` its exact COCO box.
    """

    width: int
    pixels: np.ndarray  # (S,) int64
    extents: np.ndarray  # (S, 4) int64 x0, x1, y0, y1 (exact; empty: x1 < x0)
    small: np.ndarray  # (S,) bool: pooled in the batch
    single: dict[int, SegmentPools]  # the large segments, by index
    # the batch: per small segment (in index order) its interior and boundary pixels as flat
    # image indices, concatenated, with start offsets
    interior: np.ndarray
    interior_start: np.ndarray
    boundary: np.ndarray
    boundary_start: np.ndarray
    batch_row: np.ndarray  # (S,) row of a small segment in the batch arrays, -1 for large ones

    def pool_pixels(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Segment ``i``'s interior and boundary pixels as flat image indices (raster order)."""
        if i in self.single:
            p = self.single[i]
            return p.image_flat(p.interior, self.width), p.image_flat(p.boundary, self.width)
        r = int(self.batch_row[i])
        return (
            self.interior[self.interior_start[r] : self.interior_start[r + 1]].astype(np.int64),
            self.boundary[self.boundary_start[r] : self.boundary_start[r + 1]].astype(np.int64),
        )

    def bboxes(self) -> np.ndarray:
        """``(S, 4)`` float64: :meth:`bbox` of every segment."""
        x0, x1, y0, y1 = self.extents.T.astype(np.float64)
        out = np.stack([x0, y0, x1 - x0 + 1, y1 - y0 + 1], axis=1)
        out[self.pixels == 0] = 0.0
        for i, p in self.single.items():
            out[i] = p.bbox()
        return out

    def bbox(self, i: int) -> tuple[float, float, float, float]:
        """The exact COCO box ``[x, y, w, h]`` of segment ``i``'s pixels."""
        if i in self.single:
            return self.single[i].bbox()
        if self.pixels[i] == 0:
            return (0.0, 0.0, 0.0, 0.0)
        x0, x1, y0, y1 = (int(v) for v in self.extents[i])
        return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))

    def sample(
        self, indices: Sequence[int], *, points: int, boundary_share: float, rng: np.random.Generator
    ) -> list[SampledPoints]:
        """The points of segments ``indices`` (in that order): first the small ones, all together
        (one ``Generator.random`` call), then the large ones one by one, from ``rng``."""
        if points < 1 or not 0.0 <= boundary_share <= 1.0:
            raise ValueError("points must be >= 1 and boundary_share in [0, 1]")
        k_boundary = sampling.boundary_count(points, boundary_share)
        indices = [int(i) for i in indices]
        small = self.small.tolist()
        batched = [i for i in indices if small[i]]
        out: dict[int, SampledPoints] = {}
        if batched:
            rows = self.batch_row[batched]
            out.update(zip(batched, self._sample_batch(rows, points, k_boundary, rng)))
        for i in indices:
            if not small[i]:
                out[i] = sampling.sample_one(self.single[i], points, k_boundary, rng)
        return [out[i] for i in indices]

    def _sample_batch(
        self, rows: np.ndarray, points: int, k_boundary: int, rng: np.random.Generator
    ) -> list[SampledPoints]:
        """The points of the batch rows ``rows``: one ``random`` call and one Floyd run for all of them."""
        i0, i1 = self.interior_start[rows], self.interior_start[rows + 1]
        b0, b1 = self.boundary_start[rows], self.boundary_start[rows + 1]
        n_i, n_b = i1 - i0, b1 - b0
        k_i, k_b = _pool_counts(n_i, n_b, points, k_boundary)
        # both pools of every segment in one Floyd run: rows 0..S-1 interior, S..2S-1 boundary
        width = int(max(k_i.max(initial=0), k_b.max(initial=0)))
        picks = floyd_choose(np.concatenate([n_i, n_b]), np.concatenate([k_i, k_b]), rng.random((2 * rows.size, width)))
        pick_i, pick_b = picks[: rows.size], picks[rows.size :]
        # one flat list of chosen image pixels, segment by segment: interior picks, then boundary
        take_i = pick_i >= 0
        take_b = pick_b >= 0
        flat_i = self.interior[(i0[:, None] + pick_i)[take_i]]
        flat_b = self.boundary[(b0[:, None] + pick_b)[take_b]]
        seg_i = np.repeat(np.arange(rows.size), k_i)
        seg_b = np.repeat(np.arange(rows.size), k_b)
        order = np.argsort(np.concatenate([seg_i * 2, seg_b * 2 + 1]), kind="stable")
        flat = np.concatenate([flat_i, flat_b])[order].astype(np.int64)
        xy = np.stack([flat % self.width, flat // self.width], axis=1)
        xy_list = xy.tolist()
        counts = (k_i + k_b).tolist()
        n_total = (n_i + n_b).tolist()
        k_b_list = k_b.tolist()
        out, at = [], 0
        for c, kb, ntot in zip(counts, k_b_list, n_total):
            out.append(
                SampledPoints(
                    xy[at : at + c],
                    [INTERIOR_KIND] * (c - kb) + [BOUNDARY_KIND] * kb,
                    ntot,
                    ntot < points,
                    _xy=xy_list[at : at + c],
                    _boundary_points=kb,
                )
            )
            at += c
        return out


def pool_label_map(
    ids: np.ndarray,
    segment_ids: Sequence[int],
    bboxes: Sequence[Sequence[float] | None] | None = None,
    boundary: np.ndarray | None = None,
) -> LabelMapPools:
    """The pools of every listed segment of an id map (0 = VOID); see the module docstring.

    Same checks and errors as :func:`~pointly.pointgen.points.sampling.label_map_pools` (raises
    :class:`~pointly.pointgen.points.sampling.LabelMapMismatch`); when the pixel count shows that a
    segment's pixels stray outside its stored box, or anything else disagrees, the whole image
    goes through ``label_map_pools``, which finds out exactly what and redoes such segments over
    the whole image.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError("ids must be an H × W array")
    seg = [int(v) for v in segment_ids]
    h, w = ids.shape
    boxes_in = list(bboxes) if bboxes is not None else [None] * len(seg)
    bnd = sampling.boundary_map(ids) if boundary is None else boundary
    box_arr = _box_array(boxes_in)  # converted once for both crop margins below
    crops = _crop_boxes(boxes_in if box_arr is None else box_arr, h, w)
    bh, bw = crops[:, 2] - crops[:, 0], crops[:, 3] - crops[:, 1]
    area = np.maximum(bh, 0) * np.maximum(bw, 0)
    small = (area <= BATCH_BOX_PIXELS) & (area > 0)
    if np.count_nonzero(small) < BATCH_MIN_SEGMENTS:
        small[:] = False
    if len(set(seg)) != len(seg) or 0 in seg:  # label_map_pools says which
        sampling.label_map_pools(ids, seg, boxes_in, bnd)
    S = len(seg)
    pixels = np.zeros(S, dtype=np.int64)
    extents = np.tile(np.array([w, -1, h, -1], dtype=np.int64), (S, 1))
    single: dict[int, SegmentPools] = {}
    for i in np.flatnonzero(~small).tolist():
        y0, x0, y1, x1 = (int(v) for v in crops[i])
        p = sampling._pools_in_crop(ids, bnd, seg[i], (y0, x0, y1, x1))
        single[i] = p
        pixels[i] = p.pixels
    batch_row = np.full(S, -1, dtype=np.int64)
    small_idx = np.flatnonzero(small)
    if small_idx.size:
        # the batch gathers the stored box + 1 px (not + 2): the boundary comes from the image's
        # map, so no margin is needed for it, and a box off by more than a pixel is caught by the
        # pixel count below; ~20 % fewer pixels to gather for nucleus-sized boxes
        tight = _crop_boxes(boxes_in if box_arr is None else box_arr, h, w, margin=1)
        batch = _gather_small(ids, bnd, np.asarray(seg, dtype=np.int64), tight, small)
        batch_row[small_idx] = np.arange(small_idx.size)
        pixels[small_idx] = batch["pixels"]
        extents[small_idx] = batch["extents"]
    else:
        empty, start = np.zeros(0, dtype=np.int64), np.zeros(1, dtype=np.int64)
        batch = {"interior": empty, "interior_start": start, "boundary": empty, "boundary_start": start}
    found = int(pixels.sum())
    void = int(np.count_nonzero(ids == 0))
    if found + void != ids.size or not pixels.all():
        # slow path: label_map_pools raises the exact mismatch, or repairs straying segments
        pools = sampling.label_map_pools(ids, seg, boxes_in, bnd)
        return from_segment_pools(pools, w)
    return LabelMapPools(
        w,
        pixels,
        extents,
        small,
        single,
        batch["interior"],
        batch["interior_start"],
        batch["boundary"],
        batch["boundary_start"],
        batch_row,
    )


def from_segment_pools(pools: Sequence[SegmentPools], width: int) -> LabelMapPools:
    """A :class:`LabelMapPools` whose segments all go one by one (the slow, exact path)."""
    S = len(pools)
    empty = np.zeros(0, dtype=np.int64)
    return LabelMapPools(
        width,
        np.array([p.pixels for p in pools], dtype=np.int64).reshape(S),
        np.zeros((S, 4), dtype=np.int64),
        np.zeros(S, dtype=bool),
        dict(enumerate(pools)),
        empty,
        np.zeros(1, np.int64),
        empty,
        np.zeros(1, np.int64),
        np.full(S, -1, dtype=np.int64),
    )


def _gather_small(
    ids: np.ndarray, bnd: np.ndarray, seg: np.ndarray, crops: np.ndarray, small: np.ndarray
) -> dict[str, np.ndarray]:
    """Pools, pixel counts and exact extents of the small segments, from one gather of their boxes."""
    h, w = ids.shape
    y0, x0, y1, x1 = (crops[small, c] for c in range(4))
    sid = seg[small]
    n = sid.size
    rows_per = y1 - y0
    cols_per = x1 - x0
    # every box row as a run of flat image indices: run r covers [start_r, start_r + len_r)
    row_seg = np.repeat(np.arange(n), rows_per)
    row_first = np.cumsum(rows_per) - rows_per
    row_y = y0[row_seg] + np.arange(row_seg.size) - row_first[row_seg]
    run_start = row_y * w + x0[row_seg]
    run_len = cols_per[row_seg]
    run_off = np.cumsum(run_len) - run_len
    total = int(run_len.sum())
    # int32 whenever the image allows: the repeat below is ~20x faster than in int64 (0.04 against
    # 0.86 ms for 90k box pixels, measured)
    itype = np.int32 if h * w < 2**31 else np.int64
    flat = np.repeat((run_start - run_off).astype(itype), run_len) + np.arange(total, dtype=itype)
    box_len = rows_per * cols_per
    box_start = np.concatenate([[0], np.cumsum(box_len)])
    member = ids.ravel()[flat] == np.repeat(sid.astype(ids.dtype, copy=False), box_len)
    # only the segments' own pixels are looked up in the boundary map; they stay in box order =
    # segment order, then raster order inside each box
    mpos = np.flatnonzero(member)
    mflat = flat[mpos]
    on_b = bnd.ravel()[mflat]
    member_start = np.searchsorted(mpos, box_start)
    pixels = np.diff(member_start)
    bpos = np.flatnonzero(on_b)  # positions in mflat
    ipos = np.flatnonzero(~on_b)
    boundary_start = np.searchsorted(bpos, member_start)  # boundary members before each box
    interior_start = member_start - boundary_start
    # exact extents from every member pixel (one pass of reductions over all segments); a box is
    # in raster order, so a segment's first and last members lie on its top and bottom rows
    extents = np.tile(np.array([w, -1, h, -1], dtype=np.int64), (n, 1))
    has = pixels > 0
    if has.any():
        at = member_start[:-1][has]
        xs = mflat % w
        extents[has, 0] = np.minimum.reduceat(xs, at)
        extents[has, 1] = np.maximum.reduceat(xs, at)
        extents[has, 2] = mflat[at] // w
        extents[has, 3] = mflat[member_start[1:][has] - 1] // w
    return {
        "interior": mflat[ipos],
        "interior_start": interior_start,
        "boundary": mflat[bpos],
        "boundary_start": boundary_start,
        "pixels": pixels,
        "extents": extents,
    }
