"""The trained study's report carries the standard error of every number over seeds.

Hand-made rows, worked out by hand (SE = sample standard deviation, ddof 1, over √n):

* P20 concave (boundary 0, no dilation), seeds 60, 62, 64: mean 62, sd 2, SE 2/√3 = 1.155 → ``62.0 ± 1.2``;
* full masks, seeds 70, 74, 78: mean 74, sd 4, SE 4/√3 = 2.309 → ``74.0 ± 2.3``;
* P5 convex, one seed 40: ``40.0 ± —`` (no standard error);
* P20 concave with dilation at boundary share 50 %, seeds 50, 51: mean 50.5, sd 0.7071, SE 0.5;
* P20's share paired by seed: P20 = 60, 62, 64 and full = 70, 74, 78 → ratios 0.857143, 0.837838,
  0.820513; mean 0.838498, sd 0.018323, SE 0.010579 → ``83.8 ± 1.1 %``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib.container import ErrorbarContainer
from study_fixtures import trained_rows

from pointly.model.study import trained_report as sr
from pointly.model.study import trends as tr
from pointly.model.study.report import trend_frame

P20 = (60.0, 62.0, 64.0)
FULL = (70.0, 74.0, 78.0)


def raw_rows(cells):
    """Trained-study rows with the cost model's seconds (study_fixtures.trained_rows)."""
    return trained_rows(cells, cost=True)


def frame_of(cells):
    return trend_frame(raw_rows(cells))


def key(points=20, shape="concave", share=0.0, dilation=False, supervision="points"):
    return (supervision, points, shape, share, dilation)


FULL_KEY = key(supervision="full", points=None, shape=None, share=None)

CELLS = {
    key(): P20,
    key(points=5, shape="convex"): (40.0,),
    key(points=20, shape="convex"): (55.0, 57.0),  # mean 56, sd 1.414, SE 1
    key(share=0.5, dilation=True): (50.0, 51.0),
    FULL_KEY: FULL,
}


# --------------------------------------------------------------------------- mean_se
def test_mean_se_by_hand():
    m = tr.mean_se([60.0, 62.0, 64.0])
    assert m.mean == pytest.approx(62.0) and m.se == pytest.approx(2 / math.sqrt(3)) and m.n == 3
    assert m.sd == pytest.approx(2.0)
    mean, se, n = tr.mean_se([40.0, 45.0])  # a plain (mean, se, n) tuple
    assert (mean, se, n) == pytest.approx((42.5, 2.5, 2))
    one = tr.mean_se([5.0])
    assert one.mean == 5.0 and math.isnan(one.se) and one.n == 1 and math.isnan(one.sd)
    none = tr.mean_se([])
    assert math.isnan(none.mean) and math.isnan(none.se) and none.n == 0
    assert tr.mean_se([1.0, float("nan"), 3.0]) == pytest.approx((2.0, 1.0, 2))  # NaN dropped


def test_stats_tables_and_means_agree():
    frame = frame_of(CELLS)
    t13 = tr.table13_stats(frame)
    assert t13["concave"][20] == pytest.approx((62.0, 2 / math.sqrt(3), 3))
    assert t13["convex"][20] == pytest.approx((56.0, 1.0, 2))
    assert t13["convex"][5].n == 1 and math.isnan(t13["convex"][5].se)
    assert tr.table13(frame) == {"concave": {20: pytest.approx(62.0)}, "convex": {5: 40.0, 20: 56.0}}
    t14 = tr.table14_stats(frame)
    assert t14[True][0.5] == pytest.approx((50.5, 0.5, 2))
    assert t14[False][0.0] == t13["concave"][20]  # the same cell as Table 13's P20 concave
    assert tr.full_pq_stats(frame) == pytest.approx((74.0, 4 / math.sqrt(3), 3))
    assert tr.full_pq(frame) == pytest.approx(74.0)
    assert tr.full_pq_stats(frame_of({key(): P20})).n == 0 and tr.full_pq(frame_of({key(): P20})) is None


# --------------------------------------------------------------------------- P20's share
def test_p20_share_interval_paired_by_seed():
    # P20 = 40, 45 and full = 50, 60 (seeds 0, 1); full's seed 2 has no P20: not paired
    frame = frame_of({key(): {0: 40.0, 1: 45.0}, FULL_KEY: {0: 50.0, 1: 60.0, 2: 70.0}})
    share = tr.p20_share_interval(frame)
    assert share.mean == pytest.approx(0.775) and share.se == pytest.approx(0.025) and share.n == 2
    # the ratio of the means (every seed of each cell) stays as it was
    assert tr.p20_share(frame) == pytest.approx(42.5 / 60.0)
    assert sr.share_sentence(frame) == (
        "P20 (concave) reaches **77.5 ± 2.5 %** of the fully supervised PQ (2 paired seeds; paper: 82 %)."
    )


