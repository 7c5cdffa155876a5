"""The one trend evaluator (pointgen.study_trends) on hand-made cells, in both studies' row formats.

Every trend gets a clear pass, a clear fail and an undecided case, each worked out by hand in the
comments from the per-seed differences. The same cells are written once as trained-study rows (dilation
as the training range) and once as target-study rows (dilation as a radius), both PQ in percent as
the study stores them, read through the report's :func:`~pointly.model.study.report.trend_frame`,
and must give the same verdicts.

Hand computation used throughout (three seeds, Student t(0.975, 2) = 4.3027):

* differences (4, 5, 6) or (9, 10, 11): sd 1, se 1/√3 = 0.5774, half-width 2.484 →
  [2.52, 7.48] or [7.52, 12.48]: **pass**; their negatives: **fail**;
* differences (3, −1, 1): mean 1, sd 2, se 1.1547, half-width 4.968 → [−3.97, 5.97]:
  **undecided** (the seeds disagree on the sign).
"""

from __future__ import annotations

import pandas as pd
import pytest
from study_fixtures import trained_rows

from pointly.model.study import report as rp
from pointly.model.study import trends as tr
from pointly.model.study.store import rows_frame

#: a seed moves every cell alike (the cells of a grid share their sampled points)
BASE = (30.0, 32.0, 34.0)
PASS, FAIL, OVERLAP = (4.0, 5.0, 6.0), (-4.0, -5.0, -6.0), (3.0, -1.0, 1.0)


def plus(values, diffs):
    return tuple(v + d for v, d in zip(values, diffs))


def minus(values, diffs):
    return tuple(v - d for v, d in zip(values, diffs))


def cell(points=20, shape="concave", share=0.0, dilation=False, supervision="points"):
    """The key of one grid cell."""
    return (supervision, points, shape, share, dilation)


def trained_frame(cells):
    """Trained-study rows, one per cell and seed, as the report reads them (its trend frame)."""
    return rp.trend_frame(trained_rows(cells))


def target_rows(cells, dataset="coco", rules="corrected"):
    """Target-study rows as the study writes them: PQ in percent, dilation a relative radius."""
    rows = []
    for (supervision, points, shape, share, dilation), values in cells.items():
        assert supervision == "points", "target rows have no fully supervised reference"
        for seed, pq in enumerate(values):
            rows.append(
                dict(
                    cell_id=f"{dataset}-P{points}-{shape}-b{share}-d{dilation}-s{seed}-{rules}",
                    dataset=dataset,
                    supervision="points",
                    points=points,
                    shape=shape,
                    concave_ratio=0.3 if shape == "concave" else 1.0,
                    boundary_share=share,
                    dilation="0.02" if dilation else "off",
                    seed=seed,
                    rules=rules,
                    pq=pq,
                    iou=0.5,
                    coverage=0.5,
                    seconds_per_segment=0.9 * points,
                )
            )
    return rows_frame(rows)


def target_frame(cells):
    return rp.trend_frame(target_rows(cells))


# --------------------------------------------------------------------------- the cells of each case
def t1_cells(diffs):
    """P5, P10, P20 concave; P20 − P5 per seed = ``diffs`` (P10 in between, not ruled on)."""
    return {cell(5): BASE, cell(10): plus(BASE, (1, 1, 1)), cell(20): plus(BASE, diffs)}


def t2_cells(few, many, dilation=False):
    """P5 convex − concave = ``few``, P30 concave − convex = ``many`` (per seed)."""
    return {
        cell(5, "concave", dilation=dilation): BASE,
        cell(5, "convex", dilation=dilation): plus(BASE, few),
        cell(30, "convex", dilation=dilation): BASE,
        cell(30, "concave", dilation=dilation): plus(BASE, many),
    }


def t3_cells(gain, later_gain):
    """P20 concave, no dilation: PQ(50%) − PQ(0%) = ``gain``, PQ(100%) − PQ(50%) = ``later_gain``."""
    at50 = plus(BASE, gain)
    return {cell(share=0.0): BASE, cell(share=0.5): at50, cell(share=1.0): plus(at50, later_gain)}


def t4_cells(gain0, gain100):
    """P20 concave: dilation gain at share 0 = ``gain0``, at share 100% = ``gain100`` (per seed)."""
    high = (35.0, 36.0, 37.0)
    return {
        cell(share=0.0): BASE,
        cell(share=0.0, dilation=True): plus(BASE, gain0),
        cell(share=1.0): high,
        cell(share=1.0, dilation=True): plus(high, gain100),
    }


