"""Before/after tables of the target rules (the first design's "baseline" against the "corrected"
rules) from a target-quality study run with ``rules=corrected,baseline`` on its grid::

    pointly study --depth targets --out DIR \\
        --grid 'points=5,10,20,50;shares=0,0.5,1;dilations=0,0.02;seeds=0,1,2;rules=corrected,baseline'
    python benchmarks/experiments/rules_table.py DIR > tables.md

Per dataset, dilation, points, shape and boundary share: the mean over seeds of each metric under
both rules and the paired difference (corrected − baseline) with its standard error over seeds.
"""

from __future__ import annotations

import math
import sys

from pointly.model.study.store import load_rows

METRICS = [
    ("pq", "target PQ"),
    ("precision", "precision"),
    ("recall", "recall"),
    ("coverage", "coverage"),
    ("agreement", "label accuracy"),
]


def main(folder: str) -> None:
    frame = load_rows(folder)
    keys = ["dataset", "dilation", "points", "shape", "boundary_share", "seed"]
    base = frame[frame["rules"] == "baseline"].set_index(keys)
    corr = frame[frame["rules"] == "corrected"].set_index(keys)
    both = corr.merge(base, left_index=True, right_index=True, suffixes=("_new", "_old")).reset_index()
    groups = sorted(both.groupby(["dataset", "dilation"]), key=lambda kv: (kv[0][0], kv[0][1] != "off", kv[0][1]))
    for (dataset, dil), g in groups:
        seeds = g["seed"].nunique()
        print(
            f"\n**{dataset}, dilation {'off' if dil == 'off' else f'{dil} of the longer side'}** "
            f"(mean of {seeds} seeds; Δ = corrected − baseline ± its standard error over seeds; in %)\n"
        )
        print(
            "| points | shape | boundary | " + " | ".join(f"{label} old → new (Δ ± se)" for _, label in METRICS) + " |"
        )
        print("|---|---|---|" + "---|" * len(METRICS))
        for (p, shape, share), c in g.groupby(["points", "shape", "boundary_share"]):
            cells = []
            for m, _ in METRICS:
                k = 1 if m == "pq" else 100  # the rows hold PQ in percent, the other measures in 0–1
                d = k * (c[f"{m}_new"] - c[f"{m}_old"])
                se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
                cells.append(
                    f"{k * c[f'{m}_old'].mean():.1f} → {k * c[f'{m}_new'].mean():.1f} ({d.mean():+.1f} ± {se:.1f})"
                )
            print(f"| P{p} | {shape} | {share:.0%} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1])
