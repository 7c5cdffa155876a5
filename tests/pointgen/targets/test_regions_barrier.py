"""The edge-barrier rule of image-aware targets: a part of the image without points is given to
nobody, however the watershed floods it (hand-made images with known colours and borders)."""

from __future__ import annotations

import numpy as np
import pytest
from region_images import GREEN_POINTS, RED_POINTS, three_flat_regions

from pointly.pointgen.targets.regions import RegionOptions, grow_regions, reached_below

BLUE = (slice(48, 96), slice(64, 128))


def test_a_region_without_points_gets_no_known_pixel():
    """The red|blue edge (Lab gradient 383) is 47 % of the strongest border (red|green, 817): a
    barrier of 0.3 of the median border strength keeps the flood out of blue."""
    labels, known = grow_regions(
        three_flat_regions(), [RED_POINTS, GREEN_POINTS], options=RegionOptions(barrier=0.3, reach=0)
    )
    assert not known[BLUE].any()
    # the clicked regions keep their interiors
    assert known[10:40, 5:55].all() and (labels[10:40, 5:55] == 1).all()
    assert known[5:40, 75:120].all() and (labels[5:40, 75:120] == 2).all()


def test_without_the_rule_the_flood_takes_it():
    """The reason for the rule: the watershed is a complete partition, so the blue part goes to a
    neighbour, and without the barrier (and the colour rule, which also drops blue pixels from a
    red or green region: tests/pointgen/targets/test_regions_confidence.py) it stays in the targets."""
    labels, known = grow_regions(
        three_flat_regions(),
        [RED_POINTS, GREEN_POINTS],
        options=RegionOptions(barrier=0, reach=0, colour_limit=0),
    )
    assert known[BLUE].mean() > 0.9  # all but the border margin
    assert set(np.unique(labels[BLUE])) <= {1, 2}


def test_a_textured_region_with_points_stays_known():
    """Texture weaker than the region borders does not cut a clicked region from its points."""
    rng = np.random.default_rng(0)
    img = three_flat_regions().astype(np.int16)
    img[:, :64] += rng.integers(-25, 26, size=(96, 64, 1), dtype=np.int16)  # grain on red
    img = np.clip(img, 0, 255).astype(np.uint8)
    blue_points = np.array([[90, 70], [120, 90]])
    labels, known = grow_regions(
        img, [RED_POINTS, GREEN_POINTS, blue_points], options=RegionOptions(barrier=0.3, reach=0)
    )
    interior = known[5:91, 3:60]
    assert interior.mean() > 0.9
    assert (labels[5:91, 3:60][interior] == 1).all()
    assert known[BLUE].mean() > 0.8  # and the blue part, now clicked, is known


@pytest.mark.parametrize("level, expected", [(0.5, 4), (1.5, 8), (2.5, 12)])
def test_reached_below_is_the_flood_up_to_a_level(level, expected):
    """A 1-D staircase of walls: markers at the left end, walls of height 1 and 2 at columns 4 and 8."""
    g = np.zeros((1, 12), dtype=np.float32)
    g[0, 4], g[0, 8] = 1.0, 2.0
    markers = np.zeros((1, 12), dtype=np.int32)
    markers[0, 0] = 1
    assert int(reached_below(g, markers, level).sum()) == expected


def test_results_are_deterministic():
    a = grow_regions(three_flat_regions(), [RED_POINTS, GREEN_POINTS])
    b = grow_regions(three_flat_regions(), [RED_POINTS, GREEN_POINTS])
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
