"""The plateau of the converged study's full-mask reference (benchmarks/experiments/plateau.sh):
PQ (all / things / stuff) on the 500 validation images per training length, each seed, and the
figure of PQ against iterations (docs/figures/study_plateau.png). With ``--fp32 DIR`` (the runs of
head_init.sh) it also pairs bf16 with float32 at the same length and seeds (official init, AdamW)::

    python benchmarks/experiments/plateau_table.py OUT_DIR [--fp32 HEAD_INIT_DIR] [--figure PNG]
        [--tag TAG] [--compare TAG=LABEL ...]

``--compare`` adds the runs of other variants (``TAG=LABEL``, an empty TAG for the plain runs) as
further curves of the figure, e.g. ``--tag tags --compare "=random init"``. The figure's x axis is
the training images seen (iterations × the run's ``solver.ims_per_batch``), so that variants with
another batch size compare at equal compute.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path


def load(out: Path, tag: str = "") -> dict[int, dict[int, dict]]:
    """iterations -> seed -> pq.json of ``bf16[-TAG]-i<iters>-s<seed>`` runs (PQ in 0-1)."""
    runs: dict[int, dict[int, dict]] = {}
    name = "bf16" + (f"-{re.escape(tag)}" if tag else "")
    for pq in sorted(out.glob("bf16*-i*-s*/pq.json")):
        m = re.fullmatch(rf"{name}-i(\d+)-s(\d+)", pq.parent.name)
        if m:
            runs.setdefault(int(m[1]), {})[int(m[2])] = json.loads(pq.read_text())
    return runs


def batch_size(out: Path, tag: str = "") -> int:
    """``solver.ims_per_batch`` of the ``bf16[-TAG]`` runs (the same for all of them)."""
    import yaml

    name = "bf16" + (f"-{re.escape(tag)}" if tag else "")
    sizes = {
        int(yaml.safe_load(c.read_text())["solver"]["ims_per_batch"])
        for c in out.glob("bf16*-i*-s*/config.yaml")
        if re.fullmatch(rf"{name}-i(\d+)-s(\d+)", c.parent.name)
    }
    if len(sizes) != 1:
        raise SystemExit(f"runs {name}-*: batch sizes {sorted(sizes)}, expected one")
    return sizes.pop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument(
        "--fp32", type=Path, default=None, help="head_init.sh's folder (official-AdamW-s<seed> runs, 2000 it)"
    )
    ap.add_argument("--figure", type=Path, default=None)
    ap.add_argument("--tag", default="", help="a schedule variant of plateau.sh (TAG), e.g. lr3e-3")
    ap.add_argument("--label", default=None, help="the figure's name for --tag's runs")
    ap.add_argument("--compare", action="append", default=[], metavar="TAG=LABEL", help="another curve")
    args = ap.parse_args()
    from pointly.model.study.intervals import paired_difference
    from pointly.model.study.trends import mean_se

    runs = load(args.out, args.tag)
    print("| iterations | seeds | PQ | PQ things | PQ stuff | PQ per seed |")
    print("|---|---|---|---|---|---|")
    for iters, by_seed in sorted(runs.items()):
        cells = []
        for key in ("All", "Things", "Stuff"):
            s = mean_se(100 * r[key]["pq"] for r in by_seed.values())
            cells.append(f"{s.mean:.1f} ± {s.se:.1f}" if s.n > 1 else f"{s.mean:.1f}")
        seeds = ", ".join(f"s{sd}: {100 * r['All']['pq']:.1f}" for sd, r in sorted(by_seed.items()))
        print(f"| {iters} | {len(by_seed)} | " + " | ".join(cells) + f" | {seeds} |")
    pq = {it: {sd: 100 * r["All"]["pq"] for sd, r in b.items()} for it, b in runs.items()}
    for n in sorted(pq):
        if 2 * n in pq:
            d = paired_difference(pq[2 * n], pq[n])
            print(f"\nPQ at {2 * n} − PQ at {n} iterations: {d.text()} (plateau: |difference| < 1.0)")
    if args.fp32 is not None and 2000 in pq:
        fp32 = {}
        for f in args.fp32.glob("official-AdamW-s*/pq.json"):
            fp32[int(f.parent.name.rsplit("-s", 1)[1])] = 100 * json.loads(f.read_text())["All"]["pq"]
        d = paired_difference(pq[2000], fp32)
        print(f"bf16 − float32 at 2000 iterations: {d.text()} → {d.verdict}")
    if args.figure is not None and pq:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from pointly.pointgen.base.files import save_figure_atomic

        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        batch = batch_size(args.out, args.tag)
        curves = [(args.label or args.tag or "bf16", {batch * i: v for i, v in pq.items()})]
        for item in args.compare:
            tag, _, label = item.partition("=")
            other, b = load(args.out, tag), batch_size(args.out, tag)
            curves.append(
                (label or tag, {b * i: {sd: 100 * r["All"]["pq"] for sd, r in v.items()} for i, v in other.items()})
            )
        its = sorted({i for _, c in curves for i in c})
        for label, c in curves:
            xs = sorted(c)
            stats = [mean_se(c[i].values()) for i in xs]
            ax.errorbar(
                xs,
                [s.mean for s in stats],
                yerr=[0 if s.n < 2 else s.se for s in stats],
                marker="o",
                capsize=3,
                label=label,
            )
            for i in xs:
                ax.scatter([i] * len(c[i]), list(c[i].values()), color="grey", s=10, zorder=3)
        if len(curves) > 1:
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_xticks(its, [f"{i // 1000}k" for i in its])
        ax.set_xlabel("training images seen (iterations × batch; schedule scaled to the length)")
        ax.set_ylabel("PQ, 500 validation images")
        ax.set_title("synthetic_small from full masks (bf16 CPU autocast)")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure_atomic(fig, args.figure, dpi=110)
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
