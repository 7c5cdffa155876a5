"""GPU checks and timings of Panoptic FCN (issue 4), as one prepared run for a device machine.

Everything the CPU cannot show, in one command that fits a short device lease:

* **DCNv2 on the device**: our ``grid_sample`` path against torchvision's CUDA kernel (values and
  the input / offset / mask / weight gradients, float32), so that ``deform_impl`` can be trusted
  on CUDA as well;
* **inference FPS** of Panoptic FCN R50-FPN at short side 400 / 512 / 800 (long side ≤ 667 / 854 /
  1333), batch 1, float32 and float16 autocast, the models built as in ``bench_inference.py``
  (random weights; every thing mask merged, the worst case): the network alone (``forward_heads`` on a
  preprocessed batch) and the full ``predict`` (resize, network, candidates, fusion, masks,
  merge), next to torchvision's Mask R-CNN R50-FPN on the same image;
* **a CUDA training smoke run**: R50-FPN training steps of the COCO preset at 512² and 800² (800:
  its largest training scale; batch 2, the preset's images per GPU; the loop's first-iteration
  learning rate and value clipping) in float32 and with the configured autocast (bfloat16 by
  default), every loss finite, time per step; then ``pointly
  train --config synthetic_small`` for a few iterations on the device, ``--resume`` for a few
  more, and ``pointly evaluate`` of the result (the full CLI loop on CUDA);
* **the GPU study preset's jobs**: ``pointly study --preset synthetic-gpu`` on a small synthetic
  set, the same cells trained one job at a time and ``--study-jobs`` jobs at once on the device
  (``--study-iters`` iterations a cell), the seconds per cell of each and their ratio: how many
  cells at once the preset's ``GPU_JOBS`` should be;
* **the full-mask plateau** (the trained study's converged reference, ``--plateau-iters``): the
  ``synthetic`` preset's full-mask cell (``synthetic_small``, 1000 / 500 synthetic images of 128 px,
  seed 0, the schedule scaled to each length) trained for N, 2N, 4N … iterations at once on the
  device and evaluated on all 500 validation images; PQ per length and the gain of each doubling
  against the study's plateau criterion (less than 1.0 PQ). On the 2-core CPU each doubling past
  2000 iterations still adds about 3.5 PQ and 4000 iterations take 40 minutes (docs/study.md), so
  only a device can show where it flattens. ``--plateau-only`` runs just this part.

Random weights throughout (nothing is downloaded); the image is COCO val2017 142238 when
``../shared/data`` exists, else a 640 × 480 noise image. Timings synchronise the device around
every call and report the median. Results go to ``--out`` as ``gpu_results.json`` and
``gpu_results.md`` (and are printed). ``--device cpu`` runs the same code small and slow, which
is how the script itself is tested without a GPU (``tests/benchmarks/test_bench_gpu.py``).

Usage::

    python benchmarks/bench_gpu.py --out "$OUT" [--sizes 400 512 800] [--iters 20] [--train-iters 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_inference import DEFAULT_IMAGE, build_maskrcnn, build_ours, load_image  # noqa: E402

MAX_SIZE = {400: 667, 512: 854, 800: 1333}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(fn, iters: int, device: torch.device, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _autocast(device: torch.device, enabled: bool):
    """``--precision`` of predict / evaluate: fp16 on CUDA, bf16 on the CPU (the dry run), or fp32."""
    from pointly.model.engine.panoptic_io import inference_precision

    precision = ("fp16" if device.type == "cuda" else "bf16") if enabled else "fp32"
    return inference_precision(str(device), precision)


def environment(device: torch.device) -> dict:
    import torchvision

    info = {
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "python": platform.python_version(),
        "device": str(device),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        info.update(
            gpu=props.name,
            gpu_memory_gib=round(props.total_memory / 2**30, 1),
            cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(),
        )
    return info


def check_deform(device: torch.device) -> dict:
    """Our sampled DCNv2 against torchvision's kernel on ``device`` (float32, 64 channels, 3×3)."""
    from torchvision.ops import deform_conv2d as tv_deform_conv2d

    from pointly.model.network.deform_conv import deform_conv2d_sampled

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 64, 24, 40, generator=g)
    offset = torch.randn(2, 18, 24, 40, generator=g) * 2
    mask = torch.rand(2, 9, 24, 40, generator=g)
    weight = torch.randn(32, 64, 3, 3, generator=g) * 0.05
    results = {}
    outs, grads = [], []
    for impl in ("sampled", "torchvision"):
        ts = [t.detach().clone().to(device).requires_grad_() for t in (x, offset, mask, weight)]
        if impl == "sampled":
            y = deform_conv2d_sampled(ts[0], ts[1], ts[3], None, padding=1, mask=ts[2])
        else:
            y = tv_deform_conv2d(ts[0], ts[1], ts[3], None, padding=(1, 1), mask=ts[2])
        (y * torch.linspace(-1, 1, y.numel(), device=device).view_as(y)).sum().backward()
        outs.append(y.detach().cpu())
        grads.append([t.grad.detach().cpu() for t in ts])
    rel = lambda a, b: float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))  # noqa: E731
    results["output_rel_diff"] = rel(outs[0], outs[1])
    for name, a, b in zip(("input", "offset", "mask", "weight"), grads[0], grads[1]):
        results[f"grad_{name}_rel_diff"] = rel(a, b)
    results["ok"] = all(v < 1e-3 for k, v in results.items() if k.endswith("rel_diff"))
    return results


