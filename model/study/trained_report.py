"""Report of the trained study: tidy table, Markdown, the "PQ against annotation seconds" figure,
and the trend rows T1–T6 of ``study.md`` stated as measured.

The trained study (:mod:`pointly.model.study.trained`) writes one tidy row per grid cell (all axes,
metrics, annotation seconds, training time). This module only *reads* those rows: it never trains
or evaluates, so a report can be rebuilt at any time from the rows of a finished, partial or merged
(several shards) study.

The trend rows T1–T6 come from :mod:`pointly.model.study.trends`, the one evaluator both studies
use: PQ differences paired by seed (cells of a grid share their seeds), each decided by its 95 %
Student-t interval; ``pass`` / ``fail`` / ``undecided`` (an interval holding 0, or one seed) /
``not measured`` (when the cells it needs are missing). This module's rows are already a trend
frame (PQ in percent). The rules are written down there and in docs/study.md, so a trend cannot
be made to appear by choosing the rule afterwards.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study.trends import (
    PAPER_P20_SHARE,
    PAPER_SEED_STD,
    full_pq,
    p20_share,
    points_rows,
    seed_pqs,
    table13,
    table14,
    trends,
    trends_table,
)
from pointly.pointgen.base.files import atomic_open, save_figure_atomic

#: the columns of a result row, in CSV order (axes, then metrics, then costs and times)
AXES = [
    "dataset",
    "split",
    "supervision",
    "points",
    "shape",
    "boundary_share",
    "dilation",
    "seed",
    "iters",
    "concave_ratio",
]
METRICS = ["pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st", "n_th", "n_st"]
COSTS = [
    "annotation_seconds",
    "seconds_per_image",
    "seconds_per_segment",
    "segments",
    "images",
    "train_seconds",
    "eval_seconds",
    "final_loss",
]
ROW_COLUMNS = ["cell_id"] + AXES + METRICS + COSTS

#: the paper's numbers (study.md: Tables 12, 13, 14), printed next to ours
PAPER_TABLE13 = {
    "convex": {5: 23.3, 10: 29.6, 20: 32.3, 30: 32.8, 50: 33.0, 100: 33.4},
    "concave": {5: 23.0, 10: 29.1, 20: 32.7, 30: 34.1, 50: 35.3, 100: 37.0},
}
PAPER_FULL_PQ = 41.3
PAPER_TABLE14 = {
    False: {0.0: 32.7, 0.05: 33.1, 0.1: 33.7, 0.25: 34.1, 0.5: 35.5, 0.75: 35.7, 1.0: 35.8},
    True: {0.0: 34.0, 0.05: 34.2, 0.1: 34.3, 0.25: 35.0, 0.5: 35.8, 0.75: 36.0, 1.0: 36.0},
}


def read_rows(path: str | Path) -> pd.DataFrame:
    """Read a results CSV into a frame with typed columns (``points`` nullable int, ``dilation`` bool)."""
    frame = pd.read_csv(path)
    return normalise(frame)


def normalise(frame: pd.DataFrame) -> pd.DataFrame:
    """Give a rows frame the study's dtypes; missing columns are added empty."""
    frame = frame.copy()
    for col in ROW_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
    frame["points"] = pd.to_numeric(frame["points"], errors="coerce").astype("Int64")
    frame["seed"] = pd.to_numeric(frame["seed"], errors="coerce").astype("Int64")
    frame["boundary_share"] = pd.to_numeric(frame["boundary_share"], errors="coerce").astype(float)
    frame["dilation"] = frame["dilation"].map(_to_bool).astype(bool)
    for col in METRICS + COSTS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["shape"] = frame["shape"].where(frame["shape"].notna(), "")
    return frame[ROW_COLUMNS + [c for c in frame.columns if c not in ROW_COLUMNS]]


def _to_bool(value) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return bool(value)


