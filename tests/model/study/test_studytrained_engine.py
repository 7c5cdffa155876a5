"""The trained depth's own parts: grid parts and presets, the setup of a run, the target options of
a cell, the settings in study.json, and the pipeline runner as the engine's scorer.

The engine's bookkeeping (resume, shards, failures, settings, torn rows) is tested in
test_engine.py with stand-in scorers; tests/e2e/test_studytrained_e2e.py runs the real pipeline.
"""

from __future__ import annotations

import pytest

from pointly.model.study import trained as st
from pointly.model.study.grid import Cell
from pointly.model.study.trained_cell import PipelineRunner, metrics_row
from pointly.pointgen.base.errors import PointlyError


def test_table13_grid_has_13_cells_and_table14_14():
    assert len(st.part_cells("table13")) == 13
    assert len(st.part_cells("table14")) == 14
    cells = st.preset("synthetic").cells()
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids))
    # table13 (13) + table14 (14, of which P20 concave b0 no dilation s0 is already in table13) + seeds (4 new)
    assert len(cells) == 13 + 13 + 4
    assert "synthetic-P20-concave-r030-b050-d010-030-s0" in ids and "synthetic-full-s0" in ids
    assert "synthetic-P20-concave-r030-b000-d000-s4" in ids
    assert [c.cell_id for c in st.part_cells("smoke")] == ["synthetic-P5-convex-r100-b000-d000-s0", "synthetic-full-s0"]
    with pytest.raises(PointlyError, match="unknown study part"):
        st.part_cells("table99")
    with pytest.raises(PointlyError, match="unknown study preset"):
        st.preset("nope")


def test_setup_grid_rules_and_settings(tmp_path):
    s = st.setup("smoke", device="cpu")
    assert s.depth == "trained" and len(s.cells) == 2 and s.scorer.needs_folder
    assert s.settings["depth"] == "trained" and s.settings["iters"] == 2 and s.settings["target_rules"] == "corrected"
    assert "dilation" not in s.settings and "concave_ratio" not in s.settings  # the cells carry them
    # a grid replaces the parts; the preset still gives the dataset, model and training length
    g = st.setup("smoke", "points=20;shapes=concave;dilations=0,1;full=0", device="cpu")
    assert [c.dilation for c in g.cells] == [None, (0.01, 0.03)] and {c.dataset for c in g.cells} == {"synthetic"}
    with pytest.raises(PointlyError, match="trains on synthetic, the --grid names coco"):
        st.setup("smoke", "datasets=coco;points=5", device="cpu")
    # rule fields of their own are the "custom" rule set; a named set is a cell axis
    custom = {"parts": "hull", "overlap": "nearest", "size_correction": True}
    c = st.setup("smoke", "points=20;shapes=concave;full=0", target_rules=custom, device="cpu")
    assert c.cells[0].cell_id.endswith("-custom") and c.settings["target_rules"] == custom
    b = st.setup("smoke", "points=20;shapes=concave;full=0", target_rules="baseline", device="cpu")
    assert b.cells[0].rules == "baseline"
    with pytest.raises(PointlyError, match="unknown target rules"):
        st.setup("smoke", target_rules="newest", device="cpu")
    with pytest.raises(PointlyError, match="not a synthetic dataset folder"):
        st.setup("smoke", synthetic_root=tmp_path, device="cpu")


def test_pipeline_target_options_follow_the_cell():
    custom = {"parts": "hull", "overlap": "nearest", "size_correction": True}
    p = st.preset("smoke")
    p.target_rules = custom
    runner = PipelineRunner(p, device="cpu")
    o = runner.target_options(Cell("synthetic", "points", 20, "concave", 0.0, (0.01, 0.03), 0, 0.2, "custom"))
    assert o.dilation == (0.01, 0.03) and o.dilation_units == "relative" and o.concave_ratio == 0.2
    assert (o.parts, o.overlap, o.size_correction) == ("hull", "nearest", True)
    o = runner.target_options(Cell("synthetic", "points", 20, "convex", 0.0, None, 0, rules="baseline"))
    assert o.dilation is None and o.shape == "convex"
    assert (o.parts, o.overlap, o.size_correction) == ("hull", "exclusive", False)


def test_metrics_in_percent():
    res = {
        "All": {"pq": 0.25, "sq": 0.5, "rq": 0.5, "n": 10},
        "Things": {"pq": 0.3, "sq": 0.6, "rq": 0.5, "n": 6},
        "Stuff": {"pq": 0.175, "sq": 0.35, "rq": 0.5, "n": 4},
    }
    row = metrics_row(res)
    assert row["pq"] == 25.0 and row["pq_th"] == 30.0 and row["sq_st"] == 35.0
    assert row["n_th"] == 6 and row["n_st"] == 4
