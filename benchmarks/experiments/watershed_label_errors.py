"""Where the supervised pixels of the image-aware (watershed) targets carry a wrong label, on the
real COCO sample (docs/targets.md, "Which pixels to trust"): each supervised pixel is right (its
target segment is the true segment there), on VOID (no true segment: COCO's unlabelled pixels),
on a crowd region (players COCO leaves without masks of their own), or wrong where the truth is a
segment with points. The study's label accuracy counts VOID and crowd pixels as wrong; this splits
them out, pooled over the pixels of the 3 images × 5 point seeds (share 0, the library defaults).

    OMP_NUM_THREADS=1 python3 benchmarks/experiments/watershed_label_errors.py [P ...]   (default: 10 20)
"""

import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from region_confidence import dataset  # noqa: E402  (benchmarks/ is not a package)

from pointly.pointgen.base.points_format import annotations_by_image  # noqa: E402
from pointly.pointgen.points.simulate import SimulationOptions, simulate  # noqa: E402
from pointly.pointgen.targets.build import build_targets  # noqa: E402
from pointly.pointgen.targets.options import TargetOptions  # noqa: E402
from pointly.pointgen.targets.quality import truth_labels  # noqa: E402


def pixel_outcomes(ds, imdir, points: int, seeds=range(5)) -> np.ndarray:
    """Supervised pixels (right, wrong with a known truth, on VOID, on crowd), summed."""
    total = np.zeros(4, dtype=np.int64)
    for seed in seeds:
        by_image = annotations_by_image(simulate(ds, SimulationOptions(points=points, seed=seed)).document)
        for im in ds.images:
            anns = by_image.get(im.id, [])
            rgb = cv2.cvtColor(cv2.imread(str(imdir / im.file_name)), cv2.COLOR_BGR2RGB)
            t = build_targets(anns, ds.categories, im, options=TargetOptions(shape="watershed"), image=rgb)
            labels = truth_labels(anns, t, ds.segments(im.id), image_id=im.id)
            supervised = ~t.ignore
            right = supervised & labels.right(t.owner)
            void = supervised & (labels.truth_map == 0)
            on_crowd = supervised & labels.crowd
            wrong = supervised & ~right & ~void & ~on_crowd
            total += [right.sum(), wrong.sum(), void.sum(), on_crowd.sum()]
    return total


def main() -> None:
    ds, imdir = dataset("coco")
    print("| P | label accuracy (VOID, crowd wrong) | on VOID | on crowd | accuracy where the truth has points |")
    print("|---|---|---|---|---|")
    for points in [int(p) for p in sys.argv[1:]] or [10, 20]:
        right, wrong, void, crowd = pixel_outcomes(ds, imdir, points)
        n = right + wrong + void + crowd
        print(
            f"| P{points} | {100 * right / n:.1f} | {100 * void / n:.1f} % | {100 * crowd / n:.1f} % "
            f"| {100 * right / (right + wrong):.1f} |"
        )


if __name__ == "__main__":
    main()