def test_p20_share_with_one_or_no_paired_seed():
    one = frame_of({key(): {0: 40.0, 1: 45.0}, FULL_KEY: {1: 50.0}})
    share = tr.p20_share_interval(one)
    assert share.mean == pytest.approx(0.9) and share.n == 1 and math.isnan(share.se)
    assert "**90.0 %** of the fully supervised PQ (1 paired seed; paper: 82 %)" in sr.share_sentence(one)
    assert "±" not in sr.share_sentence(one)
    apart = frame_of({key(): {0: 40.0}, FULL_KEY: {1: 50.0}})
    assert tr.p20_share_interval(apart) is None
    assert "**80.0 %**" in sr.share_sentence(apart) and "no seed has both cells" in sr.share_sentence(apart)
    assert tr.p20_share_interval(frame_of({key(): P20})) is None and sr.share_sentence(frame_of({key(): P20})) == ""


# --------------------------------------------------------------------------- Markdown
def test_table13_markdown_shows_mean_and_se():
    text = sr.table13_markdown(frame_of(CELLS))
    assert "| concave | — (23.0) | — (29.1) | 62.0 ± 1.2 (32.7) |" in text
    assert "| convex | 40.0 ± — (23.3) | — (29.6) | 56.0 ± 1.0 (32.3) |" in text
    assert "Ours: mean ± standard error over 1–3 seeds per cell (± —: one seed, no standard error)" in text
    assert "the paper's in brackets" in text
    assert "Full masks (M): 74.0 ± 2.3 (3 seeds; paper 41.3)." in text


def test_table_notes_and_full_line_by_seed_count():
    three = sr.table13_markdown(frame_of({key(): P20, FULL_KEY: FULL}))
    assert "Ours: mean ± standard error over 3 seeds; the paper's in brackets." in three
    one = sr.table13_markdown(frame_of({key(): (61.1,), FULL_KEY: (74.9,)}))
    assert "61.1 ± — (32.7)" in one and "Ours: one seed per cell (± —: no standard error)" in one
    assert "Full masks (M): 74.9 (1 seed; paper 41.3)." in one
    assert "Full masks (M): — (paper 41.3)." in sr.table13_markdown(frame_of({key(): P20}))


def test_small_standard_error_keeps_a_digit():
    # 30.00, 30.02, 30.04: sd 0.02, SE 0.0115 → would print as 0.0 with one decimal
    text = sr.table13_markdown(frame_of({key(): (30.0, 30.02, 30.04)}))
    assert "30.0 ± 0.01 (32.7)" in text


def test_table14_markdown_shows_mean_and_se():
    text = sr.table14_markdown(frame_of(CELLS))
    assert "| no dilation | 62.0 ± 1.2 (32.7) | — (33.1) |" in text
    assert "| dilation | — (34.0) | — (34.2) | — (34.3) | — (35.0) | 50.5 ± 0.5 (35.8) |" in text
    assert "Ours: mean ± standard error over 2–3 seeds per cell; the paper's in brackets." in text


def test_section_share_and_spread():
    frame = frame_of(CELLS)
    text = sr.section(raw_rows(CELLS), frame)
    # ratios 60/70, 62/74, 64/78: mean 0.838498, SE 0.010579
    share = tr.p20_share_interval(frame)
    assert share.mean == pytest.approx(np.mean([60 / 70, 62 / 74, 64 / 78]))
    assert share.se == pytest.approx(np.std([60 / 70, 62 / 74, 64 / 78], ddof=1) / math.sqrt(3))
    assert "P20 (concave) reaches **83.8 ± 1.1 %** of the fully supervised PQ (3 paired seeds; paper: 82 %)." in text
    assert (
        "3 seeds of P20 (concave): PQ 62.00 ± 2.00 (standard deviation), standard error 1.15 "
        "(paper: 33.96 ± 0.08, standard deviation); the standard deviation's 95% interval (χ²), "
        "[1.04, 12.57], lies above the paper's 0.08." in text
    )  # 2 × √(2 / 7.3778) and 2 × √(2 / 0.050636): χ² with 2 degrees of freedom is exponential
    assert "62.0 ± 1.2 (32.7)" in text and "Full masks (M): 74.0 ± 2.3" in text


