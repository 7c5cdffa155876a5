"""Where the supervised pixels of the image-aware (watershed) targets carry a wrong label, on the
real COCO sample (docs/targets.md, "Which pixels to trust"): each supervised pixel is right (its
target segment is the true segment there), on VOID (no true segment: COCO's unlabelled pixels),
on a crowd region (players COCO leaves without masks of their own), or wrong where the truth is a
segment with points. The study's label accuracy counts VOID and crowd pixels as wrong; this splits
them out, pooled over the pixels of the 3 images × 5 point seeds (share 0, the library defaults).
A second table asks how much of the rest lies within a few pixels of a true segment border
(COCO's masks are polygons traced by hand, so their borders are themselves uncertain by a few
pixels): the accuracy where the truth has points, counting only pixels at least ``b`` pixels
from every border of the true partition (VOID and crowd regions included as segments).

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
from pointly.pointgen.targets.regions import distance_to_zero, inner_boundaries  # noqa: E402

#: border distances (pixels) of the second table
BANDS = (1, 2, 3, 5)


def pixel_outcomes(ds, imdir, points: int, seeds=range(5)) -> tuple[np.ndarray, np.ndarray]:
    """Supervised pixels (right, wrong with a known truth, on VOID, on crowd), summed; and per
    border distance of :data:`BANDS`, (right, wrong with a known truth) at or beyond it."""
    total = np.zeros(4, dtype=np.int64)
    banded = np.zeros((len(BANDS), 2), dtype=np.int64)
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
            # distance of every pixel to the nearest pixel on a border of the true partition
            # (both sides of a border are border pixels, so a pixel next to one has distance 1)
            border = inner_boundaries(labels.truth_map.astype(np.int32))
            far = distance_to_zero(~border)
            for k, b in enumerate(BANDS):
                away = far >= b
                banded[k] += [(right & away).sum(), (wrong & away).sum()]
    return total, banded


def main() -> None:
    ds, imdir = dataset("coco")
    print("| P | label accuracy (VOID, crowd wrong) | on VOID | on crowd | accuracy where the truth has points |")
    print("|---|---|---|---|---|")
    rows = []
    for points in [int(p) for p in sys.argv[1:]] or [10, 20]:
        (right, wrong, void, crowd), banded = pixel_outcomes(ds, imdir, points)
        n = right + wrong + void + crowd
        print(
            f"| P{points} | {100 * right / n:.1f} | {100 * void / n:.1f} % | {100 * crowd / n:.1f} % "
            f"| {100 * right / (right + wrong):.1f} |"
        )
        rows.append((points, right, wrong, banded))
    print()
    print(
        "| P | " + " | ".join(f"≥ {b} px from a true border: accuracy (share of the pixels kept)" for b in BANDS) + " |"
    )
    print("|---|" + "---|" * len(BANDS))
    for points, right, wrong, banded in rows:
        cells = [f"{100 * r / (r + w):.1f} ({100 * (r + w) / (right + wrong):.0f} %)" for r, w in banded]
        print(f"| P{points} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
