"""The training loop: SGD + warm-up poly schedule, value clipping, checkpoints, exact resume,
NaN/inf stop, AMP on CUDA, DistributedDataParallel under ``torchrun``.

Official recipe (docs/panoptic_fcn_spec.md §1.1, §7 item 11): SGD momentum 0.9 (no Nesterov), weight decay 1e-4 on
weights and biases and ``solver.weight_decay_norm`` (0) on normalisation parameters,
``lr = base · warm(it) · (1 − it/max_iter)^0.9`` with a linear warm-up from
``warmup_factor`` over ``warmup_iters``, element-wise gradient clipping to ±``clip_value``.

Outputs in ``out_dir`` (only rank 0 writes): ``config.yaml`` (the resolved config),
``metrics.csv`` (one row per iteration: lr, every loss, seconds), ``checkpoint.pth`` (model,
optimiser, iteration, RNG states, config; rewritten every ``checkpoint_period`` iterations and when
stopping), ``model_final.pth`` (model + config, for predict/evaluate) and ``training_curve.png``.

``--resume`` loads ``checkpoint.pth`` and continues at its iteration; as batches and their
augmentation are a function of (seed, iteration) (:class:`pointly.model.engine.data.IterationBatchSampler`)
and the schedule a function of the iteration, the resumed run equals an uninterrupted one.
"""

from __future__ import annotations

import csv
import logging
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pointly.model.engine.backbone_weights import load_backbone_weights, weights_conventions
from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.checkpoint import write_checkpoint
from pointly.model.engine.config import Config, config_from_dict, config_to_dict, save_config, scale_to_world
from pointly.model.engine.data import IterationBatchSampler, PanopticTrainSet, make_loader
from pointly.model.engine.point_targets import PointSupervision
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import save_figure_atomic, write_json_atomic

log = logging.getLogger(__name__)

LOSS_NAMES = ("loss_pos_th", "loss_pos_st", "loss_seg_th", "loss_seg_st")
NORM_TYPES = (nn.GroupNorm, nn.BatchNorm2d, nn.SyncBatchNorm, nn.LayerNorm)


@dataclass
class TrainResult:
    out_dir: Path
    iteration: int
    losses: dict[str, float]
    seconds: float
    final: Path | None


def lr_factor(it: int, cfg: Config) -> float:
    """WarmupPolyLR: linear warm-up from ``warmup_factor`` then ``(1 − it/max_iter)^power``."""
    s = cfg.solver
    warm = 1.0
    if it < s.warmup_iters:
        alpha = it / s.warmup_iters
        warm = s.warmup_factor * (1 - alpha) + alpha
    return warm * (1 - it / s.max_iter) ** s.poly_power


