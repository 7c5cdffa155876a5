"""End to end: ``pointly predict`` and ``pointly evaluate --checkpoint`` with a real (small,
untrained) Panoptic FCN checkpoint on a small synthetic dataset.

The evaluation path (predict → PNG/JSON on disk → PQ) is checked against the in-memory path
(``model.predict`` → :func:`pq_from_arrays`), which shares no file handling with it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pointly.cli.main import main as cli_main
from pointly.model.engine.evaluation import pq_from_arrays
from pointly.model.engine.panoptic_io import read_rgb
from pointly.pointgen.base.coco import PanopticDataset

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    from pointly.data.synth import ensure_dataset

    return ensure_dataset(tmp_path_factory.mktemp("synth"), train=0, val=4, size=128, seed=5) / "val"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import config_to_dict, load_config

    torch.manual_seed(0)
    cfg = load_config("synthetic_small")
    # untrained weights: lower the thing floor so that thing segments appear in the output too
    cfg.inference.inst_thresh = 0.0
    model = build_panoptic_fcn(cfg)
    path = tmp_path_factory.mktemp("ckpt") / "model_final.pth"
    torch.save({"model": model.state_dict(), "config": config_to_dict(cfg), "pointly_checkpoint": 1}, path)
    return path


def test_predict_writes_consistent_coco_panoptic_and_skips_bad_images(synth, checkpoint, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    for p in sorted((synth / "images").iterdir())[:3]:
        (tmp_path / "in" / p.name).write_bytes(p.read_bytes())
    (tmp_path / "in" / "broken.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    code = cli_main(
        ["predict", "--checkpoint", str(checkpoint), str(tmp_path / "in"), "--out", str(out), "--no-progress"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "skipped" in captured.err and "broken.png" in captured.err
    assert "3 images, 1 skipped" in captured.out
    doc = json.loads((out / "predictions.json").read_text())
    assert [im["id"] for im in doc["images"]] == [1, 2, 3]
    from pointly.pointgen.base.categories import load_categories

    names = {c["id"]: c["name"] for c in load_categories("synthetic")}
    assert {c["id"]: c["name"] for c in doc["categories"]} == names  # names found for the model's ids
    # pointgen's reader re-checks every PNG against segments_info (ids, areas, boxes)
    ds = PanopticDataset(out / "predictions.json", out / "panoptic")
    n_segments = sum(len(ds.segments(im.id)) for im in ds.images)
    assert n_segments > 0
    assert any(s["isthing"] for a in doc["annotations"] for s in a["segments_info"])
    assert len(list((out / "overlays").glob("*.jpg"))) == 3
    # the same input gives the same bytes
    out2 = tmp_path / "out2"
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(tmp_path / "in"),
                "--out",
                str(out2),
                "--no-overlay",
                "--no-progress",
            ]
        )
        == 0
    )
    for png in (out / "panoptic").iterdir():
        assert png.read_bytes() == (out2 / "panoptic" / png.name).read_bytes()
    assert not (out2 / "overlays").exists()


def test_evaluate_checkpoint_equals_the_in_memory_path(synth, checkpoint, tmp_path, capsys):
    res_json = tmp_path / "pq.json"
    args = [
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        str(synth / "panoptic.json"),
        "--gt-dir",
        str(synth / "panoptic"),
        "--image-dir",
        str(synth / "images"),
        "--json-out",
        str(res_json),
        "--pred-out",
        str(tmp_path / "preds"),
        "--no-progress",
    ]
    assert cli_main(args) == 0
    assert "| All |" in capsys.readouterr().out
    on_disk = json.loads(res_json.read_text())

    from pointly.model.engine.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint)
    ds = PanopticDataset(synth / "panoptic.json", synth / "panoptic")
    gt, pred = [], []
    for im in ds.images:
        (p,) = model.predict([read_rgb(synth / "images" / im.file_name)])
        gt.append((ds.label_map(im.id), ds.segments_info(im.id)))
        pred.append((p.label_map, [{"id": s["id"], "category_id": s["category_id"]} for s in p.segments]))
    in_memory = pq_from_arrays(gt, pred, ds.categories)
    for group in ("All", "Things", "Stuff"):
        assert on_disk[group]["n"] == in_memory[group]["n"]
        for k in ("pq", "sq", "rq"):
            assert abs(on_disk[group][k] - in_memory[group][k]) <= 1e-12
    assert on_disk["All"]["n"] > 0
    assert len(list((tmp_path / "preds" / "overlays").glob("*.jpg"))) == len(ds.images)
    # --limit evaluates a prefix of the images
    assert cli_main(args[:-5] + ["--limit", "1", "--no-progress"]) == 0
    assert "| All |" in capsys.readouterr().out


def test_predict_bad_input_exits_2(checkpoint, tmp_path, capsys):
    assert (
        cli_main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "no such file or folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert (
        cli_main(["predict", "--checkpoint", str(checkpoint), str(tmp_path / "empty"), "--out", str(tmp_path / "o")])
        == 2
    )
    assert "no images (.jpg" in capsys.readouterr().err
    img = tmp_path / "a.png"
    from PIL import Image

    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    assert (
        cli_main(["predict", "--checkpoint", str(tmp_path / "nope.pth"), str(img), "--out", str(tmp_path / "o")]) == 2
    )
    assert "checkpoint not found" in capsys.readouterr().err
    for device, message in (("tpu9", "unknown device"), ("cuda:7", "cuda:7")):
        assert (
            cli_main(
                ["predict", "--checkpoint", str(checkpoint), str(img), "--out", str(tmp_path / "o"), "--device", device]
            )
            == 2
        )
        assert message in capsys.readouterr().err


def test_precision_option(synth, checkpoint, tmp_path, capsys):
    """--precision bf16 runs on the CPU and writes the same kind of output; fp16 without CUDA, and
    --precision in the folders mode, are one-line errors with exit code 2."""
    img = synth / "images" / sorted(p.name for p in (synth / "images").iterdir())[0]
    out = tmp_path / "bf16"
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(img),
                "--out",
                str(out),
                "--precision",
                "bf16",
                "--no-progress",
            ]
        )
        == 0
    )
    doc = json.loads((out / "predictions.json").read_text())
    assert len(doc["annotations"]) == 1 and doc["annotations"][0]["segments_info"]
    capsys.readouterr()
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(checkpoint),
                str(img),
                "--out",
                str(tmp_path / "fp16"),
                "--precision",
                "fp16",
            ]
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert "fp16 needs a CUDA device" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "fp16").exists()
    assert (
        cli_main(
            [
                "evaluate",
                "--gt-json",
                str(synth / "panoptic.json"),
                "--pred-json",
                str(synth / "panoptic.json"),
                "--precision",
                "bf16",
            ]
        )
        == 2
    )
    assert "need --checkpoint" in capsys.readouterr().err


def test_predict_with_images_json_scores_against_coco_ground_truth(shared_data, tmp_path, capsys):
    """--images-json keeps COCO's image ids and file names, so `pointly evaluate` scores the output
    against the sample's ground truth (without it, images are numbered 1..N and cannot be)."""
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import config_to_dict, load_config

    sample = shared_data / "coco_panoptic_val2017"
    gt = json.loads((sample / "panoptic_val2017.json").read_text())
    cats = json.loads((sample / "panoptic_coco_categories.json").read_text())
    torch.manual_seed(0)
    cfg = load_config("synthetic_small")  # small and fast; COCO's 133 classes
    cfg.thing_ids = sorted(c["id"] for c in cats if c["isthing"])
    cfg.stuff_ids = sorted(c["id"] for c in cats if not c["isthing"])
    cfg.model.thing.num_classes, cfg.model.stuff.num_classes = len(cfg.thing_ids), 1 + len(cfg.stuff_ids)
    cfg.categories = [{k: c[k] for k in ("id", "name", "isthing")} for c in cats]
    cfg.inference.inst_thresh = 0.0
    ckpt = tmp_path / "model.pth"
    torch.save(
        {"model": build_panoptic_fcn(cfg).state_dict(), "config": config_to_dict(cfg), "pointly_checkpoint": 1}, ckpt
    )
    out = tmp_path / "pred"
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                str(sample / "images"),
                "-o",
                str(out),
                "--no-overlay",
                "--no-progress",
                "--images-json",
                str(sample / "panoptic_val2017.json"),
            ]
        )
        == 0
    )
    pred = json.loads((out / "predictions.json").read_text())
    want = {im["id"]: im["file_name"] for im in gt["images"]}
    assert {a["image_id"] for a in pred["annotations"]} == set(want) == {142238, 439180, 39769}
    assert {im["id"]: im["file_name"] for im in pred["images"]} == want
    capsys.readouterr()
    assert (
        cli_main(
            [
                "evaluate",
                "--gt-json",
                str(sample / "panoptic_val2017.json"),
                "--gt-dir",
                str(sample / "panoptic"),
                "--pred-json",
                str(out / "predictions.json"),
            ]
        )
        == 0
    )
    assert "| All |" in capsys.readouterr().out
    # an input the JSON does not name is refused before anything is written
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "other.jpg").write_bytes((sample / "images" / "000000142238.jpg").read_bytes())
    assert (
        cli_main(
            [
                "predict",
                "--checkpoint",
                str(ckpt),
                str(tmp_path / "extra"),
                "-o",
                str(tmp_path / "p2"),
                "--images-json",
                str(sample / "panoptic_val2017.json"),
            ]
        )
        == 2
    )
    assert "'other.jpg' is not in panoptic_val2017.json" in capsys.readouterr().err
    assert not (tmp_path / "p2").exists()


