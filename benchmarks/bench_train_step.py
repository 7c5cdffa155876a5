"""Training-step time of Panoptic FCN (forward + losses + backward + SGD step) on the CPU.

Two settings, each against a baseline measured in the same process on the same input:

* ``r50``: Panoptic FCN R50-FPN (coco_r50_1x, 80/54 classes, DCNv2 position head) on one
  512 × 512 image with 4 things and 2 stuff regions, against torchvision's Mask R-CNN R50-FPN
  (random init, same image, same 4 instances) — ratio < 1 means Panoptic FCN is faster;
* ``small``: the synthetic_small preset, a batch of 8 images of 128 × 128.

``--before`` also times each Panoptic FCN step as the network ran before the CPU work
(torchvision's DCNv2 kernel), interleaved with the current one in the same process on the same
input. ``--optimizer-loop`` times the synthetic_small step with torch's per-parameter optimiser
loop against the fused kernel the training loop uses, interleaved (``--amp``: both under the
study presets' bfloat16 CPU autocast). ``--trunk-share`` times the ResNet trunk's (and the trunk +
FPN's) forward + backward alone against the whole step, interleaved: the most a narrower trunk
could save. Steps use the training loop's first-iteration learning
rate and its gradient clipping.

Usage: ``python benchmarks/bench_train_step.py [--repeat 3] [--threads 2] [--before | --optimizer-loop [--amp] | --trunk-share [--amp]]``;
prints a Markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def _scene(size: int, rng: np.random.Generator):
    lm = np.full((size, size), 100, dtype=np.int64)
    lm[: size // 3] = 101
    boxes = []
    segs = [
        dict(id=100, category_id=92, iscrowd=0, bbox=[0, 0, 1, 1]),
        dict(id=101, category_id=93, iscrowd=0, bbox=[0, 0, 1, 1]),
    ]
    for k in range(4):
        s = int(rng.integers(size // 10, size // 3))
        x, y = (int(v) for v in rng.integers(0, size - s, 2))
        lm[y : y + s, x : x + s] = k + 1
        boxes.append([x, y, x + s, y + s])
        segs.append(dict(id=k + 1, category_id=k + 1, iscrowd=0, bbox=[x, y, s, s]))
    return lm, segs, boxes


def _time(fn, repeat: int) -> float:
    fn()  # warm-up
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def _as_in_the_training_loop(model, opt, cfg):
    """The loop's first-iteration (warm-up) learning rate, and its value clipping as a callable:
    without them the random-init R50 diverges within a few steps, and NaN weights are not a step
    anyone trains (torchvision's CPU DCNv2 even crashed on the NaN offsets)."""
    from pointly.model.engine.train import lr_factor

    for group in opt.param_groups:
        group["lr"] = cfg.solver.base_lr * lr_factor(0, cfg)
    params = [p for p in model.parameters() if p.requires_grad]
    return lambda: torch.nn.utils.clip_grad_value_(params, cfg.solver.clip_value)


def _before(cfg) -> None:
    """The pre-CPU-work network: torchvision's DCNv2 kernel and NCHW activations."""
    cfg.model.position_head.deform_impl = "torchvision"
    cfg.model.cpu_channels_last = False


def r50_steps(before: bool = False):
    """(Panoptic FCN step, Mask R-CNN step) closures on the same 512² image."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import coco_r50_1x
    from pointly.model.engine.train import build_optimizer
    from pointly.model.network.gt import full_targets

    rng = np.random.default_rng(0)
    lm, segs, boxes = _scene(512, rng)
    cfg = coco_r50_1x()
    if before:
        _before(cfg)
    thing_index = {k + 1: k for k in range(80)}
    stuff_index = {92: 1, 93: 2}
    targets = full_targets(lm, segs, thing_index, stuff_index)
    image = torch.from_numpy(rng.integers(0, 255, (3, 512, 512), dtype=np.uint8))
    torch.manual_seed(0)
    model = build_panoptic_fcn(cfg).train()
    opt = build_optimizer(model, cfg)
    clip = _as_in_the_training_loop(model, opt, cfg)

    def pfcn():
        losses = model([image], [targets])
        opt.zero_grad()
        sum(losses.values()).backward()
        clip()
        opt.step()

    mrcnn = maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=81, min_size=512, max_size=512
    ).train()
    mopt = torch.optim.SGD([p for p in mrcnn.parameters() if p.requires_grad], lr=0.001, momentum=0.9)
    masks = torch.stack([torch.from_numpy(lm == k + 1) for k in range(4)]).to(torch.uint8)
    tgt = [{"boxes": torch.tensor(boxes, dtype=torch.float32), "labels": torch.arange(1, 5), "masks": masks}]
    img = image.float() / 255

    def maskrcnn():
        losses = mrcnn([img], tgt)
        mopt.zero_grad()
        sum(losses.values()).backward()
        mopt.step()

    return pfcn, maskrcnn


def bench_r50(repeat: int, before: bool = False) -> tuple[float, float]:
    pfcn, maskrcnn = r50_steps(before)
    return _time(pfcn, repeat), _time(maskrcnn, repeat)


def small_step(before: bool = False, fused: bool | None = None, amp: bool = False):
    """A synthetic_small training step closure on 8 images of 128² (``fused``: the optimiser kernel,
    default as the training loop chooses; ``amp``: under bfloat16 CPU autocast)."""
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import synthetic_small
    from pointly.model.engine.train import build_optimizer
    from pointly.model.network.gt import full_targets

    rng = np.random.default_rng(1)
    cfg = synthetic_small()
    if before:
        _before(cfg)
    thing_index = {c: i for i, c in enumerate(cfg.thing_ids)}
    stuff_index = {c: i + 1 for i, c in enumerate(cfg.stuff_ids)}
    batch_t, batch_i = [], []
    for _ in range(8):
        lm, segs, _ = _scene(128, rng)
        segs = [
            dict(s, category_id=(cfg.stuff_ids[s["id"] - 100] if s["id"] >= 100 else cfg.thing_ids[s["id"] - 1]))
            for s in segs
        ]
        batch_t.append(full_targets(lm, segs, thing_index, stuff_index))
        batch_i.append(torch.from_numpy(rng.integers(0, 255, (3, 128, 128), dtype=np.uint8)))
    torch.manual_seed(0)
    model = build_panoptic_fcn(cfg).train()
    opt = build_optimizer(model, cfg, fused=fused)
    clip = _as_in_the_training_loop(model, opt, cfg)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            losses = model(batch_i, batch_t)
        opt.zero_grad()
        sum(losses.values()).backward()
        clip()
        opt.step()

    step.model, step.images, step.amp = model, batch_i, amp
    return step


def part_steps(step) -> list:
    """Forward + backward of the ResNet trunk alone and of the trunk + FPN alone, on the batch of a
    :func:`small_step` (same model, same precision): how much of the step a narrower trunk could save."""
    model = step.model
    batch = model.preprocess(step.images)

    def timed(module):
        def run():
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=step.amp):
                feats = module(batch)
            model.zero_grad(set_to_none=True)
            sum(f.float().sum() for f in feats).backward()

        return run

    return [timed(model.backbone.bottom_up), timed(model.backbone)]


def bench_small(repeat: int, before: bool = False) -> float:
    return _time(small_step(before), repeat)


def _time_interleaved(fns: list, repeat: int) -> list[float]:
    """Median seconds of each function, called in turn (A B C A B C ...) after one warm-up each, so
    that load changes and allocator state hit all alike."""
    for fn in fns:
        fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, out in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--before", action="store_true", help="also time the pre-CPU-work network (see above)")
    ap.add_argument("--optimizer-loop", action="store_true", help="fused optimiser against the per-parameter loop")
    ap.add_argument("--amp", action="store_true", help="with --optimizer-loop / --trunk-share: bfloat16 CPU autocast")
    ap.add_argument("--trunk-share", action="store_true", help="the ResNet trunk's and the FPN's share of a step")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.trunk_share:
        step = small_step(amp=args.amp)
        whole, trunk, backbone = _time_interleaved([step, *part_steps(step)], args.repeat)
        print(
            "| synthetic_small, 8 × 128², "
            + ("bfloat16 autocast" if args.amp else "float32")
            + " | s | share of the step |"
        )
        print(f"|---|---|---|\n| whole step | {whole:.3f} | 1.00 |")
        print(f"| ResNet-18 trunk, forward + backward | {trunk:.3f} | {trunk / whole:.2f} |")
        print(f"| trunk + FPN, forward + backward | {backbone:.3f} | {backbone / whole:.2f} |")
        print(
            f"\nA free trunk would make the step at most {whole / max(whole - trunk, 1e-9):.2f}× faster "
            f"(median of {args.repeat}, {args.threads} thread(s))"
        )
        return
    if args.optimizer_loop:
        fused, loop = _time_interleaved([small_step(amp=args.amp), small_step(fused=False, amp=args.amp)], args.repeat)
        precision = "bfloat16 autocast" if args.amp else "float32"
        print(
            "| synthetic_small step, 8 × 128², "
            + precision
            + " | fused optimiser (s) | per-parameter loop (s) | ratio |"
        )
        print(f"|---|---|---|---|\n| {args.threads} thread(s) | {fused:.3f} | {loop:.3f} | {fused / loop:.3f} |")
        return
    if args.before:  # now and before interleaved in one process
        small, small_b = _time_interleaved([small_step(), small_step(before=True)], args.repeat)
        pfcn, maskrcnn = r50_steps()
        pfcn_b, _ = r50_steps(before=True)
        pf, mr, pf_b = _time_interleaved([pfcn, maskrcnn, pfcn_b], args.repeat)
    else:
        small = bench_small(args.repeat)
        pf, mr = bench_r50(args.repeat)
    print("| setting | Panoptic FCN step (s) | baseline step (s) | ratio |\n|---|---|---|---|")
    print(f"| R50-FPN, 1 × 512², vs torchvision Mask R-CNN R50-FPN | {pf:.2f} | {mr:.2f} | {pf / mr:.2f} |")
    print(f"| synthetic_small, 8 × 128² | {small:.3f} | — | — |")
    if args.before:
        print(f"| before: R50-FPN, 1 × 512² (torchvision DCNv2) | {pf_b:.2f} | {mr:.2f} | {pf_b / mr:.2f} |")
        print(f"| before: synthetic_small, 8 × 128² | {small_b:.3f} | — | — |")
        print(f"\nspeed-up now / before: R50 {pf_b / pf:.2f}×, synthetic_small {small_b / small:.2f}×")
    print(f"\n(median of {args.repeat}, torch threads {args.threads})")


if __name__ == "__main__":
    main()
