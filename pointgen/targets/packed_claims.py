"""Many shapes rasterised in one pass into claim maps (the closed pixel-centre rule of
:mod:`pointly.pointgen.targets.raster`).

A claim map says, per pixel, how many shapes of a layer cover it and the sum of their ids (and
of the squared ids): where one shape covers a pixel the sum names it, where two do the two sums
name both (:mod:`pointly.pointgen.targets.overlaps`). :func:`pack_claims` packs several layers'
maps into integer words over the union box of all shapes, from the spans of every shape computed
in one vectorised pass; :func:`claim_maps` and :func:`rasterize_claims` give one layer as
canvas-sized maps.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from pointly.pointgen.targets.raster import (
    TOL,
    closed_rings,
    edge_crossings,
    pair_order,
    rasterize_rings,
    ring_edges,
    ring_groups,
)
from pointly.pointgen.targets.sorted_arrays import run_starts

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
    crossings = edge_crossings(x0, y0, x1, y1, 0, height - 1)
    if crossings is None:
        return None
    edge, row, e, xs = crossings
    ne = x0.size
    rid = ring_id[e]
    # every (polygon, rule, row) group holds an even count of crossings: pair them in x order
    order, xs = pair_order((rid * 2 + (edge >= ne)) * height + row, xs, -1.0, float(width))
    row, rid = row[order], rid[order]
    s = np.ceil(xs[0::2] - 0.5 - TOL).astype(np.int64)
    t = np.floor(xs[1::2] - 0.5 + TOL).astype(np.int64)
    row, seg = row[0::2], np.asarray(poly_seg, dtype=np.int64)[rid[0::2]]
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

    Why: the target builder needs the claims of the shapes and of the dilated shapes; packing both
    in one word halves the box-sized passes and the fresh image-sized arrays of two separate
    :func:`rasterize_claims` calls (benchmarks/results_targets.md).
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

    def field_into(self, layer: int, which: int, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
        """Field ``which`` (0: count, 1: id sum, 2: squared-id sum) of ``layer`` over the box,
        written into ``out`` (cast unsafely: the caller picks a dtype wide enough for the values
        it reads; ``out`` may be ``scratch`` itself) through ``scratch``, an array of the box's
        shape and :meth:`scratch_dtype` that the caller reuses. Returns ``out``.

        Why: :meth:`count` and :meth:`idsum` return a fresh box-sized word-typed array per call,
        and in ``build_targets`` the page faults of such fresh arrays cost more than the
        arithmetic (an int64 shift of 640×480 takes ~0.1 ms with warm pages, ~1 ms fresh,
        measured); this way a layer's count is read as one byte a pixel.
        """
        f = self.fields[layer]
        if 1 + 2 * which >= len(f):
            raise ValueError("pack_claims was not asked for the squares of this layer")
        shift, mask = f[1 + 2 * which], f[2 + 2 * which]
        word = self.words[f[0]]
        if shift:  # into an int32 scratch: the low 32 bits, all that a mask < 2**31 keeps
            word = np.right_shift(word, shift, out=scratch, casting="unsafe")
        return np.bitwise_and(word, mask, out=out, casting="unsafe")

    def scratch_dtype(self) -> type:
        """int32 when every field's mask is below 2**31 (then a field needs only the low 32 bits of
        its shifted word), else int64: the dtype of :meth:`field_into`'s scratch."""
        masks = [m for f in self.fields for m in f[2::2]]
        return np.int32 if all(m < (1 << 31) for m in masks) else np.int64

    def count_dtype(self, layer: int) -> type:
        """The narrowest of uint8 / int32 that holds ``layer``'s claim counts."""
        return np.uint8 if self.fields[layer][2] <= 0xFF else np.int32

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
