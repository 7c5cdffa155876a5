"""ensure_dataset caching, the categories accessor and the `pointly data` CLI."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from pointly.cli.main import main
from pointly.data.synth import MARKER, ensure_dataset
from pointly.data.synth_stats import dataset_statistics, statistics_markdown
from pointly.pointgen.base.categories import load_categories
from pointly.pointgen.base.coco import encode_panoptic_png
from pointly.pointgen.base.errors import PointlyError


def test_ensure_dataset_generates_once_and_honours_env(tmp_path, monkeypatch):
    monkeypatch.setenv("POINTLY_CACHE", str(tmp_path / "cache"))
    p1 = ensure_dataset(train=2, val=1)
    assert p1.parent == tmp_path / "cache" and p1.name.startswith("synthetic-")
    marker = p1 / MARKER
    stamp = marker.stat().st_mtime_ns
    p2 = ensure_dataset(train=2, val=1)
    assert p2 == p1 and marker.stat().st_mtime_ns == stamp, "a complete dataset is not regenerated"
    assert ensure_dataset(train=2, val=1, seed=1) != p1
    # an incomplete folder (no marker) is replaced by a complete one
    marker.unlink()
    (p1 / "train" / "panoptic.json").write_text("{broken")
    p3 = ensure_dataset(train=2, val=1)
    assert p3 == p1 and marker.is_file()
    assert json.loads((p1 / "train" / "panoptic.json").read_text())["images"]
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".")], "no temp folders left"


def test_load_categories_builtin_and_errors(tmp_path):
    coco = load_categories("coco")
    assert len(coco) == 133 and sum(c["isthing"] for c in coco) == 80
    syn = load_categories("synthetic")
    assert [c["name"] for c in syn if c["isthing"]] == ["disc", "rectangle", "triangle", "ring", "star", "cshape"]
    assert len(syn) == 10 and all(len(c["color"]) == 3 for c in syn)
    p = tmp_path / "cats.json"
    p.write_text(json.dumps({"categories": syn}))
    assert load_categories(p) == syn
    for bad, word in (
        ("{not json", "not valid JSON"),
        (json.dumps([{"id": 1, "name": "a", "isthing": 1}, {"id": 1, "name": "b", "isthing": 0}]), "duplicate id 1"),
        (json.dumps([{"id": 1, "name": "a"}]), "isthing"),
        (json.dumps([{"id": 1, "name": "a", "isthing": 1, "color": [1, 2]}]), "color"),
    ):
        p.write_text(bad)
        with pytest.raises(PointlyError, match=word) as exc:
            load_categories(p)
        assert str(p) in str(exc.value)
    with pytest.raises(PointlyError, match="not found"):
        load_categories(tmp_path / "missing.json")


def _hand_dataset(root):
    """One 10×10 image: stuff 7 around, things 1001 and 1002 touching, 2001 apart."""
    ids = np.full((10, 10), 7000)
    ids[1:4, 1:4] = 1001
    ids[1:4, 4:6] = 1002  # shares an edge with 1001
    ids[7:9, 7:9] = 2001  # separated by stuff
    from PIL import Image

    (root / "val" / "panoptic").mkdir(parents=True)
    Image.fromarray(encode_panoptic_png(ids)).save(root / "val" / "panoptic" / "1.png")
    segs = []
    for sid, cid, (x, y, w, h) in (
        (1001, 1, (1, 1, 3, 3)),
        (1002, 1, (4, 1, 2, 3)),
        (2001, 2, (7, 7, 2, 2)),
        (7000, 7, (0, 0, 10, 10)),
    ):
        segs.append(
            {"id": sid, "category_id": cid, "iscrowd": 0, "bbox": [x, y, w, h], "area": int((ids == sid).sum())}
        )
    doc = {
        "images": [{"id": 1, "file_name": "1.png", "width": 10, "height": 10}],
        "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": segs}],
        "categories": load_categories("synthetic"),
    }
    (root / "val" / "panoptic.json").write_text(json.dumps(doc))


def test_statistics_on_a_hand_made_dataset(tmp_path):
    _hand_dataset(tmp_path)
    s = dataset_statistics(tmp_path)["splits"]["val"]
    assert s["images"] == 1 and s["things"] == 3 and s["stuff_segments"] == 1
    assert s["touching_share"] == pytest.approx(2 / 3)
    assert s["same_class_touching_share"] == pytest.approx(2 / 3)
    assert s["thing_area_px"]["min"] == 4 and s["thing_area_px"]["max"] == 9
    assert s["stuff_area_share"]["mean"] == pytest.approx((100 - 9 - 6 - 4) / 100)
    assert s["class_counts"]["disc"] == 2 and s["class_counts"]["rectangle"] == 1
    assert s["thing_solidity"]["disc"] == pytest.approx(1.0)
    assert s["occluded_share"] is None
    assert "| things touching another thing | 66.7% |" in statistics_markdown({"splits": {"val": s}})


def test_cli_synth_and_stats(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", "--out", str(out), "--train", "2", "--val", "1", "--seed", "4", "--no-progress"]) == 0
    assert (out / MARKER).is_file() and len(list((out / "train" / "images").iterdir())) == 2
    capsys.readouterr()
    assert main(["data", "stats", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| images | 2 | 1 |" in text
    assert main(["data", "stats", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["splits"]["train"]["images"] == 2


@pytest.mark.parametrize(
    "args, word",
    [
        (["--train", "-1"], "--train must be"),
        (["--size", "8"], "--size must be"),
        (["--train", "0", "--val", "0"], "nothing to generate"),
    ],
)
def test_cli_synth_bad_options_exit_2_without_output(tmp_path, capsys, args, word):
    out = tmp_path / "never"
    assert main(["data", "synth", "--out", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1
    assert not out.exists()


def test_cli_synth_rerun_smaller_and_out_is_a_file(tmp_path, capsys):
    out = tmp_path / "ds"
    assert main(["data", "synth", "--out", str(out), "--train", "3", "--val", "1", "--no-progress"]) == 0
    assert main(["data", "synth", "--out", str(out), "--train", "1", "--val", "1", "--no-progress"]) == 0
    assert sorted(p.name for p in (out / "train" / "panoptic").iterdir()) == ["000001.png"]
    assert main(["data", "stats", str(out)]) == 0
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["data", "synth", "--out", str(f), "--train", "1", "--val", "0"]) == 2
    assert "is a file, but a folder is expected" in capsys.readouterr().err


def test_cli_stats_bad_folder(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path)]) == 2
    assert "no panoptic set found" in capsys.readouterr().err
    os.makedirs(tmp_path / "val" / "panoptic")
    (tmp_path / "val" / "panoptic.json").write_text("{")
    assert main(["data", "stats", str(tmp_path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
