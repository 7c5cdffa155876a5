"""Report of the target-quality study: tables, trend rows T1–T6, the PQ-against-seconds figure.

Reads the rows written by :mod:`pointly.model.study.targets` (any number of shards), never
recomputes a cell. PQ here is the PQ of the *targets* (read as a panoptic prediction, ignore =
VOID) against the true masks — not the PQ of a trained model — so its absolute values are not
comparable with the paper's tables; the trends are.

The trend rows T1–T6 (and T2 once more on the dilated targets) come from
:mod:`pointly.model.study.trends`, the evaluator the trained study uses too: each comparison is
paired by seed and decided by its 95 % Student-t interval (pass / fail / undecided), a trend whose
cells are absent is "not measured". :func:`trend_frame` converts this study's rows into that
evaluator's frame: the main grid of one dataset and one set of target rules, PQ from 0–1 to percent.
T6 needs a fully supervised reference, which target rows never have: it is always "not measured" here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study import trends as study_trends
from pointly.model.study.trends import Trend
from pointly.pointgen.base.files import atomic_open, save_figure_atomic
from pointly.pointgen.targets.build import DEFAULT_DILATION, TARGET_SHAPES, TargetOptions

POINTS = (5, 10, 20, 30, 50, 100)
SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


def _sel(frame: pd.DataFrame, **eq) -> pd.DataFrame:
    out = frame
    for k, v in eq.items():
        if isinstance(v, float):
            out = out[np.isclose(out[k].astype(float), v)]
        else:
            out = out[out[k] == v]
    return out


def main_ratio(frame: pd.DataFrame) -> float | None:
    """The concave ratio of the main grid: the default one if present, else the most common."""
    conc = frame[frame["shape"] == "concave"]
    if conc.empty:
        return None
    if np.isclose(conc["concave_ratio"], TargetOptions.concave_ratio).any():
        return float(TargetOptions.concave_ratio)
    return float(conc["concave_ratio"].round(6).mode().iloc[0])


def main_dilation(frame: pd.DataFrame) -> float | None:
    """The dilation radius of the main grid's "on" cells: the default if present, else the most common."""
    on = frame[frame["dilation_radius"] > 0]
    if on.empty:
        return None
    if np.isclose(on["dilation_radius"], DEFAULT_DILATION).any():
        return float(DEFAULT_DILATION)
    return float(on["dilation_radius"].round(6).mode().iloc[0])


