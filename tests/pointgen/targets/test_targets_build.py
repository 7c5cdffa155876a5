"""build_targets: hand-computed shapes, degenerate cases, conflicts, dilation, transforms, errors."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage
from targets_fixtures import CATS, ann

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.build import build_targets, centre_heatmap, shapes_for
from pointly.pointgen.targets.options import DEFAULT_DILATION, TargetOptions, parse_dilation
from pointly.pointgen.targets.pixel_transform import PixelTransform

CONVEX = TargetOptions(shape="convex")
#: the first design's rules, kept as a study baseline: one hull per segment, a pixel claimed twice
#: ignored for both, the size read from the shape's box
BASELINE = dict(parts="hull", overlap="exclusive", size_correction=False)


def test_square_hull_is_the_closed_block_and_the_rest_is_ignored():
    a = ann(7, [[2, 2], [2, 11], [11, 11], [11, 2], [5, 6]])
    t = build_targets([a], CATS, (20, 16), options=TargetOptions(shape="convex", size_correction=False))
    (s,) = t.segments
    expect = np.zeros((16, 20), bool)
    expect[2:12, 2:12] = True
    assert np.array_equal(s.mask, expect)
    assert np.array_equal(t.ignore, ~expect)
    assert s.bbox == (2.0, 2.0, 10.0, 10.0)
    assert s.centre == pytest.approx((6.2, 6.4))  # mean of the five points
    assert s.annotation_id == 7 and s.category_id == 1 and s.isthing and s.num_points == 5
    # size correction: 5 points whose centres span 2.5..11.5 (9 px) stand for an extent of
    # 9 * (5 + 1) / (5 - 1) = 13.5 px about the middle 7.0, plus half a pixel each side:
    # [-0.25, 14.25], clipped to the image at 0; the mask is unchanged
    c = build_targets([a], CATS, (20, 16), options=CONVEX).segments[0]
    assert c.bbox == pytest.approx((0.0, 0.0, 14.25, 14.25))
    assert np.array_equal(c.mask, expect)


def L_points():
    # an L: a vertical bar x in [0, 8], y in [0, 29] and a foot x in [0, 29], y in [21, 29]
    return [[x, y] for x in range(0, 30, 3) for y in range(0, 30, 3) if x <= 6 or y >= 21]


@pytest.mark.parametrize("ratio", [0.05, 0.1])
def test_L_shape_concave_excludes_the_notch_convex_includes(ratio):
    a = ann(1, L_points(), category_id=2)
    convex = build_targets([a], CATS, (32, 32), options=CONVEX).segments[0].mask
    concave = (
        build_targets([a], CATS, (32, 32), options=TargetOptions(shape="concave", concave_ratio=ratio)).segments[0].mask
    )
    notch = (12, 14)  # x = 12, y = 14: inside the hull diagonal (x <= 20 at this row), outside the L
    assert convex[notch[1], notch[0]] and not concave[notch[1], notch[0]]
    # concave never exceeds convex, and covers the L's own bars
    assert not (concave & ~convex).any()
    assert concave[0:28, 0:7].all() and concave[21:28, 0:28].all()


def test_one_point_is_a_disc_of_point_radius():
    t = build_targets([ann(1, [[10, 10]])], CATS, (21, 21), options=TargetOptions(point_radius=4.0))
    ii, jj = np.mgrid[0:21, 0:21]
    assert np.array_equal(t.segments[0].mask, (ii - 10) ** 2 + (jj - 10) ** 2 <= 16 + 1e-6)


def test_duplicates_are_merged():
    one = build_targets([ann(1, [[5, 5]] * 4)], CATS, (12, 12)).segments[0].mask
    ref = build_targets([ann(1, [[5, 5]])], CATS, (12, 12)).segments[0].mask
    assert np.array_equal(one, ref)
    sq = [[1, 1], [1, 8], [8, 8], [8, 1]]
    a = build_targets([ann(1, sq + sq[:2])], CATS, (12, 12), options=CONVEX).segments[0].mask
    b = build_targets([ann(1, sq)], CATS, (12, 12), options=CONVEX).segments[0].mask
    assert np.array_equal(a, b)


@pytest.mark.parametrize("shape", ["convex", "concave"])
def test_two_and_collinear_points_give_a_capsule(shape):
    opts = TargetOptions(shape=shape, point_radius=2.0)
    two = build_targets([ann(1, [[4, 10], [16, 10]])], CATS, (24, 20), options=opts).segments[0].mask
    line = (
        build_targets([ann(1, [[4, 10], [8, 10], [16, 10], [12, 10]])], CATS, (24, 20), options=opts).segments[0].mask
    )
    ii, jj = np.mgrid[0:20, 0:24]
    # distance of pixel centres to the segment between the centres (4.5,10.5) and (16.5,10.5)
    dx = np.clip(jj + 0.5, 4.5, 16.5) - (jj + 0.5)
    d2 = dx**2 + (ii + 0.5 - 10.5) ** 2
    assert np.array_equal(two, d2 <= 4 + 1e-9)
    assert np.array_equal(line, two)
    diag = build_targets([ann(1, [[2, 2], [5, 5], [9, 9]])], CATS, (12, 12), options=opts).segments[0].mask
    assert diag[2, 2] and diag[9, 9] and diag[3, 2] and not diag[9, 2]


def test_baseline_overlap_is_ignored_for_both_and_points_stay_hard_labels():
    a = ann(1, [[0, 0], [9, 0], [9, 9], [0, 9]])
    b = ann(2, [[5, 5], [14, 5], [14, 14], [5, 14]], category_id=3)
    t = build_targets([a, b], CATS, (16, 16), options=TargetOptions(shape="convex", **BASELINE))
    ma, mb = t.segments[0].mask, t.segments[1].mask
    overlap = np.zeros((16, 16), bool)
    overlap[5:10, 5:10] = True
    assert not (ma & mb).any()
    # the overlap is ignored except the corner points' own pixels, which stay with their segment
    assert mb[5, 5] and ma[9, 9]
    rest = overlap.copy()
    rest[5, 5] = rest[9, 9] = False
    assert t.ignore[rest].all()
    assert ma[0:5, 0:10].all() and mb[10:15, 5:15].all()


def _nearest(points_a, points_b, ii, jj):
    """Squared distances of pixel centres to the nearest point of each set (pixel-centre points)."""
    da = np.min([(jj + 0.5 - (x + 0.5)) ** 2 + (ii + 0.5 - (y + 0.5)) ** 2 for x, y in points_a], axis=0)
    db = np.min([(jj + 0.5 - (x + 0.5)) ** 2 + (ii + 0.5 - (y + 0.5)) ** 2 for x, y in points_b], axis=0)
    return da, db


def test_same_kind_overlap_goes_to_the_nearest_point_and_a_tie_is_ignored():
    pa, pb = [[0, 0], [9, 0], [9, 9], [0, 9]], [[5, 5], [14, 5], [14, 14], [5, 14]]
    t = build_targets(
        [ann(1, pa), ann(2, pb, category_id=3)], CATS, (16, 16), options=TargetOptions(shape="convex", parts="hull")
    )
    ma, mb = t.segments[0].mask, t.segments[1].mask
    ii, jj = np.mgrid[5:10, 5:10]
    da, db = _nearest(pa, pb, ii, jj)
    assert np.array_equal(ma[5:10, 5:10], da < db) and np.array_equal(mb[5:10, 5:10], db < da)
    tie = da == db  # the diagonal x + y = 14
    assert tie.sum() == 5 and t.ignore[5:10, 5:10][tie].all()
    # outside the overlap each square keeps all of its pixels
    assert ma[0:5, 0:10].all() and ma[0:10, 0:5].all() and mb[10:15, 5:15].all() and mb[5:15, 10:15].all()


def test_stuff_hull_around_a_thing_loses_to_the_thing():
    """One hull per segment: the stuff square covers the thing's disc; the thing keeps its full
    disc and the stuff target is negative there."""
    stuff = ann(1, [[0, 0], [19, 0], [19, 19], [0, 19]], category_id=2)
    thing = ann(2, [[9, 9]], category_id=1)
    t = build_targets([stuff, thing], CATS, (20, 20), options=TargetOptions(point_radius=2.0, parts="hull"))
    st_, th = t.segments
    ii, jj = np.mgrid[0:20, 0:20]
    disc = (ii - 9) ** 2 + (jj - 9) ** 2 <= 4 + 1e-9
    assert np.array_equal(th.mask, disc)
    assert not (st_.mask & disc).any() and st_.mask[~disc].all()
    assert not t.ignore.any()


def test_baseline_stuff_hull_around_a_thing_erases_the_thing():
    stuff = ann(1, [[0, 0], [19, 0], [19, 19], [0, 19]], category_id=2)
    thing = ann(2, [[9, 9]], category_id=1)
    t = build_targets([stuff, thing], CATS, (20, 20), options=TargetOptions(point_radius=2.0, **BASELINE))
    st_, th = t.segments
    assert th.mask[9, 9] and not st_.mask[9, 9]
    assert t.ignore[8, 9] and t.ignore[10, 9]  # conflict: ignored except the point


def test_delaunay_stuff_ring_around_a_thing_keeps_the_thing_whole():
    """A ring of stuff points around a cluster of thing points: the stuff shape gets a hole where
    the thing is, the thing its full hull, and no shape holds a foreign point."""
    thing_pts = [[18, 18], [26, 18], [26, 26], [18, 26], [22, 22]]
    ang = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    ring = np.round(np.stack([22 + 14 * np.cos(ang), 22 + 14 * np.sin(ang)], 1)).astype(int)
    t = build_targets([ann(1, ring, category_id=2), ann(2, thing_pts)], CATS, (45, 45), options=CONVEX)
    st_, th = t.segments
    box = np.zeros((45, 45), bool)
    box[18:27, 18:27] = True  # the thing's convex hull: the closed square of its corner points
    assert np.array_equal(th.mask, box)
    assert not (st_.mask & box).any()
    assert st_.mask[22, 9] and st_.mask[9, 22]  # the ring itself is stuff


def test_two_part_stuff_gets_two_shapes_and_the_gap_stays_unlabelled():
    left = [[2, 2], [8, 2], [8, 8], [2, 8]]
    right = [[30, 2], [36, 2], [36, 8], [30, 8]]
    middle = [[19, 3], [19, 7]]  # another segment's points between the two clusters, inside their hull
    t = build_targets([ann(1, left + right, category_id=2), ann(2, middle)], CATS, (40, 12), options=CONVEX)
    st_ = t.segments[0].mask
    assert st_[2:9, 2:9].all() and st_[2:9, 30:37].all()
    assert not st_[:, 10:29].any()  # no bridge over the segment between the parts
    baseline = build_targets(
        [ann(1, left + right, category_id=2), ann(2, middle)],
        CATS,
        (40, 12),
        options=TargetOptions(shape="convex", parts="hull"),
    )
    bridge = baseline.segments[0].mask | baseline.segments[1].mask
    assert bridge[5, 9:30].all()  # one hull bridges the gap (the thing's capsule wins its part of it)


def test_two_segments_points_in_one_pixel_are_ignored():
    t = build_targets([ann(1, [[4, 4]]), ann(2, [[4, 4]], category_id=3)], CATS, (10, 10))
    assert t.ignore[4, 4] and not t.segments[0].mask[4, 4] and not t.segments[1].mask[4, 4]


def test_negative_point_is_never_positive_for_its_segment():
    a = ann(1, [[0, 0], [9, 0], [9, 9], [0, 9], [5, 5]])
    a["point_labels"] = [1, 1, 1, 1, 0]
    for parts in ("hull", "delaunay"):
        t = build_targets([a], CATS, (12, 12), options=TargetOptions(shape="convex", parts=parts))
        assert not t.segments[0].mask[5, 5] and t.ignore[5, 5] and t.segments[0].mask[1, 1]
    # Delaunay parts leave out the triangles around the negative point, not just its pixel
    t = build_targets([a], CATS, (12, 12), options=CONVEX)
    assert t.ignore[4, 5] and t.ignore[5, 4]


def test_crowd_shapes_are_ignored_and_give_no_segment():
    crowd = ann(5, [[0, 0], [9, 0], [9, 9], [0, 9]], iscrowd=1)
    t = build_targets([crowd, ann(1, [[15, 15]])], CATS, (20, 20), options=CONVEX)
    assert [s.annotation_id for s in t.segments] == [1]
    assert t.ignore[0:10, 0:10].all()


def test_dilation_grows_into_ignore_only_and_stops_between_segments():
    a = ann(1, [[2, 2], [2, 6], [6, 6], [6, 2]])
    b = ann(2, [[12, 2], [12, 6], [16, 6], [16, 2]], category_id=3)
    plain = build_targets([a, b], CATS, (20, 10), options=CONVEX)
    dil = build_targets(
        [a, b], CATS, (20, 10), options=TargetOptions(shape="convex", dilation=2.0, dilation_units="pixels")
    )
    assert dil.dilation_radius == 2.0
    ma, mb = dil.segments[0].mask, dil.segments[1].mask
    # contains the undilated masks; grown by exactly the Euclidean 2 px around the square
    assert (ma >= plain.segments[0].mask).all() and (mb >= plain.segments[1].mask).all()
    ii, jj = np.mgrid[0:10, 0:20]
    dx = np.maximum(np.maximum(2.5 - (jj + 0.5), (jj + 0.5) - 6.5), 0)
    dy = np.maximum(np.maximum(2.5 - (ii + 0.5), (ii + 0.5) - 6.5), 0)
    assert np.array_equal(ma, dx**2 + dy**2 <= 4 + 1e-9)
    # a gap of 5 px between the squares: columns 8..10 are within 2 px of a only / b only / neither
    c = build_targets(
        [a, ann(2, [[11, 2], [11, 6], [15, 6], [15, 2]], category_id=3)],
        CATS,
        (20, 10),
        options=TargetOptions(shape="convex", dilation=2.0, dilation_units="pixels"),
    )
    assert c.segments[0].mask[4, 8] and c.segments[1].mask[4, 9]  # 8.5 is 2 from a; 9.5 is 2 from b
    assert not (c.segments[0].mask & c.segments[1].mask).any()


def test_dilation_reached_by_two_stays_ignored_and_never_takes_other_points():
    a = ann(1, [[2, 2], [2, 6], [6, 6], [6, 2]])
    b = ann(2, [[10, 2], [10, 6], [14, 6], [14, 2]], category_id=3)
    other = ann(3, [[8, 9]], category_id=2)  # a lone stuff point 3 px below the gap
    opts = TargetOptions(shape="convex", dilation=3.0, dilation_units="pixels", point_radius=0.5)
    t = build_targets([a, b, other], CATS, (18, 12), options=opts)
    assert t.ignore[4, 8]  # x = 8.5 is 2 px from both squares
    assert t.segments[2].mask[9, 8] and not t.segments[0].mask[9, 8] and not t.segments[1].mask[9, 8]


def test_dilation_range_is_drawn_per_call_and_reproducible():
    opts = TargetOptions(dilation=(0.01, 0.05))
    r1 = build_targets(
        [ann(1, [[5, 5], [30, 8], [20, 30]])], CATS, (100, 50), options=opts, rng=np.random.default_rng(3)
    ).dilation_radius
    r2 = build_targets(
        [ann(1, [[5, 5], [30, 8], [20, 30]])], CATS, (100, 50), options=opts, rng=np.random.default_rng(3)
    ).dilation_radius
    assert r1 == r2 and 1.0 <= r1 <= 5.0
    with pytest.raises(ValueError):
        build_targets([ann(1, [[5, 5]])], CATS, (100, 50), options=opts)


def test_parse_dilation():
    assert parse_dilation("off") == (None, "relative")
    assert parse_dilation("0.02") == (0.02, "relative")
    assert parse_dilation("on") == (DEFAULT_DILATION, "relative")
    assert parse_dilation("0.01:0.03") == ((0.01, 0.03), "relative")
    assert parse_dilation("8px") == (8.0, "pixels")
    assert parse_dilation("4:12px") == ((4.0, 12.0), "pixels")
    with pytest.raises(PointlyError, match="--dilation"):
        parse_dilation("big")
    with pytest.raises(PointlyError, match="min > max"):
        TargetOptions(dilation=(0.05, 0.01))
    with pytest.raises(PointlyError, match="concave ratio"):
        TargetOptions(concave_ratio=1.5)


# ------------------------------------------------------------------ transforms and resolution


def _random_scene(rng, w=96, h=72, n=5):
    anns = []
    for k in range(n):
        cx, cy = rng.integers(10, w - 10), rng.integers(10, h - 10)
        pts = np.stack(
            [np.clip(cx + rng.normal(0, 9, 12), 0, w - 1), np.clip(cy + rng.normal(0, 7, 12), 0, h - 1)], 1
        ).astype(int)
        anns.append(ann(k + 1, pts, category_id=(1, 2, 3)[k % 3]))
    return anns


def test_hflip_and_crop_are_exact_array_operations():
    rng = np.random.default_rng(0)
    anns = _random_scene(rng)
    base = build_targets(anns, CATS, (96, 72))
    t0 = PixelTransform.identity(96, 72)
    flip = build_targets(anns, CATS, (96, 72), transform=t0.hflip())
    assert np.array_equal(flip.owner, base.owner[:, ::-1])
    for s, f in zip(base.segments, flip.segments):
        assert f.centre == pytest.approx((95 - s.centre[0], s.centre[1]))
    crop = build_targets(anns, CATS, (96, 72), transform=t0.crop(10, 5, 60, 50))
    # owners agree except where a cropped-away point would have decided the pixel (none here: hulls)
    assert np.array_equal(crop.owner, base.owner[5:55, 10:70])
    pad = build_targets(anns, CATS, (96, 72), transform=t0.pad(128, 96))
    assert np.array_equal(pad.owner[:72, :96], base.owner) and pad.ignore[72:].all()


@pytest.mark.parametrize("stride", [2, 4])
@pytest.mark.parametrize("shape", ["convex", "concave"])
def test_shape_at_scale_equals_full_size_downsampled_within_one_pixel(stride, shape):
    rng = np.random.default_rng(stride)
    opts = TargetOptions(shape=shape)
    for _trial in range(5):
        a = _random_scene(rng, n=1)
        full = build_targets(a, CATS, (96, 72), options=opts).segments[0].mask
        small = (
            build_targets(a, CATS, (96, 72), options=opts, transform=PixelTransform.identity(96, 72).downsample(stride))
            .segments[0]
            .mask
        )
        frac = full.reshape(72 // stride, stride, 96 // stride, stride).mean(axis=(1, 3))
        mixed = (frac > 0) & (frac < 1)
        near_boundary = ndimage.binary_dilation(mixed, np.ones((3, 3), bool))
        assert not ((small != (frac >= 0.5)) & ~near_boundary).any()
        # and the strided mask stays close in area
        assert abs(small.sum() * stride**2 - full.sum()) <= 0.2 * full.sum() + 4 * stride * np.sqrt(full.sum())


def test_resize_scales_coordinates_and_out_size_equals_transform():
    anns = _random_scene(np.random.default_rng(5), n=3)
    a = build_targets(anns, CATS, (96, 72), out_size=(48, 36))
    b = build_targets(anns, CATS, (96, 72), transform=PixelTransform.identity(96, 72).resize(48, 36))
    c = build_targets(anns, CATS, (96, 72), transform=PixelTransform.identity(96, 72).downsample(2))
    assert np.array_equal(a.owner, b.owner) and np.array_equal(a.owner, c.owner)
    s_full = build_targets(anns, CATS, (96, 72)).segments[0]
    assert a.segments[0].centre == pytest.approx(
        ((s_full.centre[0] + 0.5) / 2 - 0.5, (s_full.centre[1] + 0.5) / 2 - 0.5)
    )


def test_precomputed_shapes_give_identical_targets():
    anns = _random_scene(np.random.default_rng(6))
    opts = TargetOptions()
    t = PixelTransform.identity(96, 72).resize(120, 90).hflip().downsample(4)
    a = build_targets(anns, CATS, (96, 72), options=opts, transform=t)
    b = build_targets(anns, CATS, (96, 72), options=opts, transform=t, shapes=shapes_for(anns, opts))
    assert np.array_equal(a.owner, b.owner)


def test_centre_heatmap_uses_the_shared_gaussian():
    from pointly.pointgen.targets.centers import draw_gaussian, gaussian_radius

    anns = [ann(1, [[10, 10], [30, 10], [30, 40], [10, 40]]), ann(2, [[50, 5]], category_id=2)]
    t = build_targets(anns, CATS, (64, 48), options=TargetOptions(shape="convex", size_correction=False))
    heat = centre_heatmap(t, {1: 0, 3: 1}, 2)
    ref = np.zeros((48, 64), np.float32)
    draw_gaussian(ref, 20, 25, gaussian_radius(31, 21))
    assert heat.shape == (2, 48, 64) and np.array_equal(heat[0], ref) and not heat[1].any()


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "coords,msg",
    [
        ([[5, 50]], "outside the 20x16 image"),
        ([[-1, 3]], "outside"),
        ([[float("nan"), 3]], "NaN"),
        ([], "no points"),
        ([[1, 2, 3]], r"\[x, y\] pairs"),
    ],
)
def test_bad_points_raise_one_clear_error(coords, msg):
    a = {"id": 9, "image_id": 4, "category_id": 1, "point_coords": coords, "point_labels": [1] * len(coords)}
    with pytest.raises(PointlyError, match=msg) as exc:
        build_targets([a], CATS, (20, 16), file="p.json")
    assert "annotation id 9 (image_id 4)" in str(exc.value) and "p.json" in str(exc.value)


def test_unknown_category_and_missing_positive_raise():
    with pytest.raises(PointlyError, match="unknown category_id 99"):
        build_targets([ann(1, [[1, 1]], category_id=99)], CATS, (8, 8))
    a = ann(1, [[1, 1]])
    a["point_labels"] = [0]
    with pytest.raises(PointlyError, match="no positive point"):
        build_targets([a], CATS, (8, 8))


def test_checked_annotations_in_one_pass_equal_one_by_one():
    """The one-pass reading of valid annotations gives the arrays of the per-annotation checks;
    a bad annotation after good ones still raises its own error."""
    from pointly.pointgen.targets.inputs import _all_valid, checked_annotations, checked_points

    isthing = {1: True, 3: False}
    anns = [
        {"id": 1, "category_id": 1, "point_coords": [[1.7, 2.2], [3, 4]], "point_labels": [1, 0]},
        {"id": 2, "category_id": 3, "point_coords": [[0, 0]]},
        {"id": 3, "category_id": 1, "point_coords": [[19, 15], [5, 5], [5, 5]], "point_labels": [0, 1, 1]},
    ]
    got = _all_valid(anns, isthing, 20, 16)
    want = [(a, *checked_points(a, i, 20, 16, None)) for i, a in enumerate(anns)]
    assert got is not None and len(got) == len(want)
    for (a, c, l), (b, d, m) in zip(got, want):
        assert a is b and c.dtype == d.dtype and np.array_equal(c, d) and l.dtype == m.dtype and np.array_equal(l, m)
    bad = anns + [{"id": 4, "image_id": 2, "category_id": 1, "point_coords": [[3, 99]]}]
    assert _all_valid(bad, isthing, 20, 16) is None
    with pytest.raises(PointlyError, match="annotation id 4.*outside|outside"):
        checked_annotations(bad, isthing, 20, 16, None)
    none_labels = [{"id": 5, "category_id": 1, "point_coords": [[1, 1]], "point_labels": None}]
    assert _all_valid(none_labels, isthing, 20, 16) is None  # left to the per-annotation checks


def test_image_without_annotations_is_all_ignored():
    t = build_targets([], CATS, (7, 5))
    assert t.segments == [] and t.ignore.shape == (5, 7) and t.ignore.all() and not t.owner.any()