def _max_size(size: int) -> int:
    return MAX_SIZE.get(size, int(size * 5 / 3))


def inference_fps(
    device: torch.device, sizes: list[int], iters: int, rgb: np.ndarray, maskrcnn: bool = True
) -> list[dict]:
    """Frames per second (1 / median seconds) per size: ours network / full predict, float32 and
    autocast; Mask R-CNN full, float32 and autocast."""
    from PIL import Image

    from pointly.model.network.inference import resize_shortest_edge

    rows = []
    for size in sizes:
        model = build_ours(size, _max_size(size)).to(device)
        h, w = resize_shortest_edge(rgb.shape[0], rgb.shape[1], size, model.cfg.input.max_size_test)
        resized = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        batch = model.preprocess([torch.from_numpy(resized.copy()).permute(2, 0, 1)])
        row: dict = {"size": size, "max_size": model.cfg.input.max_size_test, "input": list(batch.shape[-2:])}
        for amp in (False, True):
            tag = "amp" if amp else "fp32"

            def network():
                with torch.no_grad(), _autocast(device, amp):
                    model.forward_heads(batch)

            def predict():
                with _autocast(device, amp):
                    model.predict([rgb])

            row[f"ours_network_{tag}_fps"] = 1.0 / _median_time(network, iters, device)
            row[f"ours_predict_{tag}_fps"] = 1.0 / _median_time(predict, iters, device)
        model = None  # free it before the next size (the closures above are done with it)
        if maskrcnn:
            mr = build_maskrcnn(size, _max_size(size)).to(device)
            x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255).to(device)
            for amp in (False, True):
                tag = "amp" if amp else "fp32"

                def run_mr():
                    with torch.no_grad(), _autocast(device, amp):
                        mr([x])

                row[f"maskrcnn_{tag}_fps"] = 1.0 / _median_time(run_mr, iters, device)
            mr = None
        if device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
            torch.cuda.empty_cache()
        rows.append(row)
        print(
            f"  inference {size}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items() if k.endswith("fps")), flush=True
        )
    return rows


