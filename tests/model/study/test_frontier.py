"""The cost–PQ frontier (pointly.model.study.frontier) on hand-made cells.

Three seeds; Student t(0.975, 2) = 4.3027. Paired differences worked out by hand:

* P5 concave − P5 convex = (5, 6, 7): sd 1, half-width 4.3027/√3 = 2.484 → +6.0 [+3.5, +8.5], pass;
* P10 concave − P5 concave = (3, −1, 1): sd 2, half-width 4.968 → +1.0 [−4.0, +6.0], undecided;
* P10 concave − P10 convex = (13, 10, 13): sd √3, half-width 4.303 → +12.0 [+7.7, +16.3], pass
  (P5 concave − P10 convex = (10, 11, 12) passes too, by less: the larger is named);
* full − P10 concave = (12, 16, 14): sd 2 → +14.0 [+9.0, +19.0], pass.
"""

from __future__ import annotations

import pytest

from pointly.model.study import frontier as fr
from pointly.model.study import report as rp
from pointly.model.study.store import rows_frame

CELLS = {
    # (supervision, points, shape): (seconds per image, PQ by seed)
    ("points", 5, "convex"): (10.0, (50.0, 51.0, 52.0)),
    ("points", 5, "concave"): (10.0, (55.0, 57.0, 59.0)),
    ("points", 10, "concave"): (20.0, (58.0, 56.0, 60.0)),
    ("points", 10, "convex"): (20.0, (45.0, 46.0, 47.0)),
    ("full", None, None): (100.0, (70.0, 72.0, 74.0)),
}


def frame(cells=CELLS, cost=True):
    rows = []
    for (supervision, points, shape), (seconds, pqs) in cells.items():
        for seed, pq in enumerate(pqs):
            row = dict(
                cell_id=f"{supervision}-{points}-{shape}-s{seed}",
                dataset="synthetic",
                supervision=supervision,
                points=points,
                shape=shape,
                boundary_share=None if shape is None else 0.0,
                dilation="off",
                seed=seed,
                pq=pq,
            )
            if cost:
                row["seconds_per_image"] = seconds
            rows.append(row)
    return rp.trend_frame(rows_frame(rows))


def test_dominated_and_frontier_by_paired_intervals():
    rows = {r.option.label: r for r in fr.frontier(frame())}
    assert [r.option.label for r in fr.frontier(frame())] == [
        "P5 concave",
        "P5 convex",
        "P10 concave",
        "P10 convex",
        "full masks",
    ]
    a = rows["P5 convex"]
    assert a.verdict == "dominated" and a.against.label == "P5 concave"
    assert a.difference.text() == "+6.0 [+3.5, +8.5] (95%, 3 seeds)"
    assert rows["P5 concave"].verdict == "frontier" and rows["P5 concave"].against is None
    c = rows["P10 concave"]  # not separable from the cheaper P5 concave, but not beaten either
    assert c.verdict == "frontier" and c.against.label == "P5 concave"
    assert c.difference.verdict == "undecided" and c.difference.text() == "+1.0 [-4.0, +6.0] (95%, 3 seeds)"
    e = rows["P10 convex"]
    assert e.verdict == "dominated" and e.against.label == "P10 concave"
    assert e.difference.text() == "+12.0 [+7.7, +16.3] (95%, 3 seeds)"
    d = rows["full masks"]  # against the cheaper frontier option of highest mean PQ (58 > 57)
    assert d.verdict == "frontier" and d.against.label == "P10 concave"
    assert d.difference.text() == "+14.0 [+9.0, +19.0] (95%, 3 seeds)"
    share = c.share_of_full
    assert share.n == 3 and share.mean == pytest.approx((58 / 70 + 56 / 72 + 60 / 74) / 3)


def test_markdown_readings_and_no_table_without_costs():
    text = fr.frontier_markdown(frame())
    assert "| P5 convex | 10.0 | 51.0 ± 0.6 |" in text
    assert "dominated by P5 concave: +6.0 [+3.5, +8.5] (95%, 3 seeds)" in text
    assert "frontier; not separable from P5 concave: +1.0 [-4.0, +6.0] (95%, 3 seeds)" in text
    assert "frontier; buys +14.0 [+9.0, +19.0] (95%, 3 seeds) over P10 concave" in text
    assert "| full masks | 100.0 | 72.0 ± 1.2 | — |" in text
    assert fr.frontier_markdown(frame(cost=False)) == ""
    no_full = {k: v for k, v in CELLS.items() if k[0] == "points"}  # a target study: no share column
    text = fr.frontier_markdown(frame(no_full))
    assert "share of full" not in text and "| P5 convex | 10.0 | 51.0 ± 0.6 | dominated by P5 concave:" in text


def test_labels_name_boundary_share_and_dilation():
    assert fr.option_label("points", 20, "concave", 0.5, True) == "P20 concave, 50% boundary, dilation"
    assert fr.option_label("points", 20, "concave", 0.0, False) == "P20 concave"
    assert fr.option_label("full", None, None, None, False) == "full masks"


def test_costs_within_one_percent_are_equal():
    # the same P on other seeds costs a little less (fewer points on tiny segments): still no
    # cheaper option to read against, and a 0.5 % cheaper option that wins dominates
    cells = {
        ("points", 20, "concave"): (100.0, (60.0, 61.0, 62.0)),
        ("points", 20, "convex"): (99.5, (55.0, 56.0, 57.5)),
        ("points", 50, "concave"): (250.0, (66.0, 67.0, 69.0)),
    }
    rows = {r.option.label: r for r in fr.frontier(frame(cells))}
    assert rows["P20 concave"].verdict == "frontier" and rows["P20 concave"].against is None
    assert rows["P20 convex"].verdict == "dominated" and rows["P20 convex"].against.label == "P20 concave"
    assert rows["P50 concave"].against.label == "P20 concave"


def test_read_against_a_cheaper_option_it_can_be_paired_with():
    # a one-seed cheaper option with a higher mean gives no interval: the reading takes the best
    # cheaper option that shares two seeds, here P10 concave (P20 − P10 = (2, 2, 3): pass)
    cells = {
        ("points", 10, "concave"): (50.0, (56.0, 57.0, 58.0)),
        ("points", 10, "convex"): (50.0, (70.0,)),
        ("points", 20, "concave"): (100.0, (58.0, 59.0, 61.0)),
    }
    rows = {r.option.label: r for r in fr.frontier(frame(cells))}
    assert rows["P20 concave"].against.label == "P10 concave"
    assert rows["P20 concave"].difference.verdict == "pass"
