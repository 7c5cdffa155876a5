"""Named regression tests, one or more per class of broken promise ("a mistake prints one line,
exits 2 and leaves no partial output"): tracebacks on unwritable outputs, an image size that would
allocate tens of GiB, mistakes that were accepted, files left behind, two lines instead of one.
The fuzz test (test_cli_fuzz.py) runs the whole corpus; these pin each class by name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pointly.cli.main import main
from pointly.data.synth import ensure_dataset
from pointly.pointgen.base.coco import open_dataset
from pointly.pointgen.points.simulate import SimulationOptions, simulate_to_file


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("mistakes")
    val = ensure_dataset(root / "synth", train=0, val=3, size=64, seed=2) / "val"
    points = root / "points.json"
    simulate_to_file(
        points,
        open_dataset(panoptic_json=val / "panoptic.json", panoptic_dir=val / "panoptic"),
        SimulationOptions(points=5),
        progress=False,
    )
    return val, points


def one_error_line(capsys) -> str:
    """The single line a mistake prints (stdout and stderr together)."""
    captured = capsys.readouterr()
    lines = [ln for ln in (captured.out + captured.err).splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("pointly: error: "), lines
    return lines[0]


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# --- tracebacks --------------------------------------------------------------------------------


def test_output_below_a_file_fails_before_any_work(data, tmp_path, capsys):
    val, points = data
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    assert (
        main(
            [
                "simulate",
                "--no-progress",
                "--panoptic-json",
                str(val / "panoptic.json"),
                "--panoptic-dir",
                str(val / "panoptic"),
                "-o",
                str(blocker / "points.json"),
            ]
        )
        == 2
    )
    assert "afile is a file, so nothing can be written below it" in one_error_line(capsys)
    # cost used to print its whole table before failing on -o
    assert main(["cost", str(points), "-o", str(blocker / "cost.csv")]) == 2
    assert "-o" in one_error_line(capsys)
    assert main(["data", "synth", "--no-progress", "--out", str(blocker)]) == 2
    assert "a folder is expected" in one_error_line(capsys)
    assert files_under(tmp_path) == ["afile"]


def test_image_declared_huge_is_refused_before_allocating(data, tmp_path, capsys):
    _, points = data
    doc = json.loads(points.read_text())
    doc["images"][1]["width"] = doc["images"][1]["height"] = 200000
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps(doc))
    assert main(["targets", "--no-progress", str(huge), "--out", str(tmp_path / "t")]) == 2
    line = one_error_line(capsys)
    assert "images[1]" in line and "200000x200000" in line and "pixel budget" in line
    # the budget is configurable: a tiny one refuses the 64 px images of the good file
    assert (
        main(["--max-megapixels", "0.001", "targets", "--no-progress", str(points), "--out", str(tmp_path / "t")]) == 2
    )
    assert "exceeds the 0.001 MP pixel budget" in one_error_line(capsys)
    assert files_under(tmp_path) == ["huge.json"]


# --- wrongly accepted --------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["0", "-5"])
def test_train_refuses_max_iter_below_one(data, tmp_path, capsys, value):
    assert main(["train", "--config", "synthetic_small", "--out", str(tmp_path / "run"), "--max-iter", value]) == 2
    assert "--max-iter" in one_error_line(capsys)
    assert (
        main(
            [
                "train",
                "--config",
                "synthetic_small",
                "--out",
                str(tmp_path / "run"),
                "--set",
                f"solver.max_iter={value}",
            ]
        )
        == 2
    )
    assert "solver.max_iter" in one_error_line(capsys)
    assert not (tmp_path / "run").exists()


def test_instances_json_with_duplicate_annotation_ids_is_refused(tmp_path, capsys):
    ann = {"id": 7, "image_id": 1, "category_id": 1, "segmentation": [[1, 1, 9, 1, 9, 9, 1, 9]], "iscrowd": 0}
    doc = {
        "images": [{"id": 1, "file_name": "a.jpg", "width": 16, "height": 16}],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [ann, dict(ann)],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    assert main(["simulate", "--no-progress", "--instances-json", str(path), "-o", str(tmp_path / "p.json")]) == 2
    line = one_error_line(capsys)
    assert "annotations[1]" in line and "duplicate annotation id 7" in line
    assert files_under(tmp_path) == ["instances.json"]


def test_predict_when_no_image_is_readable_writes_nothing(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "in" / "b.png").write_bytes(b"\x89PNG broken")
    ckpt = tmp_path / "model.pth"  # never opened: the inputs are refused first
    ckpt.write_bytes(b"")
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "in"), "-o", str(tmp_path / "out")]) == 2
    assert "none of the 2 images can be read" in one_error_line(capsys)
    assert not (tmp_path / "out").exists()


# --- files left behind -------------------------------------------------------------------------


def test_targets_with_a_damaged_last_png_leave_no_output(data, tmp_path, capsys):
    val, points = data
    pngs = tmp_path / "png"
    shutil.copytree(val / "panoptic", pngs)
    last = sorted(pngs.iterdir())[-1]
    last.write_bytes(b"\x89PNG\r\n\x1a\ndamaged")
    out = tmp_path / "new" / "out"
    assert (
        main(
            [
                "targets",
                "--no-progress",
                str(points),
                "--gt-json",
                str(val / "panoptic.json"),
                "--gt-dir",
                str(pngs),
                "--out",
                str(out),
                "--preview-images",
                "all",
            ]
        )
        == 2
    )
    assert last.name in one_error_line(capsys)
    assert not (tmp_path / "new").exists()
    # an existing output folder keeps exactly what it held
    out.mkdir(parents=True)
    (out / "summary.md").write_text("old")
    assert (
        main(
            [
                "targets",
                "--no-progress",
                str(points),
                "--gt-json",
                str(val / "panoptic.json"),
                "--gt-dir",
                str(pngs),
                "--out",
                str(out),
            ]
        )
        == 2
    )
    one_error_line(capsys)
    assert files_under(out) == ["summary.md"] and (out / "summary.md").read_text() == "old"


def test_train_with_points_of_other_images_writes_nothing(data, tmp_path, capsys):
    val, points = data
    doc = json.loads(points.read_text())
    for im in doc["images"]:
        im["file_name"] = "elsewhere-" + im["file_name"]
    other = tmp_path / "other.json"
    other.write_text(json.dumps(doc))
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                "synthetic_small",
                "--no-progress",
                "--out",
                str(out),
                "--max-iter",
                "1",
                "--supervision",
                "points",
                "--points",
                str(other),
                "--set",
                f"data.train_image_dir={val / 'images'}",
                "--set",
                "data.num_workers=0",
            ]
        )
        == 2
    )
    assert "training images are not in" in one_error_line(capsys)
    assert not out.exists()


def test_study_refusals_leave_no_folder(tmp_path, capsys):
    out = tmp_path / "study"
    for argv in (["--grid", "points=zero"], ["--report-only"], ["--shard", "3/2"]):
        assert main(["study", "--no-progress", "--depth", "targets", "--out", str(out), *argv]) == 2
        one_error_line(capsys)
        assert not out.exists(), argv


# --- two lines ---------------------------------------------------------------------------------


def test_predict_on_an_empty_folder_is_one_line(tmp_path, capsys, caplog):
    (tmp_path / "empty").mkdir()
    ckpt = tmp_path / "model.pth"
    ckpt.write_bytes(b"")
    assert main(["predict", "--checkpoint", str(ckpt), str(tmp_path / "empty"), "-o", str(tmp_path / "out")]) == 2
    assert "no images" in one_error_line(capsys)
    assert not [r for r in caplog.records if r.levelname == "WARNING"]


# --- rough edges -------------------------------------------------------------------------------


def test_data_stats_reads_coco_layout_and_several_sets(data, tmp_path, capsys):
    val, _ = data
    coco = tmp_path / "annotations"  # COCO's own names
    coco.mkdir()
    shutil.copy(val / "panoptic.json", coco / "panoptic_val2017.json")
    shutil.copytree(val / "panoptic", coco / "panoptic_val2017")
    doc = json.loads((val / "panoptic.json").read_text())
    doc["categories"].append({"id": 99, "name": "only-here", "isthing": 0})
    (coco / "panoptic_other.json").write_text(json.dumps(doc))
    shutil.copytree(val / "panoptic", coco / "panoptic_other")
    assert main(["data", "stats", str(coco)]) == 0
    text = capsys.readouterr().out
    assert "| | other | val2017 |" in text
    assert "| only-here | 0 | – | stuff |" in text  # a class of one set only
    assert main(["data", "stats", str(coco / "panoptic_val2017.json"), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert list(stats["splits"]) == ["val2017"] and stats["splits"]["val2017"]["images"] == 3


def test_targets_default_is_the_chosen_dilation(data, tmp_path, capsys):
    _, points = data
    assert (
        main(["targets", "--no-progress", str(points), "--out", str(tmp_path / "t"), "--preview-images", "none"]) == 0
    )
    config = json.loads((tmp_path / "t" / "config.json").read_text())
    assert config["options"]["dilation"] == 0.02  # the README's chosen default, not "off"


def test_wrong_size_png_is_one_line(data, tmp_path, capsys):
    val, points = data
    pngs = tmp_path / "png"
    shutil.copytree(val / "panoptic", pngs)
    Image.fromarray(np.zeros((7, 9, 3), np.uint8)).save(sorted(pngs.iterdir())[0])
    assert (
        main(
            [
                "simulate",
                "--no-progress",
                "--panoptic-json",
                str(val / "panoptic.json"),
                "--panoptic-dir",
                str(pngs),
                "-o",
                str(tmp_path / "p.json"),
            ]
        )
        == 2
    )
    line = one_error_line(capsys)
    assert "9x7" in line and "64x64" in line, line
    assert not (tmp_path / "p.json").exists()


def test_images_json_beyond_the_pixel_budget_is_refused(data, tmp_path, capsys):
    """--images-json (predict, annotate, the converters) reads image records through the same guard."""
    val, points = data
    doc = json.loads((val / "panoptic.json").read_text())
    doc["images"][0]["width"] = doc["images"][0]["height"] = 200000
    big = tmp_path / "big.json"
    big.write_text(json.dumps(doc))
    assert (
        main(["export", str(points), "--to", "pointsup", "--images-json", str(big), "-o", str(tmp_path / "ps.json")])
        == 2
    )
    assert "pixel budget" in one_error_line(capsys)
    assert files_under(tmp_path) == ["big.json"]


def test_train_with_points_needs_a_points_file(data, tmp_path, capsys):
    """``--supervision points`` without ``--points``: one line naming the fix, nothing written."""
    out = tmp_path / "run"
    assert main(["train", "--config", "synthetic_small", "--supervision", "points", "--out", str(out)]) == 2
    assert "--points" in one_error_line(capsys)
    assert not out.exists()


def test_train_refuses_point_options_without_point_supervision(data, tmp_path, capsys):
    val, points = data
    out = tmp_path / "run"
    assert main(["train", "--config", "synthetic_small", "--shape", "convex", "--out", str(out)]) == 2
    assert "--supervision points" in one_error_line(capsys)
    assert not out.exists()
