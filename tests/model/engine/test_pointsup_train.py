"""Point-supervised training reads images and the points JSON only — never a mask.

Proof by absence: a tiny synthetic set is simulated into points, then the images and the points
JSON are copied into a fresh folder *without* the panoptic PNG folder or the panoptic JSON, and
a few training iterations run from there. Any attempt to read a mask would fail (no file).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch

from pointly.data.synth import ensure_dataset
from pointly.model.engine.config import synthetic_small
from pointly.model.engine.data import PanopticTrainSet
from pointly.model.engine.point_targets import PointsSource, PointSupervision
from pointly.model.engine.train import train
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import save_points
from pointly.pointgen.points.simulate import SimulationOptions, simulate
from pointly.pointgen.targets.options import TargetOptions


def points_train_set(cfg, points_json, image_dir, options):
    """The model's training set supervised by the points of ``points_json`` (images from ``image_dir``)."""
    return PanopticTrainSet(
        cfg, "train", supervision=PointSupervision(points_json, options=options), image_dir=image_dir
    )


@pytest.fixture(scope="module")
def points_only(tmp_path_factory) -> Path:
    """images/ + points.json of a 4-image synthetic train split, and nothing else."""
    root = ensure_dataset(tmp_path_factory.mktemp("pointsup-synth"), train=4, val=1, size=64, seed=5)
    ds = PanopticDataset(root / "train" / "panoptic.json", root / "train" / "panoptic")
    doc = simulate(ds, SimulationOptions(points=10)).document
    out = tmp_path_factory.mktemp("points-only")
    shutil.copytree(root / "train" / "images", out / "images")
    save_points(out / "points.json", doc)
    return out


def _cfg():
    cfg = synthetic_small()
    cfg.input.min_size_train = [64]
    cfg.input.max_size_train = 128
    cfg.solver.max_iter = 2
    cfg.solver.ims_per_batch = 2
    cfg.solver.warmup_iters = 1
    cfg.solver.checkpoint_period = 100
    return cfg


def test_train_from_points_without_any_mask(points_only, tmp_path):
    assert sorted(p.name for p in points_only.iterdir()) == ["images", "points.json"]
    torch.set_num_threads(2)
    cfg = _cfg()
    ds = points_train_set(
        cfg, points_only / "points.json", points_only / "images", TargetOptions(shape="concave", dilation=(0.0, 0.05))
    )
    sample = ds[(0, 123)]
    assert 0 < float(sample.targets.valid.mean()) < 1  # some pixels are ignored
    assert sample.targets.thing_masks.shape[0] > 0
    result = train(cfg, tmp_path / "run", dataset=ds, progress=False)
    assert result.iteration == 2
    assert all(math.isfinite(v) for v in result.losses.values())
    assert (tmp_path / "run" / "model_final.pth").is_file()


def test_dilation_radius_is_drawn_per_sample_and_reproducible(points_only):
    cfg = _cfg()
    ds = points_train_set(
        cfg, points_only / "points.json", points_only / "images", TargetOptions(shape="convex", dilation=(0.0, 0.2))
    )
    a, b, a2 = ds[(0, 1)], ds[(0, 2)], ds[(0, 1)]
    torch.testing.assert_close(a.targets.valid, a2.targets.valid)  # same seed, same targets
    assert not torch.equal(a.targets.valid, b.targets.valid) or a.image.shape != b.image.shape


def test_points_source_never_reads_masks(points_only):
    src = PointsSource(points_only / "points.json")
    with pytest.raises(PointlyError, match="reads no masks"):
        src.label_map(src.images[0].id)
    assert {c.isthing for c in src.categories.values()} == {True, False}


def test_point_supervision_of_the_model_training_set(points_only):
    """``PanopticTrainSet(cfg, supervision=...)``: no dataset, no mask folder."""
    from pointly.model.engine.data import PanopticTrainSet

    cfg = _cfg()
    cfg.data.train_image_dir = str(points_only / "images")
    fn = PointSupervision(points_only / "points.json", shape="concave", dilation="0.01:0.03")
    ds = PanopticTrainSet(cfg, "train", supervision=fn)
    ref = points_train_set(cfg, points_only / "points.json", points_only / "images", TargetOptions(shape="concave"))
    a, b = ds[(1, 7)], ref[(1, 7)]
    assert a.image_id == b.image_id and torch.equal(a.image, b.image)
    torch.testing.assert_close(a.targets.thing_centers, b.targets.thing_centers)
    torch.testing.assert_close(a.targets.thing_boxes, b.targets.thing_boxes)
    assert a.targets.valid.sum() >= b.targets.valid.sum()  # dilation only adds supervised pixels
    torch.testing.assert_close(ds[(1, 7)].targets.valid, a.targets.valid)  # same seed, same draw


def test_pointly_train_cli_from_points_only(points_only, tmp_path, capsys):
    """``pointly train --supervision points`` on the images + points JSON folder (no masks)."""
    from pointly.cli.main import main

    args = [
        "train",
        "--config",
        "synthetic_small",
        "--supervision",
        "points",
        "--points",
        str(points_only / "points.json"),
        "--shape",
        "convex",
        "--dilation",
        "2:4px",
        "--no-progress",
        "--out",
        str(tmp_path / "run"),
        "--max-iter",
        "1",
    ]
    for s in (
        "input.min_size_train=[64]",
        "input.max_size_train=128",
        "solver.ims_per_batch=2",
        "solver.warmup_iters=1",
        f"data.train_image_dir={points_only / 'images'}",
    ):
        args += ["--set", s]
    assert main(args) == 0
    assert "trained 1 iterations" in capsys.readouterr().out
    assert (tmp_path / "run" / "model_final.pth").is_file()
    # a bad option is one line and exit 2
    assert main(args[:-4] + ["--out", str(tmp_path / "run2"), "--shape", "convex", "--dilation", "x:y"]) == 2
    assert "dilation" in capsys.readouterr().err


def test_train_from_image_aware_regions(points_only, tmp_path):
    """--shape watershed in training: the regions grow once per image from the original picture
    (the training set hands it to the target maker) and follow every augmentation; on the flat
    synthetic shapes they supervise far more pixels than the hulls without dilation."""
    torch.set_num_threads(2)
    cfg = _cfg()
    ws = points_train_set(cfg, points_only / "points.json", points_only / "images", TargetOptions(shape="watershed"))
    hull = points_train_set(cfg, points_only / "points.json", points_only / "images", TargetOptions(shape="concave"))
    for key in ((0, 123), (1, 7), (2, 99)):  # flips and scales differ per key
        a, b = ws[key], hull[key]
        assert a.targets.thing_masks.shape[0] > 0 and torch.equal(a.image, b.image)
        assert float(a.targets.valid.mean()) > float(b.targets.valid.mean())
        # the masks live on the same stride-4 grid and never overlap within a kind
        assert a.targets.thing_masks.shape[1:] == b.targets.thing_masks.shape[1:]
        assert float(a.targets.thing_masks.sum(0).max()) <= 1.0
    result = train(cfg, tmp_path / "run", dataset=ws, progress=False)
    assert result.iteration == 2 and all(math.isfinite(v) for v in result.losses.values())
