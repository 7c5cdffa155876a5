"""Points → the model's training targets (model/engine/point_targets.py), hand-computed on tiny images.

Setting: a 32 × 32 image, so the stride-4 grid is 8 × 8 (stride-4 pixel j covers input pixels
4j..4j+3, centre 4j + 2). A thing (category 1) has points at the corners of the input pixel square
4..11, a stuff region (category 10) at the corners of 20..30, with convex shapes:

* thing hull through pixel centres 4.5..11.5 → at stride 4, 1.125..2.875 → stride-4 pixel
  centres 1.5, 2.5 inside → rows/cols {1, 2};
* stuff hull 20.5..30.5 → 5.125..7.625 → centres 5.5, 6.5, 7.5 → rows/cols {5, 6, 7};
* thing centre = mean of the point centres = (8, 8) input → 8/4 − 0.5 = 1.5 (pixel-index units);
* thing box = hull bounds widened by half a pixel = (4, 4, 12, 12) input pixels.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pointly.model.engine.point_targets import augment_transform, point_train_targets, shape_box, stride4_centre
from pointly.pointgen.targets.build import object_box, shapes_for
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.pixel_transform import PixelTransform

CATS = [
    {"id": 1, "name": "thing", "isthing": 1},
    {"id": 2, "name": "other", "isthing": 1},
    {"id": 10, "name": "stuff", "isthing": 0},
]
THING_INDEX = {1: 0, 2: 1}
STUFF_INDEX = {10: 1}
CONVEX = TargetOptions(shape="convex", size_correction=False)


def _square(x0, x1, ann_id, cat):
    return {
        "id": ann_id,
        "image_id": 1,
        "category_id": cat,
        "iscrowd": 0,
        "point_coords": [[x0, x0], [x1, x0], [x1, x1], [x0, x1]],
        "point_labels": [1, 1, 1, 1],
    }


ANNS = [_square(4, 11, 1, 1), _square(20, 30, 2, 10)]


def _block(rows, cols, shape=(8, 8)):
    m = np.zeros(shape, dtype=np.float32)
    m[np.ix_(list(rows), list(cols))] = 1
    return m


def _targets(transform, anns=ANNS, options=CONVEX):
    return point_train_targets(anns, CATS, (32, 32), transform, THING_INDEX, STUFF_INDEX, options=options)


def test_hand_computed_identity():
    t = _targets(PixelTransform.identity(32, 32))
    assert t.image_size == (32, 32)
    np.testing.assert_array_equal(t.thing_masks.numpy(), _block(range(1, 3), range(1, 3))[None])
    assert t.thing_classes.tolist() == [0]
    np.testing.assert_allclose(t.thing_centers.numpy(), [[1.5, 1.5]])
    np.testing.assert_allclose(t.thing_boxes.numpy(), [[4, 4, 12, 12]])
    # stuff: class 0 ("things") = the thing's shape, class 1 = the stuff shape, in class order
    assert t.stuff_classes.tolist() == [0, 1]
    np.testing.assert_array_equal(t.stuff_masks[0].numpy(), _block(range(1, 3), range(1, 3)))
    np.testing.assert_array_equal(t.stuff_masks[1].numpy(), _block(range(5, 8), range(5, 8)))
    # valid = covered by a shape; everything else ignored
    np.testing.assert_array_equal(t.valid.numpy(), _block(range(1, 3), range(1, 3)) + _block(range(5, 8), range(5, 8)))


def test_box_corrected_for_sampling_shrinkage():
    """4 distinct points whose centres span 4.5..11.5 (7 px) stand for 7 · (4 + 1) / (4 − 1) =
    11.67 px about the middle 8.0, plus half a pixel each side: 1.67..14.33 (the mask is unchanged)."""
    t = _targets(PixelTransform.identity(32, 32), options=TargetOptions(shape="convex"))
    np.testing.assert_allclose(t.thing_boxes.numpy(), [[5 / 3, 5 / 3, 43 / 3, 43 / 3]], rtol=1e-6)
    np.testing.assert_array_equal(t.thing_masks.numpy(), _block(range(1, 3), range(1, 3))[None])
    assert TargetOptions().size_correction  # the default


def test_flip_mirrors_masks_centres_and_boxes():
    t = _targets(augment_transform(32, 32, 32, 32, flip=True))
    # column j → 7 − j; centre x 8 → 32 − 8 = 24 → 24/4 − 0.5 = 5.5; box x 4..12 → 20..28
    np.testing.assert_array_equal(t.thing_masks[0].numpy(), _block(range(1, 3), range(5, 7)))
    np.testing.assert_allclose(t.thing_centers.numpy(), [[5.5, 1.5]])
    np.testing.assert_allclose(t.thing_boxes.numpy(), [[20, 4, 28, 12]])
    np.testing.assert_array_equal(t.stuff_masks[1].numpy(), _block(range(5, 8), range(0, 3)))


def test_resize_halves_everything():
    # 32 → 16 px input: stride-4 grid 4 × 4; thing hull 2.25..5.75 → /4: 0.5625..1.4375 holds no
    # stride-4 pixel centre (0.5, 1.5), so the points' own pixels (hard labels) make the mask: the
    # corner points land at 0.56 → pixel 0 and 1.44 → pixel 1
    t = _targets(augment_transform(32, 32, 16, 16, flip=False))
    assert t.valid.shape == (4, 4) and t.image_size == (16, 16)
    np.testing.assert_array_equal(t.thing_masks[0].numpy(), _block(range(0, 2), range(0, 2), (4, 4)))
    np.testing.assert_allclose(t.thing_centers.numpy(), [[0.5, 0.5]])  # 8·0.5/4 − 0.5
    np.testing.assert_allclose(t.thing_boxes.numpy(), [[2, 2, 6, 6]])  # (4, 4, 12, 12) · 0.5
    assert stride4_centre(8.0, 8.0, augment_transform(32, 32, 16, 16, False)) == (0.5, 0.5)


def test_stride4_size_follows_full_supervision_rounding():
    # 30 × 30 input: full supervision downsamples to int(30/4 + 0.5) = 8, not ceil(7.5) = 8 ... and
    # 29 → int(7.75) = 7 (ceil would give 8)
    t = _targets(augment_transform(32, 32, 29, 29, flip=False))
    assert t.valid.shape == (7, 7)


def test_baseline_overlapping_shapes_are_ignored_and_other_shapes_negative():
    # the first design: a second thing whose square overlaps the first one's: pixels claimed by both are ignored
    anns = [_square(4, 11, 1, 1), _square(8, 15, 3, 2)]
    t = _targets(
        PixelTransform.identity(32, 32),
        anns,
        TargetOptions(shape="convex", parts="hull", overlap="exclusive", size_correction=False),
    )
    a, b = t.thing_masks.numpy()
    assert not (a * b).any()
    valid = t.valid.numpy().astype(bool)
    # stride-4 pixel (2, 2) (input 8..11) is inside both hulls and holds no point: ignored
    assert not valid[2, 2] and a[2, 2] == 0 and b[2, 2] == 0
    # pixel (1, 1) is only the first thing's: positive for it, a negative (valid, 0) for the second
    assert a[1, 1] == 1 and b[1, 1] == 0 and valid[1, 1]
    assert t.thing_classes.tolist() == [0, 1]


def test_single_point_is_a_disc_and_box_from_the_disc():
    ann = {"id": 1, "image_id": 1, "category_id": 1, "point_coords": [[15, 15]], "point_labels": [1]}
    opts = TargetOptions(shape="concave", point_radius=6.0)
    t = _targets(PixelTransform.identity(32, 32), [ann], opts)  # one point: nothing to correct
    # disc of radius 6 around the centre 15.5 → box 15.5 ± 6 widened by 0.5 → 9..22
    np.testing.assert_allclose(t.thing_boxes.numpy(), [[9, 9, 22, 22]], atol=1e-6)
    np.testing.assert_allclose(t.thing_centers.numpy(), [[15.5 / 4 - 0.5] * 2])
    geom = shapes_for([ann], opts)[0]
    box = object_box(np.array([[15, 15]]), geom, True)
    assert shape_box(box, PixelTransform.identity(32, 32)) == pytest.approx((9, 9, 22, 22))


def test_dilation_turns_ignored_pixels_into_positives():
    plain = _targets(PixelTransform.identity(32, 32))
    grown = _targets(
        PixelTransform.identity(32, 32),
        options=TargetOptions(shape="convex", dilation=4, dilation_units="pixels", size_correction=False),
    )
    assert grown.valid.sum() > plain.valid.sum()
    # growing never removes a positive, and the box (level, radius) stays the shape's
    assert (grown.thing_masks[0] >= plain.thing_masks[0]).all()
    torch.testing.assert_close(grown.thing_boxes, plain.thing_boxes)


def test_crowd_and_unknown_categories():
    crowd = dict(_square(20, 30, 5, 1), iscrowd=1)
    unknown = _square(0, 3, 6, 99)
    t = point_train_targets(
        ANNS[:1] + [crowd], CATS, (32, 32), PixelTransform.identity(32, 32), THING_INDEX, STUFF_INDEX, options=CONVEX
    )
    assert t.thing_masks.shape[0] == 1
    assert t.valid[5:8, 5:8].sum() == 0  # the crowd's shape is ignored
    t2 = point_train_targets(
        ANNS + [unknown],
        CATS + [{"id": 99, "name": "x", "isthing": 1}],
        (32, 32),
        PixelTransform.identity(32, 32),
        THING_INDEX,
        STUFF_INDEX,
        options=CONVEX,
    )
    assert t2.thing_classes.tolist() == [0]  # category 99 has no class in the model: skipped


def test_no_annotations_everything_ignored():
    t = point_train_targets([], CATS, (32, 32), PixelTransform.identity(32, 32), THING_INDEX, STUFF_INDEX)
    assert t.thing_masks.shape == (0, 8, 8) and t.stuff_masks.shape == (0, 8, 8)
    assert t.valid.sum() == 0


def test_full_masks_as_points_give_full_supervision_targets():
    """Every pixel of a segment as a point → the shape is the mask itself, nothing is ignored:
    the targets equal full supervision's on the same (stride-1) grid, up to the soft downsampling."""
    from pointly.model.network.gt import full_targets

    rng = np.random.default_rng(0)
    lm = np.ones((32, 32), dtype=np.int64)  # stuff segment 1
    lm[4:12, 4:12] = 2  # a thing
    lm[18:30, 16:28] = 3  # another thing
    segs = [
        {"id": 1, "category_id": 10, "iscrowd": 0, "bbox": [0, 0, 32, 32]},
        {"id": 2, "category_id": 1, "iscrowd": 0, "bbox": [4, 4, 8, 8]},
        {"id": 3, "category_id": 2, "iscrowd": 0, "bbox": [16, 18, 12, 12]},
    ]
    anns = []
    for s in segs:
        ys, xs = np.nonzero(lm == s["id"])
        anns.append(
            {
                "id": s["id"],
                "image_id": 1,
                "category_id": s["category_id"],
                "iscrowd": 0,
                "point_coords": np.stack([xs, ys], 1).tolist(),
                "point_labels": [1] * len(xs),
            }
        )
    rng.shuffle(anns)
    anns = sorted(anns, key=lambda a: a["id"])
    t = point_train_targets(
        anns, CATS, (32, 32), PixelTransform.identity(32, 32), THING_INDEX, STUFF_INDEX, options=CONVEX
    )
    full = full_targets(lm, segs, THING_INDEX, STUFF_INDEX)
    assert t.valid.sum() > 0.9 * t.valid.numel()
    torch.testing.assert_close(t.thing_boxes, full.thing_boxes)
    torch.testing.assert_close(t.thing_centers, full.thing_centers)
    assert t.thing_classes.tolist() == full.thing_classes.tolist()
    assert t.stuff_classes.tolist() == full.stuff_classes.tolist()
    # the binary point masks agree with the soft full-mask targets where those are certain
    sure = (full.thing_masks == 1) | (full.thing_masks == 0)
    torch.testing.assert_close(t.thing_masks[sure], full.thing_masks[sure])
