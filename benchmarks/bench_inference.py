"""CPU inference latency: pointly's Panoptic FCN R50-FPN against torchvision's Mask R-CNN R50-FPN.

Both models run in this one process on the same image, resized by each model to the same short
side (512 and 800; long side ≤ 854 / 1333), batch 1, ``torch.no_grad``, the same thread count.
Timings alternate between the two models (A B A B ...) so that load from other processes on the
machine hits both alike; the median per model is reported with the ratio ours / Mask R-CNN
(goal ≤ 0.8), both for wall-clock time and for process CPU time (``time.process_time``, summed
over threads), which varies less when other jobs share the CPU.

Both models have random weights (no downloads here). To keep the work comparable to trained
models, Mask R-CNN runs with ``box_score_thresh=0`` so its mask head always processes the 100
detections a trained model typically returns (with random weights no box would pass 0.05 and
the mask head would be skipped); Panoptic FCN's random init (centre bias −2.19 → score 0.10 >
0.05) already yields the maximum number of candidates, so its fusion/mask steps run at their worst
case; the merge's score floor (``inference.inst_thresh``) is set to 0 so that all its up-to-100
thing masks are resized to the image and enter the merge, as Mask R-CNN pastes its 100 (with the
default 0.2 a random model's things would all be skipped before resizing). ``--before`` also
runs ours as it was before the CPU changes (torchvision's DCNv2 kernel, NCHW activations, FrozenBN
not folded) for an in-process before/after. The number of segments ours produced is printed next to its time.

Usage::

    python benchmarks/bench_inference.py [--sizes 512 800] [--iters 3] [--threads 2] [--image PATH] [--before]
    python benchmarks/bench_inference.py --macs      # multiply-accumulates per image instead of times
    python benchmarks/bench_inference.py --precision bf16   # both models under CPU bfloat16 autocast
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
DEFAULT_IMAGE = REPO.parent / "shared" / "data" / "coco_panoptic_val2017" / "images" / "000000142238.jpg"


def load_image(path: Path) -> np.ndarray:
    from pointly.model.engine.panoptic_io import read_rgb

    if path.is_file():
        return read_rgb(path)
    rng = np.random.default_rng(0)  # no shared data: a 640×480 noise image of the same size class
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


def build_ours(short: int, max_size: int, before: bool = False):
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import load_config

    torch.manual_seed(0)
    cfg = load_config("coco_r50_1x")
    if before:  # the network as it ran before the CPU work: torchvision's DCNv2, NCHW activations
        cfg.model.position_head.deform_impl = "torchvision"
        cfg.model.cpu_channels_last = False
    cfg.input.min_size_test = short
    cfg.input.max_size_test = max_size
    cfg.inference.inst_thresh = 0.0  # every thing mask is resized and merged (worst case, see above)
    model = build_panoptic_fcn(cfg).eval()
    model.backbone.bottom_up.fold_frozen_bn = not before  # before: FrozenBN as separate passes
    return model


def build_maskrcnn(short: int, max_size: int):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(
        weights=None,
        weights_backbone=None,
        min_size=short,
        max_size=max_size,
        box_score_thresh=0.0,
        box_detections_per_img=100,
    ).eval()


def run_ours(model, rgb: np.ndarray) -> int:
    (pred,) = model.predict([rgb])
    segs = pred.segments if hasattr(pred, "segments") else pred[1]
    return len(segs)


def run_maskrcnn(model, rgb: np.ndarray) -> int:
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)
    with torch.no_grad():
        (out,) = model([x])
    return int(out["masks"].shape[0])


def _in_precision(fn, precision: str):
    """``fn`` under CPU bfloat16 autocast when ``precision`` is ``bf16`` (for both models alike)."""
    if precision == "fp32":
        return fn

    from pointly.model.engine.panoptic_io import inference_precision

    def wrapped(model, rgb):
        with inference_precision("cpu", precision):
            return fn(model, rgb)

    return wrapped


def bench(size: int, max_size: int, rgb: np.ndarray, iters: int, before: bool = False, precision: str = "fp32") -> dict:
    runs = [
        ("ours", _in_precision(run_ours, precision), build_ours(size, max_size)),
        ("maskrcnn", _in_precision(run_maskrcnn, precision), build_maskrcnn(size, max_size)),
    ]
    if before:
        runs.append(("before", _in_precision(run_ours, precision), build_ours(size, max_size, before=True)))
    counts = {name: fn(model, rgb) for name, fn, model in runs}  # warm-up (allocations, lazy init)
    wall: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in runs}
    for _ in range(iters):
        for name, fn, model in runs:
            c0, t0 = time.process_time(), time.perf_counter()
            fn(model, rgb)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {name: statistics.median(v) for name, v in wall.items()}
    cmed = {name: statistics.median(v) for name, v in cpu.items()}
    out = {
        "size": size,
        "max_size": max_size,
        "ours_s": med["ours"],
        "maskrcnn_s": med["maskrcnn"],
        "ratio": med["ours"] / med["maskrcnn"],
        "ours_cpu_s": cmed["ours"],
        "maskrcnn_cpu_s": cmed["maskrcnn"],
        "cpu_ratio": cmed["ours"] / cmed["maskrcnn"],
        "ours_segments": counts["ours"],
        "maskrcnn_masks": counts["maskrcnn"],
        "ours_all": wall["ours"],
        "maskrcnn_all": wall["maskrcnn"],
    }
    if before:
        out.update(before_s=med["before"], before_cpu_s=cmed["before"], before_all=wall["before"])
    return out


def count_macs(size: int, max_size: int, rgb: np.ndarray) -> dict[str, float]:
    """Multiply-accumulates (G) of one inference per model, by ``torch.utils.flop_counter``
    (convolutions and matmuls; ours' DCNv2 counts through its matmul, as torchvision's op is not
    counted; sampling, resizing and elementwise work are not counted for either model)."""
    from torch.utils.flop_counter import FlopCounterMode

    out = {}
    for name, fn, model in (
        ("ours", run_ours, build_ours(size, max_size)),
        ("maskrcnn", run_maskrcnn, build_maskrcnn(size, max_size)),
    ):
        with FlopCounterMode(display=False) as counter:
            fn(model, rgb)
        out[name] = counter.get_total_flops() / 2e9
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 800])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    ap.add_argument(
        "--before",
        action="store_true",
        help="also time ours with torchvision's DCNv2, NCHW activations and unfolded FrozenBN (the pre-CPU-work network)",
    )
    ap.add_argument(
        "--precision", choices=["fp32", "bf16"], default="fp32", help="bf16: both models under CPU bfloat16 autocast"
    )
    ap.add_argument(
        "--macs", action="store_true", help="only count each model's multiply-accumulates per image (no timing)"
    )
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rgb = load_image(args.image)
    if args.macs:
        print("| short side (max) | Panoptic FCN R50 GMAC | Mask R-CNN R50 GMAC | ratio |\n|---|---:|---:|---:|")
        for size in args.sizes:
            max_size = 854 if size <= 512 else 1333
            m = count_macs(size, max_size, rgb)
            print(f"| {size} ({max_size}) | {m['ours']:.1f} | {m['maskrcnn']:.1f} | {m['ours'] / m['maskrcnn']:.2f} |")
        return 0
    print(
        f"image {args.image.name if args.image.is_file() else 'noise'} {rgb.shape[1]}x{rgb.shape[0]}, "
        f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
        f"{args.iters} timed runs per model (median), alternating, {args.precision}",
        file=sys.stderr,
    )
    print(
        "| short side (max) | Panoptic FCN R50 wall (s) | Mask R-CNN R50 wall (s) | wall ratio | "
        "ours CPU (s) | Mask R-CNN CPU (s) | CPU-time ratio | ours: segments | MRCNN: masks |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        max_size = 854 if size <= 512 else 1333
        r = bench(size, max_size, rgb, args.iters, args.before, args.precision)
        print(
            f"| {size} ({max_size}) | {r['ours_s']:.3f} | {r['maskrcnn_s']:.3f} | {r['ratio']:.2f} | "
            f"{r['ours_cpu_s']:.2f} | {r['maskrcnn_cpu_s']:.2f} | {r['cpu_ratio']:.2f} | "
            f"{r['ours_segments']} | {r['maskrcnn_masks']} |",
            flush=True,
        )
        print(
            f"  raw ours {[round(t, 3) for t in r['ours_all']]}, maskrcnn {[round(t, 3) for t in r['maskrcnn_all']]}",
            file=sys.stderr,
        )
        if args.before:
            print(
                f"  before (torchvision DCNv2, NCHW, unfolded FrozenBN): wall {r['before_s']:.3f} s (CPU {r['before_cpu_s']:.2f} s, "
                f"ratio to Mask R-CNN {r['before_cpu_s'] / r['maskrcnn_cpu_s']:.2f}); speed-up now / before "
                f"{r['before_s'] / r['ours_s']:.2f}× wall, {r['before_cpu_s'] / r['ours_cpu_s']:.2f}× CPU; "
                f"raw {[round(t, 3) for t in r['before_all']]}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
