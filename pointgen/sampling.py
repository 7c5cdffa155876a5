"""Point sampling primitives: boundary pixels, pool splitting, label-map grouping, RLE strips.

Everything here is pure numpy and takes a :class:`numpy.random.Generator`; the simulator
(:mod:`pointly.pointgen.simulate`) strings these together per image.

Boundary definition (docs/formats.md, "Boundary pixels")
--------------------------------------------------------
A pixel ``p`` of segment ``S`` is a *boundary* pixel when at least one of its 4-neighbours
(up, down, left, right) **that lies inside the image** does not belong to ``S`` (it belongs to
another segment or to VOID). The image border by itself does not make a pixel a boundary pixel:
a neighbour outside the image does not exist, so it cannot differ. This is what one comparison of
the label map with its shifted copies gives (libraries.md, "Sampling points": 0.74 ms per image,
the same set as ``skimage.segmentation.find_boundaries(mode="inner")`` away from the image edge);
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

from dataclasses import dataclass
from typing import Sequence

import numpy as np

#: the two kinds of simulated points, as written in ``point_kinds``
INTERIOR_KIND = "random"
BOUNDARY_KIND = "boundary"


def boundary_count(points: int, boundary_share: float) -> int:
    """How many of ``points`` come from the boundary: Python ``round(share × points)``."""
    return int(round(boundary_share * points))


def boundary_map(labels: np.ndarray) -> np.ndarray:
    """``H × W`` bool: pixels with a 4-neighbour inside the image that carries a different label.

    ``labels`` may be an id map (then every segment's boundary is ``boundary_map(ids) & (ids ==
    sid)``) or a boolean mask (then its boundary is ``boundary_map(mask) & mask``). Pixels outside
    the image are not neighbours, so the image edge alone never makes a boundary pixel.
    """
    labels = np.asarray(labels)
    out = np.zeros(labels.shape, dtype=bool)
    if labels.ndim != 2:
        raise ValueError(f"labels must be 2-D, got shape {labels.shape}")
    diff = labels[:, 1:] != labels[:, :-1]
    out[:, 1:] |= diff
    out[:, :-1] |= diff
    diff = labels[1:, :] != labels[:-1, :]
    out[1:, :] |= diff
    out[:-1, :] |= diff
    return out


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """The boundary pixels of a boolean mask (relative to the mask itself; see module doc)."""
    mask = np.asarray(mask, dtype=bool)
    return boundary_map(mask) & mask


@dataclass(frozen=True)
class PoolChoice:
    """Positions chosen in the two pools of one segment (indices into each pool)."""

    interior: np.ndarray
    boundary: np.ndarray
    short: bool  # the segment had fewer pixels than the points asked for


def choose_from_pools(n_interior: int, n_boundary: int, points: int, boundary_share: float,
                      rng: np.random.Generator) -> PoolChoice:
    """Choose ``points`` distinct pool positions: ``round(share·points)`` boundary, rest interior.

    Implements the fall-back rule of the module docstring. Returned positions are in draw order.
    """
    if points < 1:
        raise ValueError("points must be >= 1")
    if not 0.0 <= boundary_share <= 1.0:
        raise ValueError("boundary_share must lie in [0, 1]")
    total = n_interior + n_boundary
    if total <= points:  # take every pixel, in random order within each pool
        return PoolChoice(rng.permutation(n_interior), rng.permutation(n_boundary), total < points)
    k_b = min(boundary_count(points, boundary_share), n_boundary)
    k_i = points - k_b
    if k_i > n_interior:
        k_i = n_interior
        k_b = points - k_i
    return PoolChoice(rng.choice(n_interior, size=k_i, replace=False) if k_i else np.zeros(0, np.int64),
                      rng.choice(n_boundary, size=k_b, replace=False) if k_b else np.zeros(0, np.int64),
                      False)


@dataclass
class SampledPoints:
    """The points of one segment: ``coords`` is ``k × 2`` int (x = column, y = row)."""

    coords: np.ndarray
    kinds: list[str]
    pixels: int  # size of the segment in pixels
    short: bool

    def coords_list(self) -> list[list[int]]:
        return [[int(x), int(y)] for x, y in self.coords]


def _assemble(interior_idx: np.ndarray, boundary_idx: np.ndarray, width: int, pixels: int,
              short: bool) -> SampledPoints:
    """Flat row-major pixel indices (interior first, then boundary) → :class:`SampledPoints`."""
    flat = np.concatenate([interior_idx, boundary_idx]).astype(np.int64, copy=False)
    coords = np.stack([flat % width, flat // width], axis=1)
    kinds = [INTERIOR_KIND] * len(interior_idx) + [BOUNDARY_KIND] * len(boundary_idx)
    return SampledPoints(coords, kinds, pixels, short)


def sample_segment_points(mask: np.ndarray, *, points: int = 20, boundary_share: float = 0.0,
                          rng: np.random.Generator, boundary: np.ndarray | None = None
                          ) -> SampledPoints:
    """Sample the points of one segment given as an ``H × W`` boolean mask.

    ``boundary`` (optional) is the segment's boundary pixels; by default it is the boundary of the
    mask itself (:func:`mask_boundary`). For a panoptic label map pass
    ``boundary_map(ids) & mask`` so that the boundary is against the other segments and VOID
    (the same set for non-overlapping segments). Interior points come first, then boundary ones.
    """
    mask = np.asarray(mask, dtype=bool)
    bnd = mask_boundary(mask) if boundary is None else (np.asarray(boundary, bool) & mask)
    flat_m = mask.ravel()
    flat_b = bnd.ravel()
    interior = np.flatnonzero(flat_m & ~flat_b)
    bpix = np.flatnonzero(flat_b)
    choice = choose_from_pools(interior.size, bpix.size, points, boundary_share, rng)
    return _assemble(interior[choice.interior], bpix[choice.boundary], mask.shape[1],
                     interior.size + bpix.size, choice.short)


# --------------------------------------------------------------------------- panoptic label maps

class LabelMapMismatch(ValueError):
    """The label map and the segment list disagree (the caller turns it into a PointlyError)."""


@dataclass
class PixelGroups:
    """The pixels of each listed segment, split into interior and boundary pools.

    ``order`` holds flat row-major pixel indices sorted by (segment, pool); the interior pool of
    segment ``i`` (in ``segment_ids`` order) is ``order[start[2i] : start[2i] + count[2i]]`` and
    its boundary pool ``order[start[2i+1] : ...]``; both in raster order.
    """

    segment_ids: np.ndarray
    order: np.ndarray
    start: np.ndarray
    count: np.ndarray
    width: int

    def pools(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = 2 * i, 2 * i + 1
        s = self.start
        return (self.order[s[a]:s[a] + self.count[a]], self.order[s[b]:s[b] + self.count[b]])

    def pixels(self, i: int) -> int:
        return int(self.count[2 * i] + self.count[2 * i + 1])


def group_label_map(ids: np.ndarray, segment_ids: Sequence[int]) -> PixelGroups:
    """Group the pixels of an id map (0 = VOID) by segment and pool in one sorting pass.

    One ``searchsorted`` maps each pixel to its segment's rank, a stable radix ``argsort`` of the
    key ``2·rank + is_boundary`` (uint8 when it fits) groups them. Hand-written because it replaces
    one ``ids == sid`` pass per segment plus ``np.unique`` (measured in benchmarks/bench_simulate.py).
    Raises :class:`LabelMapMismatch` when the map holds an id that is not listed (other than 0) or
    a listed id has no pixel.
    """
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError("ids must be an H × W array")
    seg = np.asarray(list(segment_ids), dtype=np.int64)
    if seg.size and np.unique(seg).size != seg.size:
        raise LabelMapMismatch("a segment id is listed twice")
    if np.any(seg == 0):
        raise LabelMapMismatch("segment id 0 is VOID and cannot be a segment")
    # rank 0 is VOID; listed segments get ranks 1..K in sorted-id order
    sorted_ids = np.concatenate([[0], np.sort(seg)]).astype(ids.dtype if ids.dtype.kind in "iu" else np.int64)
    flat = ids.ravel()
    rank = np.searchsorted(sorted_ids, flat)
    np.minimum(rank, sorted_ids.size - 1, out=rank)
    if not np.array_equal(sorted_ids[rank], flat):
        bad = np.unique(flat[sorted_ids[rank] != flat])[:5]
        raise LabelMapMismatch(f"segment ids {bad.tolist()} are in the PNG but not in segments_info")
    nclass = 2 * sorted_ids.size
    dtype = np.uint8 if nclass <= 256 else np.uint16 if nclass <= 65536 else np.int64
    key = rank.astype(dtype)
    key <<= 1
    key |= boundary_map(ids).ravel()
    order = np.argsort(key, kind="stable")
    count = np.bincount(key, minlength=nclass)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    pix = count[0::2] + count[1::2]
    empty = sorted_ids[1:][pix[1:] == 0]
    if empty.size:
        raise LabelMapMismatch(f"segment ids {empty[:5].tolist()} are in segments_info but not in the PNG")
    # re-index from sorted-id order to the caller's order
    pos = np.searchsorted(sorted_ids, seg)
    sel = np.stack([2 * pos, 2 * pos + 1], axis=1).ravel()
    return PixelGroups(seg, order, start[sel], count[sel], ids.shape[1])


def segment_bboxes(groups: PixelGroups, ids: np.ndarray) -> np.ndarray:
    """``K × 4`` COCO boxes ``[x, y, w, h]`` of the grouped segments (pixel-aligned), cheaply.

    Rows come from the first and last pixel of the (raster-ordered) pools. Columns need only the
    boundary pool: a segment's leftmost pixel has a left neighbour outside the segment, so it is a
    boundary pixel, unless it lies in the image's first column (and likewise on the right).
    """
    w = groups.width
    left = set(np.unique(ids[:, 0]).tolist())
    right = set(np.unique(ids[:, -1]).tolist())
    out = np.zeros((groups.segment_ids.size, 4), dtype=np.float64)
    for i, sid in enumerate(groups.segment_ids.tolist()):
        a, b = groups.pools(i)
        if a.size + b.size == 0:
            continue
        ends = [p[[0, -1]] for p in (a, b) if p.size]
        lo = min(int(e[0]) for e in ends) // w
        hi = max(int(e[1]) for e in ends) // w
        bc = b % w
        x0 = 0 if sid in left else int(bc.min())
        x1 = w - 1 if sid in right else int(bc.max())
        out[i] = (x0, lo, x1 - x0 + 1, hi - lo + 1)
    return out


def sample_groups(groups: PixelGroups, indices: Sequence[int], *, points: int, boundary_share: float,
                  rng: np.random.Generator) -> list[SampledPoints]:
    """Sample the segments ``indices`` (positions in ``groups.segment_ids``), in that order."""
    out = []
    for i in indices:
        interior, bnd = groups.pools(i)
        choice = choose_from_pools(interior.size, bnd.size, points, boundary_share, rng)
        out.append(_assemble(interior[choice.interior], bnd[choice.boundary], groups.width,
                             interior.size + bnd.size, choice.short))
    return out


# --------------------------------------------------------------------------- COCO RLE

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
    c = np.frombuffer(counts, dtype=np.uint8).astype(np.int64) - 48
    if c.size == 0:
        return np.zeros(0, np.int64)
    if np.any((c < 0) | (c > 63)):
        raise ValueError("RLE string holds characters outside the COCO alphabet")
    more = (c & 0x20) != 0
    if more[-1]:
        raise ValueError("RLE string ends inside a number")
    last = np.flatnonzero(~more)  # the last chunk of each number
    first = np.concatenate([[0], last[:-1] + 1])
    group = np.repeat(np.arange(last.size), last - first + 1)
    k = np.arange(c.size) - first[group]
    vals = np.add.reduceat((c & 0x1F) << (5 * k), first)
    neg = (c[last] & 0x10) != 0
    vals[neg] -= np.left_shift(np.int64(1), 5 * (k[last[neg]] + 1))
    # pycocotools: cnts[m] = x[m] + cnts[m-2] for m > 2, so counts 0, 1, 2 are absolute and each
    # parity is a running sum from there
    out = vals.copy()
    out[1::2] = np.cumsum(vals[1::2])
    out[2::2] = np.cumsum(vals[2::2])
    return out


def rle_strip(counts: np.ndarray, height: int, width: int) -> tuple[np.ndarray, int]:
    """Decode only the columns an RLE touches, plus one empty column each side when inside the image.

    Returns ``(strip, col0)``: ``strip`` is a boolean ``height × ncols`` array equal to
    ``mask[:, col0:col0 + ncols]``. With the extra columns, :func:`boundary_map` on the strip gives
    exactly the boundary the full mask would have (the image's top and bottom are inside the strip).
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError("negative run length")
    total = int(counts.sum())
    if total != height * width:
        raise ValueError(f"run lengths sum to {total}, not height × width = {height * width}")
    ends = np.cumsum(counts)
    starts = ends - counts
    ones = np.arange(counts.size) % 2 == 1
    ones &= counts > 0
    if not ones.any():
        return np.zeros((height, 0), dtype=bool), 0
    first = int(starts[ones][0])
    last = int(ends[ones][-1]) - 1
    col0 = max(first // height - 1, 0)
    col1 = min(last // height + 1, width - 1)
    lo, hi = col0 * height, (col1 + 1) * height
    # clip every run to [lo, hi) and expand values by run length
    s = np.clip(starts, lo, hi)
    e = np.clip(ends, lo, hi)
    vals = np.arange(counts.size) % 2 == 1
    flat = np.repeat(vals, e - s)
    strip = flat.reshape(col1 - col0 + 1, height).T
    return strip, col0


def sample_rle_points(rle: dict, height: int, width: int, *, points: int = 20,
                      boundary_share: float = 0.0, rng: np.random.Generator) -> SampledPoints:
    """Sample one instance straight from its COCO RLE (decoding only the columns it touches).

    Gives exactly what :func:`sample_segment_points` gives on the decoded mask with the same
    generator state, at a fraction of the cost for small instances.
    """
    strip, col0 = rle_strip(rle_counts(rle), height, width)
    if strip.size == 0:
        return SampledPoints(np.zeros((0, 2), np.int64), [], 0, True)
    bnd = boundary_map(strip) & strip
    fm, fb = strip.ravel(), bnd.ravel()
    interior = np.flatnonzero(fm & ~fb)
    bpix = np.flatnonzero(fb)
    choice = choose_from_pools(interior.size, bpix.size, points, boundary_share, rng)
    sp = _assemble(interior[choice.interior], bpix[choice.boundary], strip.shape[1],
                   interior.size + bpix.size, choice.short)
    sp.coords[:, 0] += col0
    return sp