def test_one_seed_section_has_no_spread_and_no_plus_minus_share():
    cells = {key(): (61.1,), FULL_KEY: (74.9,)}
    text = sr.section(raw_rows(cells), frame_of(cells))
    assert "(1 paired seed; paper: 82 %)" in text and "seeds of P20" not in text


# --------------------------------------------------------------------------- figure
def test_cost_series_carries_the_errors():
    series = sr.cost_series(frame_of(CELLS))
    concave = series["concave"]
    assert list(concave.index) == [20] and concave.loc[20, "pq"] == pytest.approx(62.0)
    assert concave.loc[20, "se"] == pytest.approx(2 / math.sqrt(3)) and concave.loc[20, "n"] == 3
    assert concave.loc[20, "seconds_per_segment"] == pytest.approx(18.0)
    convex = series["convex"]
    assert list(convex.index) == [5, 20] and math.isnan(convex.loc[5, "se"]) and convex.loc[20, "se"] == 1.0
    full = series["full"].iloc[0]
    assert full["pq"] == pytest.approx(74.0) and full["se"] == pytest.approx(4 / math.sqrt(3))
    assert full["seconds_per_segment"] == 79.0


def _bars(ax):
    """``(x, low, high)`` of every error bar of an Axes."""
    out = []
    for c in ax.containers:
        if isinstance(c, ErrorbarContainer):
            for col in c.lines[2]:
                for seg in col.get_segments():
                    (x0, y0), (_, y1) = seg
                    out.append((round(float(x0), 6), round(float(min(y0, y1)), 6), round(float(max(y0, y1)), 6)))
    return sorted(out)


def test_figure_has_error_bars_where_there_are_seeds():
    import matplotlib.pyplot as plt

    fig = sr.figure(raw_rows(CELLS))
    try:
        ax1, ax2 = fig.axes
        se3 = 2 / math.sqrt(3)
        se_full = 4 / math.sqrt(3)
        expected_left = [
            (18.0, 55.0, 57.0),  # P20 convex: 56 ± 1
            (18.0, round(62 - se3, 6), round(62 + se3, 6)),  # P20 concave
            (79.0, round(74 - se_full, 6), round(74 + se_full, 6)),  # the full-mask star
        ]
        assert _bars(ax1) == sorted(expected_left)  # P5 convex (one seed): no bar
        expected_right = [
            (0.0, round(62 - se3, 6), round(62 + se3, 6)),  # no dilation, 0 %
            (50.0, 50.0, 51.0),  # dilation, 50 %
        ]
        assert _bars(ax2) == sorted(expected_right)
    finally:
        plt.close(fig)


def test_one_seed_figure_has_no_bars_and_plot_writes_png(tmp_path):
    import matplotlib.pyplot as plt

    cells = {key(): (61.1,), key(points=5): (40.0,), FULL_KEY: (74.9,)}
    fig = sr.figure(raw_rows(cells))
    try:
        assert not any(isinstance(c, ErrorbarContainer) for ax in fig.axes for c in ax.containers)
    finally:
        plt.close(fig)
    path = tmp_path / "pq_vs_seconds.png"
    sr.plot(raw_rows(CELLS), path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_image_aware_shape_gets_its_row_and_its_comparison():
    """A watershed cell shows as a third Table 13 row (no paper number) and is set against the
    better hull of its P, paired by seed: P10 watershed − concave = (5, 6, 7) → +6.0 [+3.5, +8.5]."""
    cells = {
        ("points", 10, "convex", 0.0, False): (50.0, 51.0, 52.0),
        ("points", 10, "concave", 0.0, False): (52.0, 53.0, 54.0),  # the better hull
        ("points", 10, "watershed", 0.0, False): (57.0, 59.0, 61.0),
    }
    frame = trend_frame(trained_rows(cells))
    text = sr.table13_markdown(frame)
    assert "| watershed | — (—) | 59.0 ± 1.2 (—) |" in text
    assert list(sr.cost_series(frame)) == ["convex", "concave", "watershed"]  # the figure draws its line too
    aware = sr.image_aware_markdown(frame)
    assert "| P10 | watershed 59.0 ± 1.2 | concave 53.0 ± 0.6 | +6.0 [+3.5, +8.5] (95%, 3 seeds) | pass |" in aware
    assert (
        sr.image_aware_markdown(trend_frame(trained_rows({k: v for k, v in cells.items() if k[2] != "watershed"})))
        == ""
    )
