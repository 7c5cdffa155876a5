"""Image-aware regions capped by the convex hull of each segment's own points plus a margin (a pixel
of a region outside its segment's hull + margin is ignored): does it lift the label accuracy of the
watershed targets towards 95 % on real COCO images, and at what cost in target PQ and coverage?

Usage: python benchmarks/experiments/region_hull_cap.py [coco|coconut|synth]  (P10, P20; seeds 0-2;
prints one line per variant: target PQ, coverage, label accuracy ("agreement"), precision, in %).
Results: docs/targets.md ("Capping the regions by the points' hulls").
"""

import sys
from pathlib import Path

import cv2
import numpy as np
import shapely

from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.points_format import annotations_by_image
from pointly.pointgen.points.simulate import SimulationOptions, simulate
from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.quality import QualityReport
from pointly.pointgen.targets.raster import full_mask
from pointly.pointgen.targets.regions import Regions

name = sys.argv[1] if len(sys.argv) > 1 else "coco"
S = {
    "coco": (Path("/work/shared/data/coco_panoptic_val2017"), "panoptic_val2017.json"),
    "coconut": (Path("/work/shared/data/coconut_val2017_139"), "panoptic.json"),
    "synth": (Path(sys.argv[2]) / "val" if len(sys.argv) > 2 else Path("synthetic/val"), "panoptic.json"),
}[name]
ds = PanopticDataset(S[0] / S[1], S[0] / "panoptic")
images = list(ds.images)[:30]


def cap(reg, seeds, isthing, margin, which):
    h, w = reg.labels.shape
    side = max(h, w)
    known = reg.known.copy()
    for k, (p, th) in enumerate(zip(seeds, isthing), 1):
        if which == "things" and not th:
            continue
        if len(p) == 0:
            continue
        hull = shapely.MultiPoint(p + 0.5).convex_hull.buffer(margin * side)
        m = full_mask(hull, h, w) if hasattr(hull, "exterior") else None
        inside = m if isinstance(m, np.ndarray) else np.asarray(m)
        known[(reg.labels == k) & ~inside] = False
    return Regions._with_boxes(reg.labels, known, len(seeds))


for P in (10, 20):
    for seed in (0, 1, 2):
        by = annotations_by_image(simulate(ds, SimulationOptions(points=P, seed=seed)).document)
        variants = [
            ("ws", None, None),
            ("things m.02", "things", 0.02),
            ("things m.05", "things", 0.05),
            ("all m.05", "all", 0.05),
            ("things m.10", "things", 0.10),
        ]
        reps = {v[0]: QualityReport(ds.categories) for v in variants}
        for im in images:
            anns = by.get(im.id, [])
            rgb = cv2.cvtColor(cv2.imread(str(S[0] / "images" / im.file_name)), cv2.COLOR_BGR2RGB)
            seeds = [np.asarray(a["point_coords"]).reshape(-1, 2).astype(np.int64) for a in anns]
            isthing = [ds.categories[a["category_id"]].isthing for a in anns]
            reg = Regions.grow(rgb, seeds)
            for v, which, m in variants:
                r = reg if which is None else cap(reg, seeds, isthing, m, which)
                t = build_targets(anns, ds.categories, im, options=TargetOptions(shape="watershed"), shapes=r)
                reps[v].add_image(im, anns, t, ds.segments(im.id))
        for v, rep in reps.items():
            s = rep.summary()
            print(
                name,
                P,
                seed,
                v,
                {k: round(100 * s[k], 1) for k in ("pq", "coverage", "agreement", "precision") if k in s},
            )
