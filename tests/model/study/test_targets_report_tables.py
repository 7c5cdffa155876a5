"""The target study's tables print mean ± standard error over seeds (sample sd, ddof 1, over √n),
the same uncertainty as the trained study's, checked against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pointly.model.study.targets_report import _cell, pq_table, share_table


def _rows(pqs, *, points=20, shape="concave", share=0.0, dilation="off"):
    return [
        {
            "supervision": "points",
            "shape": shape,
            "concave_ratio": 0.3 if shape == "concave" else 1.0,
            "points": points,
            "boundary_share": share,
            "dilation": dilation,
            "seed": seed,
            "pq": pq,
        }
        for seed, pq in enumerate(pqs)
    ]


def test_tables_carry_the_standard_error_of_the_seeds():
    frame = pd.DataFrame(_rows([1.0, 2.0, 4.0]) + _rows([10.0, 12.0], shape="convex") + _rows([5.0, 9.0], share=0.5))
    cell = pq_table(frame)["concave"][20]
    # [1, 2, 4]: sample variance 7/3, standard error sqrt(7/3) / sqrt(3) = sqrt(7) / 3
    assert cell.mean == pytest.approx(7 / 3)
    assert cell.se == pytest.approx(math.sqrt(7) / 3)
    assert cell.n == 3
    assert _cell(cell) == "2.3 ± 0.9"
    # [10, 12]: sd sqrt(2), se 1
    assert pq_table(frame)["convex"][20].se == pytest.approx(1.0)
    half = share_table(frame)[False][0.5]
    assert (half.mean, half.se, half.n) == pytest.approx((7.0, 2.0, 2))  # [5, 9]: sd 2√2, se 2


def test_one_seed_has_no_uncertainty_printed():
    cell = pq_table(pd.DataFrame(_rows([3.0])))["concave"][20]
    assert cell.n == 1 and math.isnan(cell.se)
    assert _cell(cell) == "3.0"


def test_a_figure_without_share_0_cells_says_so_and_warns_nothing(tmp_path, recwarn):
    """The figure plots boundary share 0; a folder of share-1 cells gets a note, not a matplotlib
    warning about an empty legend."""
    from pointly.model.study.targets_report import plot

    rows = _rows([3.0, 4.0], share=1.0)
    frame = pd.DataFrame([{**r, "dataset": "coco", "rules": "corrected", "seconds_per_segment": 18.0} for r in rows])
    plot(frame, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 1000
    assert not [w for w in recwarn if "legend" in str(w.message)]
