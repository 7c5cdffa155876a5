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
