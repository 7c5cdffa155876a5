"""Cost of point supervision in the training data pipeline, as ratios within one process.

For the synthetic set (128 px, the ``synthetic_small`` augmentation) it measures CPU time
(``time.process_time``, one thread, so other load on the machine matters less than for wall time):

* building one sample's targets from points (P20 concave, with and without dilation; the corrected
  rules, the default, and the first design's rules: one hull per segment, overlaps ignored),
* building one sample's targets from the full masks (decode the panoptic PNG, resize, downsample),
* one training step (forward + backward) of ``synthetic_small`` on a batch of 8,

and prints a Markdown table of per-sample times and ratios to the full-mask baseline.

    python benchmarks/bench_pointsup.py [--samples 64] [--steps 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(1)

    from pointly.data.synth import ensure_dataset
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import synthetic_small
    from pointly.model.engine.data import PanopticTrainSet, collate
    from pointly.model.engine.point_targets import PointSupervision

    def points_train_set(cfg, points_json, image_dir, options):
        return PanopticTrainSet(
            cfg, "train", supervision=PointSupervision(points_json, options=options), image_dir=image_dir
        )

    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.base.points_format import save_points
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.options import TargetOptions

    root = ensure_dataset()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pointsup-"))
    ds = PanopticDataset(root / "train" / "panoptic.json", root / "train" / "panoptic", check=False)
    save_points(tmp / "p20.json", simulate(ds, SimulationOptions(points=20)).document)

    def per_sample(dataset, repeat_visit: bool = False) -> float:
        """CPU seconds per sample over ``args.samples`` distinct images (first visits: a point set's
        shapes are computed); ``repeat_visit``: the same images again with other augmentations (the
        shapes come from the per-image cache, as in every epoch after the first)."""
        keys = [(i % len(dataset), 1000 + i) for i in range(args.samples)]
        dataset[keys[-1]]  # warm imports
        if repeat_visit:
            for k in keys:
                dataset[k]
            keys = [(i, 5000 + s) for i, s in keys]
        t0 = time.process_time()
        for k in keys:
            dataset[k]
        return (time.process_time() - t0) / len(keys)

    cfg = synthetic_small()
    cfg.data.kind = "coco_panoptic"
    cfg.data.train_json, cfg.data.train_panoptic_dir, cfg.data.train_image_dir = (
        str(root / "train" / "panoptic.json"),
        str(root / "train" / "panoptic"),
        str(root / "train" / "images"),
    )
    full = per_sample(PanopticTrainSet(cfg, "train"))
    from pointly.model.study.targets import RULES

    baseline = RULES["baseline"]  # the first design's rules
    points = per_sample(points_train_set(cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave")))
    points_cached = per_sample(
        points_train_set(cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave")), repeat_visit=True
    )
    dilated_cached = per_sample(
        points_train_set(
            cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave", dilation=(0.0, 0.05))
        ),
        repeat_visit=True,
    )
    dilated = per_sample(
        points_train_set(
            cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave", dilation=(0.0, 0.05))
        )
    )
    points_old = per_sample(
        points_train_set(cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave", **baseline))
    )
    dilated_old = per_sample(
        points_train_set(
            cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave", dilation=(0.0, 0.05), **baseline)
        )
    )
    tset = points_train_set(cfg, tmp / "p20.json", root / "train" / "images", TargetOptions("concave"))
    model = build_panoptic_fcn(cfg)
    imgs, tg, _ = collate([tset[(i, i)] for i in range(cfg.solver.ims_per_batch)])
    sum(model(imgs, tg).values()).backward()
    t0 = time.process_time()
    for _ in range(args.steps):
        sum(model(imgs, tg).values()).backward()
    step = (time.process_time() - t0) / args.steps / cfg.solver.ims_per_batch

    print("| per sample (CPU ms, 1 thread) | ms | ratio to full-mask targets |")
    print("|---|---:|---:|")
    for name, v in (
        ("full-mask targets (PNG decode + resize + downsample)", full),
        ("point targets, P20 concave", points),
        ("point targets, P20 concave + dilation", dilated),
        ("point targets, P20 concave, image seen before (shapes cached)", points_cached),
        ("point targets, P20 concave + dilation, image seen before", dilated_cached),
        ("point targets, P20 concave, first-design rules", points_old),
        ("point targets, P20 concave + dilation, first-design rules", dilated_old),
        ("training step share (forward + backward ÷ batch)", step),
    ):
        print(f"| {name} | {v * 1e3:.1f} | {v / full:.2f} |")


if __name__ == "__main__":
    main()
