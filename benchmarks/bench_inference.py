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
0.05) already yields the maximum number of candidates, so its fusion/mask/merge steps run at
their worst case. The number of thing masks ours produced is printed next to its time.

Usage::

    python benchmarks/bench_inference.py [--sizes 512 800] [--iters 3] [--threads 2] [--image PATH]
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
    from pointly.model.panoptic_io import read_rgb

    if path.is_file():
        return read_rgb(path)
    rng = np.random.default_rng(0)  # no shared data: a 640×480 noise image of the same size class
    return rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)


def build_ours(short: int, max_size: int):
    from pointly.model.config import load_config
    from pointly.model.panoptic_fcn import PanopticFCN

    torch.manual_seed(0)
    cfg = load_config("coco_r50_1x")
    cfg.input.min_size_test = short
    cfg.input.max_size_test = max_size
    return PanopticFCN(cfg).eval()


def build_maskrcnn(short: int, max_size: int):
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    torch.manual_seed(0)
    return maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, min_size=short, max_size=max_size,
                                 box_score_thresh=0.0, box_detections_per_img=100).eval()


def run_ours(model, rgb: np.ndarray) -> int:
    (pred,) = model.predict([rgb])
    segs = pred.segments if hasattr(pred, "segments") else pred[1]
    return len(segs)


def run_maskrcnn(model, rgb: np.ndarray) -> int:
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255)
    with torch.no_grad():
        (out,) = model([x])
    return int(out["masks"].shape[0])


def bench(size: int, max_size: int, rgb: np.ndarray, iters: int) -> dict:
    ours, theirs = build_ours(size, max_size), build_maskrcnn(size, max_size)
    n_ours = run_ours(ours, rgb)  # warm-up (allocations, lazy init)
    n_theirs = run_maskrcnn(theirs, rgb)
    t_ours, t_theirs, c_ours, c_theirs = [], [], [], []
    for _ in range(iters):
        for fn, model, wall, cpu in ((run_ours, ours, t_ours, c_ours), (run_maskrcnn, theirs, t_theirs, c_theirs)):
            c0, t0 = time.process_time(), time.perf_counter()
            fn(model, rgb)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    m_ours, m_theirs = statistics.median(t_ours), statistics.median(t_theirs)
    cm_ours, cm_theirs = statistics.median(c_ours), statistics.median(c_theirs)
    return {"size": size, "max_size": max_size, "ours_s": m_ours, "maskrcnn_s": m_theirs,
            "ratio": m_ours / m_theirs, "ours_cpu_s": cm_ours, "maskrcnn_cpu_s": cm_theirs,
            "cpu_ratio": cm_ours / cm_theirs, "ours_segments": n_ours, "maskrcnn_masks": n_theirs,
            "ours_all": t_ours, "maskrcnn_all": t_theirs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 800])
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    rgb = load_image(args.image)
    print(f"image {args.image.name if args.image.is_file() else 'noise'} {rgb.shape[1]}x{rgb.shape[0]}, "
          f"torch {torch.__version__}, {args.threads} threads, {platform.processor() or platform.machine()}, "
          f"{args.iters} timed runs per model (median), alternating", file=sys.stderr)
    print("| short side (max) | Panoptic FCN R50 wall (s) | Mask R-CNN R50 wall (s) | wall ratio | "
          "ours CPU (s) | Mask R-CNN CPU (s) | CPU-time ratio | ours: segments | MRCNN: masks |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        max_size = 854 if size <= 512 else 1333
        r = bench(size, max_size, rgb, args.iters)
        print(f"| {size} ({max_size}) | {r['ours_s']:.3f} | {r['maskrcnn_s']:.3f} | {r['ratio']:.2f} | "
              f"{r['ours_cpu_s']:.2f} | {r['maskrcnn_cpu_s']:.2f} | {r['cpu_ratio']:.2f} | "
              f"{r['ours_segments']} | {r['maskrcnn_masks']} |", flush=True)
        print(f"  raw ours {[round(t, 3) for t in r['ours_all']]}, "
              f"maskrcnn {[round(t, 3) for t in r['maskrcnn_all']]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
