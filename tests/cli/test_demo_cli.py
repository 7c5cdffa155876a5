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
    """Step 5 trains on the targets step 4 measured: the same shape, concave ratio and dilation
    (a dilation in pixels becomes the study's relative units through the images' size)."""
    import pandas as pd

    from pointly.cli import demo_train
    from pointly.model.study import store
    from pointly.model.study import trained as study_trained
    from pointly.pointgen.targets.options import TargetOptions

    (tmp_path / "train").mkdir()
    images = [{"id": i, "file_name": f"{i}.png", "width": 128, "height": 128} for i in (1, 2)]
    (tmp_path / "train" / "panoptic.json").write_text(json.dumps({"images": images}))
    calls = []
    monkeypatch.setattr(study_trained, "run_from_cli", lambda **kw: calls.append(kw))
    monkeypatch.setattr(store, "load_rows", lambda out: pd.DataFrame())
    for opts, want in (
        (TargetOptions(shape="convex", dilation=0.02), "shapes=convex;ratios=0.3;seeds=3;dilations=0.02;full=1"),
        (
            TargetOptions(shape="concave", concave_ratio=0.2, dilation=(4.0, 12.0), dilation_units="pixels"),
            "shapes=concave;ratios=0.2;seeds=3;dilations=0.03125:0.09375;full=1",
        ),
        (TargetOptions(shape="concave"), "shapes=concave;ratios=0.3;seeds=3;dilations=off;full=1"),
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
        assert kw["grid"] == "points=20;" + want and kw["preset"] == "synthetic-quick" and kw["iters"] == 5
