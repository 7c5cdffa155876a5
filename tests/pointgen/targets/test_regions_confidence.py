"""Which pixels of the image-aware regions are trusted (``RegionOptions`` border_margin,
coarse_agreement, colour_limit): hand-made images with known colours and borders."""

from __future__ import annotations

import numpy as np
import pytest
from region_images import GREEN_POINTS, RED_POINTS, three_flat_regions

from pointly.pointgen.targets.regions import RegionOptions, colour_distance, grow_regions

H, W = 240, 640  # a COCO-sized side: the coarse flood runs on a 160 × 60 copy (4× smaller)


def halves(split: int) -> np.ndarray:
    img = np.zeros((H, W, 3), dtype=np.uint8)
    img[:, :split] = (200, 30, 30)
    img[:, split:] = (30, 30, 200)
    return img


RED = np.array([[20, 30], [100, 200], [250, 120]])
BLUE = np.array([[400, 50], [600, 220]])


@pytest.mark.parametrize("split", [320, 322])  # on a coarse pixel's edge, and inside one
def test_a_sharp_border_costs_only_the_pixels_next_to_it(split):
    """Two flat colours: both floods stop at the one edge and every pixel has its points' colour, so
    the defaults ignore nothing but the pixels within 2 px of the edge (the old 0.01 margin
    ignored 6.4 px on each side)."""
    labels, known = grow_regions(halves(split), [RED, BLUE], options=RegionOptions(reach=0))
    truth = np.where(np.arange(W) < split, 1, 2)[None, :]
    assert (labels == truth).all()
    cols = np.arange(W) + 0.5
    far = np.abs(cols - split) > 2
    assert known[:, far].all()
    assert not known[:, split - 1].any() and not known[:, split].any()  # the border pixels


def test_a_thick_stripe_keeps_its_interior():
    """A 24 px stripe is 6 coarse pixels wide: the coarse flood agrees with the fine one except
    within a coarse pixel (4 px) of its edges."""
    img = np.full((H, W, 3), 128, dtype=np.uint8)
    img[70:94] = (220, 20, 20)
    stripe = np.array([[100, 80], [300, 85], [500, 90]])
    grey = np.array([[50, 20], [600, 200], [320, 40]])
    labels, known = grow_regions(img, [stripe, grey], options=RegionOptions(reach=0))
    assert known[75:89].all() and (labels[75:89] == 1).all()
    assert known[:62].all() and known[102:].all() and (labels[:62] == 2).all()


def test_a_flooded_part_unlike_its_regions_points_is_ignored():
    """Blue has no points, so the flood gives it to red or green; its colour is far from both
    regions' points (Lab distance > 100, the models' spread 2 Lab units), so the colour rule
    ignores all of it, and only it."""
    labels, known = grow_regions(three_flat_regions(), [RED_POINTS, GREEN_POINTS], options=RegionOptions(reach=0))
    assert set(np.unique(labels[48:, 64:])) <= {1, 2}
    assert not known[48:, 64:].any()
    assert known[3:93, 3:60].all() and (labels[3:93, 3:60] == 1).all()
    assert known[3:44, 68:125].all() and (labels[3:44, 68:125] == 2).all()
    # without the rule the flood keeps it
    _, known_off = grow_regions(
        three_flat_regions(), [RED_POINTS, GREEN_POINTS], options=RegionOptions(reach=0, colour_limit=0)
    )
    assert known_off[52:92, 68:124].all()


def test_texture_like_the_points_stays_known():
    """Grain of ±25 grey levels on the red half is sampled around red's points, so the model's
    spread covers it: almost all of red's interior stays known."""
    rng = np.random.default_rng(0)
    img = three_flat_regions().astype(np.int16)
    img[:, :64] += rng.integers(-25, 26, size=(96, 64, 1), dtype=np.int16)
    img = np.clip(img, 0, 255).astype(np.uint8)
    blue = np.array([[90, 70], [120, 90]])
    labels, known = grow_regions(img, [RED_POINTS, GREEN_POINTS, blue], options=RegionOptions(reach=0))
    assert known[5:91, 5:59].mean() > 0.97
    assert (labels[5:91, 5:59] == 1).all()


def test_colour_distance_is_the_mahalanobis_distance_to_the_points_patches():
    """One region, its points on a flat colour: the model is that colour with covariance
    floor × identity, so a pixel d Lab units away along one axis is at (d / 2)² for floor 4."""
    lab = np.zeros((20, 20, 3), dtype=np.float32)
    lab[..., 0] = 50.0
    lab[15:, 15:, 0] = 56.0  # 6 L units away from the points' colour
    labels = np.ones((20, 20), dtype=np.int32)
    d = colour_distance(lab, labels, [np.array([[3, 3], [5, 8]])], patch=2, floor=4.0)
    assert np.allclose(d[:10, :10], 0.0)
    assert np.allclose(d[15:, 15:], 9.0)  # (6 / 2)²: exactly at the default limit


def test_the_new_rules_are_deterministic():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, size=(120, 400, 3), dtype=np.uint8)
    seeds = [rng.integers(0, 120, size=(5, 2)) * [3, 1] for _ in range(4)]
    a = grow_regions(img, seeds)
    b = grow_regions(img, seeds)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


def test_a_point_in_a_block_that_straddles_an_edge_does_not_seed_the_coarse_flood():
    """The coarse flood (4× smaller here) is seeded only from points whose 4 × 4 block lies wholly
    in their own full-size region: a point next to a square's edge shares its block with the grey
    around it, and would start the square's coarse flood on the grey side."""
    from pointly.pointgen.targets.regions import _lab, coarse_labels

    img = np.full((H, W, 3), 128, dtype=np.uint8)
    img[100:140, 302:342] = (220, 20, 20)  # columns 302-341: blocks 300-303 and 340-343 are mixed
    labels = np.ones((H, W), dtype=np.int32)
    labels[100:140, 302:342] = 2  # the full-size partition: the square is region 2
    for point, seeded in (((320, 120), True), ((302, 120), False)):
        markers = np.zeros((H, W), dtype=np.int32)
        markers[20, 20] = markers[220, 600] = 1
        markers[point[1], point[0]] = 2
        coarse = coarse_labels(_lab(img), markers, labels, 5.0, 160)
        if seeded:  # the square's interior, a coarse pixel in from its edges, is the square's
            assert (coarse[104:136, 306:338] == 2).all() and (coarse[:90] == 1).all()
        else:  # its one point sits in the block of columns 300-303, half grey: no coarse seed
            assert (coarse == 1).all()
