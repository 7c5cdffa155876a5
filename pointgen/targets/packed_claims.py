"""Many shapes rasterised in one pass into claim maps (the closed pixel-centre rule of
:mod:`pointly.pointgen.targets.raster`).

A claim map says, per pixel, how many shapes of a layer cover it and the sum of their ids (and
of the squared ids): where one shape covers a pixel the sum names it, where two do the two sums
name both (:mod:`pointly.pointgen.targets.overlaps`). The spans of every shape come from one
vectorised pass (:func:`_claim_spans`); :func:`claim_runs` sums them into runs of pixels with
the same claims (what ``build_targets`` reads), :func:`pack_claims` into integer words over the
union box of all shapes, and :func:`claim_maps` and :func:`rasterize_claims` give one layer as
canvas-sized maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pointly.pointgen.targets.raster import (
    TOL,
    closed_rings,
    pair_order,
    rasterize_rings,
    ring_edges,
    ring_groups,
)
from pointly.pointgen.targets.sorted_arrays import run_starts, sorted_unique

#: more shapes than this in one layer could overflow pack_claims' int64 fields (COCO: < 100 an image)
MAX_BATCH_SHAPES = 1 << 20


def _claim_spans(
    shapes: list[list[np.ndarray]], height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The covered pixel spans of many shapes, merged per shape and row (closed pixel-centre rule).

    Returns ``(seg, row, start, end)`` (int64, ``end`` inclusive), sorted by shape then row, one
    entry per maximal run of one shape on one row; ``None`` when no shape covers a pixel. One
    vectorised pass for all shapes: the per-shape numpy overhead of :func:`~pointly.pointgen.targets.raster.rasterize_rings` is
    paid once per call.
    """
    ring_list, ring_poly, poly_seg = [], [], []
    for k, rings in enumerate(shapes):
        for group in ring_groups(rings):
            group = closed_rings(group)
            if group:
                ring_list.extend(group)
                ring_poly.extend([len(poly_seg)] * len(group))
                poly_seg.append(k)
    if not ring_list or height <= 0 or width <= 0:
        return None
    lens = np.array([len(r) for r in ring_list])
    x0, y0, x1, y1 = ring_edges(ring_list)
    if not (np.all(np.isfinite(x0)) and np.all(np.isfinite(y0))):
        raise ValueError("polygon vertices must be finite")
    # crossings are paired per polygon (its exterior and holes together: even-odd)
    ring_id = np.repeat(np.asarray(ring_poly, dtype=np.int64), lens)
    keep = y0 != y1
    x0, y0, x1, y1, ring_id = x0[keep], y0[keep], x1[keep], y1[keep], ring_id[keep]
    if x0.size == 0:
        return None
    crossings = _closed_crossings(x0, y0, x1, y1, ring_id, height)
    if crossings is None:
        return None
    rule_b, row, rid, xs = crossings
    # every (polygon, rule, row) group holds an even count of crossings: pair them in x order
    order, xs = pair_order((rid * 2 + rule_b) * height + row, xs, -1.0, float(width))
    first = order[0::2]  # a pair's row and polygon are its first crossing's
    row, rid = row[first], rid[first]
    s = np.ceil(xs[0::2] - 0.5 - TOL).astype(np.int64)
    t = np.floor(xs[1::2] - 0.5 + TOL).astype(np.int64)
    seg = np.asarray(poly_seg, dtype=np.int64)[rid]
    s = np.maximum(s, 0)
    t = np.minimum(t, width - 1)
    ok = s <= t
    s, t, row, seg = s[ok], t[ok], row[ok], seg[ok]
    if s.size == 0:
        return None
    # merge overlapping / touching spans of one shape on one row
    group = seg * height + row
    order = np.argsort(group * (width + 1) + s, kind="stable")  # = lexsort((s, group)), faster
    s, t, row, seg, group = s[order], t[order], row[order], seg[order], group[order]
    big = width + 2
    cummax = np.maximum.accumulate(t + group * big)
    new = np.ones(s.size, dtype=bool)
    new[1:] = (s[1:] + group[1:] * big) > cummax[:-1] + 1
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, s.size - 1)
    return seg[first], row[first], s[first], cummax[last] - group[first] * big