def test_evaluate_over_two_ranks_equals_one_rank(synth, checkpoint, tmp_path):
    """torchrun with 2 CPU processes: each predicts every other image, rank 0 scores all of them;
    the PQ and the prediction files equal one process's exactly."""
    import os
    import subprocess
    import sys

    args = [
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        "--dataset",
        str(synth / "panoptic.json"),
        "--gt-dir",
        str(synth / "panoptic"),
        "--image-dir",
        str(synth / "images"),
        "--no-progress",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    two = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(28500 + os.getpid() % 1000),
            "-m",
            "pointly.cli.main",
            *args,
            "--json-out",
            str(tmp_path / "two.json"),
            "--pred-out",
            str(tmp_path / "two"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr[-2000:]
    one = subprocess.run(
        [
            sys.executable,
            "-m",
            "pointly.cli.main",
            *args,
            "--json-out",
            str(tmp_path / "one.json"),
            "--pred-out",
            str(tmp_path / "one"),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert one.returncode == 0, one.stderr[-2000:]
    assert json.loads((tmp_path / "two.json").read_text()) == json.loads((tmp_path / "one.json").read_text())
    assert two.stdout.count("| All |") == 1  # rank 0 alone reports
    for name in sorted(p.name for p in (tmp_path / "one" / "panoptic").iterdir()):
        assert (tmp_path / "two" / "panoptic" / name).read_bytes() == (
            tmp_path / "one" / "panoptic" / name
        ).read_bytes()
    assert json.loads((tmp_path / "two" / "predictions.json").read_text()) == json.loads(
        (tmp_path / "one" / "predictions.json").read_text()
    )
