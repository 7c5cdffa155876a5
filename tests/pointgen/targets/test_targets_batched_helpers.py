"""The batched helpers of build_targets give exactly what their one-at-a-time originals give.

Each helper replaced a per-segment loop for speed (benchmarks/results_targets.md); these tests pin
them to the loop they replaced, on random inputs with the degenerate cases mixed in.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely

from pointly.pointgen.targets.overlaps import min_distance, segment_distance
from pointly.pointgen.targets.packed_claims import claim_runs, pack_claims
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
    for n, p in ((0, 5), (1, 1), (5000, 20), (300, 150), (100, 90)):
        cx = rng.integers(0, 400, n) + 0.5
        cy = rng.integers(0, 300, n) + 0.5
        pts = rng.uniform(0, 400, (p, 2))
        want = ((cx[:, None] - pts[None, :, 0]) ** 2 + (cy[:, None] - pts[None, :, 1]) ** 2).min(1) if n else cx
        assert np.array_equal(segment_distance(cx, cy, pts), want)


def _random_layers(rng, sizes, h, w):
    """Layers of random shapes: triangles, some with a hole, some of two parts, some off the canvas."""
    layers = []
    for k in sizes:
        shapes = []
        for i in range(k):
            c = rng.uniform(-5, [w + 5, h + 5])
            outer = c + rng.uniform(-12, 12, (int(rng.integers(3, 7)), 2))
            if i % 4 == 1:  # a square with a square hole
                shapes.append(
                    [
                        (
                            c + np.array([[-9, -9], [9, -9], [9, 9], [-9, 9]]),
                            c + np.array([[-3, -3], [3, -3], [3, 3], [-3, 3]]),
                        )
                    ]
                )
            elif i % 4 == 2:  # two parts
                shapes.append([outer, c + 15 + rng.uniform(-5, 5, (3, 2))])
            else:
                shapes.append([np.round(outer) + 0.5 if i % 3 == 0 else outer])
        layers.append(shapes)
    return layers


@pytest.mark.parametrize("sizes", [(3, 2, 3, 2), (30, 4, 30, 4), (0, 5), (1,)])
def test_claim_runs_equal_pack_claims(sizes):
    """Runs expanded to pixels give pack_claims' count, id sum and squared-id sum of every layer,
    and the same boxes (shapes with holes, several parts, off the canvas; vertices on pixel centres)."""
    rng = np.random.default_rng(sum(sizes) + len(sizes))
    h, w = 40, 50
    layers = _random_layers(rng, sizes, h, w)
    ids = [rng.permutation(np.arange(1, k + 1)) * 3 + 1 for k in sizes]
    packed = pack_claims(layers, h, w, ids=ids, squares=True)
    runs = claim_runs(layers, h, w, ids=ids)
    assert runs.length.sum() == h * w and np.all(runs.length >= 0)
    assert np.array_equal(runs.start[1:], np.cumsum(runs.length)[:-1])
    for layer in range(len(layers)):
        for got, read in ((runs.count, packed.count), (runs.idsum, packed.idsum), (runs.squares, packed.squaresum)):
            want = np.zeros((h, w), np.int64)
            if packed.shape[0]:
                want[packed.box_slices()] = read(layer)
            assert np.array_equal(np.repeat(got[layer], runs.length).reshape(h, w), want)
        assert np.array_equal(runs.boxes[layer], packed.boxes[layer])
    flat = rng.integers(0, h * w, 200)
    assert np.array_equal(np.repeat(np.arange(runs.start.size), runs.length)[flat], runs.run_of(flat))
    some = rng.random(runs.start.size) < 0.3
    pix, run = runs.pixels(some)
    dense = np.repeat(some, runs.length)
    assert np.array_equal(pix, np.flatnonzero(dense)) and np.array_equal(run, runs.run_of(pix))


@pytest.mark.parametrize("seed", range(6))
def test_claim_spans_on_pixel_centre_vertices_equal_shape_by_shape(seed):
    """Vertices on pixel centres (the rows where the two half-open rules differ, which
    ``_claim_spans`` lists rule B on alone), horizontal edges, holes, parts off the canvas: the
    batched claims equal the shapes rasterised one by one (both rules on every row)."""
    from pointly.pointgen.targets.packed_claims import claim_maps

    rng = np.random.default_rng(seed)
    h, w = 30, 40
    shapes = []
    for i in range(12):
        c = rng.integers(-4, [w + 4, h + 4])
        if i % 3 == 0:  # axis-aligned square with a hole: horizontal edges, vertices on centres
            a, b = int(rng.integers(2, 9)), 1
            outer = c + np.array([[-a, -a], [a, -a], [a, a], [-a, a]]) + 0.5
            shapes.append([(outer, c + np.array([[-b, -b], [b, -b], [b, b], [-b, b]]) + 0.5)])
        else:
            pts = c + rng.integers(-8, 9, (int(rng.integers(3, 8)), 2)) + 0.5
            shapes.append([pts, pts[:3] + [[11, 0], [11, 3], [14, 1]]] if i % 3 == 1 else [pts])
    count, idsum, boxes = claim_maps(shapes, h, w, batched=True)
    ref_count, ref_idsum, ref_boxes = claim_maps(shapes, h, w, batched=False)
    assert np.array_equal(count, ref_count) and np.array_equal(idsum, ref_idsum) and np.array_equal(boxes, ref_boxes)


def test_min_distance_equals_segment_by_segment():
    """All segments at once (padded point table) and segment by segment give the same distances,
    with equal and very unequal point counts."""
    rng = np.random.default_rng(4)
    for counts in ((20, 20, 20, 20, 20), (3, 17, 1, 9), (400, 2, 2)):
        points = [rng.uniform(0, 300, (c, 2)) for c in counts]
        n = 700
        rows, cols = rng.integers(0, 200, n), rng.integers(0, 300, n)
        who = rng.integers(1, len(counts) + 1, n)
        want = np.array(
            [segment_distance(cols[i : i + 1] + 0.5, rows[i : i + 1] + 0.5, points[who[i] - 1])[0] for i in range(n)]
        )
        assert np.array_equal(min_distance(rows, cols, who, points), want)
    assert min_distance(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64), points).size == 0


def test_sorted_unique_and_run_starts_equal_np_unique():
    from pointly.pointgen.targets.sorted_arrays import run_starts, sorted_unique

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 50, 3000):
        a = rng.integers(-5, 40, n)
        assert np.array_equal(sorted_unique(a), np.unique(a))
        s = np.sort(a)
        values, first = np.unique(s, return_index=True)
        assert np.array_equal(run_starts(s), first) and np.array_equal(s[run_starts(s)], values)