def _closed_crossings(
    x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, ring_id: np.ndarray, height: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The crossings of non-horizontal edges with the pixel-row centres (rows ``0 .. height − 1``)
    that the closed rule pairs: ``(rule_b, row, polygon, x)``, one entry per crossing.

    The closed rule is the union of rule A's spans (``ylo <= yc < yhi``) and rule B's (``ylo < yc
    <= yhi``; :func:`~pointly.pointgen.targets.raster.edge_crossings` lists every edge under both).
    The two rules count an edge differently only at a row whose centre is one of its end points,
    so on every other row of a polygon its rule-B crossings are its rule-A crossings and give the
    same spans, which the merge of a shape's spans drops. So rule A is listed on every row, rule
    B only on the rows where the rules differ for some edge of the polygon (found with the same
    floating-point tests as the rows' bounds): the same spans after the merge, from half the
    crossings (15 400 → 7 900 on the 6-segment COCO image, 25 100 → 13 500 on the 30-segment one),
    so half the sorting and pairing."""
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    slope = (x1 - x0) / (y1 - y0)
    u, v = ylo - 0.5, yhi - 0.5
    lo_a = np.maximum(np.ceil(u), 0).astype(np.int64)
    hi_a = np.minimum(np.ceil(v) - 1, height - 1).astype(np.int64)
    lo_b = np.maximum(np.floor(u) + 1, 0).astype(np.int64)
    hi_b = np.minimum(np.floor(v), height - 1).astype(np.int64)
    # rows where the rules differ, per polygon: an integral u (rule A only) or v (rule B only)
    at_u, at_v = lo_a != lo_b, hi_a != hi_b
    differ = sorted_unique(
        np.concatenate([ring_id[at_u] * height + np.floor(u[at_u]), ring_id[at_v] * height + np.floor(v[at_v])]).astype(
            np.int64
        )
    )
    n_a = np.maximum(hi_a - lo_a + 1, 0)
    first = np.searchsorted(differ, ring_id * height + lo_b, side="left")
    n_b = np.maximum(np.searchsorted(differ, ring_id * height + hi_b, side="right") - first, 0)
    total_a, total_b = int(n_a.sum()), int(n_b.sum())
    if total_a + total_b == 0:
        return None
    edge = np.repeat(np.arange(x0.size), n_a)
    row_a = np.repeat(lo_a - (np.cumsum(n_a) - n_a), n_a) + np.arange(total_a)
    edge_b = np.repeat(np.arange(x0.size), n_b)
    at = np.repeat(first - (np.cumsum(n_b) - n_b), n_b) + np.arange(total_b)
    edge = np.concatenate([edge, edge_b])
    rid = ring_id[edge]
    row = np.concatenate([row_a, differ[at] - rid[total_a:] * height])
    xs = (row + 0.5 - y0[edge]) * slope[edge]
    xs += x0[edge]
    return np.repeat(np.array([0, 1]), [total_a, total_b]), row, rid, xs


def _span_boxes(
    n: int, width: int, height: int, seg: np.ndarray, row: np.ndarray, start: np.ndarray, end: np.ndarray
) -> np.ndarray:
    """Per-shape covered pixel boxes ``x0, y0, x1, y1`` of ``n`` shapes from spans sorted by shape
    (inclusive; an empty shape gets ``width, height, -1, -1``)."""
    boxes = np.tile(np.array([width, height, -1, -1], dtype=np.int64), (n, 1))
    if seg.size:
        at = run_starts(seg)  # seg is sorted
        present = seg[at]
        boxes[present, 0] = np.minimum.reduceat(start, at)
        boxes[present, 2] = np.maximum.reduceat(end, at)
        boxes[present, 1] = np.minimum.reduceat(row, at)
        boxes[present, 3] = np.maximum.reduceat(row, at)
    return boxes


class PackedClaims:
    """Claim counts and id sums of several layers of shapes, packed into integer words over one box.

    Layer ``l`` holds shapes ``0..K_l-1``; its two maps are ``count`` (how many of its shapes cover
    a pixel) and ``idsum`` (the sum of ``k + 1`` over them: where ``count == 1`` it names the
    shape). Each map is a bit field of a word (int32 when all fields fit, else int64, else one
    word per layer), filled from one difference array per word and one cumulative sum. Maps are
    read as box-local arrays: rows ``y0 .. y0 + rows - 1`` and columns ``x0 .. x0 + cols - 1`` of
    the canvas; outside the box every map is 0. ``boxes[l]`` are the per-shape covered boxes.

    Why: one difference array and one cumulative sum per word for all layers, instead of one per
    layer and map (:func:`rasterize_claims`, :func:`claim_maps`). The target builder reads its
    claims as runs instead (:class:`ClaimRuns`: the same sums, without a box-sized pass).
    """

    def __init__(
        self, words: list[np.ndarray], fields: list[tuple[int, ...]], y0: int, x0: int, boxes: list[np.ndarray]
    ) -> None:
        self.words = words  # box-local (rows, cols) int arrays
        # per layer: (word, count_shift, count_mask, sum_shift, sum_mask[, square_shift, square_mask])
        self.fields = fields
        self.y0, self.x0 = y0, x0
        self.boxes = boxes

    @property
    def shape(self) -> tuple[int, int]:
        return self.words[0].shape if self.words else (0, 0)

    def _field(self, layer: int, which: int, at: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        f = self.fields[layer]
        if 1 + 2 * which >= len(f):
            raise ValueError("pack_claims was not asked for the squares of this layer")
        shift, mask = f[1 + 2 * which], f[2 + 2 * which]
        word = self.words[f[0]] if at is None else self.words[f[0]][at]
        out = word >> shift  # one fresh array, masked in place
        out &= mask
        return out

    def count(self, layer: int = 0, at: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """How many of the layer's shapes cover each box pixel (or the box pixels ``at = (rows, cols)``)."""
        return self._field(layer, 0, at)

    def idsum(self, layer: int = 0, at: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The sum of the ids (``k + 1`` unless given) of the layer's shapes covering each box pixel."""
        return self._field(layer, 1, at)

    def squaresum(self, layer: int = 0, at: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """The sum of the squared ids of the layer's shapes covering each box pixel (``squares=True``):
        with :meth:`idsum` it names both shapes where exactly two cover a pixel."""
        return self._field(layer, 2, at)

    def box_slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices of the box in the canvas."""
        h, w = self.shape
        return slice(self.y0, self.y0 + h), slice(self.x0, self.x0 + w)


def pack_claims(
    layers: list[list[list[np.ndarray]]],
    height: int,
    width: int,
    *,
    ids: list[Sequence[int]] | None = None,
    squares: bool = False,
) -> PackedClaims:
    """Rasterise several layers of shapes into one :class:`PackedClaims` (closed pixel-centre rule).

    ``layers[l][k]`` is the list of ring items (:func:`~pointly.pointgen.targets.raster.ring_groups`) of shape ``k`` of layer ``l``
    (its parts are unioned). ``ids[l][k]`` (positive integers; default ``k + 1``) is what shape
    ``k`` adds to the layer's id sum; ``squares`` also packs the sum of the squared ids. The spans of all shapes come from one :func:`_claim_spans` pass; the
    maps live only over the box of all spans (the work follows the shapes' extent, not the canvas).
    A span adds ``(1 << count_shift) + ((k + 1) << sum_shift)`` at its start and subtracts it
    after its end; fields are wide enough that counts never carry into sums.
    """
    sizes = [len(shapes) for shapes in layers]
    if any(k >= MAX_BATCH_SHAPES for k in sizes):
        raise ValueError(f"pack_claims packs claim sums in int64: at most {MAX_BATCH_SHAPES - 1} shapes a layer")
    if ids is None:
        ids = [range(1, k + 1) for k in sizes]
    id_arrays = [np.asarray(list(i), dtype=np.int64).reshape(-1) for i in ids]
    if [a.size for a in id_arrays] != sizes or any(a.size and a.min() < 1 for a in id_arrays):
        raise ValueError("ids must give one positive integer per shape of each layer")
    offsets = np.cumsum([0] + sizes)
    spans = _claim_spans([shape for shapes in layers for shape in shapes], height, width)
    if spans is None:
        empty = [np.zeros((0, 0), dtype=np.int32)]
        return PackedClaims(
            empty,
            [(0, 0, 0, 0, 0, 0, 0)] * len(layers),
            0,
            0,
            [_span_boxes(k, width, height, *(np.zeros(0, np.int64),) * 4) for k in sizes],
        )
    gseg, grow, gs, ge = spans
    layer_of = np.searchsorted(offsets, gseg, side="right") - 1
    local = gseg - offsets[layer_of]
    # bit fields: count needs bits(K), idsum bits(sum of ids), squares bits(sum of squared ids);
    # words of at most 63 bits
    widths = [
        [max(1, k.bit_length()), max(1, int(a.sum()).bit_length())]
        + ([max(1, int((a * a).sum()).bit_length())] if squares else [])
        for k, a in zip(sizes, id_arrays)
    ]
    if any(sum(w) > 63 for w in widths):
        raise ValueError("pack_claims: a layer's id sums do not fit a 63-bit word; use fewer or smaller ids")
    total = sum(sum(w) for w in widths)
    fields, word_bits, shift = [], [], 0
    for w in widths:
        if total > 63 and shift:  # does not fit one word: one word per layer
            word_bits.append(shift)
            shift = 0
        field_ = [len(word_bits)]
        for bits in w:
            field_ += [shift, (1 << bits) - 1]
            shift += bits
        fields.append(tuple(field_))
    word_bits.append(shift)
    R0, R1 = int(grow.min()), int(grow.max())
    C0, C1 = int(gs.min()), int(ge.max())
    nr, nc = R1 - R0 + 1, C1 - C0 + 1
    # one flat difference array over the box, row after row: a span's end mark at the last column
    # lands on the next row's first pixel, where the running sum must be back anyway, so one 1-D
    # cumulative sum serves all rows and the words stay contiguous (numpy's shifts on a strided
    # view are much slower than on a contiguous array)
    start = (grow - R0) * nc - C0 + gs
    stop = (grow - R0) * nc - C0 + ge + 1
    span_field = np.array(fields, dtype=np.int64)[layer_of]  # each span's layer fields
    span_word = span_field[:, 0]
    span_id = np.concatenate(id_arrays)[gseg]
    span_value = (np.int64(1) << span_field[:, 1]) + (span_id << span_field[:, 3])
    if squares:
        span_value += (span_id * span_id) << span_field[:, 5]
    words = []
    for w, bits in enumerate(word_bits):
        dtype = np.int32 if bits <= 31 else np.int64
        sel = span_word == w
        value = span_value[sel].astype(dtype)
        v = np.zeros(nr * nc + 1, dtype=dtype)
        # unbuffered scatter-add (numpy >= 1.25 made ufunc.at fast): faster than sorting the
        # positions and reducing equal ones
        np.add.at(v, np.concatenate([start[sel], stop[sel]]), np.concatenate([value, -value]))
        np.cumsum(v, out=v)
        words.append(v[:-1].reshape(nr, nc))
    boxes = []
    for l, k in enumerate(sizes):
        sel = layer_of == l
        boxes.append(_span_boxes(k, width, height, local[sel], grow[sel], gs[sel], ge[sel]))
    return PackedClaims(words, fields, R0, C0, boxes)


class ClaimRuns:
    """Per-pixel claims of several layers of shapes as runs of the canvas's pixels in row-major
    order: between two consecutive span ends (a span's first pixel, or the pixel after its last)
    every layer's claims are constant, so each run holds, per layer, how many of its shapes cover
    its pixels (``count``), the sum of their ids (``idsum``) and of the squared ids (``squares``).

    * ``start``, ``length``: int64 ``(R,)``, the runs' first flat canvas index (``row * width +
      col``) and pixel count; they tile ``0 .. height * width`` in order (some are empty);
    * ``count``, ``idsum``, ``squares``: int64 ``(layers, R)``;
    * ``boxes[l]``: the per-shape covered pixel boxes of layer ``l``, as in :class:`PackedClaims`.

    Why: the same values per pixel as :class:`PackedClaims` (the sums of the same spans), but its
    box-wide difference array, cumulative sum and every field read become arithmetic on a few
    thousand runs: an image's owner map is then one ``np.repeat`` of the runs' owners
    (``shape_claims.shape_owner``; benchmarks/results_targets.md). ``squares`` are never packed
    into words, so there is no bound on ids beyond int64.
    """

    def __init__(
        self,
        start: np.ndarray,
        length: np.ndarray,
        count: np.ndarray,
        idsum: np.ndarray,
        squares: np.ndarray,
        boxes: list[np.ndarray],
    ) -> None:
        self.start, self.length = start, length
        self.count, self.idsum, self.squares = count, idsum, squares
        self.boxes = boxes

    def pixels(self, runs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(flat, run)``: the flat canvas index of every pixel of the runs selected by ``runs``
        (a boolean mask or indices), in order, and the run each belongs to."""
        idx = np.flatnonzero(runs) if runs.dtype == bool else np.asarray(runs, dtype=np.int64)
        n = self.length[idx]
        run = np.repeat(idx, n)
        flat = np.arange(int(n.sum()), dtype=np.int64) + np.repeat(self.start[idx] - (np.cumsum(n) - n), n)
        return flat, run

    def run_of(self, flat: np.ndarray) -> np.ndarray:
        """The run holding each flat canvas index (the last run starting at or before it: the
        non-empty one)."""
        return np.searchsorted(self.start, flat, side="right") - 1


def claim_runs(
    layers: list[list[list[np.ndarray]]], height: int, width: int, *, ids: list[Sequence[int]] | None = None
) -> ClaimRuns:
    """:class:`ClaimRuns` of several layers of shapes (the closed pixel-centre rule; ``layers`` and
    ``ids`` as for :func:`pack_claims`, whose fields they equal pixel for pixel).

    The spans of all shapes come from one :func:`_claim_spans` pass; each span adds its layer's
    ``(1, id, id²)`` at its first pixel and subtracts it after its last: the span ends, sorted by
    flat index (a stable sort: they arrive as sorted runs, two per shape), and cumulated, give
    every run's sums.
    """
    sizes = [len(shapes) for shapes in layers]
    if ids is None:
        ids = [range(1, k + 1) for k in sizes]
    id_arrays = [np.asarray(list(i), dtype=np.int64).reshape(-1) for i in ids]
    if [a.size for a in id_arrays] != sizes or any(a.size and a.min() < 1 for a in id_arrays):
        raise ValueError("ids must give one positive integer per shape of each layer")
    nl, total = len(layers), max(height, 0) * max(width, 0)
    spans = _claim_spans([shape for shapes in layers for shape in shapes], height, width)
    if spans is None:
        zero = np.zeros((nl, 1), np.int64)
        none = np.zeros(0, np.int64)
        boxes = [_span_boxes(k, width, height, none, none, none, none) for k in sizes]
        return ClaimRuns(np.zeros(1, np.int64), np.array([total]), zero, zero.copy(), zero.copy(), boxes)
    gseg, grow, gs, ge = spans
    offsets = np.cumsum([0] + sizes)
    layer_of = np.searchsorted(offsets, gseg, side="right") - 1
    span_id = np.concatenate(id_arrays)[gseg]
    n = gseg.size
    pos = np.concatenate([grow * width + gs, grow * width + ge + 1])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    ev = order % n  # the span of each sorted end
    sign = np.where(order < n, 1, -1)
    # per layer, (count, id sum, squared-id sum) after each end: the end's change, cumulated
    # (written through flat indices: 2x faster than one fancy assignment of all three)
    f = np.zeros((nl, 3, 2 * n + 1), np.int64)
    at = layer_of[ev] * (3 * (2 * n + 1)) + np.arange(1, 2 * n + 1)
    change = sign * span_id[ev]
    flat = f.reshape(-1)
    flat[at] = sign
    flat[at + (2 * n + 1)] = change
    flat[at + 2 * (2 * n + 1)] = change * span_id[ev]
    np.cumsum(f, axis=2, out=f)
    start = np.concatenate([[0], pos])
    length = np.diff(np.append(start, total))
    # every shape's box in one pass (the spans are sorted by shape), then split into the layers
    boxes = np.split(_span_boxes(int(offsets[-1]), width, height, gseg, grow, gs, ge), offsets[1:-1])
    return ClaimRuns(start, length, f[:, 0], f[:, 1], f[:, 2], boxes)


def rasterize_claims(
    shapes: list[list[np.ndarray]], height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rasterise many shapes at once into claim maps (same closed pixel-centre rule).

    ``shapes[k]`` is the list of ring items of shape ``k`` (:func:`~pointly.pointgen.targets.raster.ring_groups`; one per polygon part; parts
    of one shape must not overlap). Returns ``(count, idsum, boxes)``: ``count`` (int32 ``H × W``)
    is how many shapes cover each pixel, ``idsum`` (int32) the sum of ``k + 1`` over them (so
    where ``count == 1`` it names the one shape), and ``boxes`` (``K × 4`` int64) each shape's
    covered pixel box ``x0, y0, x1, y1`` (inclusive; ``x1 < x0`` when it covers nothing).

    One :func:`pack_claims` pass (one layer), unpacked into canvas-sized maps.
    """
    count = np.zeros((max(height, 0), max(width, 0)), dtype=np.int32)
    idsum = np.zeros_like(count)
    packed = pack_claims([shapes], height, width)
    if packed.shape[0]:
        ys, xs = packed.box_slices()
        np.copyto(count[ys, xs], packed.count(0), casting="unsafe")
        np.copyto(idsum[ys, xs], packed.idsum(0), casting="unsafe")
    return count, idsum, packed.boxes[0]


#: canvases up to this many pixels are rasterised in one batched pass (:func:`rasterize_claims`),
#: larger ones shape by shape (:func:`~pointly.pointgen.targets.raster.rasterize_rings`). The batched pass works in the union box
#: with packed int32 sums and is faster at every size measured (benchmarks/README.md), so the
#: limit only guards absurdly large canvases.
BATCH_MAX_PIXELS = 1 << 26


def claim_maps(
    shapes: list[list[np.ndarray]], height: int, width: int, *, batched: bool | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(count, idsum, boxes)`` of :func:`rasterize_claims`, by the faster method for the canvas.

    ``batched`` forces one method (tests check that both give the same maps).
    """
    if batched is None:
        batched = height * width <= BATCH_MAX_PIXELS and len(shapes) < MAX_BATCH_SHAPES
    if batched:
        return rasterize_claims(shapes, height, width)
    count = np.zeros((height, width), dtype=np.int32)
    idsum = np.zeros((height, width), dtype=np.int32)
    boxes = np.tile(np.array([width, height, -1, -1], dtype=np.int64), (len(shapes), 1))
    for k, rings in enumerate(shapes):
        crop, x0, y0 = rasterize_rings(list(rings), height, width)
        if not crop.size:
            continue
        ch, cw = crop.shape
        count[y0 : y0 + ch, x0 : x0 + cw] += crop
        np.add(idsum[y0 : y0 + ch, x0 : x0 + cw], np.int32(k + 1), out=idsum[y0 : y0 + ch, x0 : x0 + cw], where=crop)
        boxes[k] = (x0, y0, x0 + cw - 1, y0 + ch - 1)
    return count, idsum, boxes
