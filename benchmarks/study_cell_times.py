"""Where a trained study cell's time goes, from the study folder itself (no extra run): per cell,
the training steps (forward + losses + backward + optimiser, summed from ``train/metrics.csv``), the
data loading and target building between the steps (the rest of ``train_seconds``), and the
evaluation on the validation split (``eval_seconds``); the mean per supervision, and the study's
wall time at that rate for its number of jobs.

Usage: ``python benchmarks/study_cell_times.py STUDY_DIR [--jobs 2] [--cells 48]``; prints Markdown.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path


def cell_times(study: Path) -> list[dict]:
    import json

    out = []
    for row_file in sorted((study / "cells").glob("*/row.json")):
        r = json.loads(row_file.read_text(encoding="utf-8"))
        metrics = row_file.parent / "train" / "metrics.csv"
        if not metrics.is_file() or r.get("train_seconds") is None:
            continue
        with open(metrics, newline="") as fh:
            steps = [float(x["seconds"]) for x in csv.DictReader(fh) if x.get("seconds")]
        train = float(r["train_seconds"])
        out.append(
            {
                "cell": row_file.parent.name,
                "supervision": r["supervision"],
                "iters": len(steps),
                "steps": sum(steps),
                "data": max(train - sum(steps), 0.0),
                "eval": float(r["eval_seconds"]),
                "total": train + float(r["eval_seconds"]),
            }
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("study", type=Path)
    ap.add_argument("--jobs", type=int, default=2, help="cells that ran at once")
    ap.add_argument("--cells", type=int, default=None, help="cells of the whole study (default: those present)")
    args = ap.parse_args()
    rows = cell_times(args.study)
    if not rows:
        raise SystemExit(f"no finished cells with metrics in {args.study}")
    print(
        "| supervision | cells | iterations | steps (s) | data + targets (s) | evaluation (s) | cell (s) | s / iteration |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for sup in sorted({r["supervision"] for r in rows}):
        g = [r for r in rows if r["supervision"] == sup]
        mean = {k: sum(r[k] for r in g) / len(g) for k in ("iters", "steps", "data", "eval", "total")}
        print(
            f"| {sup} | {len(g)} | {mean['iters']:.0f} | {mean['steps']:.0f} | {mean['data']:.0f} | "
            f"{mean['eval']:.0f} | {mean['total']:.0f} | {(mean['steps'] + mean['data']) / mean['iters']:.3f} |"
        )
    per_cell = sum(r["total"] for r in rows) / len(rows)
    n = args.cells or len(rows)
    print(
        f"\n{len(rows)} cells, {per_cell / 60:.1f} min a cell with {args.jobs} at once: "
        f"{n} cells ≈ {n * per_cell / args.jobs / 3600:.1f} h"
    )


if __name__ == "__main__":
    main()
