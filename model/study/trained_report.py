"""The trained study's tables and figure, for the one report (:func:`pointly.model.study.report.write_report`).

Per dataset and rule set: P20's share of the fully supervised PQ and the seed spread, the paper's
Table 13 (PQ against points per segment and shape) and Table 14 (P20 concave: boundary share and
dilation) layouts with the paper's numbers in brackets; after them every cell. The tables read a
trend frame (:func:`pointly.model.study.report.trend_frame`: PQ in percent, dilation on/off).

Every number over seeds carries its standard error (sample standard deviation, ddof 1, over √n;
:func:`pointly.model.study.trends.mean_se`): ``mean ± SE`` in the tables and the text, error bars
of ± SE in the figure; a cell with one seed shows ``mean ± —`` and has no bar. The seed spread
of P20 concave is set against the paper's by the χ² interval of its standard deviation
(:func:`pointly.model.study.intervals.sd_interval`): three seeds cannot pin a spread down.
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study.intervals import paired_difference, sd_interval
from pointly.model.study.trends import (
    PAPER_P20_SHARE,
    PAPER_SEED_STD,
    MeanSE,
    by_seed,
    full_pq,  # noqa: F401 (means only; re-exported with table13, table14 for callers reading them here)
    full_pq_stats,
    markdown_table,
    mean_se,
    p20_share,
    p20_share_interval,
    points_rows,
    seed_pqs,
    table13,  # noqa: F401
    table13_stats,
    table14,  # noqa: F401
    table14_stats,
)
from pointly.pointgen.base.files import save_figure_atomic

NOTE = "PQ / SQ / RQ of the trained model on the validation split, in %."

#: the shapes of the paper's Table 13; any other shape a study trained (image-aware targets) is
#: shown after them and set against the better of the two
HULLS = ("convex", "concave")
#: the paper's numbers (the TPAMI paper's Tables 12, 13, 14; docs/study.md), printed next to ours
PAPER_TABLE13 = {
    "convex": {5: 23.3, 10: 29.6, 20: 32.3, 30: 32.8, 50: 33.0, 100: 33.4},
    "concave": {5: 23.0, 10: 29.1, 20: 32.7, 30: 34.1, 50: 35.3, 100: 37.0},
}
PAPER_FULL_PQ = 41.3
#: the paper's mean PQ of the P20 seeds (Table 12); its spread PAPER_SEED_STD is a standard deviation
PAPER_SEED_MEAN = 33.96
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


def _se_text(se: float, digits: int = 1) -> str:
    """A standard error with ``digits`` decimals, or one more where it would round to 0."""
    if se > 0 and round(se, digits) == 0:
        digits += 1
    return f"{se:.{digits}f}"


def _pm(stats: MeanSE | None, digits: int = 1) -> str:
    """``mean ± SE`` of one cell's seeds; ``mean ± —`` with one seed; ``—`` with none."""
    if stats is None or not stats.n:
        return "—"
    if stats.n < 2 or math.isnan(stats.se):
        return f"{stats.mean:.{digits}f} ± —"
    return f"{stats.mean:.{digits}f} ± {_se_text(stats.se, digits)}"


def _seeds_note(cells: list[MeanSE]) -> str:
    """The line under a table: how many seeds its means are over, and the paper's in brackets."""
    ns = sorted({c.n for c in cells if c.n})
    if not ns:
        return "Ours: mean ± standard error over the seeds of each cell; the paper's in brackets."
    if ns == [1]:
        return "Ours: one seed per cell (± —: no standard error); the paper's in brackets."
    count = f"{ns[0]} seeds" if len(ns) == 1 else f"{ns[0]}–{ns[-1]} seeds per cell"
    note = f"Ours: mean ± standard error over {count}"
    if ns[0] < 2:
        note += " (± —: one seed, no standard error)"
    return note + "; the paper's in brackets."


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


def _fmt_int(v) -> str:
    try:
        if v is None or pd.isna(v):
            return "—"
    except (TypeError, ValueError):
        pass
    return str(int(v))