# --------------------------------------------------------------------------- Markdown
def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rows_markdown(frame: pd.DataFrame) -> str:
    """Every row as a Markdown table (axes, PQ/SQ/RQ, PQth/PQst, seconds, training time)."""
    header = [
        "cell",
        "P",
        "shape",
        "boundary",
        "dilation",
        "seed",
        "iters",
        "PQ",
        "SQ",
        "RQ",
        "PQth",
        "PQst",
        "s/segment",
        "s/image",
        "train s",
        "final loss",
    ]
    body = []
    for _, r in frame.iterrows():
        body.append(
            [
                r["cell_id"],
                "M" if r["supervision"] == "full" else _fmt_int(r["points"]),
                r["shape"] or "—",
                f"{r['boundary_share']:.2f}" if r["supervision"] != "full" else "—",
                "on" if r["dilation"] else "off",
                _fmt_int(r["seed"]),
                _fmt_int(r["iters"]),
                _fmt(r["pq"]),
                _fmt(r["sq"]),
                _fmt(r["rq"]),
                _fmt(r["pq_th"]),
                _fmt(r["pq_st"]),
                _fmt(r["seconds_per_segment"]),
                _fmt(r["seconds_per_image"]),
                _fmt(r["train_seconds"], 0),
                _fmt(r["final_loss"], 2),
            ]
        )
    return _md_table(header, body)


def _fmt_int(v) -> str:
    try:
        if v is None or pd.isna(v):
            return "—"
    except (TypeError, ValueError):
        pass
    return str(int(v))


def table13_markdown(frame: pd.DataFrame) -> str:
    """Table 13 layout: shape × points per segment, ours with the paper's in brackets, plus M."""
    tab = table13(frame)
    ps = sorted({p for s in tab.values() for p in s} | {5, 10, 20, 30, 50, 100})
    body = []
    for shape in ("convex", "concave"):
        body.append([shape] + [f"{_fmt(tab.get(shape, {}).get(p))} ({PAPER_TABLE13[shape].get(p, '—')})" for p in ps])
    full = full_pq(frame)
    text = _md_table(["shape"] + [f"P{p}" for p in ps], body)
    return text + f"\n\nFull masks (M): {_fmt(full)} (paper {PAPER_FULL_PQ}). Ours (paper's in brackets)."


def table14_markdown(frame: pd.DataFrame) -> str:
    """Table 14 layout: dilation × boundary share for P20 concave, with the paper's in brackets."""
    tab = table14(frame)
    shares = sorted({s for d in tab.values() for s in d} | set(PAPER_TABLE14[False]))
    body = [
        [label] + [f"{_fmt(tab.get(dil, {}).get(s))} ({PAPER_TABLE14[dil].get(s, '—')})" for s in shares]
        for dil, label in ((False, "no dilation"), (True, "dilation"))
    ]
    return _md_table(["boundary share"] + [f"{int(round(s * 100))}%" for s in shares], body)


def trends_markdown(frame: pd.DataFrame) -> str:
    """The T1–T6 rows as a Markdown table (id, claim, rule, verdict, numbers)."""
    return trends_table(trends(frame))


def report_markdown(
    frame: pd.DataFrame, *, title: str = "Trained study", figure: str | None = None, preamble: str = ""
) -> str:
    """The whole report page: summary, Table 13 and 14 layouts, trends, figure, every row."""
    share = p20_share(frame)
    pqs = seed_pqs(frame)
    out = io.StringIO()
    out.write(f"# {title}\n\n")
    if preamble:
        out.write(preamble.rstrip() + "\n\n")
    out.write(f"{len(frame)} cells finished.")
    if share is not None:
        out.write(f" P20 (concave) reaches **{share:.0%}** of the fully supervised PQ (paper: {PAPER_P20_SHARE:.0%}).")
    if len(pqs) >= 2:
        out.write(
            f" {len(pqs)} seeds of P20: PQ {np.mean(pqs):.2f} ± {np.std(pqs, ddof=1):.2f} "
            f"(paper: 33.96 ± {PAPER_SEED_STD})."
        )
    out.write("\n\n## PQ against points per segment (Table 13 layout)\n\n")
    out.write(table13_markdown(frame) + "\n\n")
    out.write("## P20 concave: boundary share and dilation (Table 14 layout)\n\n")
    out.write(table14_markdown(frame) + "\n\n")
    out.write("## Trends T1–T6 (study.md), as measured\n\n")
    out.write(trends_markdown(frame) + "\n\n")
    if figure:
        out.write(f"## PQ against annotation seconds\n\n![PQ against annotation seconds]({figure})\n\n")
    out.write("## Every cell\n\n")
    out.write(rows_markdown(frame) + "\n")
    return out.getvalue()


