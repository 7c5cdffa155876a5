"""Shapes of the corrected point-supervision rules (pointgen.shapes.image_shapes, parts="delaunay"):
no shape ever contains another segment's point (random point sets and every image of
../shared/data), several clusters give several parts, and the baseline hull behaves as before."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.shapes import hull_shape, image_shapes


def _foreign_points_inside(shapes, positives, negatives=None):
    """(segment, foreign point) pairs where a shape covers (closed) a point it must not."""
    centres = [np.unique(np.asarray(p, np.int64).reshape(-1, 2), axis=0) + 0.5 for p in positives]
    neg = [np.asarray(p, np.int64).reshape(-1, 2) + 0.5 for p in (negatives or [])]
    bad = []
    for k, g in enumerate(shapes):
        own = {tuple(c) for c in centres[k]}
        for j, pts in enumerate(centres + neg):
            if j == k:
                continue
            for c in pts:
                if tuple(c) in own:  # a location shared with this segment is not foreign to it
                    continue
                if shapely.intersects_xy(g, c[0], c[1]):
                    bad.append((k, tuple(c)))
        for c in neg[k] if k < len(neg) else []:
            if shapely.intersects_xy(g, c[0], c[1]):
                bad.append((k, tuple(c)))
    return bad


@st.composite
def point_sets(draw):
    n = draw(st.integers(1, 6))
    size = draw(st.sampled_from([12, 40, 200]))
    sets = [
        draw(st.lists(st.tuples(st.integers(0, size), st.integers(0, size)), min_size=1, max_size=15)) for _ in range(n)
    ]
    return sets, draw(st.sampled_from(["convex", "concave"])), draw(st.sampled_from([0.5, 3.0, 6.0]))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(point_sets())
def test_no_shape_contains_a_foreign_point(scene):
    sets, shape, radius = scene
    shapes = image_shapes(sets, shape=shape, point_radius=radius)
    assert len(shapes) == len(sets)
    assert _foreign_points_inside(shapes, sets) == []
    for g, _pts in zip(shapes, sets):
        assert g.is_valid and g.geom_type in ("Polygon", "MultiPolygon")


def test_negative_points_are_foreign_to_every_shape():
    rng = np.random.default_rng(1)
    pos = [rng.integers(0, 50, (12, 2)), rng.integers(30, 80, (12, 2))]
    neg = [rng.integers(0, 80, (5, 2)), np.zeros((0, 2), np.int64)]
    shapes = image_shapes(pos, neg, shape="convex")
    neg_only = [p for p in neg[0] if not any((p == q).all() for q in np.concatenate(pos))]
    assert _foreign_points_inside(shapes, pos, [np.array(neg_only).reshape(-1, 2)]) == []


def test_single_segment_is_its_own_hull():
    rng = np.random.default_rng(2)
    pts = rng.integers(0, 60, (25, 2))
    for shape in ("convex", "concave"):
        (g,) = image_shapes([pts], shape=shape)
        ref = hull_shape(pts, shape=shape)
        # same region up to floating-point noise of the triangle union
        assert g.symmetric_difference(ref).area < 1e-6 * ref.area


def test_hull_parts_are_the_first_design():
    rng = np.random.default_rng(3)
    sets = [rng.integers(0, 60, (10, 2)) for _ in range(4)]
    for g, p in zip(image_shapes(sets, shape="convex", parts="hull"), sets):
        assert g.equals(hull_shape(p, shape="convex"))


def test_two_clusters_give_two_parts():
    a = [[0, 0], [6, 0], [6, 6], [0, 6], [40, 0], [46, 0], [46, 6], [40, 6]]
    between = [[23, 3]]
    g, _ = image_shapes([a, between], shape="convex")
    assert g.geom_type == "MultiPolygon" and len(g.geoms) == 2
    assert not g.intersects(shapely.box(8, 0, 38, 8))


def _datasets(root):
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.base.coco_instances import InstancesDataset

    yield (
        "coco_panoptic",
        PanopticDataset(
            root / "coco_panoptic_val2017" / "panoptic_val2017.json", root / "coco_panoptic_val2017" / "panoptic"
        ),
    )
    yield (
        "coconut",
        PanopticDataset(root / "coconut_val2017_139" / "panoptic.json", root / "coconut_val2017_139" / "panoptic"),
    )
    yield "nuclei", PanopticDataset(root / "dsb2018_nuclei" / "panoptic.json", root / "dsb2018_nuclei" / "panoptic")
    yield "tiny_coco", InstancesDataset(root / "tiny_coco" / "annotations" / "instances_val2017.json")


@pytest.mark.slow
def test_no_shape_contains_a_foreign_point_on_the_real_data(shared_data):
    """Every image of ../shared/data, simulated at P5 and P20 with 0 % and 100 % boundary points."""
    from pointly.pointgen.base.points_format import annotations_by_image
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.build import shapes_for

    checked = 0
    for name, ds in _datasets(shared_data):
        for points, boundary in ((5, 0.0), (20, 1.0)):
            doc = simulate(ds, SimulationOptions(points=points, boundary_share=boundary, seed=0)).document
            by_image = annotations_by_image(doc)
            for im in ds.images:
                anns = by_image.get(im.id, [])
                if not anns:
                    continue
                for shape in ("convex", "concave"):
                    shapes = shapes_for(anns, TargetOptions(shape=shape))
                    pos = [a["point_coords"] for a in anns]
                    assert _foreign_points_inside(shapes, pos) == [], (name, im.id, shape)
                    t = build_targets(anns, ds.categories, im, options=TargetOptions(shape=shape))
                    # and on the pixel grid: no segment is positive on another segment's point
                    for k, (a, s) in enumerate(zip(anns, t.segments)):
                        for j, b in enumerate(anns):
                            if j != k:
                                xy = np.asarray(b["point_coords"])
                                shared = (xy[:, None] == np.asarray(a["point_coords"])[None]).all(-1).any(1)
                                assert not s.mask[xy[~shared, 1], xy[~shared, 0]].any(), (name, im.id)
                    checked += 1
    assert checked >= 2 * 2 * (3 + 1 + 1 + 40)
