"""build_targets' area-proportional fast path against a straightforward reference kept here.

The reference draws every shape as a full-size mask (pointgen.raster.full_mask), builds the
claim counts, owner, point labels, crowd and dilation maps with plain whole-image numpy, and cuts
each segment's mask as ``owner == k`` over the whole image: the rules of the pointgen.targets
docstring, written the slow, obvious way. Random scenes (uniform points, negative points, crowd
annotations, dilation, stride, flips, crops) at sizes on both sides of the old batching threshold.
"""
from __future__ import annotations

import numpy as np
import pytest

from pointly.pointgen.raster import claim_maps, full_mask
from pointly.pointgen.shapes import dilate, hull_shape
from pointly.pointgen.targets import PixelTransform, TargetOptions, build_targets
from targets_fixtures import CATS


def _out_geom(geom, transform):
    import shapely

    return shapely.transform(geom, lambda xy: transform.apply(xy))


def reference(anns, width, height, opts, transform, radius):
    """(owner, masks, boxes) by whole-image passes, one full-size mask per shape."""
    H, W = transform.shape
    segs, crowd = [], np.zeros((H, W), bool)
    for a in anns:
        coords = np.asarray(a["point_coords"], np.int64)
        labels = np.asarray(a["point_labels"], np.int64)
        pos = coords[labels == 1]
        g = hull_shape(pos, shape=opts.shape, concave_ratio=opts.concave_ratio,
                       point_radius=opts.point_radius)
        m = full_mask(_out_geom(g, transform), H, W)
        if a.get("iscrowd", 0):
            crowd |= m
            continue
        pc, pr, pin = transform.point_pixels(pos)
        nc, nr, nin = transform.point_pixels(coords[labels != 1])
        segs.append(dict(g=g, m=m, pos=(pr[pin], pc[pin]), neg=(nr[nin], nc[nin])))
    count = np.zeros((H, W), int)
    for s in segs:
        count += s["m"]
    owner = np.zeros((H, W), np.int32)
    for k, s in enumerate(segs, 1):
        owner[s["m"] & (count == 1)] = k
    # points: a pixel holding points of exactly one segment is that segment's, of two: ignored
    point_segs = np.zeros((H, W), int)
    point_id = np.zeros((H, W), int)
    blocked = np.zeros((H, W), bool)
    for k, s in enumerate(segs, 1):
        here = np.zeros((H, W), bool)
        here[s["pos"]] = True
        point_segs += here
        point_id[here] = k
        blocked |= here
    owner[point_segs == 1] = point_id[point_segs == 1]
    owner[point_segs > 1] = 0
    for k, s in enumerate(segs, 1):
        neg = np.zeros((H, W), bool)
        neg[s["neg"]] = True
        owner[neg & (owner == k)] = 0
        blocked |= neg
    owner[crowd & ~blocked] = 0
    blocked |= crowd
    if radius > 0 and segs:
        free = (count == 0) & ~blocked
        dmasks = [full_mask(_out_geom(dilate(s["g"], radius), transform), H, W) for s in segs]
        dcount = np.sum(dmasks, axis=0)
        for k, dm in enumerate(dmasks, 1):
            owner[free & dm & (dcount == 1)] = k
    boxes = []
    for s in segs:
        m = s["m"].copy()
        m[s["pos"]] = True
        ys, xs = np.nonzero(m)
        boxes.append((0.0, 0.0, 0.0, 0.0) if not ys.size else
                     (float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                      float(ys.max() - ys.min() + 1)))
    masks = [owner == k for k in range(1, len(segs) + 1)]
    return owner, masks, boxes


def random_scene(rng, width, height):
    anns = []
    for k in range(int(rng.integers(1, 9))):
        n = int(rng.integers(1, 21))
        # clustered points, like a segment's clicks
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        spread = rng.uniform(2, max(width, height) / 3)
        xy = np.stack([np.clip(np.round(cx + rng.normal(0, spread, n)), 0, width - 1),
                       np.clip(np.round(cy + rng.normal(0, spread, n)), 0, height - 1)], 1).astype(int)
        labels = (rng.random(n) > 0.15).astype(int)
        labels[0] = 1
        anns.append({"id": k + 1, "image_id": 1, "category_id": int(rng.choice([1, 2])),
                     "iscrowd": int(rng.random() < 0.1), "point_coords": xy.tolist(),
                     "point_labels": labels.tolist()})
    return anns


@pytest.mark.parametrize("width,height", [(40, 30), (160, 120), (640, 480)])
def test_fast_path_equals_reference(width, height):
    rng = np.random.default_rng(width)
    for trial in range(12 if width < 600 else 4):
        anns = random_scene(rng, width, height)
        opts = TargetOptions(shape=str(rng.choice(["convex", "concave"])),
                             concave_ratio=float(rng.choice([0.0, 0.3, 1.0])),
                             point_radius=float(rng.choice([0.5, 3.0, 6.0])),
                             dilation=float(rng.choice([0.0, 1.5, 0.02 * max(width, height)])) or None,
                             dilation_units="pixels")
        t = PixelTransform.identity(width, height)
        if rng.random() < 0.5:
            t = t.hflip()
        if rng.random() < 0.3:
            t = t.crop(width // 8, height // 8, width // 2, height // 2)
        t = t.downsample(int(rng.choice([1, 2, 4])))
        got = build_targets(anns, CATS, (width, height), options=opts, transform=t)
        owner, masks, boxes = reference(anns, width, height, opts, t, got.dilation_radius)
        assert np.array_equal(got.owner, owner), (width, trial)
        assert np.array_equal(got.ignore, owner == 0)
        assert len(got.segments) == len(masks)
        for s, m, b in zip(got.segments, masks, boxes):
            assert s.mask.shape == m.shape and np.array_equal(s.mask, m)
            assert s.bbox == b


def test_claim_maps_many_shapes_uses_wide_packing():
    """More than ~1000 shapes no longer fit int32 packed sums: the int64 path must agree too."""
    rng = np.random.default_rng(3)
    shapes = []
    for _ in range(1200):
        x, y = rng.uniform(0, 60, 2)
        w, h = rng.uniform(0.5, 6, 2)
        shapes.append([np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]])])
    a = claim_maps(shapes, 50, 60, batched=True)
    b = claim_maps(shapes, 50, 60, batched=False)
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