def full_line(frame: pd.DataFrame) -> str:
    """The full-mask reference under Table 13, e.g. ``Full masks (M): 74.9 ± 0.8 (3 seeds; paper 41.3).``"""
    full = full_pq_stats(frame)
    if not full.n:
        return f"Full masks (M): — (paper {PAPER_FULL_PQ})."
    value = f"{full.mean:.1f}" if full.n < 2 else _pm(full)
    return f"Full masks (M): {value} ({_seeds(full.n)}; paper {PAPER_FULL_PQ})."


def table13_markdown(frame: pd.DataFrame) -> str:
    """Table 13 layout: shape × points per segment, ours (mean ± SE over seeds) with the paper's in
    brackets, then the seeds note and the full-mask reference (M)."""
    tab = table13_stats(frame)
    ps = sorted({p for s in tab.values() for p in s} | {5, 10, 20, 30, 50, 100})
    body = []
    for shape in ("convex", "concave", *sorted(set(tab) - set(HULLS))):  # then image-aware shapes, if run
        paper = PAPER_TABLE13.get(shape, {})
        body.append([shape] + [f"{_pm(tab.get(shape, {}).get(p))} ({paper.get(p, '—')})" for p in ps])
    text = markdown_table(["shape"] + [f"P{p}" for p in ps], body)
    note = _seeds_note([c for s in tab.values() for c in s.values()])
    return text + f"\n\n{note}\n\n{full_line(frame)}"


def image_aware_markdown(frame: pd.DataFrame) -> str:
    """Each image-aware shape (e.g. ``watershed``) against the better hull at every P both have
    (boundary 0, no dilation; the better hull by mean PQ), paired by seed with its 95 % interval;
    "" when the study trained none."""
    tab = table13_stats(frame)
    body = []
    for shape in sorted(set(tab) - set(HULLS)):
        for p in sorted(tab[shape]):
            hulls = [h for h in HULLS if p in tab.get(h, {})]
            if not hulls:
                continue
            best = max(hulls, key=lambda h: tab[h][p].mean)
            d = paired_difference(by_seed(frame, points=p, shape=shape), by_seed(frame, points=p, shape=best))
            body.append([f"P{p}", f"{shape} {_pm(tab[shape][p])}", f"{best} {_pm(tab[best][p])}", d.text(), d.verdict])
    if not body:
        return ""
    return markdown_table(["points", "image-aware", "better hull", "image-aware − hull", "verdict"], body)


def table14_markdown(frame: pd.DataFrame) -> str:
    """Table 14 layout: dilation × boundary share for P20 concave, ours (mean ± SE over seeds) with
    the paper's in brackets, then the seeds note."""
    tab = table14_stats(frame)
    shares = sorted({s for d in tab.values() for s in d} | set(PAPER_TABLE14[False]))
    body = [
        [label] + [f"{_pm(tab.get(dil, {}).get(s))} ({PAPER_TABLE14[dil].get(s, '—')})" for s in shares]
        for dil, label in ((False, "no dilation"), (True, "dilation"))
    ]
    text = markdown_table(["boundary share"] + [f"{int(round(s * 100))}%" for s in shares], body)
    return text + "\n\n" + _seeds_note([c for d in tab.values() for c in d.values()])


def share_sentence(frame: pd.DataFrame) -> str:
    """P20's share of the full-mask PQ with its standard error over the seeds both cells have, e.g.
    ``P20 (concave) reaches **81.7 ± 1.3 %** of the fully supervised PQ (3 paired seeds; paper: 82 %).``;
    "" when either cell is missing."""
    paper = f"paper: {PAPER_P20_SHARE * 100:.0f} %"
    share = p20_share_interval(frame)
    if share is None:
        ratio = p20_share(frame)
        if ratio is None:
            return ""
        return (
            f"P20 (concave) reaches **{ratio * 100:.1f} %** of the fully supervised PQ (ratio of the means: "
            f"no seed has both cells; {paper})."
        )
    pct = MeanSE(share.mean * 100, share.se * 100, share.n)
    paired = f"{share.n} paired seed{'s' if share.n != 1 else ''}"
    value = f"{pct.mean:.1f} %" if pct.n < 2 else f"{pct.mean:.1f} ± {_se_text(pct.se)} %"
    return f"P20 (concave) reaches **{value}** of the fully supervised PQ ({paired}; {paper})."


