"""``pointly demo`` runs the pipeline on built-in data (training skipped here; the trained study's
own end-to-end test covers training)."""

from __future__ import annotations

import csv
import json

import pytest

from pointly.cli.main import main


@pytest.mark.slow
def test_demo_without_training_writes_points_cost_and_targets(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--train-iters", "0", "-n", "5"]) == 0
    text = capsys.readouterr().out
    doc = json.loads((out / "val_points_p5.json").read_text())
    # every simulated segment has exactly 5 points (synthetic segments are larger than 5 px)
    assert doc["annotations"] and all(len(a["point_coords"]) == 5 for a in doc["annotations"])
    # the cost table: 5 points at 0.9 s = 4.5 s per segment
    assert "| all |" in text and "4.5" in text
    with open(out / "targets" / "quality.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(doc["annotations"])
    assert all(0.0 <= float(r["precision"]) <= 1.0 for r in rows)
    assert (out / "targets" / "previews").is_dir()


def test_demo_bad_option_is_one_line(capsys):
    assert main(["demo", "--points", "zero"]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_demo_trains_with_the_target_options_of_step_4(monkeypatch, tmp_path):
    """Step 5 trains on the targets step 4 measured: the same shape and dilation."""
    import pandas as pd

    from pointly.cli import demo_train
    from pointly.model.study import trained as study_trained
    from pointly.pointgen.targets.build import TargetOptions

    calls = []
    monkeypatch.setattr(study_trained, "run_from_cli", lambda **kw: calls.append(kw))
    monkeypatch.setattr(study_trained, "load_frame", lambda out: pd.DataFrame())
    for opts, want_grid, want_dil in (
        (
            TargetOptions(shape="convex", dilation=0.02),
            "shapes=convex;seeds=3;dilations=1",
            {"dilation": 0.02, "dilation_units": "relative"},
        ),
        (
            TargetOptions(shape="concave", dilation=(4.0, 12.0), dilation_units="pixels"),
            "shapes=concave;seeds=3;dilations=1",
            {"dilation": [4.0, 12.0], "dilation_units": "pixels"},
        ),
        (TargetOptions(shape="concave"), "shapes=concave;seeds=3;dilations=0", None),
    ):
        calls.clear()
        demo_train.train_and_evaluate(
            tmp_path,
            tmp_path,
            points=20,
            shape=opts.shape,
            seed=3,
            iters=5,
            echo=lambda s: None,
            step=lambda s: None,
            options=opts,
        )
        (kw,) = calls
        assert want_grid in kw["grid"] and kw["dilation"] == want_dil
