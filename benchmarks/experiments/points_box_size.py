"""How well a thing's size is read from its points, by boundary share: √area of the points' box
and of the size-corrected box (``pointgen.targets.build.corrected_points_box``: grown by
(n+1)/(n−1) per side, the expected shrinkage of n points drawn uniformly inside the object) over
the true box, on the synthetic training split the trained study and the ablation train on.

The correction assumes interior points; boundary points already span the object, so at 100 %
boundary the corrected box overshoots. docs/point-supervision.md ("The trained ablation") quotes
this table beside the size correction's trained result at 100 % boundary.

Usage::

    python benchmarks/experiments/points_box_size.py [--points 20] [--shares 0,0.5,1] [--seed 0]
"""

from __future__ import annotations

import argparse

import numpy as np


def box_ratios(doc: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per thing annotation of a points document: (√area ratio of the points' box, of the
    corrected box) against the annotation's true ``bbox``. The points' box is the tight pixel box
    of the point centres (half a pixel beyond them), the convention of a mask's COCO ``bbox``."""
    from pointly.pointgen.targets.build import corrected_points_box, point_centres

    raw, corrected = [], []
    for ann in doc["annotations"]:
        _, _, w, h = ann["bbox"]
        coords = np.asarray(ann["point_coords"], dtype=float).reshape(-1, 2)
        c = point_centres(coords)
        lo, hi = c.min(axis=0) - 0.5, c.max(axis=0) + 0.5
        raw.append(np.sqrt(np.prod(hi - lo) / (w * h)))
        grown = corrected_points_box(coords)
        if grown is None:  # one distinct point: nothing to correct
            grown = (lo[0], lo[1], hi[0], hi[1])
        corrected.append(np.sqrt((grown[2] - grown[0]) * (grown[3] - grown[1]) / (w * h)))
    return np.asarray(raw), np.asarray(corrected)


def main() -> None:
    from pointly.data.synth import ensure_dataset
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.points.simulate import SimulationOptions, simulate

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=20)
    ap.add_argument("--shares", default="0,0.5,1")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=500)
    args = ap.parse_args()

    root = ensure_dataset(train=args.train, val=args.val, progress=True)
    data = PanopticDataset(root / "train" / "panoptic.json", root / "train" / "panoptic")
    print(
        "| boundary | things | points' box (median / mean) | corrected box (median / mean) | corrected > true | corrected > 1.2 × true |"
    )
    print("|---|---|---|---|---|---|")
    for share in (float(s) for s in args.shares.split(",")):
        opts = SimulationOptions(points=args.points, boundary_share=share, seed=args.seed, things_only=True)
        raw, cor = box_ratios(simulate(data, opts).document)
        print(
            f"| {share:.0%} | {len(raw)} | {np.median(raw):.3f} / {raw.mean():.3f} | "
            f"{np.median(cor):.3f} / {cor.mean():.3f} | {np.mean(cor > 1):.1%} | {np.mean(cor > 1.2):.1%} |"
        )


if __name__ == "__main__":
    main()
