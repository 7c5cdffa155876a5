"""The trained ablation of the point-supervision fixes (issue "Point supervision as the paper means
it"): P20 concave points at 0 % and 100 % boundary share, the first design ("old") against each fix
alone and all fixes together, 3 sampling seeds each, on the synthetic set.

Each variant is one trained-study folder under OUT (``pointly.model.study.trained`` on the study
engine: resumable cell by cell, rows in ``results.csv``); ``--summary`` prints PQ mean ± standard
error per variant and share. Usage::

    python benchmarks/experiments/pointsup_ablation.py --out runs/ablation [--iters 2000] \\
        [--variants old,all] [--train 1000 --val 500]
    python benchmarks/experiments/pointsup_ablation.py --out runs/ablation --summary
"""

from __future__ import annotations

import argparse
import math
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
GRID = "points=20;shapes=concave;shares=0,1;seeds=0,1,2;full=0"


def run(args) -> None:
    from pointly.data.synth import ensure_dataset
    from pointly.model.study.trained import run_from_cli

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    root = ensure_dataset(args.data_root, train=args.train, val=args.val, progress=True)
    names = args.variants.split(",")
    for name in names:
        _rename_preset(Path(args.out) / name)
    # one cell of each variant in turn, so that a partial run holds comparable cells of every variant
    for _ in range(6):  # the grid's 6 cells
        for name in names:
            rules, overrides = VARIANTS[name]
            run_from_cli(
                preset="synthetic-quick",
                out=Path(args.out) / name,
                iters=args.iters,
                synthetic_root=root,
                grid=GRID,
                target_rules=rules,
                config_overrides=overrides,
                progress=True,
                max_cells=1,
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

    frames = {
        name: load_rows(Path(args.out) / name) for name in VARIANTS if (Path(args.out) / name / "results.csv").is_file()
    }
    print("| variant | boundary | seeds | PQ | PQ things | PQ stuff | Δ PQ vs old [95 % CI] | verdict |")
    print("|---|---|---|---|---|---|---|---|")
    for name, frame in frames.items():
        for share, g in frame.groupby("boundary_share"):
            n = len(g)
            se = g["pq"].std(ddof=1) / math.sqrt(n) if n > 1 else float("nan")
            diff, verdict = "—", "—"
            if name != "old" and "old" in frames:
                old = frames["old"][frames["old"]["boundary_share"] == share]
                d = paired_difference(dict(zip(g["seed"], g["pq"])), dict(zip(old["seed"], old["pq"])))
                diff, verdict = d.text(), d.verdict
            pq = f"{g['pq'].mean():.1f} ± {se:.1f}" if n > 1 else f"{g['pq'].mean():.1f}"
            print(
                f"| {name} | {share:.0%} | {n} | {pq} | "
                f"{g['pq_th'].mean():.1f} | {g['pq_st'].mean():.1f} | {diff} | {verdict} |"
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--iters", type=int, default=2000)
    ap.add_argument("--variants", default="old,all", help=f"comma-separated, of {','.join(VARIANTS)}")
    ap.add_argument("--train", type=int, default=1000)
    ap.add_argument("--val", type=int, default=500)
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--summary", action="store_true")
    args = ap.parse_args()
    summary(args) if args.summary else run(args)


if __name__ == "__main__":
    main()
