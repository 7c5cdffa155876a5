"""The target study's tables and figure, for the one report (:func:`pointly.model.study.report.write_report`).

PQ here is the PQ of the *targets* (read as a panoptic prediction, ignore = VOID) against the true
masks, in percent — not the PQ of a trained model — so its absolute values are not comparable with
the paper's tables; the trends are. IoU and coverage are stored as fractions and shown in percent.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study.report import main_dilation, main_grid, main_ratio, rule_sets
from pointly.model.study.trends import MeanSE, markdown_table, mean_se
from pointly.pointgen.base.files import save_figure_atomic
from pointly.pointgen.targets.options import TARGET_SHAPES

POINTS = (5, 10, 20, 30, 50, 100)
SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
NOTE = (
    "PQ is the PQ of the targets themselves against the true masks (ignore = VOID), not of a "
    "trained model; PQ in %, mean ± standard error over seeds."
)


def _sel(frame: pd.DataFrame, **eq) -> pd.DataFrame:
    out = frame
    for k, v in eq.items():
        if isinstance(v, float):
            out = out[np.isclose(out[k].astype(float), v)]
        else:
            out = out[out[k] == v]
    return out


def shapes_of(frame: pd.DataFrame) -> list[str]:
    """The shapes of the table rows: convex and concave always (the paper's Table 13), then any
    other shape the rows hold (the image-aware regions), in :data:`TARGET_SHAPES` order."""
    present = set(frame["shape"]) if "shape" in frame else set()
    return [s for s in TARGET_SHAPES if s in ("convex", "concave") or s in present]


def _dilated(frame: pd.DataFrame) -> pd.Series:
    return frame["dilation"] != "off"


def pq_table(frame: pd.DataFrame, metric: str = "pq", dilation: bool = False) -> dict[str, dict[int, MeanSE]]:
    """Table 13 layout: shape → points → mean, standard error and number of seeds of ``metric`` at
    share 0, dilation off (or on)."""
    f = _sel(main_grid(frame), supervision="points", boundary_share=0.0)
    f = f[_dilated(f) == dilation]
    out: dict[str, dict[int, MeanSE]] = {}
    for shape in shapes_of(frame):
        out[shape] = {}
        for p in POINTS:
            v = _sel(f, shape=shape, points=p)[metric].astype(float)
            if len(v):
                out[shape][p] = mean_se(v)
    return out


def share_table(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> dict[bool, dict[float, MeanSE]]:
    """Table 14 layout: dilation on/off → share → mean, standard error and seeds of the target PQ."""
    f = _sel(main_grid(frame), supervision="points", points=points, shape=shape)
    out: dict[bool, dict[float, MeanSE]] = {False: {}, True: {}}
    for dil in (False, True):
        g = f[_dilated(f) == dil]
        for b in SHARES:
            v = _sel(g, boundary_share=b)["pq"].astype(float)
            if len(v):
                out[dil][b] = mean_se(v)
    return out


def _cell(v: MeanSE | None, scale: float = 1.0) -> str:
    if v is None:
        return "–"
    return f"{scale * v.mean:.1f}" + (f" ± {scale * v.se:.1f}" if v.n > 1 else "")


def _num(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.1f}"


def _dilation_key(label: str) -> tuple[float, float]:
    if label == "off":
        return (-1.0, -1.0)
    lo, _, hi = label.partition(":")
    return (float(lo), float(hi or lo))


def defaults_table(frame: pd.DataFrame) -> str:
    """Target PQ by concave ratio × dilation (P10/P20/P50, share 0, mean over seeds and points), if swept."""
    f = _sel(frame, supervision="points", boundary_share=0.0)
    f = f[f["points"].isin([10, 20, 50])]
    conc = f[f["shape"] == "concave"]
    ratios = sorted(conc["concave_ratio"].astype(float).unique())
    labels = sorted(frame["dilation"].unique(), key=_dilation_key)
    if len(ratios) < 2 and len(labels) < 3:
        return ""

    def row(g: pd.DataFrame) -> list[str]:
        return [_num(g[g["dilation"] == d]["pq"].mean()) if (g["dilation"] == d).any() else "–" for d in labels]

    rows = [[f"concave {r:g}"] + row(conc[np.isclose(conc["concave_ratio"], r)]) for r in ratios]
    rows.append(["convex"] + row(f[f["shape"] == "convex"]))
    return (
        markdown_table(["target PQ (%)"] + [("no dilation" if d == "off" else f"dilation {d}") for d in labels], rows)
        + "\n"
    )


def section(rows: pd.DataFrame, tf: pd.DataFrame) -> str:
    """The tables of one dataset and rule set: target PQ (and IoU, coverage) by points and shape,
    P20 concave by boundary share and dilation, and the concave-ratio × dilation sweep if run."""
    t13 = pq_table(rows)
    r, d = main_ratio(rows), main_dilation(rows)
    parts = [
        f"Concave ratio {r if r is not None else '–'}, dilation {d if d is not None else '–'} "
        "(relative to the longer image side); mean ± standard error over seeds; PQ in %.\n"
    ]
    pts = [p for p in POINTS if any(p in t13[s] for s in t13)]
    if pts:
        head = ["shape"] + [f"P{p}" for p in pts]
        parts.append("\nTarget PQ against points per segment (boundary share 0, no dilation):\n\n")
        parts.append(markdown_table(head, [[s] + [_cell(t13[s].get(p)) for p in pts] for s in t13]) + "\n")
        td = pq_table(rows, dilation=True)
        if any(td[s] for s in td):
            parts.append("\nThe same with dilation:\n\n")
            parts.append(markdown_table(head, [[s] + [_cell(td[s].get(p)) for p in pts] for s in t13]) + "\n")
        for metric, label in (
            ("iou", "mean IoU of a segment's target with its true mask"),
            ("coverage", "coverage (share of pixels not ignored)"),
        ):
            t = pq_table(rows, metric)
            parts.append(f"\n{label[0].upper() + label[1:]} (no dilation, %):\n\n")
            parts.append(markdown_table(head, [[s] + [_cell(t[s].get(p), 100.0) for p in pts] for s in t13]) + "\n")
    t14 = share_table(rows)
    shares = [b for b in SHARES if b in t14[False] or b in t14[True]]
    if shares:
        parts.append("\nP20 concave, target PQ against boundary share and dilation:\n\n")
        parts.append(
            markdown_table(
                ["boundary share"] + [f"{round(100 * b)}%" for b in shares],
                [
                    ["no dilation"] + [_cell(t14[False].get(b)) for b in shares],
                    ["dilation"] + [_cell(t14[True].get(b)) for b in shares],
                ],
            )
            + "\n"
        )
    dt = defaults_table(rows)
    if dt:
        parts.append("\nConcave ratio × dilation (P10/P20/P50, share 0, mean over points and seeds):\n\n")
        parts.append(dt)
    return "".join(parts)


def tail(frame: pd.DataFrame) -> str:
    """Nothing after the per-dataset sections (the rows are in table.csv)."""
    return ""


def plot(frame: pd.DataFrame, path: str | Path) -> None:
    """Target PQ against annotation seconds per segment; one panel per dataset (its first rule
    set), one line per shape, dashed with dilation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(frame["dataset"].unique())
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(5.2 * max(1, len(datasets)), 4.0), squeeze=False)
    colours = {"convex": "tab:blue", "concave": "tab:orange", "watershed": "tab:green"}
    for ax, name in zip(axes[0], datasets):
        ds = frame[(frame["dataset"] == name) & (frame["supervision"] == "points")]
        ds = ds[ds["rules"] == rule_sets(ds)[0]]
        f = _sel(main_grid(ds), boundary_share=0.0)
        plotted = False
        for shape in shapes_of(frame):
            for dil, style in ((False, "-"), (True, "--")):
                g = _sel(f, shape=shape)
                g = g[_dilated(g) == dil]
                if g.empty:
                    continue
                agg = (
                    g.groupby("points")
                    .agg(x=("seconds_per_segment", "mean"), y=("pq", "mean"), s=("pq", lambda v: mean_se(v).se))
                    .reset_index()
                    .sort_values("x")
                )
                ax.errorbar(
                    agg["x"],
                    agg["y"],
                    yerr=agg["s"].fillna(0),
                    fmt=style + "o",
                    color=colours[shape],
                    label=f"{shape}" + (" + dilation" if dil else ""),
                    ms=4,
                    capsize=2,
                    alpha=1.0 if not dil else 0.7,
                )
                plotted = True
                if not dil and shape == "convex":
                    for _, r in agg.iterrows():
                        ax.annotate(
                            f"P{int(r['points'])}",
                            (r["x"], r["y"]),
                            fontsize=7,
                            xytext=(2, -10),
                            textcoords="offset points",
                        )
        ax.set_xscale("log")
        ax.set_xlabel("annotation seconds per segment (0.9 s per point)")
        ax.set_ylabel("PQ of the targets (%)")
        ax.set_title(f"{name}: target quality (no training)")
        ax.grid(True, alpha=0.3)
        if plotted:
            ax.legend(fontsize=8)
        else:  # the figure shows boundary share 0 only; say so rather than draw empty axes
            ax.text(0.5, 0.5, "no cells at boundary share 0", ha="center", va="center", transform=ax.transAxes)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)