def training_steps(device: torch.device, iters: int, size: int = 512) -> list[dict]:
    """R50-FPN training steps (batch 2, ``size``²) in float32 and with the preset's autocast."""
    from bench_train_step import _as_in_the_training_loop, _scene

    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import coco_r50_1x
    from pointly.model.engine.train import build_optimizer
    from pointly.model.network.gt import full_targets

    rng = np.random.default_rng(0)
    images, targets = [], []
    thing_index = {k + 1: k for k in range(80)}
    stuff_index = {92: 1, 93: 2}
    for _ in range(2):
        lm, segs, _ = _scene(size, rng)
        targets.append(full_targets(lm, segs, thing_index, stuff_index))
        images.append(torch.from_numpy(rng.integers(0, 255, (3, size, size), dtype=np.uint8)))
    out = []
    for amp in (False, True):
        cfg = coco_r50_1x()
        torch.manual_seed(0)
        model = build_panoptic_fcn(cfg).train().to(device)
        opt = build_optimizer(model, cfg)
        clip = _as_in_the_training_loop(model, opt, cfg)  # warm-up learning rate, value clipping
        dtype = {"bfloat16": torch.bfloat16, "float16": torch.float16}[cfg.solver.amp_dtype]
        use_amp = amp and (device.type == "cuda" or dtype == torch.bfloat16)
        scaler = torch.amp.GradScaler(device.type, enabled=use_amp and dtype == torch.float16)
        losses: list[float] = []

        def step():
            with torch.autocast(device.type, dtype=dtype, enabled=use_amp):
                loss_dict = model(images, targets)
                loss = sum(loss_dict.values())
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
            clip()
            scaler.step(opt)
            scaler.update()
            losses.append(float(loss.detach()))

        seconds = _median_time(step, iters, device, warmup=2)
        row = {
            "precision": cfg.solver.amp_dtype if use_amp else "float32",
            "size": size,
            "batch": 2,
            "step_s": seconds,
            "first_loss": losses[0],
            "last_loss": losses[-1],
            "all_finite": bool(np.isfinite(losses).all()),
        }
        if device.type == "cuda":
            row["peak_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
            torch.cuda.reset_peak_memory_stats(device)
        out.append(row)
        print(
            f"  training {row['precision']}: {seconds:.3f} s/step, loss {losses[0]:.3f} → {losses[-1]:.3f}, "
            f"finite {row['all_finite']}",
            flush=True,
        )
        model = opt = None  # free them before the next precision
    return out


def cli_smoke(device: torch.device, out_dir: Path, iters: int) -> dict:
    """``pointly train`` (synthetic_small) on the device, ``--resume`` for a few more iterations,
    ``pointly evaluate`` of the final model; wall times and the PQ."""
    run = out_dir / "cli-run"
    env = dict(os.environ)
    result: dict = {}

    def call(args: list[str], key: str) -> subprocess.CompletedProcess:
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "pointly.cli.main", *args], capture_output=True, text=True, env=env
        )
        result[f"{key}_s"] = round(time.perf_counter() - t0, 1)
        result[f"{key}_rc"] = proc.returncode
        if proc.returncode:
            result[f"{key}_stderr"] = proc.stderr[-2000:]
        return proc

    common = ["train", "--config", "synthetic_small", "--out", str(run), "--device", device.type, "--no-progress"]
    call([*common, "--max-iter", str(iters)], "train")
    call([*common, "--max-iter", str(iters + max(iters // 2, 1)), "--resume"], "resume")
    pq_json = out_dir / "cli-eval.json"
    call(
        [
            "evaluate",
            "--checkpoint",
            str(run / "model_final.pth"),
            "--dataset",
            "synthetic-val",
            "--device",
            device.type,
            "--json-out",
            str(pq_json),
            "--no-progress",
        ],
        "evaluate",
    )
    if pq_json.is_file():
        doc = json.loads(pq_json.read_text())
        result["pq_all"] = doc.get("All", {}).get("pq")
    return result


def study_jobs(device: torch.device, out_dir: Path, iters: int, jobs: int) -> dict:
    """Seconds per cell of the ``synthetic-gpu`` study preset with one job and with ``jobs`` jobs on
    ``device`` (2 × ``jobs`` P20 cells, ``iters`` iterations each, a small synthetic set)."""
    from pointly.data.synth import ensure_dataset

    root = ensure_dataset(out_dir / "study-data", train=64, val=16, size=128, seed=3)
    seeds = ",".join(str(s) for s in range(2 * jobs))
    result: dict = {"jobs": jobs, "iters": iters, "cells": 2 * jobs}
    for n in (1, jobs):
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable, "-m", "pointly.cli.main", "study", "--depth", "trained", "--preset", "synthetic-gpu",
                "--device", device.type, "--iters", str(iters), "--synthetic-root", str(root),
                "--grid", f"points=20;shapes=concave;seeds={seeds};full=0", "--jobs", str(n),
                "--out", str(out_dir / f"study-jobs{n}"), "--no-progress",
            ],
            capture_output=True,
            text=True,
        )  # fmt: skip
        key = "jobs1" if n == 1 else "jobsN"
        result[f"{key}_rc"] = proc.returncode
        result[f"{key}_s_per_cell"] = round((time.perf_counter() - t0) / (2 * jobs), 2)
        if proc.returncode:
            result[f"{key}_stderr"] = proc.stderr[-2000:]
    result["speedup"] = round(result["jobs1_s_per_cell"] / max(result["jobsN_s_per_cell"], 1e-9), 2)
    return result


#: the study's plateau criterion: PQ at N and 2N iterations differ by less than this
PLATEAU_GAIN = 1.0


def plateau(
    device: torch.device, out_dir: Path, iters: list[int], *, train: int = 1000, val: int = 500, seed: int = 0
) -> dict:
    """The full-mask reference trained for each length in ``iters`` at once on ``device`` (one
    ``pointly train`` process each, bfloat16 autocast on CUDA), each evaluated on the validation
    split; PQ per length and the gain of each step to the next length."""
    from pointly.data.synth import ensure_dataset

    data = ensure_dataset(out_dir / "plateau-data", train=train, val=val, size=128, seed=0)
    base = ["--config", "synthetic_small", "--device", device.type, "--no-progress"]
    base += ["--coco-root", str(data), "--coco-splits", "train,val", "--set", f"seed={seed}"]
    result: dict = {"train_images": train, "val_images": val, "seed": seed, "runs": []}
    t0 = time.perf_counter()
    procs = {
        n: subprocess.Popen(
            [sys.executable, "-m", "pointly.cli.main", "train", *base, "--max-iter", str(n), "--out", str(out_dir / f"plateau-i{n}")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for n in sorted(iters)
    }  # fmt: skip
    for n, proc in procs.items():
        _, err = proc.communicate()
        row: dict = {"iters": n, "train_rc": proc.returncode, "train_s": round(time.perf_counter() - t0, 1)}
        run = out_dir / f"plateau-i{n}"
        if proc.returncode:
            row["stderr"] = err[-2000:]
        else:
            pq_json = run / "pq.json"
            ev = subprocess.run(
                [
                    sys.executable, "-m", "pointly.cli.main", "evaluate", "--checkpoint", str(run / "model_final.pth"),
                    "--dataset", str(data / "val" / "panoptic.json"), "--gt-dir", str(data / "val" / "panoptic"),
                    "--image-dir", str(data / "val" / "images"), "--device", device.type,
                    "--json-out", str(pq_json), "--no-progress",
                ],
                capture_output=True,
                text=True,
            )  # fmt: skip
            row["evaluate_rc"] = ev.returncode
            if ev.returncode:
                row["stderr"] = ev.stderr[-2000:]
            else:
                doc = json.loads(pq_json.read_text())
                row.update(
                    {
                        k: round(100 * doc[name]["pq"], 3)
                        for k, name in (("pq", "All"), ("pq_th", "Things"), ("pq_st", "Stuff"))
                    }
                )
        result["runs"].append(row)
    result["wall_s"] = round(time.perf_counter() - t0, 1)
    done = [r for r in result["runs"] if "pq" in r]
    for a, b in zip(done, done[1:]):
        b["gain"] = round(b["pq"] - a["pq"], 2)
    result["plateau_at"] = next((a["iters"] for a, b in zip(done, done[1:]) if abs(b["gain"]) < PLATEAU_GAIN), None)
    return result


def to_markdown(res: dict) -> str:
    lines = ["# GPU results (benchmarks/bench_gpu.py)", "", "```", json.dumps(res["environment"], indent=1), "```", ""]
    if "deform_check" in res:
        lines += [
            "## DCNv2: sampled path vs torchvision's kernel on the device",
            "",
            "| quantity | max relative difference |",
            "|---|---:|",
        ]
        lines += [f"| {k} | {v:.2e} |" for k, v in res["deform_check"].items() if k.endswith("rel_diff")]
        lines += [
            "",
            "## Inference, frames per second (batch 1, median)",
            "",
            "| short side (max) | ours network fp32 | ours network AMP | ours predict fp32 | ours predict AMP "
            "| Mask R-CNN fp32 | Mask R-CNN AMP |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for r in res["inference"]:
            cells = [
                r.get(k)
                for k in (
                    "ours_network_fp32_fps",
                    "ours_network_amp_fps",
                    "ours_predict_fp32_fps",
                    "ours_predict_amp_fps",
                    "maskrcnn_fp32_fps",
                    "maskrcnn_amp_fps",
                )
            ]
            lines.append(
                f"| {r['size']} ({r['max_size']}) | "
                + " | ".join("—" if c is None else f"{c:.1f}" for c in cells)
                + " |"
            )
        lines += [
            "",
            "## Training steps (coco_r50_1x R50-FPN, batch 2)",
            "",
            "| size | precision | s / step | peak GiB | first → last loss | all finite |",
            "|---|---|---:|---:|---|---|",
        ]
        for r in res["training"]:
            peak = r.get("peak_memory_gib")
            lines.append(
                f"| {r['size']}² | {r['precision']} | {r['step_s']:.3f} | {'—' if peak is None else peak} | "
                f"{r['first_loss']:.3f} → {r['last_loss']:.3f} | {r['all_finite']} |"
            )
    if res.get("cli"):
        lines += [
            "",
            "## CLI smoke (synthetic_small: train, resume, evaluate)",
            "",
            "```",
            json.dumps(res["cli"], indent=1),
            "```",
        ]
    if res.get("study_jobs"):
        sj = res["study_jobs"]
        lines += [
            "",
            f"## Study preset synthetic-gpu: one job against {sj['jobs']} at once ({sj['iters']} iterations a cell)",
            "",
            "| jobs | seconds per cell |",
            "|---|---:|",
            f"| 1 | {sj['jobs1_s_per_cell']} |",
            f"| {sj['jobs']} | {sj['jobsN_s_per_cell']} |",
            "",
            f"speed-up {sj['speedup']}×",
        ]
    if res.get("plateau"):
        pl = res["plateau"]
        lines += [
            "",
            f"## Full-mask plateau ({pl['train_images']} / {pl['val_images']} synthetic images, seed {pl['seed']}, "
            f"all lengths at once: {pl['wall_s']} s)",
            "",
            "| iterations | PQ | PQ things | PQ stuff | gain over the previous length | finished after (s) |",
            "|---:|---:|---:|---:|---:|---:|",
        ]
        for r in pl["runs"]:
            if "pq" not in r:
                lines.append(f"| {r['iters']} | failed | | | | {r['train_s']} |")
                continue
            gain = f"{r['gain']:+.2f}" if "gain" in r else "—"
            lines.append(
                f"| {r['iters']} | {r['pq']:.2f} | {r['pq_th']:.2f} | {r['pq_st']:.2f} | {gain} | {r['train_s']} |"
            )
        at = pl["plateau_at"]
        lines += ["", f"plateau (gain < {PLATEAU_GAIN} PQ to the next length) from {at} iterations" if at else
                  f"no plateau within these lengths (every gain ≥ {PLATEAU_GAIN} PQ)"]  # fmt: skip
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--sizes", type=int, nargs="+", default=[400, 512, 800])
    ap.add_argument("--iters", type=int, default=20, help="timed inference calls per setting")
    ap.add_argument("--train-iters", type=int, default=20, help="timed training steps per precision")
    ap.add_argument(
        "--train-size",
        type=int,
        nargs="+",
        default=[512, 800],
        help="sides of the square training images (800: the COCO preset's largest training scale)",
    )
    ap.add_argument("--cli-iters", type=int, default=40, help="pointly train iterations (0: skip the CLI smoke)")
    ap.add_argument("--study-iters", type=int, default=200, help="iterations a study cell (0: skip the study jobs)")
    ap.add_argument("--study-jobs", type=int, default=8, help="jobs at once in the study timing")
    ap.add_argument(
        "--plateau-iters", type=int, nargs="*", default=[], help="full-mask plateau lengths, e.g. 2000 4000 8000 16000"
    )
    ap.add_argument("--plateau-images", type=int, nargs=2, default=[1000, 500], metavar=("TRAIN", "VAL"))
    ap.add_argument("--plateau-only", action="store_true", help="only the environment and the plateau")
    ap.add_argument("--no-maskrcnn", action="store_true")
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    args = ap.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    if args.plateau_only and not args.plateau_iters:  # checked before anything is written
        print("bench_gpu: --plateau-only needs --plateau-iters", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    torch.backends.cudnn.benchmark = True
    res: dict = {"environment": environment(device)}
    print(json.dumps(res["environment"]), flush=True)
    if args.plateau_only:
        res["plateau"] = _plateau(args, device)
        _write(args.out, res)
        return 0 if all("pq" in r for r in res["plateau"]["runs"]) else 1
    res["deform_check"] = check_deform(device)
    print(f"  deform check: {res['deform_check']}", flush=True)
    rgb = load_image(args.image)
    res["inference"] = inference_fps(device, args.sizes, args.iters, rgb, maskrcnn=not args.no_maskrcnn)
    res["training"] = [row for size in args.train_size for row in training_steps(device, args.train_iters, size)]
    if args.cli_iters > 0:
        res["cli"] = cli_smoke(device, args.out, args.cli_iters)
        print(f"  cli: {res['cli']}", flush=True)
    if args.study_iters > 0:
        res["study_jobs"] = study_jobs(device, args.out, args.study_iters, args.study_jobs)
        print(f"  study jobs: {res['study_jobs']}", flush=True)
    if args.plateau_iters:
        res["plateau"] = _plateau(args, device)
    _write(args.out, res)
    return 0 if res["deform_check"]["ok"] and all(r["all_finite"] for r in res["training"]) else 1


def _plateau(args, device: torch.device) -> dict:
    """The plateau part with the command line's lengths and image counts."""
    return plateau(device, args.out, args.plateau_iters, train=args.plateau_images[0], val=args.plateau_images[1])


def _write(out: Path, res: dict) -> None:
    (out / "gpu_results.json").write_text(json.dumps(res, indent=1), encoding="utf-8")
    md = to_markdown(res)
    (out / "gpu_results.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    sys.exit(main())
