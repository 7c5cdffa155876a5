"""build_targets' area-proportional fast path against a straightforward reference kept here.

The reference draws every shape (``shapes_for``, tested on its own elsewhere) as a full-size mask
(pointgen.raster.full_mask), builds the claim counts, owner, point labels, crowd and dilation maps
with plain whole-image numpy — the nearest-point rule as a distance map per segment — and cuts
each segment's mask as ``owner == k`` over the whole image: the rules of the pointgen.targets
docstring, written the slow, obvious way. Random scenes (uniform points, negative points, crowd
annotations, dilation, stride, flips, crops; both overlap rules, both part rules, size
correction on and off) at sizes on both sides of the old batching threshold.
"""

from __future__ import annotations

import numpy as np
import pytest
from targets_fixtures import CATS

from pointly.pointgen.targets.build import build_targets, shapes_for
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.packed_claims import claim_maps
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.raster import full_mask
from pointly.pointgen.targets.shapes import dilate


def _out_geom(geom, transform):
    import shapely

    return shapely.transform(geom, lambda xy: transform.apply(xy))


def _nearest_owner(masks, dists, ids, H, W):
    """Per pixel: the id of the covering mask with the smallest distance, 0 on a tie or uncovered."""
    best = np.full((H, W), np.inf)
    second = np.full((H, W), np.inf)
    who = np.zeros((H, W), np.int32)
    for k, m, d in zip(ids, masks, dists):
        d = np.where(m, d, np.inf)
        second = np.where(d < best, best, np.minimum(second, d))
        who = np.where(d < best, k, who)
        best = np.minimum(best, d)
    with np.errstate(invalid="ignore"):  # inf - inf where nothing covers a pixel
        who[np.isinf(best) | (second - best <= 1e-9 * np.maximum(best, 1.0))] = 0
    return who


def _resolve(masks, segs, opts, H, W):
    """Owner of each pixel among ``masks`` (one per segment, same order as ``segs``)."""
    count = np.sum(masks, axis=0) if masks else np.zeros((H, W), int)
    if opts.overlap == "exclusive":
        owner = np.zeros((H, W), np.int32)
        for k, m in enumerate(masks, 1):
            owner[m & (count == 1)] = k
        return owner, count
    per_kind = []
    for thing in (True, False):
        ks = [k for k, s in enumerate(segs, 1) if s["thing"] == thing]
        per_kind.append(
            (
                _nearest_owner([masks[k - 1] for k in ks], [segs[k - 1]["dist"] for k in ks], ks, H, W),
                sum((masks[k - 1] for k in ks), np.zeros((H, W), int)),
            )
        )
    (own_t, cnt_t), (own_s, _) = per_kind
    return np.where(cnt_t > 0, own_t, own_s), count


def reference(anns, width, height, opts, transform, radius):
    """(owner, masks, boxes) by whole-image passes, one full-size mask per shape."""
    H, W = transform.shape
    segs, crowd = [], np.zeros((H, W), bool)
    ii, jj = np.mgrid[0:H, 0:W]
    for a, g in zip(anns, shapes_for(anns, opts)):
        coords = np.asarray(a["point_coords"], np.int64)
        labels = np.asarray(a["point_labels"], np.int64)
        pos = coords[labels == 1]
        m = full_mask(_out_geom(g, transform), H, W)
        if a.get("iscrowd", 0):
            crowd |= m
            continue
        pc, pr, pin = transform.point_pixels(pos)
        nc, nr, nin = transform.point_pixels(coords[labels != 1])
        centres = transform.point_centres(pos)
        dist = np.min([(jj + 0.5 - x) ** 2 + (ii + 0.5 - y) ** 2 for x, y in centres], axis=0)
        segs.append(
            dict(
                g=g,
                m=m,
                pos=(pr[pin], pc[pin]),
                neg=(nr[nin], nc[nin]),
                dist=dist,
                coords=pos,
                thing=CATS[[c["id"] for c in CATS].index(a["category_id"])]["isthing"] == 1,
            )
        )
    owner, count = _resolve([s["m"] for s in segs], segs, opts, H, W)
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
        grown, _ = _resolve(dmasks, segs, opts, H, W)
        owner[free & (grown > 0)] = grown[free & (grown > 0)]
    boxes = []
    for s in segs:
        m = s["m"].copy()
        m[s["pos"]] = True
        ys, xs = np.nonzero(m)
        box = (
            (0.0, 0.0, 0.0, 0.0)
            if not ys.size
            else (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))
        )
        c = np.unique(s["coords"], axis=0) + 0.5
        if opts.size_correction and ys.size and len(c) >= 2:
            # the points' box grown by (n + 1) / (n - 1) about its centre, plus half a pixel, on the grid
            n = len(c)
            lo, hi = c.min(0), c.max(0)
            half = (hi - lo) * (n + 1) / (n - 1) / 2 + 0.5
            corners = transform.apply(np.stack([(lo + hi) / 2 - half, (lo + hi) / 2 + half]))
            xs_, ys_ = np.clip(np.sort(corners[:, 0]), 0, W), np.clip(np.sort(corners[:, 1]), 0, H)
            box = (min(box[0], xs_[0]), min(box[1], ys_[0]), max(box[2], xs_[1]), max(box[3], ys_[1]))
        boxes.append((box[0], box[1], box[2] - box[0], box[3] - box[1]))
    masks = [owner == k for k in range(1, len(segs) + 1)]
    return owner, masks, boxes


def random_scene(rng, width, height):
    anns = []
    for k in range(int(rng.integers(1, 9))):
        n = int(rng.integers(1, 21))
        # clustered points, like a segment's clicks
        cx, cy = rng.integers(0, width), rng.integers(0, height)
        spread = rng.uniform(2, max(width, height) / 3)
        xy = np.stack(
            [
                np.clip(np.round(cx + rng.normal(0, spread, n)), 0, width - 1),
                np.clip(np.round(cy + rng.normal(0, spread, n)), 0, height - 1),
            ],
            1,
        ).astype(int)
        labels = (rng.random(n) > 0.15).astype(int)
        labels[0] = 1
        anns.append(
            {
                "id": k + 1,
                "image_id": 1,
                "category_id": int(rng.choice([1, 2])),
                "iscrowd": int(rng.random() < 0.1),
                "point_coords": xy.tolist(),
                "point_labels": labels.tolist(),
            }
        )
    return anns


@pytest.mark.parametrize("width,height", [(40, 30), (160, 120), (640, 480)])
def test_fast_path_equals_reference(width, height):
    rng = np.random.default_rng(width)
    for trial in range(24 if width < 600 else 6):
        anns = random_scene(rng, width, height)
        opts = TargetOptions(
            shape=str(rng.choice(["convex", "concave"])),
            concave_ratio=float(rng.choice([0.0, 0.3, 1.0])),
            point_radius=float(rng.choice([0.5, 3.0, 6.0])),
            dilation=float(rng.choice([0.0, 1.5, 0.02 * max(width, height)])) or None,
            dilation_units="pixels",
            parts=str(rng.choice(["delaunay", "hull"])),
            overlap=str(rng.choice(["nearest", "exclusive"])),
            size_correction=bool(rng.random() < 0.5),
        )
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
            assert s.bbox == pytest.approx(b, abs=1e-9)


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
