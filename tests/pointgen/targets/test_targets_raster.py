"""The exact closed pixel-centre rasteriser against shapely (an independent implementation)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from pointly.pointgen.targets.raster import full_mask, rasterize_polygon


def oracle(geom, h, w):
    """Closed rule via shapely: centre intersects the polygon; plus a 1e-7 band for rounding."""
    yy, xx = np.mgrid[0:h, 0:w]
    x, y = xx.ravel() + 0.5, yy.ravel() + 0.5
    inside = shapely.intersects_xy(geom, x, y)
    near = shapely.distance(geom.boundary, shapely.points(x, y)) < 1e-7
    return inside.reshape(h, w), near.reshape(h, w)


def test_square_of_corner_centres_gives_the_closed_block():
    # centres of pixels (2,3) and (6,8): the closed square includes both corner pixels
    sq = np.array([[2.5, 3.5], [6.5, 3.5], [6.5, 8.5], [2.5, 8.5]])
    crop, x0, y0 = rasterize_polygon(sq, 12, 10)
    assert (x0, y0) == (2, 3) and crop.shape == (6, 5) and crop.all()


def test_triangle_hand_computed():
    # right triangle through pixel centres (0,0), (4,0), (0,4): pixel (i,j) inside iff i + j <= 4
    tri = np.array([[0.5, 0.5], [4.5, 0.5], [0.5, 4.5]])
    m = full_mask(shapely.Polygon(tri), 6, 6)
    ii, jj = np.mgrid[0:6, 0:6]
    assert np.array_equal(m, ii + jj <= 4)


def test_clipped_to_grid_and_empty_outside():
    crop, x0, y0 = rasterize_polygon(np.array([[-5, -5], [3, -5], [3, 3], [-5, 3.0]]), 10, 10)
    assert (x0, y0) == (0, 0) and crop.shape == (3, 3) and crop.all()
    crop, _, _ = rasterize_polygon(np.array([[20, 20], [30, 20], [25, 30.0]]), 10, 10)
    assert crop.size == 0
    # a sliver between pixel centres covers nothing
    crop, _, _ = rasterize_polygon(np.array([[1.1, 1.1], [1.4, 1.1], [1.4, 5.0]]), 10, 10)
    assert not crop.any()


coord = st.integers(0, 30)


@settings(max_examples=150, deadline=None)
@given(
    pts=st.lists(st.tuples(coord, coord), min_size=3, max_size=25),
    ratio=st.floats(0.0, 1.0),
    concave=st.booleans(),
    div=st.sampled_from([1, 2, 3, 4, 7]),
)
def test_matches_shapely_on_random_hulls(pts, ratio, concave, div):
    arr = (np.asarray(pts, float) + 0.5) / div
    mp = shapely.MultiPoint(arr)
    g = shapely.concave_hull(mp, ratio=ratio) if concave else mp.convex_hull
    if g.geom_type != "Polygon":
        return
    h, w = 34, 33
    ours = full_mask(g, h, w)
    inside, near = oracle(g, h, w)
    # identical away from pixel centres lying on the boundary (where float rounding decides)
    assert np.array_equal(ours[~near], inside[~near])
    # centres exactly on the boundary belong to the closed polygon
    assert ours[near].all()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), h=st.integers(3, 30), w=st.integers(3, 30), batched=st.booleans())
def test_claim_maps_equal_per_shape_masks(data, h, w, batched):
    from pointly.pointgen.targets.packed_claims import claim_maps
    from pointly.pointgen.targets.shapes import shape_rings

    geoms = []
    for _ in range(data.draw(st.integers(1, 5))):
        # no subnormals: GEOS's concave hull fails on them ("Could not locate vertex"); pointly's
        # hulls only ever see pixel centres (k + 0.5)
        coord = st.floats(-5, 35, allow_subnormal=False)
        pts = data.draw(st.lists(st.tuples(coord, coord), min_size=3, max_size=12))
        g = shapely.concave_hull(shapely.MultiPoint(pts), ratio=data.draw(st.floats(0, 1)))
        if g.geom_type != "Polygon" or g.area == 0:
            g = shapely.MultiPoint(pts).buffer(1.5)
            if g.geom_type != "Polygon":
                continue
        geoms.append(g)
    if not geoms:
        return
    count, idsum, boxes = claim_maps([shape_rings(g) for g in geoms], h, w, batched=batched)
    masks = np.stack([full_mask(g, h, w) for g in geoms])
    assert np.array_equal(count, masks.sum(0))
    assert np.array_equal(idsum, (masks * np.arange(1, len(geoms) + 1)[:, None, None]).sum(0))
    for k, m in enumerate(masks):
        if m.any():
            ys, xs = np.nonzero(m)
            assert tuple(boxes[k]) == (xs.min(), ys.min(), xs.max(), ys.max())
        else:
            assert boxes[k, 2] < boxes[k, 0]


@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 400), groups=st.integers(1, 50000), near=st.booleans())
def test_pair_order_equals_lexsort(seed, n, groups, near):
    """The crossing order (float composite sort + check + exact fallback) equals np.lexsort's,
    including ties, clipped values and crossings ~1e-9 apart in groups with large keys."""
    from pointly.pointgen.targets.raster import pair_order

    rng = np.random.default_rng(seed)
    key = rng.integers(0, groups, n) * 7919
    xs = rng.uniform(-30, 700, n)
    if near:  # pairs of crossings within float64 rounding of the composite key
        xs[1::2] = xs[0::2][: xs[1::2].size] + rng.choice([0.0, 1e-12, 3e-10, -3e-10], xs[1::2].size)
        key[1::2] = key[0::2][: key[1::2].size]
    order, xo = pair_order(key, xs, -1.0, 640.0)
    ref = np.lexsort((np.clip(xs, -1.0, 640.0), key))
    assert np.array_equal(key[order], key[ref])
    assert np.array_equal(xo, np.clip(xs, -1.0, 640.0)[ref])
    assert np.array_equal(np.sort(order), np.arange(n))


def _layer_maps(packed, layer, h, w):
    """Canvas-sized count / idsum of one layer of a PackedClaims (0 outside its box)."""
    count = np.zeros((h, w), dtype=np.int64)
    idsum = np.zeros((h, w), dtype=np.int64)
    if packed.shape[0]:
        ys, xs = packed.box_slices()
        count[ys, xs] = packed.count(layer)
        idsum[ys, xs] = packed.idsum(layer)
    return count, idsum


def _random_triangles(rng, n, h, w):
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(-3, w + 3), rng.uniform(-3, h + 3)
        pts = np.stack([cx + rng.uniform(-6, 6, 3), cy + rng.uniform(-6, 6, 3)], axis=1)
        out.append([pts])
    return out


@pytest.mark.parametrize("sizes", [(1, 1), (7, 7), (0, 5), (40, 3), (2100, 2100)])
def test_pack_claims_layers_equal_separate_claim_maps(sizes):
    """Each layer of one packed pass equals that layer rasterised alone (shape by shape), in one
    word (small layers) and in one word per layer (2100 shapes: 68 bits do not fit one int64)."""
    from pointly.pointgen.targets.packed_claims import claim_maps, pack_claims

    rng = np.random.default_rng(sum(sizes))
    h, w = 45, 61
    layers = [_random_triangles(rng, k, h, w) for k in sizes]
    packed = pack_claims(layers, h, w)
    if sizes[0] > 1000:
        assert len(packed.words) == 2
    for layer, shapes in enumerate(layers):
        count, idsum, boxes = claim_maps(shapes, h, w, batched=False)
        got_count, got_idsum = _layer_maps(packed, layer, h, w)
        assert np.array_equal(got_count, count)
        assert np.array_equal(got_idsum, idsum)
        assert np.array_equal(packed.boxes[layer], boxes)
