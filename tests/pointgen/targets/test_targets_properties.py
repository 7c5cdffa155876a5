"""Property tests of build_targets (hypothesis) and a check on real COCO panoptic data."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from targets_fixtures import CATS, ann, sample_points

from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.pixel_transform import PixelTransform

W, H = 40, 30


@st.composite
def scenes(draw):
    nseg = draw(st.integers(1, 5))
    anns = []
    for k in range(nseg):
        pts = draw(st.lists(st.tuples(st.integers(0, W - 1), st.integers(0, H - 1)), min_size=1, max_size=12))
        anns.append(ann(k + 1, pts, category_id=draw(st.sampled_from([1, 2, 3]))))
    opts = TargetOptions(
        shape=draw(st.sampled_from(["convex", "concave"])),
        concave_ratio=draw(st.sampled_from([0.0, 0.3, 1.0])),
        point_radius=draw(st.sampled_from([0.5, 2.0, 5.0])),
        dilation=draw(st.sampled_from([None, 1.5, 4.0])),
        dilation_units="pixels",
    )
    stride = draw(st.sampled_from([1, 2, 4]))
    flip = draw(st.booleans())
    return anns, opts, stride, flip


def point_owners(anns, transform):
    """Output pixel → set of annotation indices with a point there."""
    owners: dict[tuple[int, int], set[int]] = {}
    for k, a in enumerate(anns):
        c, r, inside = transform.point_pixels(np.asarray(a["point_coords"]))
        for cc, rr in zip(c[inside], r[inside]):
            owners.setdefault((int(rr), int(cc)), set()).add(k)
    return owners


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenes())
def test_invariants(scene):
    anns, opts, stride, flip = scene
    t = PixelTransform.identity(W, H)
    if flip:
        t = t.hflip()
    t = t.downsample(stride)
    out = build_targets(anns, CATS, (W, H), options=opts, transform=t)
    masks = np.stack([s.mask for s in out.segments])
    # masks are disjoint and ignore is exactly the complement of their union
    assert masks.sum(axis=0).max() <= 1
    assert np.array_equal(out.ignore, ~masks.any(axis=0))
    for (r, c), ks in point_owners(anns, t).items():
        if len(ks) == 1:
            (k,) = ks
            # every point lies in its own mask, and in no other segment's mask
            assert masks[k, r, c]
        else:
            # a pixel holding points of two segments is ignored
            assert out.ignore[r, c]
    # each mask lies within its shape grown by the dilation (or is a point pixel)
    for k, s in enumerate(out.segments):
        assert s.centre == pytest.approx(tuple(t.point_centres(np.asarray(anns[k]["point_coords"])).mean(0) - 0.5))


@settings(max_examples=60, deadline=None)
@given(scenes())
def test_baseline_without_dilation_masks_are_shapes_minus_conflicts(scene):
    """The first design's rules: one hull per segment, a pixel claimed twice is nobody's."""
    anns, opts, stride, flip = scene
    opts = TargetOptions(
        shape=opts.shape,
        concave_ratio=opts.concave_ratio,
        point_radius=opts.point_radius,
        parts="hull",
        overlap="exclusive",
    )
    t = PixelTransform.identity(W, H).downsample(stride)
    out = build_targets(anns, CATS, (W, H), options=opts, transform=t)
    # each segment's own shape alone (no other segments): the union of conflicts is what is removed
    alone = np.stack([build_targets([a], CATS, (W, H), options=opts, transform=t).segments[0].mask for a in anns])
    claims = alone.sum(axis=0)
    owners = point_owners(anns, t)
    for k, s in enumerate(out.segments):
        expect = alone[k] & (claims == 1)
        for (r, c), ks in owners.items():
            expect[r, c] = ks == {k}
        assert np.array_equal(s.mask, expect)


def test_real_coco_panoptic_targets(shared_data):
    from pointly.pointgen.base.coco import PanopticDataset

    root = shared_data / "coco_panoptic_val2017"
    ds = PanopticDataset(root / "panoptic_val2017.json", root / "panoptic")
    rng = np.random.default_rng(0)
    precs = []
    for im in ds.images:
        segs = ds.segments(im.id)
        anns = sample_points(segs, 20, rng, image_id=im.id)
        truth = {s.segment_id: s.mask for s in segs}
        for shape in ("convex", "concave"):
            out = build_targets(anns, ds.categories, im, options=TargetOptions(shape=shape))
            assert out.ignore.shape == (im.height, im.width)
            for a, s in zip(anns, out.segments):
                m = truth[a["source_segment_id"]]
                assert s.mask.any()
                # points are uniform inside the true segment: most of a thing's target is inside it
                precs.append((s.mask & m).sum() / s.mask.sum())
                if s.isthing:
                    assert precs[-1] > 0.3, (im.id, a["source_segment_id"], precs[-1])
            # stride-4 targets of the same points: about the full-size coverage / 16
            small = build_targets(
                anns,
                ds.categories,
                im,
                options=TargetOptions(shape=shape),
                transform=PixelTransform.identity(im.width, im.height).downsample(4),
            )
            cov_full = (~out.ignore).mean()
            cov_small = (~small.ignore).mean()
            assert abs(cov_full - cov_small) < 0.05
    # on average most of a target lies in its true segment (a scattered stuff region, e.g.
    # 39769's blanket, has a hull mostly outside it)
    assert np.mean(precs) > 0.7
