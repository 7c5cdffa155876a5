"""The picture of docs/targets.md: one real COCO image, P10 simulated points, in a 2 × 2 grid: the
points on the image, the best hull target at P10 (convex + dilation 0.02, docs/targets.md), the
image-aware target (``--shape watershed``) and the true panoptic mask.

Usage: python benchmarks/experiments/targets_figure.py [--image 142238] [--points 10] [--seed 0]
           [--out docs/figures/targets_coco_142238.png]

Reads ``../shared/data/coco_panoptic_val2017`` (nothing of it is copied: the figure is a rendering
at three quarters of the size). COCO val2017 #142238 is Flickr photo 5079131149, CC BY-NC 2.0; the annotations are
COCO's, CC BY 4.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data" / "coco_panoptic_val2017"


def _label(panel: np.ndarray, text: str) -> np.ndarray:
    out = panel.copy()
    cv2.rectangle(out, (0, 0), (out.shape[1], 22), (0, 0, 0), -1)
    cv2.putText(out, text, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)
    return out


def main() -> None:
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.base.points_format import annotations_by_image
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.build import build_targets
    from pointly.pointgen.targets.options import TargetOptions
    from pointly.pointgen.targets.preview import category_colour, png_bytes, render_targets

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", type=int, default=142238)
    ap.add_argument("--points", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("docs/figures/targets_coco_142238.png"))
    args = ap.parse_args()

    ds = PanopticDataset(SHARED / "panoptic_val2017.json", SHARED / "panoptic")
    doc = simulate(ds, SimulationOptions(points=args.points, seed=args.seed)).document
    anns = annotations_by_image(doc)[args.image]
    info = next(im for im in ds.images if im.id == args.image)
    rgb = cv2.cvtColor(cv2.imread(str(SHARED / "images" / info.file_name)), cv2.COLOR_BGR2RGB)
    cats = ds.categories
    hull = build_targets(anns, cats, info, options=TargetOptions(shape="convex", dilation=0.02))
    regions = build_targets(anns, cats, info, options=TargetOptions(shape="watershed"), image=rgb)
    ignore_free = np.ascontiguousarray(rgb[..., :3]).copy()  # the points alone, on the plain image
    for a in anns:  # redraw the points on the plain image
        col = category_colour(cats.get(a["category_id"]), a["category_id"])
        for x, y in np.asarray(a["point_coords"], dtype=np.int64).reshape(-1, 2):
            cv2.circle(ignore_free, (int(x), int(y)), 4, (0, 0, 0), -1)
            cv2.circle(ignore_free, (int(x), int(y)), 3, col, -1)
    ids = ds.label_map(info.id)
    truth = np.zeros_like(rgb[..., :3])
    for s in ds.segments_info(info.id):
        truth[ids == s["id"]] = category_colour(cats.get(s["category_id"]), s["category_id"])
    truth = (0.35 * rgb[..., :3] + 0.65 * truth).astype(np.uint8)
    panels = [
        _label(ignore_free, f"P{args.points} points"),
        _label(render_targets(hull, anns, cats, rgb), "convex hull + dilation 0.02"),
        _label(render_targets(regions, anns, cats, rgb), "image-aware (watershed)"),
        _label(truth, "true panoptic mask"),
    ]
    small = [cv2.resize(p, (p.shape[1] * 3 // 4, p.shape[0] * 3 // 4), interpolation=cv2.INTER_AREA) for p in panels]
    gap = np.full((small[0].shape[0], 4, 3), 255, np.uint8)
    top, bottom = (np.concatenate([a, gap, b], axis=1) for a, b in (small[:2], small[2:]))
    row = np.concatenate([top, np.full((4, top.shape[1], 3), 255, np.uint8), bottom], axis=0)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(png_bytes(row))
    print(f"wrote {args.out} ({row.shape[1]}x{row.shape[0]})")


if __name__ == "__main__":
    main()
