"""Trend T3 on trained models under the two choices the target-level diagnosis singled out
(docs/study.md, "T3 fails"; benchmarks/experiments/boundary_stuff_targets.py): the image edge as a
boundary (``--edge-is-boundary``) and one hull per segment (``parts=hull``). P20 concave at 0 % and
100 % boundary, seeds 0-2, the converged study's settings (``--preset synthetic``), one study
folder per variant under OUT:

* ``edge``: points that count the image edge as a boundary, the corrected rules;
* ``edge-hull``: the same points, one hull per segment (overlap ``nearest``, size correction on);
* ``hull``: the default boundary, one hull per segment.

The default boundary with the corrected rules is the converged study's own cells (``--study``),
not trained again. ``--summary`` prints PQ (things, stuff) per variant and share, mean ± standard
error over the seeds, and per variant T3's gain PQ(100 %) − PQ(0 %) paired by seed with its 95 %
interval and verdict (pointly.model.study.intervals).

Usage::

    python benchmarks/experiments/boundary_edge_trained.py --out runs/t3 --threads 1 [--variants edge-hull,edge]
    python benchmarks/experiments/boundary_edge_trained.py --out runs/t3 --study docs/study-trained --summary

On 2 cores run the command twice at once: the two processes split the cells by claims. A cell
takes about 20 minutes on one core; the default variants (edge-hull, edge) are 12 cells.
"""

from __future__ import annotations

import argparse
from pathlib import Path

HULL_RULES = {"parts": "hull", "overlap": "nearest", "size_correction": True}
#: variant -> (edge_is_boundary, target rules)
VARIANTS = {
    "edge": (True, "corrected"),
    "edge-hull": (True, HULL_RULES),
    "hull": (False, HULL_RULES),
}
GRID = "points=20;shapes=concave;shares=0,1;seeds=0,1,2;full=0"


def run(args) -> None:
    from pointly.model.study.trained import run_from_cli

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    names = args.variants.split(",")
    # one cell of each variant in turn, so that a partial run holds comparable cells of every variant
    for _ in range(6):
        for name in names:
            edge, rules = VARIANTS[name]
            run_from_cli(
                preset=args.preset,
                iters=args.iters,
                out=Path(args.out) / name,
                grid=GRID,
                target_rules=rules,
                edge_is_boundary=edge,
                progress=True,
                max_cells=1,
                jobs=1,
            )


def summary(args) -> None:
    from pointly.model.study.intervals import paired_difference
    from pointly.model.study.store import load_rows
    from pointly.model.study.trends import mean_se

    folders = {name: Path(args.out) / name for name in VARIANTS}
    if args.study:
        folders = {"library": Path(args.study), **folders}
    print("| variant | boundary | seeds | PQ | PQ things | PQ stuff |")
    print("|---|---|---|---|---|---|")
    gains = []
    for name, folder in folders.items():
        if not (folder / "results.csv").is_file():
            continue
        rows = load_rows(folder)
        rows = rows[
            (rows["supervision"] == "points")
            & (rows["points"] == 20)
            & (rows["shape"] == "concave")
            & (rows["dilation"] == "off")
            & rows["boundary_share"].isin([0.0, 1.0])
        ]
        by_share = {}
        for share, g in rows.groupby("boundary_share"):
            m = mean_se(g["pq"])
            pq = f"{m.mean:.1f} ± {m.se:.1f}" if m.n > 1 else f"{m.mean:.1f}"
            print(f"| {name} | {share:.0%} | {m.n} | {pq} | {g['pq_th'].mean():.1f} | {g['pq_st'].mean():.1f} |")
            by_share[share] = dict(zip(g["seed"], g["pq"]))
        if 0.0 in by_share and 1.0 in by_share:
            d = paired_difference(by_share[1.0], by_share[0.0])
            gains.append(f"| {name} | {d.text()} | {d.verdict} |")
    if gains:
        print("\nT3's gain, PQ(100 %) − PQ(0 %) paired by seed (the paper: +3.1):\n")
        print("| variant | 100 % − 0 % [95 % CI] | verdict |")
        print("|---|---|---|")
        print("\n".join(gains))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--study", default=None, help="the converged study's folder (the default boundary and rules)")
    ap.add_argument("--variants", default="edge-hull,edge", help=f"comma-separated, of {','.join(VARIANTS)}")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--preset", default="synthetic", help="a trained-study preset (smoke: a dry run of the machinery)")
    ap.add_argument("--iters", type=int, default=None, help="(default: the preset's)")
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    unknown = set(args.variants.split(",")) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {', '.join(sorted(unknown))}; use {', '.join(VARIANTS)}")
    summary(args) if args.summary else run(args)


if __name__ == "__main__":
    main()
