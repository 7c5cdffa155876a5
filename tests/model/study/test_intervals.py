"""Paired trend verdicts (pointgen.intervals) on hand-made rows: a clear pass, a clear fail, an
undecided overlap, and the interval against a hand computation."""

from __future__ import annotations

import math

import pytest

from pointly.model.study.intervals import difference_interval, paired_difference, sample_sd, sd_interval


def test_hand_computed_interval():
    # differences 1, 2, 3: mean 2, sd 1, se 1/sqrt(3), t(0.975, 2) = 4.302653
    d = difference_interval([1.0, 2.0, 3.0])
    assert d.mean == pytest.approx(2.0) and d.se == pytest.approx(1 / math.sqrt(3))
    assert d.low == pytest.approx(2 - 4.302653 / math.sqrt(3), abs=1e-5)
    assert d.high == pytest.approx(2 + 4.302653 / math.sqrt(3), abs=1e-5)
    assert d.low < 0 and d.verdict == "undecided"  # 3 seeds: t = 4.30 widens it past 0


def test_clear_pass_clear_fail_and_undecided_overlap():
    better = {0: 30.0, 1: 31.0, 2: 29.5}
    worse = {0: 20.0, 1: 21.5, 2: 19.0}
    assert paired_difference(better, worse).verdict == "pass"
    assert paired_difference(worse, better).verdict == "fail"
    # means differ by 1.0 but the seeds disagree on the sign: the interval holds 0
    a = {0: 25.0, 1: 22.0, 2: 27.0}
    b = {0: 23.0, 1: 24.0, 2: 24.0}
    d = paired_difference(a, b)
    assert d.mean == pytest.approx(1.0) and d.low < 0 < d.high and d.verdict == "undecided"


def test_pairs_only_shared_seeds_and_one_seed_is_undecided():
    d = paired_difference({0: 5.0, 1: 6.0, 7: 100.0}, {0: 1.0, 1: 1.0, 3: -50.0})
    assert d.n == 2 and d.mean == pytest.approx(4.5)
    one = paired_difference({0: 50.0}, {0: 10.0})
    assert one.n == 1 and one.verdict == "undecided" and "no interval" in one.text()
    assert paired_difference({}, {}).verdict == "undecided"


def test_pairing_removes_the_shared_seed_effect():
    """Seeds move both cells together (+-10); unpaired the means overlap, paired the gap is clear."""
    a = {0: 40.0, 1: 20.0, 2: 30.0}
    b = {0: 38.0, 1: 18.5, 2: 28.2}
    assert paired_difference(a, b).verdict == "pass"


def test_sample_sd_hand_computed_and_needs_two_values():
    # [1, 2, 4]: mean 7/3, squared deviations 16/9 + 1/9 + 25/9 = 42/9, over n - 1 = 2: 7/3
    mean, sd = sample_sd([1.0, 2.0, 4.0])
    assert mean == pytest.approx(7 / 3)
    assert sd == pytest.approx(math.sqrt(7 / 3))
    with pytest.raises(ValueError, match="at least 2"):
        sample_sd([5.0])


def test_sd_interval_hand_computed():
    # values 1, 2, 3: sd 1; with 2 degrees of freedom χ² is exponential with mean 2, so its
    # quantile at p is -2 ln(1 - p): 7.3778 at 0.975 and 0.050636 at 0.025
    s = sd_interval([1.0, 2.0, 3.0])
    assert s.sd == pytest.approx(1.0)
    assert s.low == pytest.approx(math.sqrt(2 / (-2 * math.log(0.025))))  # 0.5207
    assert s.high == pytest.approx(math.sqrt(2 / (-2 * math.log(0.975))))  # 6.285
    assert s.against(0.08) == "larger" and s.against(10.0) == "smaller" and s.against(1.0) == "not separable"
    assert s.text() == "1.00 [0.52, 6.28] (95%, 3 seeds)"


def test_sd_interval_narrows_with_seeds_and_needs_two():
    wide = sd_interval([0.0, 1.0, 2.0])
    many = sd_interval([0.0, 1.0, 2.0] * 10)
    assert many.high - many.low < (wide.high - wide.low) / 5
    assert many.low < many.sd < many.high
    one = sd_interval([5.0])
    assert one.n == 1 and math.isnan(one.sd) and one.against(0.08) == "not separable"
    assert "no spread" in one.text()
