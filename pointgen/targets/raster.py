"""Exact, closed, pixel-centre rasterisation of polygons, vectorised with numpy.

Rule (docs/targets.md, "Pixel-centre semantics"): output pixel ``(i, j)`` (row ``i``, column
``j``) belongs to a polygon when its centre ``(j + 0.5, i + 0.5)`` lies in the **closed** polygon
(interior or boundary). The closed rule matters for point targets: the hull of a segment's
points passes through the points' pixel centres, so an open rule would drop the very pixels
that were clicked, and a square hull of points at corners (0, 0) … (9, 9) must give a 10 × 10
block, not 9 × 9.

How: a scanline per pixel row, done for all rows and edges at once. For a row centre ``y`` the
closed polygon's slice is the union of the two half-open even-odd slices, edges counted when
``ylo <= y < yhi`` (the slice just below the row, closed) and when ``ylo < y <= yhi`` (just
above): every boundary point of a simple polygon is the limit of interior points from above or
below, so the union is exactly the closed slice, vertices and horizontal edges included. Spans
are merged per row; a crop whose rows hold one span each (convex shapes, discs, capsules, most
hulls) is filled by two comparisons per pixel, otherwise by a difference array and a ``cumsum``. A tolerance
of 1e-9 px on crossing positions absorbs floating-point rounding in the inclusive direction.

Why hand-written (``benchmarks/bench_targets.py``, median CPU time, a 20-point concave hull of
about 200×150 px on a 640×480 grid; see benchmarks/results_targets.md):

=============================================  =========  =====================================
method                                         µs / poly  vs the closed pixel-centre rule
=============================================  =========  =====================================
this scanline (:func:`rasterize_polygon`)      ~200       exact (hypothesis-tested vs shapely)
``shapely.intersects_xy`` on the bbox grid     ~1600      exact (the test oracle)
``matplotlib.path.Path.contains_points``       ~830       not exact (29 of 12631 px differ)
``skimage.draw.polygon``                       ~3400      exact on this polygon, 17× slower
``cv2.fillPoly``                               ~18        not exact (339 px differ: the outline)
=============================================  =========  =====================================

rasterio (exact, 333 µs in libraries.md) is not installed and would add a GDAL dependency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

_TOL = 1e-9
#: more shapes than this in one layer could overflow pack_claims' int64 fields (COCO: < 100 an image)
MAX_BATCH_SHAPES = 1 << 20


def polygon_rings(geometry) -> list:
    """The polygons of a shapely Polygon or MultiPolygon as ring items (see :func:`ring_groups`):
    a ``(V, 2)`` float array for a polygon without holes, a tuple ``(exterior, hole, ...)`` for one
    with holes."""
    geoms = getattr(geometry, "geoms", None)
    parts = list(geoms) if geoms is not None else [geometry]
    rings: list = []
    for g in parts:
        if g.is_empty:
            continue
        if g.geom_type != "Polygon":
            raise ValueError(f"cannot rasterise a {g.geom_type}")
        exterior = np.asarray(g.exterior.coords, dtype=np.float64)[:-1]
        if len(g.interiors):
            rings.append((exterior, *(np.asarray(r.coords, dtype=np.float64)[:-1] for r in g.interiors)))
        else:
            rings.append(exterior)
    return rings


def ring_groups(items) -> list[list[np.ndarray]]:
    """Ring items as polygons, each a list of rings paired together by the even-odd rule.

    A ring item is either one simple ring (a ``(V, 2)`` array: a polygon without holes) or a
    tuple ``(exterior, hole, ...)`` of arrays (a polygon with holes: a row's crossings with all of
    its rings are paired together, so the holes are left out). Items of one shape are unioned.
    """
    return [list(item) if isinstance(item, tuple) else [item] for item in items]


def rasterize_polygon(vertices: np.ndarray, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """Rasterise one simple polygon on a ``height × width`` grid with the closed pixel-centre rule.

    ``vertices`` is ``(V, 2)`` of ``(x, y)`` in the grid's continuous coordinates (pixel ``(i, j)``
    spans ``[j, j+1] × [i, i+1]``); the ring may or may not repeat its first vertex. Returns
    ``(crop, x0, y0)``: a boolean crop whose box is exactly the box of the covered pixels (its
    first and last rows and columns each hold a pixel), and its top-left pixel. An empty result is
    a ``0 × 0`` crop.
    """
    return rasterize_rings([np.asarray(vertices, dtype=np.float64)], height, width)


def _edge_crossings(
    x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, row_min: int, row_max: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """Where non-horizontal edges cross the pixel-row centres ``i + 0.5`` (rows row_min..row_max).

    Both half-open rules at once: rule A (ylo <= yc < yhi) for edges ``0..ne-1`` and rule B
    (ylo < yc <= yhi) for edges ``ne..2ne-1`` (every edge listed twice). Returns ``(edge, row,
    e, xs)``: the listed-edge index, the row, the edge index ``edge % ne`` and the crossing's x,
    one entry per crossing; ``None`` when nothing crosses.
    """
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    slope = (x1 - x0) / (y1 - y0)
    lo = np.concatenate([np.ceil(ylo - 0.5), np.floor(ylo - 0.5) + 1])
    hi = np.concatenate([np.ceil(yhi - 0.5) - 1, np.floor(yhi - 0.5)])
    lo = np.maximum(lo, row_min).astype(np.int64)
    hi = np.minimum(hi, row_max).astype(np.int64)
    n = np.maximum(hi - lo + 1, 0)
    total = int(n.sum())
    if total == 0:
        return None
    ne = x0.size
    edge = np.repeat(np.arange(2 * ne), n)
    offset = np.cumsum(n) - n
    row = lo[edge] + (np.arange(total) - offset[edge])
    e = edge % ne
    xs = x0[e] + (row + 0.5 - y0[e]) * slope[e]
    return edge, row, e, xs


def _pair_order(key: np.ndarray, xs: np.ndarray, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Order crossings by the integer group ``key``, then by ``x``; returns ``(order, x)``.

    ``x`` is ``xs`` clipped to ``[lo, hi]`` (one pixel beyond the canvas on each side): spans
    computed from clipped crossings are the same after clipping them to the canvas (a crossing at
    or left of ``lo`` starts a span at the first column and ends none; one at or right of ``hi``
    ends a span at the last column and starts none). Written here because it is measurably faster
    than ``np.lexsort((xs, key))``, its exact equivalent: one quicksort of a float64 composite
    ``key * width + x`` (0.40 against 0.92 ms for 8000 crossings, one core). float64 rounding can
    only swap crossings of one group that lie within ~1e-9 of each other, so the result is checked
    (x non-decreasing inside every group) and the exact lexsort is used when the check fails.
    """
    x = np.clip(xs, lo, hi)
    span = hi - lo + 2.0
    order = np.argsort(key * span + (x - lo))
    k, xo = key[order], x[order]
    same = k[1:] == k[:-1]
    if not (np.all(k[1:] >= k[:-1]) and np.all(xo[1:][same] >= xo[:-1][same])):
        order = np.lexsort((x, key))
        xo = x[order]
    return order, xo


