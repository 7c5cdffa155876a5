"""Report of the target-quality study: tables, trend rows T1–T5, the PQ-against-seconds figure.

Reads the rows written by :mod:`pointly.pointgen.study_targets` (any number of shards), never
recomputes a cell. PQ here is the PQ of the *targets* (read as a panoptic prediction, ignore =
VOID) against the true masks — not the PQ of a trained model — so its absolute values are not
comparable with the paper's tables; the trends are.

Trend rules (fixed in advance; each row says pass / fail / not measured and shows its numbers),
on the mean over seeds, boundary share 0 and no dilation unless said otherwise:

* **T1** PQ rises with points: for each shape PQ(P100) > PQ(P5) and Spearman ρ(points, PQ) ≥ 0.8.
* **T2** convex ≥ concave at P5 and P10; concave > convex at P30, P50 and P100 (also reported on
  the dilated targets, as "T2 (dilated)").
* **T3** (P20 concave, no dilation) boundary points help and saturate: PQ(50%) > PQ(0%) and the
  gain from 50% to 100% is smaller than the gain from 0% to 50%.
* **T4** (P20 concave) dilation helps most without boundary points: Δ(0%) > 0 and Δ(0%) > Δ(100%),
  where Δ(b) = PQ(dilation) − PQ(no dilation) at share b.
* **T5** the seed spread is small: the standard deviation over seeds of P20 concave is below a
  quarter of the PQ range from P5 to P100 (concave).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from pointly.pointgen.io_utils import atomic_open
from pointly.pointgen.targets import DEFAULT_DILATION, TargetOptions
from pointly.pointgen.io_utils import save_figure_atomic

POINTS = (5, 10, 20, 30, 50, 100)
SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Trend:
    name: str
    rule: str
    measured: str
    verdict: str  # "pass" | "fail" | "not measured"


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
    """Rows of the main grid: concave at the main ratio, dilation off or at the main radius."""
    r, d = main_ratio(frame), main_dilation(frame)
    keep = (frame["shape"] == "convex") | np.isclose(frame["concave_ratio"], r if r is not None else -1)
    keep &= (frame["dilation_radius"] == 0) | np.isclose(frame["dilation_radius"], d if d is not None else -1)
    return frame[keep]


def pq_table(frame: pd.DataFrame, metric: str = "pq", dilation: bool = False
             ) -> dict[str, dict[int, tuple[float, float, int]]]:
    """Table 13 layout: shape → points → (mean, std over seeds, n) at share 0, dilation off (or on)."""
    f = _sel(_main(frame), boundary_share=0.0)
    f = f[(f["dilation_radius"] > 0) == dilation]
    out: dict[str, dict[int, tuple[float, float, int]]] = {}
    for shape in ("convex", "concave"):
        out[shape] = {}
        for p in POINTS:
            v = _sel(f, shape=shape, points=p)[metric].astype(float)
            if len(v):
                out[shape][p] = (float(v.mean()), float(v.std(ddof=0)), len(v))
    return out


def share_table(frame: pd.DataFrame, points: int = 20, shape: str = "concave"
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


def _spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    rx = pd.Series(xs).rank().to_numpy()
    ry = pd.Series(ys).rank().to_numpy()
    if np.std(rx) == 0 or np.std(ry) == 0:
        return math.nan
    return float(np.corrcoef(rx, ry)[0, 1])


def _p(x: float) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.1f}"


def trends(frame: pd.DataFrame) -> list[Trend]:
    """T1–T5 for one dataset's rows."""
    t13 = pq_table(frame)
    t14 = share_table(frame)
    out = []
    # T1
    parts, ok, measured = [], True, True
    for shape in ("convex", "concave"):
        row = t13.get(shape, {})
        if 5 not in row or 100 not in row or len(row) < 3:
            measured = False
            continue
        pts = sorted(row)
        rho = _spearman(pts, [row[p][0] for p in pts])
        good = row[100][0] > row[5][0] and rho >= 0.8
        ok &= good
        parts.append(f"{shape}: P5 {_p(row[5][0])} → P100 {_p(row[100][0])}, ρ = {rho:.2f}")
    out.append(Trend("T1", "PQ rises with points per segment (P100 > P5, Spearman ρ ≥ 0.8, each shape)",
                     "; ".join(parts) or "–", ("pass" if ok else "fail") if measured else "not measured"))
    # T2
    few = [p for p in (5, 10) if p in t13.get("convex", {}) and p in t13.get("concave", {})]
    many = [p for p in (30, 50, 100) if p in t13.get("convex", {}) and p in t13.get("concave", {})]
    if few and many:
        good = all(t13["convex"][p][0] >= t13["concave"][p][0] for p in few) and \
            all(t13["concave"][p][0] > t13["convex"][p][0] for p in many)
        meas = ", ".join(f"P{p} {_p(t13['convex'][p][0])} vs {_p(t13['concave'][p][0])}" for p in few + many)
        out.append(Trend("T2", "convex ≥ concave at P5, P10; concave > convex at P30, P50, P100",
                         "convex vs concave: " + meas, "pass" if good else "fail"))
    else:
        out.append(Trend("T2", "convex ≥ concave at P5, P10; concave > convex at P30, P50, P100", "–", "not measured"))
    # T2 once more on the dilated targets (the paper trains with dilation as an augmentation)
    t13d = pq_table(frame, dilation=True)
    few = [p for p in (5, 10) if p in t13d.get("convex", {}) and p in t13d.get("concave", {})]
    many = [p for p in (30, 50, 100) if p in t13d.get("convex", {}) and p in t13d.get("concave", {})]
    if few and many:
        good = all(t13d["convex"][p][0] >= t13d["concave"][p][0] for p in few) and \
            all(t13d["concave"][p][0] > t13d["convex"][p][0] for p in many)
        meas = ", ".join(f"P{p} {_p(t13d['convex'][p][0])} vs {_p(t13d['concave'][p][0])}" for p in few + many)
        out.append(Trend("T2 (dilated)", "as T2, on the targets with dilation",
                         "convex vs concave: " + meas, "pass" if good else "fail"))
    # T3
    nd = t14[False]
    if all(b in nd for b in (0.0, 0.5, 1.0)):
        g1, g2 = nd[0.5][0] - nd[0.0][0], nd[1.0][0] - nd[0.5][0]
        good = g1 > 0 and g2 < g1
        out.append(Trend("T3", "P20 concave: PQ(50%) > PQ(0%), and the 50%→100% gain < the 0%→50% gain",
                         f"0% {_p(nd[0.0][0])}, 50% {_p(nd[0.5][0])}, 100% {_p(nd[1.0][0])} "
                         f"(gains {100 * g1:+.1f}, {100 * g2:+.1f})", "pass" if good else "fail"))
    else:
        out.append(Trend("T3", "P20 concave: boundary points help, saturating near 50%", "–", "not measured"))
    # T4
    d = t14[True]
    if all(b in nd and b in d for b in (0.0, 1.0)):
        d0, d1 = d[0.0][0] - nd[0.0][0], d[1.0][0] - nd[1.0][0]
        good = d0 > 0 and d0 > d1
        out.append(Trend("T4", "P20 concave: dilation gain Δ(0%) > 0 and Δ(0%) > Δ(100%)",
                         f"Δ(0%) {100 * d0:+.1f}, Δ(100%) {100 * d1:+.1f}", "pass" if good else "fail"))
    else:
        out.append(Trend("T4", "P20 concave: dilation helps, most without boundary points", "–", "not measured"))
    # T5
    conc = t13.get("concave", {})
    if 20 in conc and conc[20][2] >= 2 and 5 in conc and 100 in conc:
        rng = abs(conc[100][0] - conc[5][0])
        good = conc[20][1] < rng / 4
        out.append(Trend("T5", "seed std of P20 concave < ¼ of the P5→P100 range",
                         f"std {100 * conc[20][1]:.2f} over {conc[20][2]} seeds; range {100 * rng:.1f}",
                         "pass" if good else "fail"))
    else:
        out.append(Trend("T5", "seed std of P20 concave < ¼ of the P5→P100 range", "–", "not measured"))
    return out


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
        rows.append([f"concave {r:g}"] + [_p(g[np.isclose(g['dilation_radius'], d)]['pq'].mean())
                                          if len(g[np.isclose(g['dilation_radius'], d)]) else "–" for d in radii])
    c = _sel(frame, shape="convex", boundary_share=0.0)
    c = c[c["points"].isin([10, 20, 50])]
    rows.append(["convex"] + [_p(c[np.isclose(c['dilation_radius'], d)]['pq'].mean())
                              if len(c[np.isclose(c['dilation_radius'], d)]) else "–" for d in radii])
    return _md(["target PQ (%)"] + [("no dilation" if d == 0 else f"dilation {d:g}") for d in radii], rows)