def fused_kernel_applies(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused SGD / AdamW kernels take these parameters: floating point, all on the
    CPU or all on CUDA."""
    devices = {p.device.type for p in params}
    return (
        bool(params) and len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)
    )


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a checkpoint's optimiser state, keeping this optimiser's kernel choice: torch takes
    ``fused`` / ``foreach`` from the saved groups, so a checkpoint written by the per-parameter loop
    would otherwise turn a fused optimiser back into the loop."""
    kernels = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(state)
    for group, kept in zip(optimizer.param_groups, kernels):
        group.update(kept)


def build_optimizer(model: nn.Module, cfg: Config, fused: bool | None = None) -> torch.optim.Optimizer:
    """SGD (momentum ``solver.momentum``) or AdamW (β1 = ``solver.momentum``) with two groups:
    normalisation parameters (``weight_decay_norm``) and the rest (``weight_decay``).

    ``fused`` (default: wherever torch has the kernel, i.e. all parameters on the CPU or CUDA)
    updates every parameter in one fused kernel instead of torch's per-parameter loop, which on
    the CPU is its default: the same arithmetic up to float rounding (AdamW weights within 6e-8
    of the loop's after 23 steps), and a ``synthetic_small`` bfloat16 step 8–14 % shorter, the
    optimiser taking 8 instead of 45 ms (``benchmarks/results_model.md``)."""
    s = cfg.solver
    norm_params, other = [], []
    seen: set[int] = set()
    for module in model.modules():
        for p in module.parameters(recurse=False):
            if not p.requires_grad or id(p) in seen:
                continue
            seen.add(id(p))
            (norm_params if isinstance(module, NORM_TYPES) else other).append(p)
    groups = [
        {"params": other, "weight_decay": s.weight_decay},
        {"params": norm_params, "weight_decay": s.weight_decay_norm},
    ]
    if fused is None:
        fused = fused_kernel_applies(other + norm_params)
    if s.optimizer.lower() == "sgd":
        return torch.optim.SGD(groups, lr=s.base_lr, momentum=s.momentum, nesterov=False, fused=fused)
    if s.optimizer.lower() == "adamw":
        return torch.optim.AdamW(groups, lr=s.base_lr, betas=(s.momentum, 0.999), fused=fused)
    raise PointlyError(f"unknown solver.optimizer {s.optimizer!r}", fix="use SGD (official) or AdamW")


def _dist_info() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the torchrun environment."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)), int(os.environ.get("LOCAL_RANK", 0))


def _rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def check_backbone_start(cfg: Config) -> None:
    """Refuse a start the recipe cannot mean: random init where it starts from ImageNet weights
    (hours of GPU time would train a net whose frozen stem and FrozenBN are random), or ImageNet
    weights into a GroupNorm trunk (their BatchNorm statistics have no place there)."""
    b = cfg.model.backbone
    if b.weights and not Path(b.weights).is_file():
        raise PointlyError(
            "backbone weights not found",
            file=b.weights,
            record="model.backbone.weights",
            fix="check the path of the ImageNet weight file",
        )
    if b.weights:
        file_norm = weights_conventions(b.weights).norm  # None: ImageNet BatchNorm weights
        if file_norm is None and b.norm == "GN":
            raise PointlyError(
                "ImageNet weights carry BatchNorm statistics; the trunk uses GroupNorm",
                record="model.backbone.norm",
                fix="--set model.backbone.norm=FrozenBN (or BN)",
            )
        if file_norm is not None and file_norm != b.norm:
            raise PointlyError(
                f"the weights were trained with {file_norm} layers; the trunk uses {b.norm}",
                file=b.weights,
                record="model.backbone.norm",
                fix=f"--set model.backbone.norm={file_norm}, or pre-train for this config",
            )
    if b.require_weights and not b.weights:
        raise PointlyError(
            f"{cfg.name} starts from ImageNet weights and none are given",
            record="model.backbone.weights",
            fix="pass --backbone-weights R-50.pkl (detectron2's MSRA file, or a torchvision "
            "resnet .pth), or --from-scratch to train from random init",
        )


def _plot_curve(csv_path: Path, png_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    df = pd.read_csv(csv_path)
    if df.empty:
        return
    fig, ax = plt.subplots(figsize=(7, 4))
    win = max(1, len(df) // 50)
    for name in ("loss_total",) + LOSS_NAMES:
        ax.plot(
            df["iter"], df[name].rolling(win, min_periods=1).mean(), label=name, lw=2 if name == "loss_total" else 1
        )
    ax.set_yscale("log")
    ax.set_xlabel("iteration")
    ax.set_ylabel(f"loss (running mean of {win})")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure_atomic(fig, png_path, dpi=110)


def train(
    cfg: Config,
    out_dir: str | Path,
    *,
    resume: bool = False,
    device: str | None = None,
    stop_after: int | None = None,
    supervision: PointSupervision | None = None,
    dataset: PanopticTrainSet | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``cfg`` into ``out_dir``; see the module docstring. ``stop_after`` stops (with a
    checkpoint) once that iteration is reached, as an interruption would; ``supervision`` trains from
    points instead of masks (:class:`~pointly.model.engine.point_targets.PointSupervision`); ``dataset`` replaces the configured training set."""
    import torch.distributed as dist

    out_dir = Path(out_dir)
    rank, world, local_rank = _dist_info()
    distributed = world > 1
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    if device == "cuda":
        device = f"cuda:{local_rank}"
        torch.cuda.set_device(local_rank)
    dev = torch.device(device)
    ckpt_path = out_dir / "checkpoint.pth"
    ckpt = None
    if resume:
        if not ckpt_path.is_file():
            raise PointlyError("nothing to resume", file=ckpt_path, fix="train without --resume first")
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        cfg = config_from_dict(ckpt["config"], str(ckpt_path))
    elif rank == 0 and ckpt_path.exists():
        raise PointlyError(
            "output folder already holds a run",
            file=out_dir,
            fix="use --resume to continue it, or choose another --out",
        )

    if ckpt is None:
        check_backbone_start(cfg)  # before the dataset is read and anything is written
    reference = cfg.solver.reference_world_size
    scaled = scale_to_world(cfg, world)
    if scaled and rank == 0:
        log.warning(
            "solver scaled from %d to %d processes (same learning rate per image, same images): %s",
            reference,
            world,
            ", ".join(scaled),
        )
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed % 2**32)
    random.seed(cfg.seed)
    if dataset is None:
        dataset = PanopticTrainSet(cfg, "train", supervision=supervision)  # fills cfg.thing_ids/stuff_ids
    model = build_panoptic_fcn(cfg)
    weights_report = None
    if ckpt is None and cfg.model.backbone.weights:  # a resumed run has them in its checkpoint
        b, i = cfg.model.backbone, cfg.input
        weights_report = load_backbone_weights(
            model.backbone.bottom_up,
            b.weights,
            stride_in_1x1=b.stride_in_1x1,
            input_format=i.format,
            pixel_mean=i.pixel_mean,
            pixel_std=i.pixel_std,
        )
        log.info(weights_report.summary())
    model = model.to(dev)
    optimizer = build_optimizer(model, cfg)
    start_iter = 0
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        load_optimizer_state(optimizer, ckpt["optimizer"])
        start_iter = int(ckpt["iteration"])
        _set_rng_state(ckpt["rng"])
    if rank == 0:
        out_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, out_dir / "config.yaml")
        if weights_report is not None:
            write_json_atomic(out_dir / "backbone_weights.json", weights_report.to_json(), indent=1)
    train_model: nn.Module = model
    if distributed:
        train_model = nn.parallel.DistributedDataParallel(
            model, device_ids=[local_rank] if dev.type == "cuda" else None, broadcast_buffers=False
        )
    model.train()

    s = cfg.solver
    stop = s.max_iter if stop_after is None else min(stop_after, s.max_iter)
    sampler = IterationBatchSampler(len(dataset), s.ims_per_batch, cfg.seed, start_iter, stop, rank, world)
    loader = make_loader(dataset, sampler, cfg.data.num_workers)
    use_amp = (s.amp and dev.type == "cuda") or (s.cpu_amp and dev.type == "cpu")
    amp_dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(s.amp_dtype)
    if dev.type == "cpu":
        amp_dtype = torch.bfloat16  # the CPU autocasts to bfloat16 only
    if use_amp and amp_dtype is None:
        raise PointlyError(f"unknown solver.amp_dtype {s.amp_dtype!r}", fix="use bfloat16 or float16")
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    params = [p for p in model.parameters() if p.requires_grad]

    csv_path = out_dir / "metrics.csv"
    fields = ["iter", "lr", "loss_total", *LOSS_NAMES, "seconds"]
    if rank == 0:
        rows = []
        if resume and csv_path.is_file():
            with open(csv_path, newline="") as fh:
                rows = [r for r in csv.DictReader(fh) if int(r["iter"]) < start_iter]
        with open(csv_path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(rows)
    csv_fh = open(csv_path, "a", newline="") if rank == 0 else None
    writer = csv.DictWriter(csv_fh, fieldnames=fields) if csv_fh else None

    def save_checkpoint(it: int) -> None:
        if rank != 0:
            return
        write_checkpoint(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": {"iteration": it, "kind": "WarmupPolyLR"},
                "iteration": it,
                "rng": _rng_state(),
                "config": config_to_dict(cfg),
                "pointly_checkpoint": 1,
            },
            ckpt_path,
        )

    pbar = None
    if progress and rank == 0:
        from tqdm import tqdm

        pbar = tqdm(total=stop, initial=start_iter, desc="train", unit="it", leave=False)
    t_start = time.perf_counter()
    last: dict[str, float] = {}
    it = start_iter
    try:
        for it, (images, targets, _ids) in enumerate(loader, start=start_iter):
            t0 = time.perf_counter()
            lr = s.base_lr * lr_factor(it, cfg)
            for g in optimizer.param_groups:
                g["lr"] = lr
            with torch.autocast(dev.type, dtype=amp_dtype, enabled=use_amp):
                losses = train_model(images, targets)
            total = sum(losses.values())
            vals = torch.stack([total.detach().float()] + [losses[k].detach().float() for k in LOSS_NAMES])
            if distributed:
                dist.all_reduce(vals)
                vals /= world
            vals = vals.cpu().tolist()
            if not all(math.isfinite(v) for v in vals):
                bad = [k for k, v in zip(("loss_total",) + LOSS_NAMES, vals) if not math.isfinite(v)]
                raise PointlyError(
                    f"training diverged: {', '.join(bad)} became NaN/inf at iteration {it}",
                    file=out_dir,
                    fix="lower solver.base_lr or solver.clip_value, check the data; "
                    "the last good checkpoint.pth can be resumed",
                )
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_value_(params, s.clip_value)
            scaler.step(optimizer)
            scaler.update()
            last = dict(zip(("loss_total",) + LOSS_NAMES, vals))
            if writer is not None:
                writer.writerow(
                    {
                        "iter": it,
                        "lr": f"{lr:.6g}",
                        **{k: f"{v:.6g}" for k, v in last.items()},
                        "seconds": f"{time.perf_counter() - t0:.4f}",
                    }
                )
                if it % s.log_period == 0:
                    csv_fh.flush()
                    log.info("iter %d lr %.5f loss %.4f", it, lr, last["loss_total"])
            if pbar is not None:
                pbar.update(1)
                pbar.set_postfix(loss=f"{last['loss_total']:.3f}")
            done = it + 1
            if done % s.checkpoint_period == 0 and done < stop:
                save_checkpoint(done)
        it = stop
        save_checkpoint(stop)
    finally:
        if pbar is not None:
            pbar.close()
        if csv_fh is not None:
            csv_fh.close()
    final = None
    if rank == 0:
        if stop >= s.max_iter:
            final = out_dir / "model_final.pth"
            write_checkpoint(
                {
                    "model": model.state_dict(),
                    "config": config_to_dict(cfg),
                    "iteration": stop,
                    "pointly_checkpoint": 1,
                },
                final,
            )
        try:
            _plot_curve(csv_path, out_dir / "training_curve.png")
        except Exception as exc:  # noqa: BLE001 - a plot must never fail a finished run
            log.warning("could not plot the training curve: %s", exc)
    if distributed:
        dist.barrier()
    return TrainResult(out_dir, it, last, time.perf_counter() - t_start, final)