# --------------------------------------------------------------------------- figure
def plot(frame: pd.DataFrame, path: str | Path, *, x: str = "seconds_per_segment") -> None:
    """The figure "PQ against annotation seconds", written atomically as PNG.

    Left panel: PQ against annotation seconds (``x``), one line per shape over the point counts
    (boundary 0, no dilation, mean over seeds), and the full-mask reference as a star. Right panel:
    PQ of P20 concave against the boundary share, with and without dilation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    xs = frame[x].to_numpy(float) if x in frame.columns else np.array([])
    have_cost = bool(np.isfinite(xs).any() and (xs[np.isfinite(xs)] > 0).all())
    rows = points_rows(frame)
    rows = rows[(rows["boundary_share"] == 0.0) & (~rows["dilation"])]
    for shape, marker in (("convex", "o"), ("concave", "s")):
        sub = rows[rows["shape"] == shape].groupby("points")[["pq", x]].mean().sort_index()
        if len(sub):
            ax1.plot(sub[x], sub["pq"], marker=marker, label=shape)
            for p, r in sub.iterrows():
                ax1.annotate(f"P{p}", (r[x], r["pq"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    full = frame[frame["supervision"] == "full"]
    if len(full):
        ax1.scatter([full[x].mean()], [full["pq"].mean()], marker="*", s=160, color="k", label="full masks", zorder=3)
    if have_cost:
        ax1.set_xscale("log")
    ax1.set_xlabel("annotation seconds per segment (cost model)" if x == "seconds_per_segment" else x)
    ax1.set_ylabel("PQ")
    ax1.set_title("PQ against annotation seconds")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    tab = table14(frame)
    for dil, label, marker in ((False, "no dilation", "o"), (True, "dilation", "^")):
        series = tab.get(dil, {})
        if series:
            ss = sorted(series)
            ax2.plot([s * 100 for s in ss], [series[s] for s in ss], marker=marker, label=label)
    ax2.set_xlabel("boundary points (% of P20, concave)")
    ax2.set_ylabel("PQ")
    ax2.set_title("Boundary share and dilation")
    ax2.grid(alpha=0.3)
    if tab:
        ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)


def write_report(
    frame: pd.DataFrame, out_dir: str | Path, *, title: str = "Trained study", preamble: str = ""
) -> dict[str, Path]:
    """Write ``table.csv`` (rows sorted by cell), ``report.md`` and ``pq_vs_seconds.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = (
        normalise(frame)
        .sort_values(["supervision", "shape", "points", "boundary_share", "dilation", "seed"], na_position="first")
        .reset_index(drop=True)
    )
    paths = {"table": out_dir / "table.csv", "report": out_dir / "report.md", "figure": out_dir / "pq_vs_seconds.png"}
    with atomic_open(paths["table"], "w", newline="") as fh:
        frame.to_csv(fh, index=False)
    plot(frame, paths["figure"])
    with atomic_open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(report_markdown(frame, title=title, figure=paths["figure"].name, preamble=preamble))
    return paths


def trend_dict(frame: pd.DataFrame) -> list[Mapping[str, str]]:
    """The trend rows as plain dicts (for JSON output)."""
    return [t.__dict__.copy() for t in trends(frame)]
