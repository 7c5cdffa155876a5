"""pointgen.centers against hand-computed values and an independent brute-force reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from pointly.pointgen.targets.centers import draw_gaussian, gaussian_kernel, gaussian_radius, mass_center, points_center


def test_radius_spec_example_64px_box_at_p3_is_2():
    # spec §2.3: a 64 px box at P3 (stride 8) is 8×8 on the level and gives r = 2
    assert gaussian_radius(8, 8, 0.7) == 2


def test_radius_hand_computed_r3_dominates():
    h = w = 8.0
    m = 0.7
    r3 = (-2 * m * (h + w) + math.sqrt(4 * m * m * (h + w) ** 2 + 16 * m * (1 - m) * w * h)) / 2
    assert r3 == pytest.approx(2.1857, abs=1e-3)
    assert gaussian_radius(h, w, m) == int(r3)


@pytest.mark.parametrize("size", [4, 8, 16, 33, 100])
def test_radius_is_monotone_in_box_size(size):
    r = gaussian_radius(size, size)
    assert r >= 0
    assert gaussian_radius(size * 2, size * 2) >= r
    assert gaussian_radius(size, size * 3) >= r


def test_radius_degenerate_box_is_zero():
    assert gaussian_radius(0, 0) == 0
    assert gaussian_radius(1, 1) == 0


def test_kernel_peak_sigma_and_symmetry():
    k = gaussian_kernel(2)
    assert k.shape == (5, 5)
    assert k[2, 2] == 1.0
    sigma = 5 / 3
    assert k[2, 3] == pytest.approx(math.exp(-1 / (2 * sigma * sigma)))
    assert k[0, 0] == pytest.approx(math.exp(-8 / (2 * sigma * sigma)))
    np.testing.assert_allclose(k, k.T)
    np.testing.assert_allclose(k, k[::-1, ::-1])


@pytest.mark.parametrize("backend", ["numpy", "torch"])
def test_draw_gaussian_max_merge_and_border_clip(backend):
    hm = np.zeros((6, 7), np.float32)
    hm[0, 0] = 0.9
    if backend == "torch":
        hm = torch.from_numpy(hm)
    draw_gaussian(hm, 0, 0, 2)  # corner: clipped
    out = np.asarray(hm)
    k = gaussian_kernel(2)
    assert out[0, 0] == pytest.approx(1.0)
    assert out[0, 1] == pytest.approx(k[2, 3])
    assert out[2, 2] == pytest.approx(k[4, 4])
    assert out[3, 0] == 0.0
    draw_gaussian(hm, 6, 5, 1)  # bottom-right corner
    out = np.asarray(hm)
    assert out[5, 6] == pytest.approx(1.0)
    # brute force reference
    ref = np.zeros((6, 7))
    ref[0, 0] = 0.9
    for cx, cy, r in [(0, 0, 2), (6, 5, 1)]:
        kk = gaussian_kernel(r)
        for y in range(6):
            for x in range(7):
                dy, dx = y - cy, x - cx
                if abs(dy) <= r and abs(dx) <= r:
                    ref[y, x] = max(ref[y, x], kk[dy + r, dx + r])
    np.testing.assert_allclose(out, ref, rtol=1e-6)


def test_draw_gaussian_outside_is_noop():
    hm = np.zeros((4, 4))
    draw_gaussian(hm, 10, 10, 2)
    assert hm.sum() == 0


def test_mass_center_and_points_center():
    m = np.zeros((5, 6), bool)
    m[1:3, 2:5] = True  # rows 1-2, cols 2-4
    assert mass_center(m) == (3.0, 1.5)
    assert mass_center(torch.from_numpy(m.astype(np.float32))) == (3.0, 1.5)
    assert points_center([[0, 0], [4, 2], [2, 4]]) == (2.0, 2.0)
    with pytest.raises(ValueError):
        mass_center(np.zeros((2, 2)))
