"""Point sampling primitives: boundary pixels, pool splitting, label-map grouping, RLE strips.

One module on purpose: its parts are the steps of one sampling rule (below), which the mask, the
label-map and the RLE paths must apply with the same pools and the same draws, and the simulator
and :mod:`~pointly.pointgen.points.batched_pools` use them as one namespace (``sampling.…``).

Everything here is pure numpy and takes a :class:`numpy.random.Generator`; the simulator
(:mod:`pointly.pointgen.points.simulate`) strings these together per image.

Boundary definition (docs/formats.md, "Boundary pixels")
--------------------------------------------------------
A pixel ``p`` of segment ``S`` is a *boundary* pixel when at least one of its 4-neighbours
(up, down, left, right) **that lies inside the image** does not belong to ``S`` (it belongs to
another segment or to VOID). The image border by itself does not make a pixel a boundary pixel:
a neighbour outside the image does not exist, so it cannot differ. With ``image_edge=True``
(``pointly simulate --edge-is-boundary``) the pixels of the outermost rows and columns are
boundary pixels as well, as in an outline traced around the mask (``cv2.findContours``): a region
that fills a corner of the image then has boundary points along the frame too. This is what one comparison of
the label map with its shifted copies gives (the same set as
``skimage.segmentation.find_boundaries(mode="inner")`` away from the image edge);
``cv2.findContours`` would also mark image-edge pixels, so it is not used. Every other pixel of
``S`` is an *interior* pixel. For COCO instances (which may overlap) the boundary is taken
relative to the instance's own mask: the label map is then simply ``mask`` vs ``not mask``.

Pools too small
---------------
A segment asks for ``n`` points, ``n_b = round(share × n)`` (Python's ``round``: halves go to the
even number, so share 0.5 with n = 5 gives 2) from its boundary pool and ``n − n_b`` from its
interior pool, uniformly and without replacement. When the boundary pool holds fewer than
``n_b`` pixels, all of them are taken and the rest come from the interior; when the interior pool
is too small, all of it is taken and the rest come from the boundary. When the whole segment has
``n`` pixels or fewer, every pixel is taken (a "short" segment when fewer than ``n``). So every
segment with at least ``n`` pixels gets exactly ``n`` distinct points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

#: the two kinds of simulated points, as written in ``point_kinds``
INTERIOR_KIND = "random"
BOUNDARY_KIND = "boundary"


def boundary_count(points: int, boundary_share: float) -> int:
    """How many of ``points`` come from the boundary: Python ``round(share × points)``."""
    return int(round(boundary_share * points))


def boundary_map(labels: np.ndarray, *, image_edge: bool = False) -> np.ndarray:
    """``H × W`` bool: pixels with a 4-neighbour inside the image that carries a different label.

    ``labels`` may be an id map (then every segment's boundary is ``boundary_map(ids) & (ids ==
    sid)``) or a boolean mask (then its boundary is ``boundary_map(mask) & mask``). Pixels outside
    the image are not neighbours, so the image edge alone never makes a boundary pixel, unless
    ``image_edge``: then every pixel of the outermost rows and columns is one too.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=bool)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    if image_edge and labels.size:
        out[0, :] = out[-1, :] = True
        out[:, 0] = out[:, -1] = True
    diff = labels[:, 1:] != labels[:, :-1]
    out[:, 1:] |= diff
    out[:, :-1] |= diff
    diff = labels[1:, :] != labels[:-1, :]
    out[1:, :] |= diff
    out[:-1, :] |= diff
    return out


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a boolean mask (relative to the mask itself; see module doc).

    ``mask & ~erode(mask)`` with OpenCV's 4-neighbour cross and its default border (pixels outside
    the image count as inside, so the image edge never makes a boundary pixel): exactly the set
    ``boundary_map(mask) & mask`` gives (tested), and faster on instance crops.
    """
    import cv2

    mask = np.ascontiguousarray(mask, dtype=bool)
    if mask.size == 0:
        return mask.copy()
    eroded = cv2.erode(mask.view(np.uint8), _CROSS)
    return mask > eroded.view(bool)


_CROSS = np.array([[0, 1, 0], [1, 1, 1], [0, 1, 0]], dtype=np.uint8)


@dataclass(frozen=True)
class PoolChoice:
    """Positions chosen in the two pools of one segment (indices into each pool)."""

    interior: np.ndarray
    boundary: np.ndarray
    short: bool  # the segment had fewer pixels than the points asked for


_EMPTY = np.zeros(0, dtype=np.int64)


def on_image_edge(shape: tuple[int, int], row0: int, col0: int, height: int, width: int) -> np.ndarray:
    """Bool array of ``shape`` (a crop at ``(row0, col0)`` of a ``height × width`` image): the
    crop's pixels that lie in the image's outermost rows or columns (``image_edge`` boundaries)."""
    out = np.zeros(shape, dtype=bool)
    h, w = shape
    if h and w:
        if row0 == 0:
            out[0, :] = True
        if row0 + h == height:
            out[-1, :] = True
        if col0 == 0:
            out[:, 0] = True
        if col0 + w == width:
            out[:, -1] = True
    return out


def choose_distinct(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    """``k`` distinct integers drawn uniformly from ``range(n)``, in random order.

    For ``k`` small against ``n`` it draws i.i.d. uniform integers and keeps the first ``k``
    distinct ones (drawing until ``k`` distinct values appear is sampling without replacement),
    which costs O(k); ``Generator.choice(replace=False)`` permutes the whole pool (O(n)) whenever
    ``n`` is below 10 000, which dominated the per-segment cost (bench_simulate.py).
    Otherwise a permutation prefix.
    """
    if k <= 0:
        return _EMPTY
    return np.array(_choose_distinct_list(n, k, rng), dtype=np.int64)


def _choose_distinct_list(n: int, k: int, rng: np.random.Generator) -> list[int]:
    """:func:`choose_distinct` as a Python list (the same draws; no array round trip for 20 points)."""
    if k <= 0:
        return []
    if k > n:
        raise ValueError(f"cannot draw {k} distinct values from {n}")
    if 4 * k > n:
        return rng.permutation(n)[:k].tolist()
    seen: dict[int, None] = {}  # insertion-ordered: the first k distinct draws, in draw order
    while True:
        for v in rng.integers(0, n, size=2 * k + 8).tolist():
            seen[v] = None
            if len(seen) == k:
                return list(seen)


def _pool_counts(n_interior: int, n_boundary: int, points: int, k_boundary: int) -> tuple[int, int]:
    """How many points each pool gives (the fall-back rule of the module docstring)."""
    if n_interior + n_boundary <= points:
        return n_interior, n_boundary
    k_b = min(k_boundary, n_boundary)
    k_i = points - k_b
    if k_i > n_interior:
        k_i = n_interior
        k_b = points - k_i
    return k_i, k_b


def choose_from_pools(
    n_interior: int, n_boundary: int, points: int, boundary_share: float, rng: np.random.Generator
) -> PoolChoice:
    """Choose ``points`` distinct pool positions: ``round(share·points)`` boundary, rest interior.

    Implements the fall-back rule of the module docstring. Returned positions are in draw order
    (interior pool first, then boundary pool, each from the same generator).
    """
    if points < 1:
        raise ValueError("points must be >= 1")
    if not 0.0 <= boundary_share <= 1.0:
        raise ValueError("boundary_share must lie in [0, 1]")
    k_i, k_b = _pool_counts(n_interior, n_boundary, points, boundary_count(points, boundary_share))
    return PoolChoice(
        choose_distinct(n_interior, k_i, rng), choose_distinct(n_boundary, k_b, rng), n_interior + n_boundary < points
    )


@dataclass
class SampledPoints:
    """The points of one segment: ``coords`` is ``k × 2`` int (x = column, y = row)."""

    coords: np.ndarray
    kinds: list[str]
    pixels: int  # size of the segment in pixels
    short: bool
    _xy: list[list[int]] | None = field(default=None, repr=False, compare=False)
    _boundary_points: int | None = field(default=None, repr=False, compare=False)

    def coords_list(self) -> list[list[int]]:
        """``coords`` as ``[[x, y], ...]`` (a list the caller owns; equal to ``coords.tolist()``)."""
        if self._xy is not None:  # built by sample_one; handed over once, later calls rebuild it
            xy, self._xy = self._xy, None
            return xy
        return self.coords.tolist()

    @property
    def boundary_points(self) -> int:
        """How many of the points come from the boundary pool."""
        if self._boundary_points is not None:
            return self._boundary_points
        return self.kinds.count(BOUNDARY_KIND)


def sample_segment_points(
    mask: np.ndarray,
    *,
    points: int = 20,
    boundary_share: float = 0.0,
    rng: np.random.Generator,
    boundary: np.ndarray | None = None,
    image_edge: bool = False,
) -> SampledPoints:
    """Sample the points of one segment given as an ``H × W`` boolean mask.

    ``boundary`` (optional) is the segment's boundary pixels; by default it is the boundary of the
    mask itself (:func:`mask_boundary`, plus its pixels on the image edge when ``image_edge``).
    For a panoptic label map pass ``boundary_map(ids)`` so that the boundary is against the other
    segments and VOID (the same set for non-overlapping segments). Interior points come first,
    then boundary ones. Works on the mask's box plus a one-pixel margin, so the result equals
    :func:`sample_rle_points` on the mask's RLE.
    """
    if points < 1 or not 0.0 <= boundary_share <= 1.0:
        raise ValueError("points must be >= 1 and boundary_share in [0, 1]")
    mask = np.asarray(mask, dtype=bool)
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return SampledPoints(np.zeros((0, 2), np.int64), [], 0, True)
    cols = np.flatnonzero(mask.any(axis=0))
    r0, r1 = max(int(rows[0]) - 1, 0), min(int(rows[-1]) + 1, h - 1)
    c0, c1 = max(int(cols[0]) - 1, 0), min(int(cols[-1]) + 1, w - 1)
    crop = np.ascontiguousarray(mask[r0 : r1 + 1, c0 : c1 + 1])
    if boundary is None:
        on_b = mask_boundary(crop)
        if image_edge:
            on_b |= crop & on_image_edge(crop.shape, r0, c0, h, w)
    else:
        on_b = np.asarray(boundary, dtype=bool)[r0 : r1 + 1, c0 : c1 + 1] & crop
    pools = crop_pools(crop, on_b, r0, c0, h, w)
    return sample_one(pools, points, boundary_count(points, boundary_share), rng)


# --------------------------------------------------------------------------- panoptic label maps


class LabelMapMismatch(ValueError):
    """The label map and the segment list disagree (the caller turns it into a PointlyError)."""


@dataclass
class SegmentPools:
    """The interior and boundary pixels of one segment of a label map.

    Pixels are flat raster indices *within a crop* ``[y0 : y0 + h, x0 : x0 + crop_width]`` of the
    image (the segment's box grown by 2 pixels, or the whole image). The boundary pool is kept as
    an index array (it is sparse); the interior pool as the crop's ``member`` and ``on_boundary``
    masks plus its size, and is listed only on demand (:attr:`interior`): a large stuff region
    would otherwise cost a 10⁵-element array for 20 points. ``x_extent``/``y_extent`` are the
    segment's exact column and row ranges.
    """

    segment_id: int
    boundary: np.ndarray
    n_interior: int
    member: np.ndarray = field(repr=False)  # crop-shaped bool: pixel belongs to the segment
    on_boundary: np.ndarray = field(repr=False)  # crop-shaped bool: boundary pixel of the segment
    x0: int = 0
    y0: int = 0
    crop_width: int = 1
    x_extent: tuple[int, int] = (0, -1)
    y_extent: tuple[int, int] = (0, -1)
    _interior: np.ndarray | None = field(default=None, repr=False)

    @property
    def pixels(self) -> int:
        return int(self.n_interior + self.boundary.size)

    @property
    def interior(self) -> np.ndarray:
        """The interior pool as crop-flat indices in raster order (computed once, on demand)."""
        if self._interior is None:
            self._interior = np.flatnonzero(self.member > self.on_boundary)
        return self._interior

    def draw_interior(self, k: int, rng: np.random.Generator) -> np.ndarray:
        """``k`` distinct interior pixels, uniformly (crop-flat indices, in draw order).

        When the interior fills at least an eighth of the crop, candidates are drawn uniformly in
        the crop and the first ``k`` distinct ones that are interior pixels are kept (rejection
        sampling: uniform on the pool, without replacement) without listing the pool; otherwise
        :func:`choose_distinct` on the listed pool.
        """
        if k <= 0:
            return _EMPTY
        return np.array(self._draw_interior_list(k, rng), dtype=np.int64)

    def _draw_interior_list(self, k: int, rng: np.random.Generator) -> list[int]:
        """:meth:`draw_interior` as a Python list (the same draws, fewer numpy calls)."""
        n = self.n_interior
        if k <= 0:
            return []
        area = self.member.size
        if 8 * n < area or 4 * k > n:
            return self.interior[_choose_distinct_list(n, k, rng)].tolist()
        flat_m, flat_b = self.member.ravel(), self.on_boundary.ravel()
        batch = 2 * k * area // n + 16
        seen: dict[int, None] = {}
        while True:
            cand = rng.integers(0, area, size=batch)
            for v in cand[flat_m[cand] > flat_b[cand]].tolist():
                seen[v] = None
                if len(seen) == k:
                    return list(seen)

    def xy_list(self, idx: Sequence[int]) -> list[list[int]]:
        """Crop-flat indices (a list) → ``[[x, y], ...]`` image coordinates, in plain Python."""
        cw, x0, y0 = self.crop_width, self.x0, self.y0
        return [[i % cw + x0, i // cw + y0] for i in idx]

    def xy(self, idx: np.ndarray) -> np.ndarray:
        """Crop-flat indices → ``k × 2`` image coordinates ``(x, y)``."""
        idx = np.asarray(idx, dtype=np.int64)
        return np.stack([idx % self.crop_width + self.x0, idx // self.crop_width + self.y0], axis=1)

    def image_flat(self, idx: np.ndarray, width: int) -> np.ndarray:
        """Crop-flat indices → flat raster indices of the whole image (``y · width + x``)."""
        xy = self.xy(idx)
        return xy[:, 1] * width + xy[:, 0]

    def bbox(self) -> tuple[float, float, float, float]:
        """The exact COCO box ``[x, y, w, h]`` of the segment's pixels."""
        if self.pixels == 0:
            return (0.0, 0.0, 0.0, 0.0)
        (c0, c1), (r0, r1) = self.x_extent, self.y_extent
        return (float(c0), float(r0), float(c1 - c0 + 1), float(r1 - r0 + 1))


def _crop_box(bbox: Sequence[float] | None, h: int, w: int, margin: int = 2) -> tuple[int, int, int, int]:
    """A stored box grown by ``margin`` pixels and clipped to the image (the whole image when absent)."""
    try:
        x, y, bw, bh = (float(v) for v in bbox)  # type: ignore[union-attr]
    except (TypeError, ValueError):  # absent or malformed: search the whole image
        return 0, 0, h, w
    if not all(math.isfinite(v) for v in (x, y, bw, bh)):
        return 0, 0, h, w
    y0 = min(max(math.floor(y) - margin, 0), h)
    x0 = min(max(math.floor(x) - margin, 0), w)
    y1 = min(max(math.ceil(y + bh) + margin, 0), h)
    x1 = min(max(math.ceil(x + bw) + margin, 0), w)
    return y0, x0, y1, x1


def crop_pools(
    member: np.ndarray,
    on_boundary: np.ndarray,
    row0: int,
    col0: int,
    height: int,
    width: int,
    segment_id: int = 0,
    pixels: int | None = None,
) -> SegmentPools:
    """The pools of a segment given by two crop masks that hold all of its pixels.

    ``member``/``on_boundary`` are the crop ``[row0 :, col0 :]`` of the segment's mask and of its
    boundary pixels in an ``height × width`` image. The exact extents come from the boundary pool
    alone: a segment's leftmost pixel has a left neighbour outside the segment, so it is a boundary
    pixel, unless it lies in the image's first column (likewise right, top and bottom).
    ``pixels`` (optional) is the segment's pixel count when the caller already knows it (from an
    RLE's runs of ones), which saves a pass over ``member``.
    """
    boundary = np.flatnonzero(on_boundary)
    n_interior = (int(np.count_nonzero(member)) if pixels is None else int(pixels)) - boundary.size
    ch, cw = member.shape
    if boundary.size:
        bc = boundary % cw
        c0, c1 = int(bc.min()) + col0, int(bc.max()) + col0
        r0, r1 = int(boundary[0] // cw) + row0, int(boundary[-1] // cw) + row0
    else:
        c0, c1, r0, r1 = width, -1, height, -1
    if ch and cw:
        if col0 == 0 and member[:, 0].any():
            c0 = 0
        if col0 + cw == width and member[:, -1].any():
            c1 = width - 1
        if row0 == 0 and member[0].any():
            r0 = 0
        if row0 + ch == height and member[-1].any():
            r1 = height - 1
    return SegmentPools(int(segment_id), boundary, n_interior, member, on_boundary, col0, row0, cw, (c0, c1), (r0, r1))


def _pools_in_crop(ids: np.ndarray, bnd: np.ndarray, sid: int, box: tuple[int, int, int, int]) -> SegmentPools:
    y0, x0, y1, x1 = box
    member = ids[y0:y1, x0:x1] == sid
    on_b = member & bnd[y0:y1, x0:x1]
    return crop_pools(member, on_b, y0, x0, ids.shape[0], ids.shape[1], sid)


def label_map_pools(
    ids: np.ndarray,
    segment_ids: Sequence[int],
    bboxes: Sequence[Sequence[float] | None] | None = None,
    boundary: np.ndarray | None = None,
) -> list[SegmentPools]:
    """The interior/boundary pools of every listed segment of an id map (0 = VOID).

    ``bboxes`` (the boxes stored in the JSON, optional) limit each segment's work to its box grown
    by 2 pixels; the boundary map is computed once for the whole image, so it never depends on
    the crop. Hand-written instead of one ``ids == sid`` pass over the whole image per segment
    (or a sort of all pixels): the work per segment is proportional to its box
    (bench_simulate.py). Completeness is checked by counting: when VOID plus the pixels found in
    the boxes is not every pixel, a full ``np.unique`` pass finds out why, and either raises
    :class:`LabelMapMismatch` (an id in the map that is not listed, or a listed id without a pixel)
    or redoes the segments whose pixels stray outside their stored box over the whole image (their
    exact box then tells the caller the stored one is wrong).
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError("ids must be an H × W array")
    seg = [int(v) for v in segment_ids]
    if len(set(seg)) != len(seg):
        raise LabelMapMismatch("a segment id is listed twice")
    if 0 in seg:
        raise LabelMapMismatch("segment id 0 is VOID and cannot be a segment")
    h, w = ids.shape
    boxes = list(bboxes) if bboxes is not None else [None] * len(seg)
    bnd = boundary_map(ids) if boundary is None else boundary
    crops = [_crop_box(b, h, w) for b in boxes]
    pools = [_pools_in_crop(ids, bnd, sid, c) for sid, c in zip(seg, crops)]
    found = sum(p.pixels for p in pools)
    void = int(np.count_nonzero(ids == 0))
    if found + void == ids.size and all(p.pixels for p in pools):
        return pools
    # slow path: find out exactly what is wrong
    uniq, counts = np.unique(ids, return_counts=True)
    full = dict(zip(uniq.tolist(), counts.tolist()))
    listed = set(seg)
    extra = sorted(u for u in full if u != 0 and u not in listed)
    if extra:
        raise LabelMapMismatch(f"segment ids {extra[:5]} are in the PNG but not in segments_info")
    missing = [sid for sid in seg if sid not in full]
    if missing:
        raise LabelMapMismatch(f"segment ids {sorted(missing)[:5]} are in segments_info but not in the PNG")
    for i, sid in enumerate(seg):
        if pools[i].pixels != full[sid]:
            pools[i] = _pools_in_crop(ids, bnd, sid, (0, 0, h, w))
    return pools


def sample_one(p: SegmentPools, points: int, k_boundary: int, rng: np.random.Generator) -> SampledPoints:
    """Draw the points of one segment: interior pool first, then boundary pool (module rule).

    Works on Python lists for the ~20 chosen pixels (a handful of numpy calls per segment instead
    of a dozen: the fixed per-segment cost dominates images with many small segments,
    bench_simulate.py); the draws are those of :meth:`SegmentPools.draw_interior` and
    :func:`choose_distinct`, in that order.
    """
    ni, nb = p.n_interior, p.boundary.size
    k_i, k_b = _pool_counts(ni, nb, points, k_boundary)
    idx = p._draw_interior_list(k_i, rng)
    if k_b:
        idx += p.boundary[_choose_distinct_list(nb, k_b, rng)].tolist()
    xy = p.xy_list(idx)
    coords = np.array(xy, dtype=np.int64) if xy else np.zeros((0, 2), np.int64)
    return SampledPoints(
        coords, [INTERIOR_KIND] * k_i + [BOUNDARY_KIND] * k_b, ni + nb, ni + nb < points, _xy=xy, _boundary_points=k_b
    )


def sample_pools(
    pools: Sequence[SegmentPools],
    indices: Sequence[int],
    *,
    points: int,
    boundary_share: float,
    rng: np.random.Generator,
) -> list[SampledPoints]:
    """Sample the segments ``pools[i]`` for ``i`` in ``indices``, in that order."""
    if points < 1 or not 0.0 <= boundary_share <= 1.0:
        raise ValueError("points must be >= 1 and boundary_share in [0, 1]")
    k_boundary = boundary_count(points, boundary_share)
    return [sample_one(pools[i], points, k_boundary, rng) for i in indices]


# --------------------------------------------------------------------------- COCO RLE


def _chunk_values(c: np.ndarray, cont: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The signed numbers of a COCO RLE string (characters minus 48; ``cont`` = continuation
    flags), before the delta rule, and the position of each number's last chunk."""
    ends = np.flatnonzero(~cont)  # the last chunk of each number
    vals = (c & 31).astype(np.int64)
    nch = None
    if ends.size != c.size:  # some numbers span several 5-bit chunks
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        nch = ends - starts + 1
        vals <<= 5 * (np.arange(c.size) - np.repeat(starts, nch))
        vals = np.add.reduceat(vals, starts)
    neg = np.flatnonzero(c[ends] & 16)  # sign bit of the last chunk
    if neg.size:
        vals[neg] -= np.int64(1) << (5 * (nch[neg] if nch is not None else 1))
    return vals, ends


def rle_counts(rle: dict) -> np.ndarray:
    """The run lengths of a COCO RLE (compressed string/bytes, or an uncompressed list).

    Runs alternate 0, 1, 0, ... in column-major (Fortran) pixel order, starting with zeros.
    The compressed form is decoded as pycocotools' ``rleFrString`` does (6-bit LEB128-like
    chunks, then counts after the second are deltas from the count two places earlier),
    vectorised with numpy so no full ``H × W`` mask is ever built.
    """
    counts = rle["counts"]
    if isinstance(counts, list):
        return np.asarray(counts, dtype=np.int64)
    if isinstance(counts, str):
        counts = counts.encode("ascii")
    c = np.frombuffer(counts, dtype=np.uint8) - np.uint8(48)  # characters below '0' wrap above 63
    if c.size == 0:
        return np.zeros(0, np.int64)
    if c.max() > 63:
        raise ValueError("RLE string holds characters outside the COCO alphabet")
    cont = c >= 32  # a continuation chunk follows
    if cont[-1]:
        raise ValueError("RLE string ends inside a number")
    vals, ends = _chunk_values(c, cont)
    # pycocotools: cnts[m] = x[m] + cnts[m-2] for m > 2, so counts 0, 1, 2 are absolute and each
    # parity is a running sum from there
    vals[1::2] = np.cumsum(vals[1::2])
    vals[2::2] = np.cumsum(vals[2::2])
    return vals


def rle_counts_many(rles: Sequence[dict]) -> list[np.ndarray]:
    """:func:`rle_counts` of several RLEs (an image's instances) in one vectorised pass.

    The compressed strings are concatenated and decoded together (a number never spans two
    strings: each string must end on a number's last chunk), and the delta rule is applied as a
    cumulative sum per (string, parity) group: a few numpy calls per image instead of ~25 per
    annotation, whose fixed cost dominates images with many small instances (benchmarks/README.md).
    A bad string
    raises the same ValueError as :func:`rle_counts` on it alone.
    """
    out: list[np.ndarray | None] = [None] * len(rles)
    strs, where = [], []
    for i, rle in enumerate(rles):
        counts = rle["counts"]
        if isinstance(counts, list):
            out[i] = np.asarray(counts, dtype=np.int64)
            continue
        if isinstance(counts, str):
            counts = counts.encode("ascii")
        if not counts:
            out[i] = np.zeros(0, np.int64)
            continue
        strs.append(counts)
        where.append(i)
    if not strs:
        return out  # type: ignore[return-value]
    c = np.frombuffer(b"".join(strs), dtype=np.uint8) - np.uint8(48)
    cont = c >= 32  # a continuation chunk follows
    str_end = np.cumsum([len(b) for b in strs]) - 1
    if c.max() > 63 or cont[str_end].any():  # name the fault exactly: decode one by one
        for i, b in zip(where, strs):
            out[i] = rle_counts({"counts": b})
        return out  # type: ignore[return-value]
    vals, ends = _chunk_values(c, cont)
    # the delta rule per string: counts 0, 1, 2 absolute, then a running sum per parity
    string = np.searchsorted(str_end, ends)
    per_string = np.bincount(string, minlength=len(strs))
    first = np.cumsum(per_string) - per_string
    m = np.arange(ends.size) - first[string]
    key = string * 2 + (m & 1)  # (string, parity)
    run = np.flatnonzero(m >= 1)
    order = run[np.argsort(key[run], kind="stable")]  # grouped by key, in order inside each group
    v = vals[order]
    total = np.cumsum(v)
    group = key[order]
    new = np.ones(group.size, dtype=bool)
    new[1:] = group[1:] != group[:-1]
    base = (total - v)[new]
    vals[order] = total - np.repeat(base, np.diff(np.append(np.flatnonzero(new), group.size)))
    for i, part in zip(where, np.split(vals, first[1:])):
        out[i] = part
    return out  # type: ignore[return-value]


def rle_crop(counts: np.ndarray, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """Decode only the box an RLE touches, plus a one-pixel empty margin where inside the image.

    Returns ``(crop, row0, col0)`` with ``crop`` a C-contiguous boolean array equal to
    ``mask[row0:row0 + crop.shape[0], col0:col0 + crop.shape[1]]``. The margin makes
    :func:`boundary_map` on the crop give exactly the boundary of the full mask (a missing margin
    means the image edge, which is not a boundary there either). The runs are expanded only over
    the columns the mask touches (column-major, as COCO stores them), then cut to its rows.
    """
    import cv2

    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError("negative run length")
    total = int(counts.sum())
    if total != height * width:
        raise ValueError(f"run lengths sum to {total}, not height × width = {height * width}")
    ends = np.cumsum(counts)
    starts = ends - counts
    ones = np.flatnonzero(counts[1::2]) * 2 + 1  # runs of ones that hold at least one pixel
    if ones.size == 0:
        return np.zeros((0, 0), dtype=bool), 0, 0
    first = int(starts[ones[0]])
    last = int(ends[ones[-1]]) - 1
    col0 = max(first // height - 1, 0)
    col1 = min(last // height + 1, width - 1)
    lo, hi = col0 * height, (col1 + 1) * height
    s = np.maximum(starts, lo)
    e = np.minimum(ends, hi)
    lengths = np.maximum(e - s, 0)
    vals = np.zeros(counts.size, dtype=bool)
    vals[1::2] = True
    cols = np.repeat(vals, lengths).reshape(col1 - col0 + 1, height)  # one row per image column
    rows_hit = np.flatnonzero(cols.any(axis=0))
    row0 = max(int(rows_hit[0]) - 1, 0)
    row1 = min(int(rows_hit[-1]) + 1, height - 1)
    part = cols[:, row0 : row1 + 1]
    # cv2.transpose: the same array as np.ascontiguousarray(part.T), faster on instance crops;
    # numpy where OpenCV's shape rules would differ
    crop = cv2.transpose(part.view(np.uint8)).view(bool) if min(part.shape) > 1 else None
    if crop is None or crop.shape != part.shape[::-1]:
        crop = np.ascontiguousarray(part.T)
    return crop, row0, col0


def sample_rle_points(
    rle: dict,
    height: int,
    width: int,
    *,
    points: int = 20,
    boundary_share: float = 0.0,
    rng: np.random.Generator,
    image_edge: bool = False,
) -> SampledPoints:
    """Sample one instance straight from its COCO RLE, decoding only the box it touches.

    Gives exactly what :func:`sample_segment_points` gives on the decoded mask with the same
    generator state (both work on the mask's box plus a one-pixel margin), at a fraction of the
    cost of decoding a full ``H × W`` mask.
    """
    return sample_rle_counts(
        rle_counts(rle), height, width, points=points, boundary_share=boundary_share, rng=rng, image_edge=image_edge
    )


def sample_rle_counts(
    counts: np.ndarray,
    height: int,
    width: int,
    *,
    points: int = 20,
    boundary_share: float = 0.0,
    rng: np.random.Generator,
    image_edge: bool = False,
) -> SampledPoints:
    """:func:`sample_rle_points` from an RLE's run lengths (:func:`rle_counts`/:func:`rle_counts_many`)."""
    if points < 1 or not 0.0 <= boundary_share <= 1.0:
        raise ValueError("points must be >= 1 and boundary_share in [0, 1]")
    crop, row0, col0 = rle_crop(counts, height, width)
    if crop.size == 0:
        return SampledPoints(np.zeros((0, 2), np.int64), [], 0, True)
    on_b = mask_boundary(crop)
    if image_edge:
        on_b |= crop & on_image_edge(crop.shape, row0, col0, height, width)
    pixels = int(counts[1::2].sum())  # every pixel of the mask lies in the crop
    return sample_one(
        crop_pools(crop, on_b, row0, col0, height, width, pixels=pixels),
        points,
        boundary_count(points, boundary_share),
        rng,
    )