CASES = {
    # T1: P20 − P5 = (9, 10, 11) → [7.52, 12.48] pass; (−9, −10, −11) → fail; (3, −1, 1) → undecided
    "T1": {"pass": t1_cells((9, 10, 11)), "fail": t1_cells((-9, -10, -11)), "undecided": t1_cells(OVERLAP)},
    # T2: P5 convex − concave and P30 concave − convex both (4, 5, 6) → pass; P5 (−4, −5, −6) → that
    # comparison fails → fail; P5 (3, −1, 1) holds 0 while P30 passes → undecided
    "T2": {"pass": t2_cells(PASS, PASS), "fail": t2_cells(FAIL, PASS), "undecided": t2_cells(OVERLAP, PASS)},
    # T2 (dilated): the same cells with dilation on
    "T2 (dilated)": {
        "pass": t2_cells(PASS, PASS, True),
        "fail": t2_cells(FAIL, PASS, True),
        "undecided": t2_cells(OVERLAP, PASS, True),
    },
    # T3: gain (4, 5, 6) passes; saturation = gain − later gain:
    #   later gain (1, 1, 1) → saturation (3, 4, 5): sd 1 → [1.52, 6.48] pass → pass;
    #   later gain (8, 10, 12) → saturation (−4, −5, −6) → fail (no saturation) → fail;
    #   later gain (1, 6, 5) → saturation (3, −1, 1) → undecided
    "T3": {
        "pass": t3_cells(PASS, (1, 1, 1)),
        "fail": t3_cells(PASS, (8, 10, 12)),
        "undecided": t3_cells(PASS, (1, 6, 5)),
    },
    # T4: gain at 0% (4, 5, 6) passes; gain at 0% − gain at 100%:
    #   gain at 100% (0, 0, 0) → (4, 5, 6) pass → pass;
    #   gain at 0% (−4, −5, −6) fails → fail;
    #   gain at 100% (1, 6, 5) → (3, −1, 1) → undecided
    "T4": {
        "pass": t4_cells(PASS, (0, 0, 0)),
        "fail": t4_cells(FAIL, (0, 0, 0)),
        "undecided": t4_cells(PASS, (1, 6, 5)),
    },
    # T5: 2·sd(P20 seeds) with its 95 % χ² interval against the smallest effect's paired interval
    # (χ² with 2 degrees of freedom is exponential with mean 2: quantiles 7.3778 and 0.050636):
    #   P20 (30, 30.5, 31), P10 (20, 20.5, 21): sd 0.5, 2·sd ≤ 2·0.5·√(2/0.050636) = 6.28 < the
    #   effect (10, 10, 10) = [10, 10] → pass;
    #   P20 (20, 40, 30), P10 (19, 39, 29): sd 10, 2·sd ≥ 2·10·√(2/7.3778) = 10.41 > the effect
    #   (1, 1, 1) = [1, 1] → fail (the seed moves both cells: pairing sees an effect the spread hides);
    #   two seeds (30, 32) − (20, 20): effect 11 [−1.7, +23.7] holds 0, 2·sd ≥ 1.26 → undecided
    "T5": {
        "pass": {cell(20): (30, 30.5, 31), cell(10): (20, 20.5, 21)},
        "fail": {cell(20): (20, 40, 30), cell(10): (19, 39, 29)},
        "undecided": {cell(20): (30, 32), cell(10): (20, 20)},
    },
}

#: T6: per seed PQ(P20) / PQ(full) − 0.70, full = 50 every seed:
#:   P20 (39, 40, 41) → (0.08, 0.10, 0.12): sd 0.02, se 0.01155, half 0.0497 → [0.050, 0.150] pass;
#:   P20 (29, 30, 31) → (−0.12, −0.10, −0.08) → [−0.150, −0.050] fail;
#:   P20 (38, 33, 35) → (0.06, −0.04, 0.00): mean 0.0067, sd 0.0503, half 0.125 → undecided
T6_CASES = {
    verdict: {cell(20): p20, cell(supervision="full"): (50.0, 50.0, 50.0)}
    for verdict, p20 in (("pass", (39, 40, 41)), ("fail", (29, 30, 31)), ("undecided", (38, 33, 35)))
}


def _trend(frame, tid):
    return tr.trend_t2_dilated(frame) if tid == "T2 (dilated)" else {t.id: t for t in tr.trends(frame)}[tid]


@pytest.mark.parametrize("style", ["trained", "target"])
@pytest.mark.parametrize("tid", list(CASES))
@pytest.mark.parametrize("verdict", ["pass", "fail", "undecided"])
def test_each_trend_pass_fail_undecided(style, tid, verdict):
    cells = CASES[tid][verdict]
    frame = trained_frame(cells) if style == "trained" else target_frame(cells)
    assert _trend(frame, tid).verdict == verdict


def test_t3_fails_when_all_boundary_points_decidedly_hurt():
    # gain 0→50% (3, −1, 1) holds 0; 100% − 0% = (3, −1, 1) + (−20, −21, −22) = (−17, −22, −21):
    # mean −20, sd √7, t(0.975, 2) = 4.303 → [−26.6, −13.4], below 0 → fail, although the
    # saturation (23, 20, 23) passes and the 50% gain alone is undecided
    t3 = _trend(trained_frame(t3_cells(OVERLAP, (-20, -21, -22))), "T3")
    assert t3.verdict == "fail"
    assert "gain 0→100% -20.0 [-26.6, -13.4]" in t3.numbers


@pytest.mark.parametrize("verdict", ["pass", "fail", "undecided"])
def test_t6_on_trained_rows(verdict):
    assert tr.trend_t6(trained_frame(T6_CASES[verdict])).verdict == verdict