def _closed_rings(group: list[np.ndarray]) -> list[np.ndarray]:
    """The rings of a polygon as ``(V, 2)`` float arrays without a repeated first vertex, V >= 3."""
    out = []
    for r in group:
        r = np.asarray(r, dtype=np.float64)
        if len(r) > 1 and np.array_equal(r[0], r[-1]):
            r = r[:-1]
        if len(r) >= 3:
            out.append(r)
    return out


def _ring_edges(rings: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x0, y0, x1, y1)`` of every edge of closed rings (each ring closes on itself)."""
    p0 = np.concatenate(rings)
    lens = np.array([len(r) for r in rings])
    starts = np.cumsum(lens) - lens
    nxt = np.arange(p0.shape[0]) + 1
    nxt[starts + lens - 1] = starts
    p1 = p0[nxt]
    return p0[:, 0], p0[:, 1], p1[:, 0], p1[:, 1]


def rasterize_rings(rings: list, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """Union of several polygons (ring items of :func:`ring_groups`; see :func:`rasterize_polygon`),
    as one crop."""
    groups = [g for g in (_closed_rings(group) for group in ring_groups(rings)) if g]
    empty = (np.zeros((0, 0), dtype=bool), 0, 0)
    if not groups:
        return empty
    allv = np.concatenate([r for g in groups for r in g])
    if not np.all(np.isfinite(allv)):
        raise ValueError("polygon vertices must be finite")
    xmin, ymin = allv.min(axis=0)
    xmax, ymax = allv.max(axis=0)
    # rows / columns whose centres can lie in the closed polygon
    r0 = max(0, math.ceil(ymin - 0.5 - _TOL))
    r1 = min(height - 1, math.floor(ymax - 0.5 + _TOL))
    c0 = max(0, math.ceil(xmin - 0.5 - _TOL))
    c1 = min(width - 1, math.floor(xmax - 0.5 + _TOL))
    if r1 < r0 or c1 < c0:
        return empty
    nrows, ncols = r1 - r0 + 1, c1 - c0 + 1

    starts_all, ends_all, rows_all = [], [], []
    for group in groups:
        x0, y0, x1, y1 = _ring_edges(group)
        keep = y0 != y1  # horizontal edges never count (see module docstring)
        if not keep.all():
            x0, y0, x1, y1 = x0[keep], y0[keep], x1[keep], y1[keep]
        if x0.size == 0:
            continue
        crossings = _edge_crossings(x0, y0, x1, y1, r0, r1)
        if crossings is None:
            continue
        edge, row, e, xs = crossings
        ne = x0.size
        # by rule, row, then x: every (rule, row) group holds an even count, so pairs are consecutive
        order, xs = _pair_order((edge >= ne) * height + row, xs, c0 - 1.0, c1 + 1.0)
        row = row[order]
        starts_all.append(np.ceil(xs[0::2] - 0.5 - _TOL).astype(np.int64) - c0)
        ends_all.append(np.floor(xs[1::2] - 0.5 + _TOL).astype(np.int64) - c0)
        rows_all.append(row[0::2] - r0)
    if not rows_all:
        return empty
    s = np.concatenate(starts_all)
    e = np.concatenate(ends_all)
    r = np.concatenate(rows_all)
    s = np.maximum(s, 0)
    e = np.minimum(e, ncols - 1)
    ok = s <= e
    s, e, r = s[ok], e[ok], r[ok]
    if s.size == 0:
        return empty
    # merge overlapping / touching spans of a row (rule A and rule B spans mostly coincide)
    order = np.lexsort((s, r))
    s, e, r = s[order], e[order], r[order]
    big = ncols + 2
    cummax = np.maximum.accumulate(e + r * big)
    new = np.ones(s.size, dtype=bool)
    new[1:] = (s[1:] + r[1:] * big) > cummax[:-1] + 1
    first = np.flatnonzero(new)
    last = np.append(first[1:] - 1, s.size - 1)
    gr, gs = r[first], s[first]
    ge = cummax[last] - gr * big
    # trim the crop to the pixels actually covered, so it is the raster's exact box
    tr0, tr1 = int(gr[0]), int(gr[-1])
    tc0, tc1 = int(gs.min()), int(ge.max())
    gr, gs, ge = gr - tr0, gs - tc0, ge - tc0
    nrows, ncols = tr1 - tr0 + 1, tc1 - tc0 + 1
    c0, r0 = c0 + tc0, r0 + tr0
    cols = np.arange(ncols)
    if gr.size < 2 or bool(np.all(gr[1:] > gr[:-1])):
        # one span per row (convex shapes, discs, capsules, most hulls): two comparisons per pixel,
        # ~10x faster than a difference array + cumsum on large crops
        srow = np.full(nrows, ncols, dtype=np.int64)
        erow = np.full(nrows, -1, dtype=np.int64)
        srow[gr], erow[gr] = gs, ge
        crop = (cols >= srow[:, None]) & (cols <= erow[:, None])
    else:
        stride = ncols + 1
        size = nrows * stride
        diff = np.bincount(gr * stride + gs, minlength=size) - np.bincount(gr * stride + ge + 1, minlength=size)
        crop = np.cumsum(diff.reshape(nrows, stride), axis=1)[:, :ncols] > 0
    return crop, c0, r0


def paste(canvas: np.ndarray, crop: np.ndarray, x0: int, y0: int) -> np.ndarray:
    """OR a crop returned by :func:`rasterize_polygon` into a full ``H × W`` boolean canvas."""
    if crop.size:
        h, w = crop.shape
        canvas[y0 : y0 + h, x0 : x0 + w] |= crop
    return canvas


def rasterize_geometry(geometry, height: int, width: int) -> tuple[np.ndarray, int, int]:
    """Rasterise a shapely Polygon/MultiPolygon (holes left out) as one crop."""
    return rasterize_rings(polygon_rings(geometry), height, width)


def full_mask(geometry, height: int, width: int) -> np.ndarray:
    """Convenience: the ``H × W`` boolean mask of a shapely polygon (tests, previews)."""
    crop, x0, y0 = rasterize_geometry(geometry, height, width)
    return paste(np.zeros((height, width), dtype=bool), crop, x0, y0)


def _claim_spans(
    shapes: list[list[np.ndarray]], height: int, width: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None:
    """The covered pixel spans of many shapes, merged per shape and row (closed pixel-centre rule).

    Returns ``(seg, row, start, end)`` (int64, ``end`` inclusive), sorted by shape then row, one
    entry per maximal run of one shape on one row; ``None`` when no shape covers a pixel. One
    vectorised pass for all shapes: the per-shape numpy overhead of :func:`rasterize_rings` is
    paid once per call.
    """
    ring_list, ring_poly, poly_seg = [], [], []
    for k, rings in enumerate(shapes):
        for group in ring_groups(rings):
            group = _closed_rings(group)
            if group:
                ring_list.extend(group)
                ring_poly.extend([len(poly_seg)] * len(group))
                poly_seg.append(k)
    if not ring_list or height <= 0 or width <= 0:
        return None
    lens = np.array([len(r) for r in ring_list])
    x0, y0, x1, y1 = _ring_edges(ring_list)
    if not (np.all(np.isfinite(x0)) and np.all(np.isfinite(y0))):
        raise ValueError("polygon vertices must be finite")
    # crossings are paired per polygon (its exterior and holes together: even-odd)
    ring_id = np.repeat(np.asarray(ring_poly, dtype=np.int64), lens)
    keep = y0 != y1
    x0, y0, x1, y1, ring_id = x0[keep], y0[keep], x1[keep], y1[keep], ring_id[keep]
    if x0.size == 0:
        return None
    crossings = _edge_crossings(x0, y0, x1, y1, 0, height - 1)
    if crossings is None:
        return None
    edge, row, e, xs = crossings
    ne = x0.size
    rid = ring_id[e]
    # every (polygon, rule, row) group holds an even count of crossings: pair them in x order
    order, xs = _pair_order((rid * 2 + (edge >= ne)) * height + row, xs, -1.0, float(width))
    row, rid = row[order], rid[order]
    s = np.ceil(xs[0::2] - 0.5 - _TOL).astype(np.int64)
    t = np.floor(xs[1::2] - 0.5 + _TOL).astype(np.int64)
    row, seg = row[0::2], np.asarray(poly_seg, dtype=np.int64)[rid[0::2]]
    s = np.maximum(s, 0)
    t = np.minimum(t, width - 1)
    ok = s <= t
    s, t, row, seg = s[ok], t[ok], row[ok], seg[ok]
    if s.size == 0:
        return None
    # merge overlapping / touching spans of one shape on one row
    group = seg * height + row
    order = np.argsort(group * (width + 1) + s, kind="stable")  # = lexsort((s, group)), 2x faster
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
        present, at = np.unique(seg, return_index=True)
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

    ``layers[l][k]`` is the list of ring items (:func:`ring_groups`) of shape ``k`` of layer ``l``
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
    # view are ~15x slower than on a contiguous array: 1.4 against 0.09 ms at 640x480)
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
        # unbuffered scatter-add (numpy >= 1.25 made ufunc.at fast): 7x faster than sorting the
        # positions and reducing equal ones (22 against 174 us for 4000 span ends)
        np.add.at(v, start[sel], value)
        np.add.at(v, stop[sel], -value)
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

    ``shapes[k]`` is the list of ring items of shape ``k`` (:func:`ring_groups`; one per polygon part; parts
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
#: larger ones shape by shape (:func:`rasterize_rings`). Since the batched pass works in the union
#: box with packed int32 sums it is faster at every size measured (benchmarks/results_targets.md:
#: claim maps of hulls + dilated hulls of the 3 COCO sample images at 640 px, 4.4-4.9 ms batched
#: vs 7.6-11.4 ms shape by shape), so the limit only guards absurdly large canvases.
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
