"""Image-aware targets (``shape="watershed"``) against the hull targets of the same image, one core.

For each image of the COCO panoptic sample (P20 points from pointgen.simulate, seed 0): median
process time of ``build_targets`` at full size with the default hull options (concave, dilation
0.02) and with ``shape="watershed"`` (regions grown from the image every call: what the
annotator's preview pays), and of ``grow_regions`` alone. Goal: all segments of a 640x480 image
in at most 100 ms.

    OMP_NUM_THREADS=1 python3 benchmarks/bench_regions.py [--repeat 9]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def median_ms(fn, repeat: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    import numpy as np
    from PIL import Image

    from pointly.pointgen.base.coco import open_dataset
    from pointly.pointgen.base.points_format import annotations_by_image
    from pointly.pointgen.points.simulate import SimulationOptions, simulate
    from pointly.pointgen.targets.build import build_targets
    from pointly.pointgen.targets.options import TargetOptions
    from pointly.pointgen.targets.regions import grow_regions

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=9)
    args = ap.parse_args()
    root = Path(os.environ.get("POINTLY_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
    root = root / "coco_panoptic_val2017"
    ds = open_dataset(panoptic_json=root / "panoptic_val2017.json", panoptic_dir=root / "panoptic")
    doc = simulate(ds, SimulationOptions(points=20)).document
    by_image = annotations_by_image(doc)
    print(
        "| image | size | segments | hull targets (ms) | watershed targets (ms) | of which regions (ms) "
        "| watershed / hull | per segment (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for im in doc["images"]:
        rgb = np.asarray(Image.open(root / "images" / im["file_name"]).convert("RGB"))
        anns = by_image[im["id"]]
        hull = median_ms(
            lambda: build_targets(anns, doc["categories"], im, options=TargetOptions(dilation=0.02)), args.repeat
        )
        ws = median_ms(
            lambda: build_targets(anns, doc["categories"], im, options=TargetOptions(shape="watershed"), image=rgb),
            args.repeat,
        )
        seeds = [np.asarray(a["point_coords"]) for a in anns]
        grow = median_ms(lambda: grow_regions(rgb, seeds), args.repeat)
        print(
            f"| {im['id']} | {im['width']}×{im['height']} | {len(anns)} | {hull:.1f} | {ws:.1f} | {grow:.1f} | "
            f"{ws / hull:.2f} | {ws / len(anns):.2f} |"
        )


if __name__ == "__main__":
    main()