def test_t6_is_not_measured_on_target_rows():
    """Target rows never hold a fully supervised reference."""
    t = {t.id: t for t in rp.trends(target_rows(CASES["T1"]["pass"]))}["T6"]
    assert t.verdict == "not measured"


def test_the_interval_is_in_the_numbers():
    t1 = _trend(trained_frame(CASES["T1"]["pass"]), "T1")
    # concave means: P5 32.0, P10 33.0, P20 42.0; P20 − P5 = (9, 10, 11) → +10.0 [+7.5, +12.5]
    assert "P5 32.0 P10 33.0 P20 42.0" in t1.numbers and "P20−P5 +10.0 [+7.5, +12.5] (95%, 3 seeds)" in t1.numbers
    t2 = _trend(target_frame(CASES["T2"]["undecided"]), "T2")
    # (3, −1, 1) → +1.0 [−4.0, +6.0] (PQ in percent in both depths)
    assert "P5 convex−concave +1.0 [-4.0, +6.0] (95%, 3 seeds)" in t2.numbers
    t6 = tr.trend_t6(trained_frame(T6_CASES["pass"]))
    assert "+0.100 [+0.050, +0.150] (95%, 3 seeds)" in t6.numbers


def test_both_styles_give_the_same_trend_frame():
    frame = target_frame(CASES["T5"]["fail"])
    # P20 seeds 20, 40, 30 (%): mean 30.00, sd 10.00; 2·sd from 2·10·√(2/7.3778) to 2·10·√(2/0.050636)
    assert sorted(frame["pq"].round(9)) == [19.0, 20.0, 29.0, 30.0, 39.0, 40.0]
    numbers = tr.trend_t5(frame).numbers
    assert "3 seeds: PQ 30.00 ± 10.00 sd" in numbers and "2·sd 20.00 [10.41, 125.69] (95% χ²)" in numbers
    assert "P20−P10 +1.0 [+1.0, +1.0] (95%, 3 seeds)" in numbers
    cols = ["supervision", "points", "shape", "boundary_share", "dilation", "seed", "pq"]
    key = ["points", "shape", "boundary_share", "dilation", "seed"]
    for cells in (CASES["T4"]["pass"], CASES["T2 (dilated)"]["fail"]):
        a = trained_frame(cells)[cols].sort_values(key).reset_index(drop=True)
        b = target_frame(cells)[cols].sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b)


def test_missing_cells_are_not_measured_in_both_styles():
    cells = {cell(20): BASE}
    for frame in (trained_frame(cells), target_frame(cells)):
        verdicts = {t.id: t.verdict for t in tr.trends(frame)}
        assert verdicts == dict.fromkeys(("T1", "T2", "T3", "T4", "T5", "T6"), "not measured")
        assert tr.trend_t2_dilated(frame).verdict == "not measured"


def test_target_report_per_dataset_and_rule_set(tmp_path):
    """Each dataset, and each set of target rules, is evaluated on its own."""
    rows = pd.concat(
        [
            target_rows(CASES["T1"]["pass"], dataset="coco"),
            target_rows(CASES["T1"]["fail"], dataset="synthetic"),
            target_rows(CASES["T1"]["undecided"], dataset="synthetic", rules="baseline"),
        ]
    )
    by_dataset = {name: {t.id: t.verdict for t in rp.trends(g, "corrected")} for name, g in rows.groupby("dataset")}
    assert by_dataset["coco"]["T1"] == "pass" and by_dataset["synthetic"]["T1"] == "fail"
    synthetic = rows[rows["dataset"] == "synthetic"]
    assert rp.rule_sets(synthetic) == ["corrected", "baseline"]
    assert {t.id: t.verdict for t in rp.trends(synthetic, "baseline")}["T1"] == "undecided"
    with pytest.raises(ValueError, match="several target rule sets"):
        rp.trend_frame(synthetic)
    md = rp.write_report(synthetic, tmp_path, "targets")["report"].read_text()
    assert "## synthetic (target rules: corrected)" in md and "## synthetic (target rules: baseline)" in md
    # the evaluator itself refuses two datasets in one frame, and two rows for one seed of a cell
    both = pd.concat([rp.trend_frame(g, "corrected") for _, g in rows.groupby("dataset")])
    with pytest.raises(ValueError, match="one dataset"):
        tr.trends(both)
    assert {k: v[0].verdict for k, v in tr.trends_by_dataset(both).items()} == {"coco": "pass", "synthetic": "fail"}
    with pytest.raises(ValueError, match="two rows for one seed"):
        tr.trends(both.assign(dataset="x"))


def test_target_report_inserts_dilated_t2_where_measured():
    cells = {**CASES["T2"]["pass"], **CASES["T2 (dilated)"]["undecided"]}
    ids = [(t.id, t.verdict) for t in rp.trends(target_rows(cells))]
    assert ids[:3] == [("T1", "not measured"), ("T2", "pass"), ("T2 (dilated)", "undecided")]
    assert [t.id for t in rp.trends(target_rows(CASES["T2"]["pass"]))] == ["T1", "T2", "T3", "T4", "T5", "T6"]
