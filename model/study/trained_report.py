"""The trained study's tables and figure, for the one report (:func:`pointly.model.study.report.write_report`).

Per dataset and rule set: P20's share of the fully supervised PQ and the seed spread, the paper's
Table 13 (PQ against points per segment and shape) and Table 14 (P20 concave: boundary share and
dilation) layouts with the paper's numbers in brackets; after them every cell. The tables read a
trend frame (:func:`pointly.model.study.report.trend_frame`: PQ in percent, dilation on/off).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study.trends import (
    PAPER_P20_SHARE,
    PAPER_SEED_STD,
    full_pq,
    markdown_table,
    p20_share,
    points_rows,
    seed_pqs,
    table13,
    table14,
)
from pointly.pointgen.base.files import save_figure_atomic

NOTE = "PQ / SQ / RQ of the trained model on the validation split, in %."

#: the paper's numbers (the TPAMI paper's Tables 12, 13, 14; docs/study.md), printed next to ours
PAPER_TABLE13 = {
    "convex": {5: 23.3, 10: 29.6, 20: 32.3, 30: 32.8, 50: 33.0, 100: 33.4},
    "concave": {5: 23.0, 10: 29.1, 20: 32.7, 30: 34.1, 50: 35.3, 100: 37.0},
}
PAPER_FULL_PQ = 41.3
PAPER_TABLE14 = {
    False: {0.0: 32.7, 0.05: 33.1, 0.1: 33.7, 0.25: 34.1, 0.5: 35.5, 0.75: 35.7, 1.0: 35.8},
    True: {0.0: 34.0, 0.05: 34.2, 0.1: 34.3, 0.25: 35.0, 0.5: 35.8, 0.75: 36.0, 1.0: 36.0},
}


# --------------------------------------------------------------------------- Markdown
def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


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
                r["dilation"],
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
    return markdown_table(header, body)


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
    text = markdown_table(["shape"] + [f"P{p}" for p in ps], body)
    return text + f"\n\nFull masks (M): {_fmt(full)} (paper {PAPER_FULL_PQ}). Ours (paper's in brackets)."


def table14_markdown(frame: pd.DataFrame) -> str:
    """Table 14 layout: dilation × boundary share for P20 concave, with the paper's in brackets."""
    tab = table14(frame)
    shares = sorted({s for d in tab.values() for s in d} | set(PAPER_TABLE14[False]))
    body = [
        [label] + [f"{_fmt(tab.get(dil, {}).get(s))} ({PAPER_TABLE14[dil].get(s, '—')})" for s in shares]
        for dil, label in ((False, "no dilation"), (True, "dilation"))
    ]
    return markdown_table(["boundary share"] + [f"{int(round(s * 100))}%" for s in shares], body)


def section(rows: pd.DataFrame, tf: pd.DataFrame) -> str:
    """One dataset and rule set: P20's share of the full-mask PQ, the seed spread, and the Table 13
    and Table 14 layouts with the paper's numbers (``tf``: its trend frame)."""
    share = p20_share(tf)
    pqs = seed_pqs(tf)
    out = io.StringIO()
    out.write(f"{len(rows)} cells.")
    if share is not None:
        out.write(f" P20 (concave) reaches **{share:.0%}** of the fully supervised PQ (paper: {PAPER_P20_SHARE:.0%}).")
    if len(pqs) >= 2:
        out.write(
            f" {len(pqs)} seeds of P20: PQ {np.mean(pqs):.2f} ± {np.std(pqs, ddof=1):.2f} "
            f"(paper: 33.96 ± {PAPER_SEED_STD})."
        )
    out.write("\n\n### PQ against points per segment (Table 13 layout)\n\n")
    out.write(table13_markdown(tf) + "\n\n")
    out.write("### P20 concave: boundary share and dilation (Table 14 layout)\n\n")
    out.write(table14_markdown(tf) + "\n")
    return out.getvalue()


def tail(frame: pd.DataFrame) -> str:
    """Every cell, after the per-dataset sections."""
    return "## Every cell\n\n" + rows_markdown(frame) + "\n"


# --------------------------------------------------------------------------- figure
def plot(frame: pd.DataFrame, path: str | Path, *, x: str = "seconds_per_segment") -> None:
    """The figure "PQ against annotation seconds", written atomically as PNG (the first dataset
    and rule set of the rows, its main grid).

    Left panel: PQ against annotation seconds (``x``), one line per shape over the point counts
    (boundary 0, no dilation, mean over seeds), and the full-mask reference as a star. Right panel:
    PQ of P20 concave against the boundary share, with and without dilation.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pointly.model.study.report import groups, trend_frame

    parts = groups(frame)
    if parts:
        (_, rules), rows = next(iter(parts.items()))
        frame = trend_frame(rows, rules)
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