def spread_sentence(frame: pd.DataFrame) -> str:
    """The seed spread of P20 concave (≥ 2 seeds): mean ± standard deviation and the standard error,
    next to the paper's (whose ± is a standard deviation); "" with fewer seeds."""
    pqs = seed_pqs(frame)
    stats = mean_se(pqs)
    if stats.n < 2:
        return ""
    spread = sd_interval(pqs)
    where = {
        "larger": f"lies above the paper's {PAPER_SEED_STD}",
        "smaller": f"lies below the paper's {PAPER_SEED_STD}",
        "not separable": f"holds the paper's {PAPER_SEED_STD}: not separable",
    }[spread.against(PAPER_SEED_STD)]
    return (
        f"{stats.n} seeds of P20 (concave): PQ {stats.mean:.2f} ± {stats.sd:.2f} (standard deviation), "
        f"standard error {stats.se:.2f} (paper: {PAPER_SEED_MEAN:.2f} ± {PAPER_SEED_STD}, standard deviation); "
        f"the standard deviation's {spread.confidence:.0%} interval (χ²), "
        f"[{spread.low:.2f}, {spread.high:.2f}], {where}."
    )


def section(rows: pd.DataFrame, tf: pd.DataFrame) -> str:
    """One dataset and rule set: P20's share of the full-mask PQ, the seed spread, and the Table 13
    and Table 14 layouts with the paper's numbers (``tf``: its trend frame)."""
    out = io.StringIO()
    out.write(f"{len(rows)} cells.")
    for sentence in (share_sentence(tf), spread_sentence(tf)):
        if sentence:
            out.write(" " + sentence)
    out.write("\n\n### PQ against points per segment (Table 13 layout)\n\n")
    out.write(table13_markdown(tf) + "\n\n")
    out.write("### P20 concave: boundary share and dilation (Table 14 layout)\n\n")
    out.write(table14_markdown(tf) + "\n")
    aware = image_aware_markdown(tf)
    if aware:
        out.write("\n### Image-aware targets against the better hull\n\n")
        out.write("PQ in %, mean ± standard error; the difference paired by seed, 95 % interval.\n\n")
        out.write(aware + "\n")
    return out.getvalue()


def tail(frame: pd.DataFrame) -> str:
    """Every cell, after the per-dataset sections."""
    return "## Every cell\n\n" + rows_markdown(frame) + "\n"


# --------------------------------------------------------------------------- figure
def cost_series(frame: pd.DataFrame, x: str = "seconds_per_segment") -> dict[str, pd.DataFrame]:
    """The left panel's lines of a trend frame: per shape (boundary 0, no dilation) one row per point
    count with the mean cost ``x``, the mean PQ ``pq``, its standard error ``se`` (nan with one
    seed) and the number of seeds ``n``; ``"full"`` the full-mask reference alike (one row)."""
    cost = frame[x] if x in frame.columns else pd.Series(np.nan, index=frame.index)

    def summary(rows: pd.DataFrame, key: object) -> dict[str, object]:
        stats = mean_se(rows["pq"])
        xs = pd.to_numeric(cost.loc[rows.index], errors="coerce")
        return {"key": key, x: float(xs.mean()), "pq": stats.mean, "se": stats.se, "n": stats.n}

    out: dict[str, pd.DataFrame] = {}
    rows = points_rows(frame)
    rows = rows[(rows["boundary_share"] == 0.0) & (~rows["dilation"].astype(bool))]
    for shape in ("convex", "concave", *sorted(set(rows["shape"].dropna().astype(str)) - set(HULLS))):
        sub = rows[rows["shape"] == shape]
        if len(sub):
            table = pd.DataFrame([summary(g, int(p)) for p, g in sub.groupby("points")])
            table = table[table["n"] > 0]
            if len(table):
                out[shape] = table.rename(columns={"key": "points"}).set_index("points").sort_index()
    full = frame[frame["supervision"] == "full"]
    if len(full) and mean_se(full["pq"]).n:
        out["full"] = pd.DataFrame([summary(full, "M")]).set_index("key")
    return out


