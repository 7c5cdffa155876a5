"""``pointly evaluate`` in folders mode: the table, --json-out, and one-line errors with exit 2."""

from __future__ import annotations

import json

import pytest
from eval_fixtures import seg, strip, write_set

from pointly.cli.main import main as cli_main


@pytest.fixture()
def folders(tmp_path):
    gt = {1: strip((1, 4), (2, 4)), 2: strip((3, 8))}
    gi = {1: [seg(1, 1, area=4), seg(2, 3, area=4)], 2: [seg(3, 4, area=8)]}
    gj, gd = write_set(tmp_path, "gt", gt, gi)
    # image 1: person IoU 3/4 (px 0-2 of 0-3), sky IoU 4/5; image 2: grass missed, a car instead
    pred = {1: strip((5, 3), (6, 5)), 2: strip((7, 8))}
    pj, pd = write_set(tmp_path, "pred", pred, {1: [seg(5, 1), seg(6, 3)], 2: [seg(7, 2)]})
    return tmp_path, gj, gd, pj, pd


def test_folders_mode_prints_the_table_and_writes_json(folders, capsys):
    root, gj, gd, pj, pd = folders
    out = root / "res" / "pq.json"
    code = cli_main(
        [
            "evaluate",
            "--gt-json",
            str(gj),
            "--gt-dir",
            str(gd),
            "--pred-json",
            str(pj),
            "--pred-dir",
            str(pd),
            "--json-out",
            str(out),
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    # person 0.75, sky 0.8, grass 0 (FN), car 0 (FP): All = 1.55 / 4
    assert "| All | 38.8 | 38.8 | 50.0 | 4 |" in text
    assert "| Things | 37.5 | 37.5 | 50.0 | 2 |" in text
    assert "| person | 1 | 75.0 | 75.0 | 100.0 | 1 | 0 | 0 |" in text
    assert "| car | 2 | 0.0 | 0.0 | 0.0 | 0 | 1 | 0 |" in text
    # a category in neither ground truth nor prediction is counted, not listed; --all lists it
    assert "never-seen" not in text and "1 categories in neither ground truth nor prediction" in text
    assert (
        cli_main(
            [
                "evaluate",
                "--gt-json",
                str(gj),
                "--gt-dir",
                str(gd),
                "--pred-json",
                str(pj),
                "--pred-dir",
                str(pd),
                "--all",
            ]
        )
        == 0
    )
    assert "| never-seen | 9 | — | — | — | 0 | 0 | 0 |" in capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert set(doc) == {"All", "Things", "Stuff", "per_class"}
    assert abs(doc["All"]["pq"] - 1.55 / 4) < 1e-12 and doc["All"]["n"] == 4
    assert doc["per_class"]["9"] == {"pq": 0.0, "sq": 0.0, "rq": 0.0, "tp": 0, "fp": 0, "fn": 0, "iou": 0.0}
    # default folders (JSON path without .json), as panopticapi
    assert cli_main(["evaluate", "--gt-json", str(gj), "--pred-json", str(pj)]) == 0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda a, root: a.__setitem__(6, str(root / "missing.json")), "prediction panoptic JSON not found"),
        (lambda a, root: a.__setitem__(8, str(root / "nodir")), "prediction PNG folder not found"),
        (lambda a, root: a.extend(["--dataset", "synthetic-val"]), "need --checkpoint"),
        (lambda a, root: a.extend(["--checkpoint", "x.pth"]), "--checkpoint predicts by itself"),
        (lambda a, root: a.__setitem__(slice(1, None), []), "nothing to evaluate"),
    ],
)
def test_bad_input_exits_2_with_one_line(folders, capsys, change, message):
    root, gj, gd, pj, pd = folders
    args = ["evaluate", "--gt-json", str(gj), "--gt-dir", str(gd), "--pred-json", str(pj), "--pred-dir", str(pd)]
    change(args, root)
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_checkpoint_errors_exit_2(tmp_path, capsys):
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "none.pth"), "--dataset", "nope.txt"]) == 2
    assert "unknown dataset" in capsys.readouterr().err
    gj = tmp_path / "gt.json"
    gj.write_text(json.dumps({"annotations": [], "categories": [{"id": 1, "name": "a", "isthing": 1}]}))
    (tmp_path / "gt").mkdir()
    (tmp_path / "images").mkdir()
    assert cli_main(["evaluate", "--checkpoint", str(tmp_path / "none.pth"), "--dataset", str(gj)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_resolve_dataset(tmp_path, monkeypatch):
    from pointly.data import synth
    from pointly.model.engine.evaluation import resolve_dataset
    from pointly.pointgen.base.errors import PointlyError

    monkeypatch.setattr(synth, "ensure_dataset", lambda *a, **k: tmp_path / "cache")
    assert resolve_dataset("synthetic-val") == (
        tmp_path / "cache/val/panoptic.json",
        tmp_path / "cache/val/panoptic",
        tmp_path / "cache/val/images",
    )
    js = tmp_path / "coco" / "panoptic_val2017.json"
    (tmp_path / "coco" / "images").mkdir(parents=True)
    js.write_text("{}")
    assert resolve_dataset(js) == (js, tmp_path / "coco" / "panoptic_val2017", tmp_path / "coco" / "images")
    assert resolve_dataset(js, "g", "i") == (js, tmp_path.__class__("g"), tmp_path.__class__("i"))
    (tmp_path / "coco" / "images").rmdir()
    with pytest.raises(PointlyError, match="no image folder"):
        resolve_dataset(js)
