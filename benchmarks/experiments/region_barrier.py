"""What the edge-barrier rule of the image-aware targets (``RegionOptions.barrier``) does: on each
dataset, simulated points (``pointly simulate``) seed the regions of
:func:`pointly.pointgen.targets.regions.grow_regions`; one segment per image is left without its
points (an object nobody clicked), and for each barrier value the script reports

* ``coverage``: known pixels / non-VOID pixels;
* ``accuracy``: known pixels whose region is the segment that owns them / known pixels (pixels of
  the unclicked segment count as wrong wherever they are known);
* ``leak``: known pixels of the unclicked segment / its pixels (the rule's target: 0).

Means over images and seeds. ``POINTLY_CLI`` names the command that simulates (default: this
Python's ``-m pointly.cli.main``). Usage::

    python benchmarks/experiments/region_barrier.py --out runs/barrier [--points 5,10,20] \\
        [--seeds 0,1,2] [--barriers 0,0.3,0.5,0.7] [--synthetic-root DIR --synthetic-images 50]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

SHARED = Path(os.environ.get("POINTLY_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))
DATASETS = {
    "coco": (
        SHARED / "coco_panoptic_val2017/panoptic_val2017.json",
        SHARED / "coco_panoptic_val2017/panoptic",
        SHARED / "coco_panoptic_val2017/images",
    ),
    "coconut": (
        SHARED / "coconut_val2017_139/panoptic.json",
        SHARED / "coconut_val2017_139/panoptic",
        SHARED / "coconut_val2017_139/images",
    ),
    "nuclei": (
        SHARED / "dsb2018_nuclei/panoptic.json",
        SHARED / "dsb2018_nuclei/panoptic",
        SHARED / "dsb2018_nuclei/images",
    ),
}


def simulate(js: Path, pngs: Path, points: int, seed: int, out: Path) -> dict:
    if not out.is_file():
        subprocess.run(
            [
                *os.environ.get("POINTLY_CLI", f"{sys.executable} -m pointly.cli.main").split(),
                "simulate",
                "--panoptic-json",
                str(js),
                "--panoptic-dir",
                str(pngs),
                "-o",
                str(out),
                "-n",
                str(points),
                "--seed",
                str(seed),
                "--no-progress",
            ],
            check=True,
        )
    return json.loads(out.read_text(encoding="utf-8"))


def measure(
    name: str,
    js: Path,
    pngs: Path,
    images: Path,
    points: int,
    seed: int,
    barriers: list[float],
    out_dir: Path,
    limit: int | None,
    drop: bool = True,
) -> list[dict]:
    from pointly.model.engine.data import load_rgb
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.targets.regions import RegionOptions, grow_regions

    ds = PanopticDataset(js, pngs)
    doc = simulate(js, pngs, points, seed, out_dir / f"{name}-P{points}-s{seed}.json")
    by_image: dict[int, list[dict]] = {}
    for ann in doc["annotations"]:
        by_image.setdefault(ann["image_id"], []).append(ann)
    rng = np.random.default_rng(seed)
    rows = []
    for image in list(ds.images)[:limit]:
        anns = [a for a in by_image.get(image.id, []) if not a.get("iscrowd")]
        if len(anns) < 3:
            continue
        truth = ds.label_map(image.id)
        rgb = load_rgb(images / image.file_name)
        dropped = int(rng.integers(len(anns))) if drop else -1  # the segment nobody clicked
        kept = [a for k, a in enumerate(anns) if k != dropped]
        seeds = [np.asarray(a["point_coords"], dtype=np.int64) for a in kept]
        owner = np.array([0] + [a["source_segment_id"] for a in kept])
        lost = truth == anns[dropped]["source_segment_id"] if drop else np.zeros_like(truth, dtype=bool)
        valid = truth > 0
        for b in barriers:
            labels, known = grow_regions(rgb, seeds, options=RegionOptions(barrier=b))
            k = known & valid
            right = k & (owner[labels] == truth)
            rows.append(
                {
                    "dataset": name,
                    "points": points,
                    "seed": seed,
                    "image": image.id,
                    "barrier": b,
                    "coverage": float(k.sum() / max(valid.sum(), 1)),
                    "accuracy": float(right.sum() / max(k.sum(), 1)),
                    "leak": float((known & lost).sum() / max(lost.sum(), 1)),
                }
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--points", default="5,10,20")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--barriers", default="0,0.3,0.5,0.7")
    ap.add_argument("--synthetic-root", default=None)
    ap.add_argument("--synthetic-images", type=int, default=50)
    ap.add_argument("--keep-all", action="store_true", help="every segment keeps its points (leak is then 0)")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sets = dict(DATASETS)
    if args.synthetic_root:
        r = Path(args.synthetic_root) / "val"
        sets["synthetic"] = (r / "panoptic.json", r / "panoptic", r / "images")
    barriers = [float(v) for v in args.barriers.split(",")]
    rows = []
    for name, (js, pngs, images) in sets.items():
        limit = args.synthetic_images if name == "synthetic" else None
        for p in (int(v) for v in args.points.split(",")):
            for s in (int(v) for v in args.seeds.split(",")):
                rows += measure(name, js, pngs, images, p, s, barriers, out, limit, drop=not args.keep_all)
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame.to_csv(out / ("rows-all-clicked.csv" if args.keep_all else "rows.csv"), index=False)
    table = frame.groupby(["dataset", "points", "barrier"])[["coverage", "accuracy", "leak"]].mean()
    print((100 * table).round(1).to_string())


if __name__ == "__main__":
    main()
