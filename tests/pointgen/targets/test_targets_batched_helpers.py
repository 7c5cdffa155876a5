"""The batched helpers of build_targets give exactly what their one-at-a-time originals give.

Each helper replaced a per-segment loop for speed (benchmarks/results_targets.md); these tests pin
them to the loop they replaced, on random inputs with the degenerate cases mixed in.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from pointly.pointgen.targets.overlaps import segment_distance
from pointly.pointgen.targets.packed_claims import pack_claims
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.shapes import (
    dilate,
    dilate_all,
    hull_shape,
    hull_shapes,
    map_rings,
    mapped_shape_rings,
    point_centres,
    point_centres_each,
    shape_rings,
)


def _point_sets(rng, n):
    """Random integer point sets: empty, one point, duplicates, collinear, spread."""
    sets = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            sets.append(np.zeros((0, 2), np.int64))
        elif kind == 1:
            sets.append(rng.integers(0, 50, (1, 2)))
        elif kind == 2:
            sets.append(np.repeat(rng.integers(0, 50, (2, 2)), 3, axis=0))
        elif kind == 3:
            x = rng.integers(0, 50, 6)
            sets.append(np.stack([x, 2 * x + 1], axis=1))
        else:
            sets.append(rng.integers(0, 80, (int(rng.integers(3, 25)), 2)))
    return sets


def test_point_centres_each_equals_point_centres():
    rng = np.random.default_rng(0)
    for _ in range(50):
        sets = _point_sets(rng, int(rng.integers(0, 12)))
        got = point_centres_each(sets)
        assert len(got) == len(sets)
        for a, b in zip(got, [point_centres(c) for c in sets]):
            assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b)


@pytest.mark.parametrize("shape", ["convex", "concave"])
def test_hull_shapes_equal_hull_shape(shape):
    rng = np.random.default_rng(1)
    sets = [s for s in _point_sets(rng, 40) if len(s)]
    got = hull_shapes(sets, shape=shape, concave_ratio=0.3, point_radius=4.0)
    for g, c in zip(got, sets):
        assert shapely.equals_exact(g, hull_shape(c, shape=shape, concave_ratio=0.3, point_radius=4.0), tolerance=0)
    with pytest.raises(ValueError):
        hull_shapes([np.zeros((0, 2), np.int64)], shape=shape)


def _geometries():
    """Polygons, a polygon with a hole, a multipolygon, an empty polygon, a line (no rings), None."""
    square = shapely.box(2, 3, 20, 17)
    holed = shapely.Polygon(square.exterior.coords, [shapely.box(5, 5, 8, 9).exterior.coords])
    multi = shapely.MultiPolygon([shapely.box(30, 1, 35, 6), holed])
    tri = shapely.Polygon([(1.5, 1.5), (9.25, 4.5), (3.5, 12.75)])
    return [square, holed, multi, shapely.Polygon(), shapely.LineString([(0, 0), (3, 3)]), tri, None]


def test_mapped_shape_rings_equal_map_rings_of_shape_rings():
    geoms = _geometries()
    fn = PixelTransform.identity(64, 48).resize(90, 70).hflip().crop(3, 2, 80, 60).downsample(4).apply
    got = mapped_shape_rings(geoms, fn)
    for g, items in zip(geoms, got):
        want = [] if g is None else map_rings(shape_rings(g), fn)
        assert len(items) == len(want)
        for a, b in zip(items, want):
            assert isinstance(a, tuple) == isinstance(b, tuple)
            for ra, rb in zip(a if isinstance(a, tuple) else [a], b if isinstance(b, tuple) else [b]):
                assert ra.shape == rb.shape and np.array_equal(ra, rb)


def test_dilate_all_equals_dilate():
    geoms = [g for g in _geometries() if g is not None]
    for radius in (0.0, 0.7, 5.0):
        for a, b in zip(dilate_all(geoms, radius), [dilate(g, radius) for g in geoms]):
            assert shapely.equals_exact(a, b, tolerance=0)


def test_segment_distance_equals_brute_force():
    rng = np.random.default_rng(2)
    for n, p in ((0, 5), (1, 1), (5000, 20), (300, 150)):
        cx = rng.integers(0, 400, n) + 0.5
        cy = rng.integers(0, 300, n) + 0.5
        pts = rng.uniform(0, 400, (p, 2))
        want = ((cx[:, None] - pts[None, :, 0]) ** 2 + (cy[:, None] - pts[None, :, 1]) ** 2).min(1) if n else cx
        assert np.array_equal(segment_distance(cx, cy, pts), want)


@pytest.mark.parametrize("sizes", [(3, 2, 3, 2), (300, 4, 2, 2)])
def test_field_into_equals_count_and_idsum(sizes):
    """Fields read through a reused narrow scratch equal the fresh-array readers, in one word and
    in one word per layer (int32 and int64 words)."""
    rng = np.random.default_rng(sum(sizes))
    h, w = 40, 50
    layers = []
    for k in sizes:
        shapes = []
        for _ in range(k):
            c = rng.uniform(0, [w, h])
            shapes.append([c + rng.uniform(-9, 9, (3, 2))])
        layers.append(shapes)
    packed = pack_claims(layers, h, w, squares=True)
    scratch = np.empty(packed.shape, packed.scratch_dtype())
    for layer in range(len(layers)):
        count = packed.field_into(layer, 0, np.empty(packed.shape, packed.count_dtype(layer)), scratch)
        assert np.array_equal(count, packed.count(layer))
        for which, ref in ((1, packed.idsum(layer)), (2, packed.squaresum(layer))):
            got = packed.field_into(layer, which, scratch, scratch)
            assert np.array_equal(got, ref)


def test_sorted_unique_and_run_starts_equal_np_unique():
    from pointly.pointgen.targets.sorted_arrays import run_starts, sorted_unique

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 50, 3000):
        a = rng.integers(-5, 40, n)
        assert np.array_equal(sorted_unique(a), np.unique(a))
        s = np.sort(a)
        values, first = np.unique(s, return_index=True)
        assert np.array_equal(run_starts(s), first) and np.array_equal(s[run_starts(s)], values)