def dataset_markdown(frame: pd.DataFrame, name: str) -> str:
    t13 = pq_table(frame)
    parts = [f"### {name}\n"]
    r, d = main_ratio(frame), main_dilation(frame)
    parts.append(f"Concave ratio {r if r is not None else '–'}, dilation radius "
                 f"{d if d is not None else '–'} of the longer image side; mean ± std over seeds; PQ in %.\n")
    pts = [p for p in POINTS if any(p in t13[s] for s in t13)]
    if pts:
        parts.append("\nTarget PQ against points per segment (boundary share 0, no dilation):\n\n")
        parts.append(_md(["shape"] + [f"P{p}" for p in pts],
                         [[s] + [_cell(t13[s].get(p)) for p in pts] for s in ("convex", "concave")]))
        td = pq_table(frame, dilation=True)
        if any(td[s] for s in td):
            parts.append("\nThe same with dilation:\n\n")
            parts.append(_md(["shape"] + [f"P{p}" for p in pts],
                             [[s] + [_cell(td[s].get(p)) for p in pts] for s in ("convex", "concave")]))
        for metric, label in (("iou", "mean IoU of a segment's target with its true mask"),
                              ("coverage", "coverage (share of pixels not ignored)")):
            t = pq_table(frame, metric)
            parts.append(f"\n{label[0].upper() + label[1:]} (no dilation):\n\n")
            parts.append(_md(["shape"] + [f"P{p}" for p in pts],
                             [[s] + [_cell(t[s].get(p)) for p in pts] for s in ("convex", "concave")]))
    t14 = share_table(frame)
    shares = [b for b in SHARES if b in t14[False] or b in t14[True]]
    if shares:
        parts.append("\nP20 concave, target PQ against boundary share and dilation:\n\n")
        parts.append(_md(["boundary share"] + [f"{round(100 * b)}%" for b in shares],
                         [["no dilation"] + [_cell(t14[False].get(b)) for b in shares],
                          ["dilation"] + [_cell(t14[True].get(b)) for b in shares]]))
    tr = trends(frame)
    parts.append("\nTrends (study.md), measured on the targets:\n\n")
    parts.append(_md(["trend", "rule", "measured", "verdict"], [[t.name, t.rule, t.measured, t.verdict] for t in tr]))
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
    colours = {"convex": "tab:blue", "concave": "tab:orange"}
    for ax, name in zip(axes[0], datasets):
        f = _main(_sel(frame, dataset=name, boundary_share=0.0))
        for shape in ("convex", "concave"):
            for dil, style in ((False, "-"), (True, "--")):
                g = _sel(f, shape=shape)
                g = g[(g["dilation_radius"] > 0) == dil]
                if g.empty:
                    continue
                agg = g.groupby("points").agg(x=("seconds_per_segment", "mean"), y=("pq", "mean"),
                                              s=("pq", "std")).reset_index().sort_values("x")
                label = f"{shape}" + (" + dilation" if dil else "")
                ax.errorbar(agg["x"], 100 * agg["y"], yerr=100 * agg["s"].fillna(0), fmt=style + "o",
                            color=colours[shape], label=label, ms=4, capsize=2,
                            alpha=1.0 if not dil else 0.7)
                for _, r in agg.iterrows():
                    if not dil and shape == "convex":
                        ax.annotate(f"P{int(r['points'])}", (r["x"], 100 * r["y"]), fontsize=7,
                                    xytext=(2, -10), textcoords="offset points")
        ax.set_xscale("log")
        ax.set_xlabel("annotation seconds per segment (0.9 s per point)")
        ax.set_ylabel("PQ of the targets (%)")
        ax.set_title(f"{name}: target quality (no training)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure_atomic(fig, path, dpi=110)


def write_report(frame: pd.DataFrame, out_dir: str | Path, *, figure_name: str = "pq_vs_seconds.png",
                 title: str = "Target-quality study") -> str:
    """Write ``results.csv``, ``results.md`` and the figure into ``out_dir``; return the Markdown."""
    out_dir = Path(out_dir)
    frame = frame.sort_values(["dataset", "shape", "points", "boundary_share", "dilation_radius",
                               "concave_ratio", "seed"]).reset_index(drop=True)
    with atomic_open(out_dir / "results.csv", "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False, float_format="%.6g")
    plot(frame, out_dir / figure_name)
    md = [f"# {title}\n\n", f"{len(frame)} cells. PQ is the PQ of the targets themselves against the true "
          "masks (ignore = VOID), not of a trained model.\n\n", f"![PQ against seconds]({figure_name})\n\n"]
    for name in sorted(frame["dataset"].unique()):
        md.append(dataset_markdown(frame[frame["dataset"] == name], name) + "\n")
    text = "".join(md)
    with atomic_open(out_dir / "results.md", "w", encoding="utf-8") as fh:
        fh.write(text)
    return text