def _main(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the main grid: concave at the main ratio (other shapes have none), dilation off or
    at the main radius."""
    r, d = main_ratio(frame), main_dilation(frame)
    keep = (frame["shape"] != "concave") | np.isclose(frame["concave_ratio"], r if r is not None else -1)
    keep &= (frame["dilation_radius"] == 0) | np.isclose(frame["dilation_radius"], d if d is not None else -1)
    return frame[keep]


def shapes_of(frame: pd.DataFrame) -> list[str]:
    """The shapes of the table rows: convex and concave always (the paper's Table 13), then any
    other shape the rows hold (the image-aware regions), in :data:`TARGET_SHAPES` order."""
    present = set(frame["shape"]) if "shape" in frame else set()
    return [s for s in TARGET_SHAPES if s in ("convex", "concave") or s in present]


def pq_table(
    frame: pd.DataFrame, metric: str = "pq", dilation: bool = False
) -> dict[str, dict[int, tuple[float, float, int]]]:
    """Table 13 layout: shape → points → (mean, std over seeds, n) at share 0, dilation off (or on)."""
    f = _sel(_main(frame), boundary_share=0.0)
    f = f[(f["dilation_radius"] > 0) == dilation]
    out: dict[str, dict[int, tuple[float, float, int]]] = {}
    for shape in shapes_of(frame):
        out[shape] = {}
        for p in POINTS:
            v = _sel(f, shape=shape, points=p)[metric].astype(float)
            if len(v):
                out[shape][p] = (float(v.mean()), float(v.std(ddof=0)), len(v))
    return out


def share_table(
    frame: pd.DataFrame, points: int = 20, shape: str = "concave"
) -> dict[bool, dict[float, tuple[float, float, int]]]:
    """Table 14 layout: dilation on/off → share → (mean, std, n)."""
    f = _sel(_main(frame), points=points, shape=shape)
    out: dict[bool, dict[float, tuple[float, float, int]]] = {False: {}, True: {}}
    for dil in (False, True):
        g = f[(f["dilation_radius"] > 0) == dil]
        for b in SHARES:
            v = _sel(g, boundary_share=b)["pq"].astype(float)
            if len(v):
                out[dil][b] = (float(v.mean()), float(v.std(ddof=0)), len(v))
    return out


def _p(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def rule_sets(frame: pd.DataFrame) -> list[str]:
    """The target rule sets in the rows (``corrected`` first); [""] for rows without a rules column."""
    if "rules" not in frame.columns:
        return [""]
    return sorted(frame["rules"].dropna().astype(str).unique(), key=lambda r: (r != "corrected", r))


def trend_frame(frame: pd.DataFrame, rules: str | None = None) -> pd.DataFrame:
    """The rows of one dataset as a trend frame (:mod:`pointly.model.study.trends`).

    Keeps the main grid (:func:`_main`: the main concave ratio, dilation off or at the main radius)
    of one rule set — ``rules``, or the only one present — so that each cell has one row per seed;
    ``dilation`` is "radius > 0" and PQ is converted from 0–1 to percent.
    """
    if rules is None:
        sets = rule_sets(frame)
        if len(sets) > 1:
            raise ValueError(f"the rows hold several target rule sets ({', '.join(sets)}): pick one")
        rules = sets[0]
    if rules:
        frame = frame[frame["rules"].astype(str) == rules]
    f = _main(frame)
    return pd.DataFrame(
        {
            "dataset": f["dataset"].astype(str),
            "supervision": f["supervision"] if "supervision" in f.columns else "points",
            "points": f["points"].astype(int),
            "shape": f["shape"].astype(str),
            "boundary_share": f["boundary_share"].astype(float),
            "dilation": f["dilation_radius"].astype(float) > 0,
            "seed": f["seed"].astype(int),
            "pq": 100.0 * f["pq"].astype(float),
        }
    ).reset_index(drop=True)


def trends(frame: pd.DataFrame, rules: str | None = None) -> list[Trend]:
    """T1–T6 of one dataset's rows (one rule set), with "T2 (dilated)" after T2 where measured."""
    tf = trend_frame(frame, rules)
    rows = study_trends.trends(tf)
    dilated = study_trends.trend_t2_dilated(tf)
    if dilated.verdict != "not measured":
        rows.insert(2, dilated)
    return rows


def _md(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def _cell(v: tuple[float, float, int] | None) -> str:
    if v is None:
        return "–"
    mean, std, n = v
    return f"{100 * mean:.1f}" + (f" ± {100 * std:.1f}" if n > 1 else "")


def defaults_table(frame: pd.DataFrame) -> str:
    """Concave ratio × dilation radius (P10/P20/P50, share 0, mean over seeds and points), if swept."""
    f = _sel(frame, shape="concave", boundary_share=0.0)
    f = f[f["points"].isin([10, 20, 50])]
    ratios = sorted(f["concave_ratio"].unique())
    radii = sorted(frame["dilation_radius"].unique())
    if len(ratios) < 2 and len(radii) < 3:
        return ""
    rows = []
    for r in ratios:
        g = f[np.isclose(f["concave_ratio"], r)]
        rows.append(
            [f"concave {r:g}"]
            + [
                _p(g[np.isclose(g['dilation_radius'], d)]['pq'].mean())
                if len(g[np.isclose(g['dilation_radius'], d)])
                else "–"
                for d in radii
            ]
        )
    c = _sel(frame, shape="convex", boundary_share=0.0)
    c = c[c["points"].isin([10, 20, 50])]
    rows.append(
        ["convex"]
        + [
            _p(c[np.isclose(c['dilation_radius'], d)]['pq'].mean())
            if len(c[np.isclose(c['dilation_radius'], d)])
            else "–"
            for d in radii
        ]
    )
    return _md(["target PQ (%)"] + [("no dilation" if d == 0 else f"dilation {d:g}") for d in radii], rows)


def dataset_markdown(frame: pd.DataFrame, name: str) -> str:
    t13 = pq_table(frame)
    parts = [f"### {name}\n"]
    r, d = main_ratio(frame), main_dilation(frame)
    parts.append(
        f"Concave ratio {r if r is not None else '–'}, dilation radius "
        f"{d if d is not None else '–'} of the longer image side; mean ± std over seeds; PQ in %.\n"
    )
    pts = [p for p in POINTS if any(p in t13[s] for s in t13)]
    if pts:
        parts.append("\nTarget PQ against points per segment (boundary share 0, no dilation):\n\n")
        parts.append(_md(["shape"] + [f"P{p}" for p in pts], [[s] + [_cell(t13[s].get(p)) for p in pts] for s in t13]))
        td = pq_table(frame, dilation=True)
        if any(td[s] for s in td):
            parts.append("\nThe same with dilation:\n\n")
            parts.append(
                _md(["shape"] + [f"P{p}" for p in pts], [[s] + [_cell(td[s].get(p)) for p in pts] for s in t13])
            )
        for metric, label in (
            ("iou", "mean IoU of a segment's target with its true mask"),
            ("coverage", "coverage (share of pixels not ignored)"),
        ):
            t = pq_table(frame, metric)
            parts.append(f"\n{label[0].upper() + label[1:]} (no dilation):\n\n")
            parts.append(
                _md(["shape"] + [f"P{p}" for p in pts], [[s] + [_cell(t[s].get(p)) for p in pts] for s in t13])
            )
    t14 = share_table(frame)
    shares = [b for b in SHARES if b in t14[False] or b in t14[True]]
    if shares:
        parts.append("\nP20 concave, target PQ against boundary share and dilation:\n\n")
        parts.append(
            _md(
                ["boundary share"] + [f"{round(100 * b)}%" for b in shares],
                [
                    ["no dilation"] + [_cell(t14[False].get(b)) for b in shares],
                    ["dilation"] + [_cell(t14[True].get(b)) for b in shares],
                ],
            )
        )
    sets = rule_sets(frame)
    for rules in sets:
        which = f" (target rules: {rules})" if len(sets) > 1 else ""
        parts.append(
            f"\nTrends (study.md), measured on the targets{which}; PQ in %, each comparison paired by "
            "seed with its 95 % interval:\n\n"
        )
        parts.append(study_trends.trends_table(trends(frame, rules)) + "\n")
    dt = defaults_table(frame)
    if dt:
        parts.append("\nConcave ratio × dilation radius (P10/P20/P50, share 0, mean over points and seeds):\n\n")
        parts.append(dt)
    return "".join(parts)


def plot(frame: pd.DataFrame, path: str | Path) -> None:
    """PQ of the targets against annotation seconds per segment; one panel per dataset, one line per shape."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = sorted(frame["dataset"].unique())
    fig, axes = plt.subplots(1, max(1, len(datasets)), figsize=(5.2 * max(1, len(datasets)), 4.0), squeeze=False)
    colours = {"convex": "tab:blue", "concave": "tab:orange", "watershed": "tab:green"}
    for ax, name in zip(axes[0], datasets):
        f = _main(_sel(frame, dataset=name, boundary_share=0.0))
        for shape in shapes_of(frame):
            for dil, style in ((False, "-"), (True, "--")):
                g = _sel(f, shape=shape)
                g = g[(g["dilation_radius"] > 0) == dil]
                if g.empty:
                    continue
                agg = (
                    g.groupby("points")
                    .agg(x=("seconds_per_segment", "mean"), y=("pq", "mean"), s=("pq", "std"))
                    .reset_index()
                    .sort_values("x")
                )
                label = f"{shape}" + (" + dilation" if dil else "")
                ax.errorbar(
                    agg["x"],
                    100 * agg["y"],
                    yerr=100 * agg["s"].fillna(0),
                    fmt=style + "o",
                    color=colours[shape],
                    label=label,
                    ms=4,
                    capsize=2,
                    alpha=1.0 if not dil else 0.7,
                )
                for _, r in agg.iterrows():
                    if not dil and shape == "convex":
                        ax.annotate(
                            f"P{int(r['points'])}",
                            (r["x"], 100 * r["y"]),
                            fontsize=7,
                            xytext=(2, -10),
                            textcoords="offset points",
                        )
        ax.set_xscale("log")
        ax.set_xlabel("annotation seconds per segment (0.9 s per point)")
        ax.set_ylabel("PQ of the targets (%)")
        ax.set_title(f"{name}: target quality (no training)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)


def write_report(
    frame: pd.DataFrame,
    out_dir: str | Path,
    *,
    figure_name: str = "pq_vs_seconds.png",
    title: str = "Target-quality study",
) -> str:
    """Write ``results.csv``, ``results.md`` and the figure into ``out_dir``; return the Markdown."""
    out_dir = Path(out_dir)
    frame = frame.sort_values(
        ["dataset", "shape", "points", "boundary_share", "dilation_radius", "concave_ratio", "seed"]
    ).reset_index(drop=True)
    with atomic_open(out_dir / "results.csv", "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, float_format="%.6g")
    plot(frame, out_dir / figure_name)
    md = [
        f"# {title}\n\n",
        f"{len(frame)} cells. PQ is the PQ of the targets themselves against the true "
        "masks (ignore = VOID), not of a trained model.\n\n",
        f"![PQ against seconds]({figure_name})\n\n",
    ]
    for name in sorted(frame["dataset"].unique()):
        md.append(dataset_markdown(frame[frame["dataset"] == name], name) + "\n")
    text = "".join(md)
    with atomic_open(out_dir / "results.md", "w", encoding="utf-8") as fh:
        fh.write(text)
    return text
