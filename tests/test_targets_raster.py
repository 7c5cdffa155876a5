"""The exact closed pixel-centre rasteriser against shapely (an independent implementation)."""
from __future__ import annotations

import numpy as np
import shapely
from hypothesis import given, settings, strategies as st

from pointly.pointgen.raster import full_mask, rasterize_polygon


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
@given(pts=st.lists(st.tuples(coord, coord), min_size=3, max_size=25),
       ratio=st.floats(0.0, 1.0), concave=st.booleans(), div=st.sampled_from([1, 2, 3, 4, 7]))
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
    from pointly.pointgen.raster import claim_maps
    from pointly.pointgen.shapes import shape_rings

    geoms = []
    for _ in range(data.draw(st.integers(1, 5))):
        pts = data.draw(st.lists(st.tuples(st.floats(-5, 35), st.floats(-5, 35)), min_size=3, max_size=12))
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