def _errorbars(ax, xs, ys, ses, **kw) -> None:
    """± SE bars at the points with a standard error (≥ 2 seeds); none at the others."""
    xs, ys, ses = (np.asarray(v, float) for v in (xs, ys, ses))
    keep = np.isfinite(ses) & np.isfinite(xs) & np.isfinite(ys)
    if keep.any():
        ax.errorbar(xs[keep], ys[keep], yerr=ses[keep], fmt="none", capsize=3, elinewidth=1, **kw)


def figure(frame: pd.DataFrame, *, x: str = "seconds_per_segment"):
    """The figure of :func:`plot` as a matplotlib Figure (not saved, not closed)."""
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
    series = cost_series(frame, x)
    others = sorted(set(series) - {*HULLS, "full"})  # image-aware shapes, if the study trained them
    for shape, marker in (("convex", "o"), ("concave", "s"), *((o, "D") for o in others)):
        sub = series.get(shape)
        if sub is not None:
            (line,) = ax1.plot(sub[x], sub["pq"], marker=marker, label=shape)
            _errorbars(ax1, sub[x], sub["pq"], sub["se"], ecolor=line.get_color())
            for p, r in sub.iterrows():
                ax1.annotate(f"P{p}", (r[x], r["pq"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    full = series.get("full")
    if full is not None:
        ax1.scatter(full[x], full["pq"], marker="*", s=160, color="k", label="full masks", zorder=3)
        _errorbars(ax1, full[x], full["pq"], full["se"], ecolor="k", zorder=3)
    if have_cost:
        ax1.set_xscale("log")
    ax1.set_xlabel("annotation seconds per segment (cost model)" if x == "seconds_per_segment" else x)
    ax1.set_ylabel("PQ (mean ± SE over seeds)")
    ax1.set_title("PQ against annotation seconds")
    ax1.grid(alpha=0.3)
    ax1.legend(fontsize=8)
    tab = table14_stats(frame)
    for dil, label, marker in ((False, "no dilation", "o"), (True, "dilation", "^")):
        cells = tab.get(dil, {})
        if cells:
            ss = sorted(cells)
            shares = [s * 100 for s in ss]
            pqs = [cells[s].mean for s in ss]
            (line,) = ax2.plot(shares, pqs, marker=marker, label=label)
            _errorbars(ax2, shares, pqs, [cells[s].se for s in ss], ecolor=line.get_color())
    ax2.set_xlabel("boundary points (% of P20, concave)")
    ax2.set_ylabel("PQ (mean ± SE over seeds)")
    ax2.set_title("Boundary share and dilation")
    ax2.grid(alpha=0.3)
    if tab:
        ax2.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot(frame: pd.DataFrame, path: str | Path, *, x: str = "seconds_per_segment") -> None:
    """The figure "PQ against annotation seconds", written atomically as PNG (the first dataset
    and rule set of the rows, its main grid).

    Left panel: PQ against annotation seconds (``x``), one line per shape over the point counts
    (boundary 0, no dilation, mean over seeds), and the full-mask reference as a star. Right panel:
    PQ of P20 concave against the boundary share, with and without dilation. Every point with two
    or more seeds carries an error bar of ± its standard error over the seeds (:func:`cost_series`,
    :func:`pointly.model.study.trends.table14_stats`); a point with one seed has none.
    """
    save_figure_atomic(figure(frame, x=x), path, dpi=110)
