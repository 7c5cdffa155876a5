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
    # the converged preset: P5..P100 without P30 x convex/concave + full masks, and P20 concave x
    # boundary 0/50/100 % x dilation off/on, all x seeds 0, 1, 2 (the issue's 8-hour grid)
    cells = st.preset("synthetic").cells()
    ids = [c.cell_id for c in cells]
    assert len(ids) == len(set(ids))
    assert len(cells) == 3 * (5 * 2 + 1) + 3 * (3 * 2 - 1) == 48
    assert {c.seed for c in cells} == {0, 1, 2}
    assert {c.points for c in cells if c.supervision == "points"} == {5, 10, 20, 50, 100}
    assert "synthetic-P20-concave-r030-b050-d010-030-s2" in ids and "synthetic-full-s1" in ids
    assert not any(c.boundary_share == 0.25 for c in cells)
    assert [c.cell_id for c in st.preset("synthetic-gpu").cells()] == ids
    # the quick preset keeps the first study's parts: table13 (13) + table14 (13 new) + seeds (4 new)
    quick = st.preset("synthetic-quick").cells()
    assert len(quick) == 13 + 13 + 4
    assert "synthetic-P20-concave-r030-b000-d000-s4" in [c.cell_id for c in quick]
    assert [c.cell_id for c in st.part_cells("smoke")] == ["synthetic-P5-convex-r100-b000-d000-s0", "synthetic-full-s0"]
    with pytest.raises(PointlyError, match="unknown study part"):
        st.part_cells("table99")
    with pytest.raises(PointlyError, match="unknown study preset") as err:
        st.preset("nope")
    assert "synthetic-quick" in err.value.fix
    assert [st.preset(name).name for name in st.PRESETS] == list(st.PRESETS)  # the list names every preset


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


def test_target_rules_from_the_command_line(tmp_path, capsys):
    from pointly.cli.main import main

    assert st.parse_target_rules("baseline") == "baseline"
    assert st.parse_target_rules("parts=hull") == {"parts": "hull", "overlap": "nearest", "size_correction": True}
    assert st.parse_target_rules("parts=hull, overlap=exclusive, size_correction=False") == "baseline"
    assert st.parse_target_rules("parts=delaunay") == "corrected"
    for bad, message in (
        ("newest", "unknown target rules"),
        ("parts=blob", "bad target rule"),
        ("x=1", "bad target rule"),
    ):
        with pytest.raises(PointlyError, match=message):
            st.parse_target_rules(bad)
    out = tmp_path / "s"
    assert (
        main(["study", "--depth", "trained", "--preset", "smoke", "--target-rules", "parts=blob", "--out", str(out)])
        == 2
    )
    err = capsys.readouterr().err
    assert "--target-rules" in err and "parts: delaunay, hull" in err and err.count("\n") == 1 and not out.exists()
    assert main(["study", "--depth", "targets", "--target-rules", "baseline", "--out", str(out)]) == 2
    assert "belong to --depth trained" in capsys.readouterr().err


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


def test_presets_settings_training_seed_and_device():
    conv, gpu, quick = st.preset("synthetic"), st.preset("synthetic-gpu"), st.preset("synthetic-quick")
    assert conv.synthetic["train"] == 1000 and conv.synthetic["val"] >= 500 and conv.iters == st.SYNTHETIC_ITERS
    assert "solver.cpu_amp=true" in conv.config_overrides and conv.jobs == 2 and conv.device is None
    assert gpu.device == "cuda" and gpu.jobs == st.GPU_JOBS and gpu.settings()["preset"] == "synthetic-gpu"
    assert conv.settings()["training_seed"] == "cell" and quick.settings()["training_seed"] == "fixed"
    # the cell's seed is the training seed in the converged presets, the config's in the quick one
    cell = Cell("synthetic", "points", 20, "concave", 0.0, None, 2)
    for p, want in ((st.preset("smoke"), 2), (quick, 0)):
        runner = PipelineRunner(p, device="cpu")
        runner._data = st.DataPaths(*(f"/x/{k}" for k in range(6)))
        assert runner.config(cell).seed == want
    # --device overrides the preset's
    assert st.setup("smoke", device="cpu").scorer.device == "cpu"


def test_a_pretrained_preset_starts_every_cell_from_one_cached_trunk(tmp_path):
    """backbone_pretraining makes the tag pre-trained trunk once (in the data root), every cell's
    config loads it with the file's input conventions, and a folder of a random-init study refuses
    to mix with it."""
    from pointly.model.engine.backbone_weights import weights_conventions
    from pointly.model.study.store import check_settings

    p = st.preset("smoke")
    p.backbone_pretraining = {"images": 4, "held_out": 2, "iters": 1, "batch": 2, "warmup_iters": 1}
    cells = [Cell("synthetic", "points", 20, "concave", 0.0, None, s) for s in (0, 1)]
    weights = []
    for _ in range(2):  # a second runner (a resumed study, another job) finds the file made
        runner = PipelineRunner(p, device="cpu", data_root=tmp_path)
        runner._data = st.DataPaths(*(f"/x/{k}" for k in range(6)))
        weights += [runner.config(c).model.backbone.weights for c in cells]
    assert len(set(weights)) == 1
    assert [str(f) for f in tmp_path.glob("pretrained-tags-*.pth")] == weights[:1]
    assert weights_conventions(weights[0]).format == "pointly"
    (tmp_path / "study").mkdir()
    check_settings(tmp_path / "study", st.preset("smoke").settings())
    with pytest.raises(PointlyError, match="backbone_pretraining"):
        check_settings(tmp_path / "study", p.settings())
