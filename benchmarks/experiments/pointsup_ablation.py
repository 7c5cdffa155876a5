"""The trained ablation of the point-supervision fixes (issue "Point supervision as the paper means
it"): P20 concave points at 0 % and 100 % boundary share, the first design ("old") against each fix
alone and all fixes together, 3 seeds each, on the synthetic set.

Each variant is one trained-study folder under OUT (``pointly.model.study.trained`` on the study
engine: resumable cell by cell, rows in ``results.csv``); ``--summary`` prints PQ mean ± standard
error per variant and share, each variant against "old" paired by seed.

Two editions:

* ``--preset synthetic`` (default): the converged study's settings (1000 / 500 images, 2000
  iterations, bfloat16 CPU autocast, the seed is the sampling and the training seed). "all" is the
  corrected rules with the preset's defaults, i.e. the converged study's own P20 concave cells:
  with ``--study DIR`` (that study's folder) they are read from there, not trained twice.
* ``--preset synthetic-quick --iters 2000``: the first edition (float32, training seed fixed; its
  "all" names the rule fields, so its cells are ``-custom``), kept to resume and summarise it.

Usage::

    python benchmarks/experiments/pointsup_ablation.py --out runs/ablation --study runs/study \\
        [--variants old,centre,overlap,parts,size,init] [--shares 0,1]
    python benchmarks/experiments/pointsup_ablation.py --out runs/ablation --study runs/study --summary

On 2 cores run the same command twice with ``--threads 1``: the two processes split the cells by
claims (docs/study.md, "Resuming, failures, shards"), whatever part of the grid is done. ``--shard
i/n`` remains for machines that do not share the folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pointly.model.study.grid import RULES

#: the first design's target rules
OLD_RULES = RULES["baseline"]
OLD_MODEL = ["model.head_init=msra", "loss.mask_centre_loss=true"]  # explicit: presets may change

#: variant -> (target rule fields, model config overrides)
VARIANTS = {
    "old": (OLD_RULES, OLD_MODEL),
    "init": (OLD_RULES, ["model.head_init=official", "loss.mask_centre_loss=true"]),
    "centre": (OLD_RULES, ["model.head_init=msra", "loss.mask_centre_loss=false"]),
    "overlap": ({**OLD_RULES, "overlap": "nearest"}, OLD_MODEL),
    "parts": ({**OLD_RULES, "parts": "delaunay"}, OLD_MODEL),
    "size": ({**OLD_RULES, "size_correction": True}, OLD_MODEL),
    "all": (
        {"parts": "delaunay", "overlap": "nearest", "size_correction": True},
        ["model.head_init=official", "loss.mask_centre_loss=false"],
    ),
}
#: "all" in the converged edition: the corrected rules and the preset's own model defaults
ALL_CONVERGED = ("corrected", [])
SHARES = "0,1"


def grid(shares: str = SHARES) -> str:
    """The ablation's grid: P20 concave at the boundary ``shares`` (a subset of 0, 1), seeds 0-2."""
    return f"points=20;shapes=concave;shares={shares};seeds=0,1,2;full=0"


def variant(name: str, preset: str):
    """(target rules, config overrides) of a variant in an edition."""
    if name == "all" and preset != "synthetic-quick":
        return ALL_CONVERGED
    return VARIANTS[name]


def run(args) -> None:
    from pointly.data.synth import ensure_dataset
    from pointly.model.study.trained import run_from_cli

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    quick = args.preset == "synthetic-quick"
    root = ensure_dataset(args.data_root, train=args.train, val=args.val, progress=True) if quick else None
    names = [n for n in args.variants.split(",") if not (n == "all" and args.study and not quick)]
    for name in names:
        if quick:
            _rename_preset(Path(args.out) / name)
    # one cell of each variant in turn, so that a partial run holds comparable cells of every variant
    for _ in range(3 * len(args.shares.split(","))):  # the grid's cells
        for name in names:
            rules, overrides = variant(name, args.preset)
            run_from_cli(
                preset=args.preset,
                out=(Path(args.study) if name == "all" and args.study else Path(args.out) / name),
                iters=args.iters,
                synthetic_root=root,
                grid=grid(args.shares),
                target_rules=rules,
                config_overrides=overrides,
                progress=True,
                max_cells=1,
                jobs=1,
                shard=args.shard,
            )


def _rename_preset(folder: Path) -> None:
    """Folders begun before the presets were renamed say ``"preset": "synthetic"``: the same
    settings (float32, training seed fixed; the dataset is the ``root`` given) are now the
    ``synthetic-quick`` preset's, so the name is updated in place to let them resume."""
    import json

    path = folder / "study.json"
    if not path.is_file():
        return
    settings = json.loads(path.read_text(encoding="utf-8"))
    if settings.get("preset") == "synthetic" and not settings.get("training_seed"):
        settings["preset"] = "synthetic-quick"
        path.write_text(json.dumps(settings, indent=2), encoding="utf-8")


def summary(args) -> None:
    """PQ per variant and boundary share (mean ± standard error over seeds), and each variant
    against "old" paired by seed (pointgen.intervals: 95 % Student-t interval and verdict)."""
    from pointly.model.study.intervals import paired_difference
    from pointly.model.study.store import load_rows
    from pointly.model.study.trends import mean_se

    folders = {name: Path(args.out) / name for name in VARIANTS}
    if args.study and args.preset != "synthetic-quick":
        folders["all"] = Path(args.study)
    frames = {}
    for name, folder in folders.items():
        if (folder / "results.csv").is_file():
            rows = load_rows(folder)
            rows = rows[(rows["supervision"] == "points") & (rows["points"] == 20) & (rows["shape"] == "concave")]
            frames[name] = rows[(rows["dilation"] == "off") & rows["boundary_share"].isin([0.0, 1.0])]
    print("| variant | boundary | seeds | PQ | PQ things | PQ stuff | Δ PQ vs old [95 % CI] | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, frame in frames.items():
        for share, g in frame.groupby("boundary_share"):
            m = mean_se(g["pq"])
            diff, verdict = "—", "—"
            if name != "old" and "old" in frames:
                old = frames["old"][frames["old"]["boundary_share"] == share]
                d = paired_difference(dict(zip(g["seed"], g["pq"])), dict(zip(old["seed"], old["pq"])))
                diff, verdict = d.text(), d.verdict
            pq = f"{m.mean:.1f} ± {m.se:.1f}" if m.n > 1 else f"{m.mean:.1f}"
            print(
                f"| {name} | {share:.0%} | {m.n} | {pq} | "
                f"{g['pq_th'].mean():.1f} | {g['pq_st'].mean():.1f} | {diff} | {verdict} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--preset", default="synthetic", choices=["synthetic", "synthetic-quick"])
    ap.add_argument("--study", default=None, help="the converged study's folder: its P20 concave cells are 'all'")
    ap.add_argument("--iters", type=int, default=None, help="(default: the preset's)")
    ap.add_argument(
        "--variants", default="old,centre,overlap,parts,size,init,all", help=f"comma-separated, of {','.join(VARIANTS)}"
    )
    ap.add_argument(
        "--shares", default=SHARES, help="boundary shares to run (e.g. 1 first, then 0; --summary reads both)"
    )
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument(
        "--shard", default=None, help="i/n: this process's share of every variant's cells (run n processes at once)"
    )
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    summary(args) if args.summary else run(args)


if __name__ == "__main__":
    main()
