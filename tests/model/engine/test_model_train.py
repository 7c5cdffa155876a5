"""Training loop: schedule, optimiser groups, exact resume, NaN stop, CLI errors, data sampling,
config overrides, and a 2-process gloo DDP run equal to a single-process run."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from model_fixtures import tiny_config, tiny_synth  # noqa: F401 - fixture

from pointly.cli.main import main as cli_main
from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.checkpoint import load_checkpoint
from pointly.model.engine.config import load_config, synthetic_small
from pointly.model.engine.data import IterationBatchSampler, PanopticTrainSet
from pointly.model.engine.train import build_optimizer, load_optimizer_state, lr_factor, train
from pointly.model.network.inference import resize_shortest_edge
from pointly.pointgen.base.errors import PointlyError

torch.set_num_threads(2)
FAST = (
    "input.min_size_train=[64]",
    "input.max_size_train=64",
    "solver.ims_per_batch=2",
    "solver.warmup_iters=2",
    "solver.checkpoint_period=1000",
)


def test_lr_schedule_hand_values():
    cfg = synthetic_small()
    cfg.solver.max_iter, cfg.solver.warmup_iters, cfg.solver.warmup_factor = 100, 10, 0.001
    assert lr_factor(0, cfg) == pytest.approx(0.001)
    assert lr_factor(5, cfg) == pytest.approx((0.001 * 0.5 + 0.5) * 0.95**0.9)
    assert lr_factor(10, cfg) == pytest.approx(0.9**0.9)
    assert lr_factor(99, cfg) == pytest.approx(0.01**0.9)


def test_norm_parameters_without_weight_decay():
    cfg = synthetic_small()
    cfg.solver.optimizer = "SGD"  # the official optimiser (synthetic_small itself uses AdamW)
    model = build_panoptic_fcn(cfg)
    opt = build_optimizer(model, cfg)
    other, norm = opt.param_groups
    assert other["weight_decay"] == 1e-4 and norm["weight_decay"] == 0.0
    gn = model.semantic_fpn.p2[0].norm
    assert any(p is gn.weight for p in norm["params"]) and any(p is gn.bias for p in norm["params"])
    conv = model.position_head.out_inst
    assert any(p is conv.bias for p in other["params"])  # biases do get weight decay (official)
    assert opt.defaults["momentum"] == 0.9 and not opt.defaults["nesterov"]
    n = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n == sum(p.numel() for p in model.parameters() if p.requires_grad)
    cfg.solver.optimizer = "AdamW"
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.AdamW) and opt.param_groups[1]["weight_decay"] == 0.0
    cfg.solver.optimizer = "Lion"
    with pytest.raises(PointlyError):
        build_optimizer(model, cfg)


@pytest.mark.parametrize("optimizer", ["SGD", "AdamW"])
def test_fused_optimiser_updates_as_the_per_parameter_loop(optimizer):
    """The fused kernel (the CPU default) is the loop's arithmetic: after 20 steps with the same
    random gradients, both groups' weights agree to float rounding, and a checkpoint written by the
    loop loads into the fused optimiser without turning it back into the loop."""
    cfg = synthetic_small()
    cfg.solver.optimizer = optimizer
    cfg.solver.base_lr = 0.01
    torch.manual_seed(0)
    model = build_panoptic_fcn(cfg)
    twin = build_panoptic_fcn(cfg)
    twin.load_state_dict(model.state_dict())
    fused, loop = build_optimizer(model, cfg), build_optimizer(twin, cfg, fused=False)
    assert all(g["fused"] for g in fused.param_groups) and not any(g["fused"] for g in loop.param_groups)
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        for p, q in zip(model.parameters(), twin.parameters()):
            p.grad = torch.randn(p.shape, generator=gen)
            q.grad = p.grad.clone()
        fused.step()
        loop.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    load_optimizer_state(fused, loop.state_dict())
    assert all(g["fused"] for g in fused.param_groups)
    fused.step()  # the loaded state (step counters included) is one the fused kernel takes


def test_resize_shortest_edge():
    assert resize_shortest_edge(480, 640, 800, 1333) == (800, 1067)
    assert resize_shortest_edge(100, 1000, 800, 1333) == (133, 1333)


def test_batch_sampler_partitions_global_batch():
    one = IterationBatchSampler(5, 4, seed=3, start_iter=0, max_iter=6)
    ranks = [IterationBatchSampler(5, 4, seed=3, start_iter=0, max_iter=6, rank=r, world_size=2) for r in (0, 1)]
    for it in range(6):
        assert one.batch(it) == ranks[0].batch(it) + ranks[1].batch(it)
    # every image once per epoch (20 draws over 5 images = 4 epochs)
    idx = [i for it in range(5) for i, _ in one.batch(it)]
    assert sorted(idx) == sorted(list(range(5)) * 4)
    # resuming at iteration 3 gives the same batches
    assert list(IterationBatchSampler(5, 4, 3, 3, 6))[0] == one.batch(3)
    with pytest.raises(PointlyError):
        IterationBatchSampler(5, 3, 0, 0, 1, world_size=2)


def test_dataset_flip_moves_boxes_with_masks(tiny_synth):
    cfg = tiny_config(tiny_synth, "input.flip_prob=1.0")
    ds = PanopticTrainSet(cfg)
    s = ds[(0, 1)]
    t = s.targets
    assert s.image.dtype == torch.uint8 and s.image.shape[0] == 3
    for m, box in zip(t.thing_masks, t.thing_boxes):
        ys, xs = torch.nonzero(m > 0.5, as_tuple=True)
        if xs.numel() == 0:
            continue
        # the stride-4 mask lies inside the (flipped) box, within one stride-4 pixel
        assert xs.min() * 4 >= box[0] - 4 and (xs.max() + 1) * 4 <= box[2] + 4
    cfg2 = tiny_config(tiny_synth, "input.flip_prob=0.0")
    s2 = PanopticTrainSet(cfg2)[(0, 1)]
    torch.testing.assert_close(s.image, s2.image.flip(-1))


def test_config_overrides_and_errors(tmp_path):
    cfg = load_config("synthetic_small", ["solver.max_iter=7", "model.thing.pos_num=5", "input.min_size_train=[96]"])
    assert cfg.solver.max_iter == 7 and cfg.model.thing.pos_num == 5 and cfg.input.min_size_train == [96]
    y = tmp_path / "c.yaml"
    y.write_text("_base_: coco_r50_512_3x\nsolver:\n  base_lr: 0.005\n")
    cfg = load_config(str(y))
    assert cfg.name == "coco_r50_512_3x" and cfg.solver.base_lr == 0.005 and cfg.model.thing.pos_num == 3
    assert cfg.solver.max_iter == 270000 and cfg.input.min_size_test == 512
    for bad in (["solver.nope=1"], ["solver.max_iter=abc"], ["model=3"], ["solver.max_iter"]):
        with pytest.raises(PointlyError):
            load_config("synthetic_small", bad)
    with pytest.raises(PointlyError):
        load_config(str(tmp_path / "missing.yaml"))


def _weights(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)["model"]


@pytest.mark.slow
def test_resume_continues_exactly(tiny_synth, tmp_path):
    cfg = tiny_config(tiny_synth, *FAST, "solver.max_iter=4")
    straight = train(cfg, tmp_path / "a", progress=False)
    cfg = tiny_config(tiny_synth, *FAST, "solver.max_iter=4")
    half = train(cfg, tmp_path / "b", stop_after=2, progress=False)
    assert half.final is None and (tmp_path / "b" / "checkpoint.pth").is_file()
    cfg = tiny_config(tiny_synth, *FAST, "solver.max_iter=4")
    resumed = train(cfg, tmp_path / "b", resume=True, progress=False)
    a, b = _weights(straight.final), _weights(resumed.final)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6)
    rows = list(csv.DictReader(open(tmp_path / "b" / "metrics.csv")))
    assert [int(r["iter"]) for r in rows] == [0, 1, 2, 3]
    ref = list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))
    assert [float(r["loss_total"]) for r in rows] == pytest.approx([float(r["loss_total"]) for r in ref], rel=1e-5)
    # resuming a finished run trains nothing and reports no loss (the CLI then says so)
    cfg = tiny_config(tiny_synth, *FAST, "solver.max_iter=4")
    again = train(cfg, tmp_path / "a", resume=True, progress=False)
    assert again.losses == {} and len(list(csv.DictReader(open(tmp_path / "a" / "metrics.csv")))) == 4
    # outputs of a run: resolved config, curve, loadable final model
    assert (tmp_path / "a" / "config.yaml").is_file() and (tmp_path / "a" / "training_curve.png").is_file()
    model = load_checkpoint(straight.final)
    assert not model.training and model.cfg.thing_ids == cfg.thing_ids


def test_nan_stops_with_clear_message(tiny_synth, tmp_path):
    cfg = tiny_config(
        tiny_synth, *FAST, "solver.max_iter=3", "solver.base_lr=1e30", "solver.warmup_iters=0", "solver.clip_value=1e30"
    )
    with pytest.raises(PointlyError, match="NaN/inf"):
        train(cfg, tmp_path / "nan", progress=False)


def test_cli_user_errors(tmp_path, capsys):
    assert cli_main(["train", "--config", "no_such_preset", "--out", str(tmp_path / "x")]) == 2
    assert "neither a preset nor a file" in capsys.readouterr().err
    assert (
        cli_main(["train", "--config", "synthetic_small", "--set", "solver.bogus=1", "--out", str(tmp_path / "x")]) == 2
    )
    assert "unknown config key" in capsys.readouterr().err
    assert (
        cli_main(["train", "--config", "synthetic_small", "--supervision", "points", "--out", str(tmp_path / "x")]) == 2
    )
    assert "--points" in capsys.readouterr().err
    assert cli_main(["train", "--config", "synthetic_small", "--resume", "--out", str(tmp_path / "none")]) == 2
    assert "nothing to resume" in capsys.readouterr().err


DDP_SETS = [*FAST, "solver.max_iter=3", "solver.ims_per_batch=4", "input.flip_prob=0.5"]


def train_two_and_one(root, sets: list[str], two, one, port: int) -> None:
    """``pointly train`` of synthetic_small on ``root``'s train split with ``sets``: under torchrun
    with 2 CPU processes into ``two``, and in one process into ``one``."""
    args = ["train", "--config", "synthetic_small", "--threads", "1", "--no-progress"]
    for s in [
        f"data.train_json={root}/train/panoptic.json",
        f"data.train_panoptic_dir={root}/train/panoptic",
        f"data.train_image_dir={root}/train/images",
        "data.num_workers=0",
        *sets,
    ]:
        args += ["--set", s]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--nproc_per_node",
            "2",
            "--master_port",
            str(port + os.getpid() % 1000),
            "-m",
            "pointly.cli.main",
            *args,
            "--out",
            str(two),
        ],
        check=True,
        env=env,
        capture_output=True,
        timeout=240,
    )
    subprocess.run(
        [sys.executable, "-m", "pointly.cli.main", *args, "--out", str(one)],
        check=True,
        env=env,
        capture_output=True,
        timeout=240,
    )


@pytest.mark.slow
def test_ddp_two_processes_equal_single_process(tiny_synth, tmp_path):
    train_two_and_one(tiny_synth, DDP_SETS, tmp_path / "ddp", tmp_path / "one", 29500)
    ddp = list(csv.DictReader(open(tmp_path / "ddp" / "metrics.csv")))
    one = list(csv.DictReader(open(tmp_path / "one" / "metrics.csv")))
    assert len(ddp) == len(one) == 3
    for a, b in zip(ddp, one):
        for k in ("loss_total", "loss_pos_th", "loss_pos_st", "loss_seg_th", "loss_seg_st"):
            assert float(a[k]) == pytest.approx(float(b[k]), rel=1e-3, abs=1e-5), k
    wa, wb = _weights(tmp_path / "ddp" / "model_final.pth"), _weights(tmp_path / "one" / "model_final.pth")
    diff = max(float((wa[k].float() - wb[k].float()).abs().max()) for k in wa)
    assert diff < 1e-3
    assert not np.isnan(diff)


@pytest.mark.slow
def test_point_supervision_trains_without_masks(tiny_synth, tmp_path, capsys):
    """Issue 5 path: targets from simulated points; the panoptic PNG folder is absent."""
    import shutil

    pts = tmp_path / "p10.json"
    assert (
        cli_main(
            [
                "simulate",
                "--panoptic-json",
                str(tiny_synth / "train" / "panoptic.json"),
                "--panoptic-dir",
                str(tiny_synth / "train" / "panoptic"),
                "-o",
                str(pts),
                "-n",
                "10",
            ]
        )
        == 0
    )
    images = tmp_path / "images"
    shutil.copytree(tiny_synth / "train" / "images", images)
    cfg = load_config(
        "synthetic_small",
        [
            *FAST,
            "solver.max_iter=2",
            f"data.train_image_dir={images}",
            "data.train_json=" + str(tmp_path / "absent.json"),
            "data.train_panoptic_dir=" + str(tmp_path / "absent"),
        ],
    )
    from pointly.model.engine.point_targets import PointSupervision

    fn = PointSupervision(pts, shape="convex")
    ds = PanopticTrainSet(cfg, supervision=fn)
    t = ds[(0, 0)].targets
    assert 0 < float(t.valid.mean()) < 1  # some pixels are ignored
    assert t.thing_masks.shape[0] > 0 and t.stuff_classes[0] == 0
    assert float((t.thing_masks.sum(0) * (1 - t.valid)).sum()) == 0  # shapes are never ignored
    res = train(cfg, tmp_path / "run", supervision=fn, progress=False)
    assert res.iteration == 2 and all(np.isfinite(v) for v in res.losses.values())


def test_scale_to_world_hand_values():
    """detectron2's rule: 16 images at lr 0.01 for 8 processes become 2 images at 0.00125 on one,
    with 8x the iterations; 4 images for 1 process on 2: 8 images, twice the rate, half the steps."""
    from pointly.model.engine.config import coco_r50_1x, load_config, scale_to_world

    cfg = coco_r50_1x()
    changes = scale_to_world(cfg, 1)
    s = cfg.solver
    assert (s.ims_per_batch, s.base_lr, s.max_iter, s.warmup_iters, s.checkpoint_period) == (
        2,
        0.00125,
        720000,
        8000,
        80000,
    )
    assert "solver.ims_per_batch 16→2" in changes and s.reference_world_size == 1
    assert scale_to_world(cfg, 1) == []  # already scaled: a resumed run is left alone
    cfg = load_config(
        "synthetic_small",
        ["solver.reference_world_size=1", "solver.ims_per_batch=4", "solver.max_iter=10", "solver.warmup_iters=4"],
    )
    scale_to_world(cfg, 2)
    assert (cfg.solver.ims_per_batch, cfg.solver.base_lr, cfg.solver.max_iter, cfg.solver.warmup_iters) == (
        8,
        2e-3,
        5,
        2,
    )
    assert scale_to_world(load_config("synthetic_small"), 4) == []  # reference 0: never scaled
    with pytest.raises(PointlyError, match="does not scale"):
        scale_to_world(load_config("coco_r50_1x", ["solver.ims_per_batch=1"]), 1)


@pytest.mark.slow
def test_two_processes_keep_the_learning_rate_per_image(tiny_synth, tmp_path):
    """With solver.reference_world_size=1, two processes train twice the batch at twice the rate
    for half the iterations: at every point of the schedule the rate per image is one process's."""
    train_two_and_one(
        tiny_synth,
        [
            "solver.reference_world_size=1",
            "solver.ims_per_batch=2",
            "solver.max_iter=4",
            "solver.warmup_iters=2",
            "input.min_size_train=[64]",
            "input.max_size_train=64",
        ],
        tmp_path / "two",
        tmp_path / "one",
        29700,
    )
    two = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "two" / "metrics.csv"))]
    one = [float(r["lr"]) for r in csv.DictReader(open(tmp_path / "one" / "metrics.csv"))]
    assert len(two) == 2 and len(one) == 4
    for k, lr in enumerate(two):  # iteration k of two processes has seen the images of 2k of one
        assert lr / 4 == pytest.approx(one[2 * k] / 2, rel=1e-5)  # metrics.csv keeps 6 digits
    saved = (tmp_path / "two" / "config.yaml").read_text()
    assert "reference_world_size: 2" in saved and "ims_per_batch: 4" in saved
