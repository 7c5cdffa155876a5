"""Report of the trained study: tidy table, Markdown, the "PQ against annotation seconds" figure,
and the trend rows T1–T6 of ``study.md`` stated as measured.

The trained study (:mod:`pointly.model.study_trained`) writes one tidy row per grid cell (all axes,
metrics, annotation seconds, training time). This module only *reads* those rows: it never trains
or evaluates, so a report can be rebuilt at any time from the rows of a finished, partial or merged
(several shards) study.

The trend rows compare PQ differences paired by seed (cells of a grid share their seeds) with a
95 % Student-t interval (:mod:`pointly.pointgen.intervals`); each states its rule, the intervals
it used, and ``pass`` / ``fail`` / ``undecided`` (an interval holding 0, or one seed) / ``not
measured`` (when the cells it needs are missing). The rules are written down here and in
docs/study.md, so a trend cannot be made to appear by choosing the rule afterwards.
"""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from pointly.pointgen.intervals import PairedDifference, difference_interval
from pointly.pointgen.io_utils import atomic_open
from pointly.pointgen.io_utils import save_figure_atomic

#: the columns of a result row, in CSV order (axes, then metrics, then costs and times)
AXES = ["dataset", "split", "supervision", "points", "shape", "boundary_share", "dilation", "seed",
        "iters", "concave_ratio"]
METRICS = ["pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st", "n_th", "n_st"]
COSTS = ["annotation_seconds", "seconds_per_image", "seconds_per_segment", "segments", "images",
         "train_seconds", "eval_seconds", "final_loss"]
ROW_COLUMNS = ["cell_id"] + AXES + METRICS + COSTS

#: the paper's numbers (study.md: Tables 12, 13, 14), printed next to ours
PAPER_TABLE13 = {"convex": {5: 23.3, 10: 29.6, 20: 32.3, 30: 32.8, 50: 33.0, 100: 33.4},
                 "concave": {5: 23.0, 10: 29.1, 20: 32.7, 30: 34.1, 50: 35.3, 100: 37.0}}
PAPER_FULL_PQ = 41.3
PAPER_TABLE14 = {False: {0.0: 32.7, 0.05: 33.1, 0.1: 33.7, 0.25: 34.1, 0.5: 35.5, 0.75: 35.7, 1.0: 35.8},
                 True: {0.0: 34.0, 0.05: 34.2, 0.1: 34.3, 0.25: 35.0, 0.5: 35.8, 0.75: 36.0, 1.0: 36.0}}
PAPER_P20_SHARE = 0.82
PAPER_SEED_STD = 0.08


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


# --------------------------------------------------------------------------- selections
def _points_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["supervision"] == "points"]


def _mean_pq(rows: pd.DataFrame) -> float | None:
    """Mean PQ over the rows (several seeds of one cell), None if there are none."""
    vals = rows["pq"].dropna()
    return float(vals.mean()) if len(vals) else None


def table13(frame: pd.DataFrame) -> dict[str, dict[int, float]]:
    """PQ by shape and points per segment, boundary share 0, no dilation, mean over seeds."""
    rows = _points_rows(frame)
    rows = rows[(rows["boundary_share"] == 0.0) & (~rows["dilation"])]
    out: dict[str, dict[int, float]] = {}
    for (shape, points), group in rows.groupby(["shape", "points"]):
        pq = _mean_pq(group)
        if pq is not None:
            out.setdefault(str(shape), {})[int(points)] = pq
    return out


def table14(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> dict[bool, dict[float, float]]:
    """PQ of P20 concave by boundary share and dilation, mean over seeds."""
    rows = _points_rows(frame)
    rows = rows[(rows["points"] == points) & (rows["shape"] == shape)]
    out: dict[bool, dict[float, float]] = {}
    for (dil, share), group in rows.groupby(["dilation", "boundary_share"]):
        pq = _mean_pq(group)
        if pq is not None:
            out.setdefault(bool(dil), {})[float(share)] = pq
    return out


def full_pq(frame: pd.DataFrame) -> float | None:
    """PQ of the fully supervised reference (mean over its seeds)."""
    return _mean_pq(frame[frame["supervision"] == "full"])


def seed_pqs(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> list[float]:
    """PQ of every seed of the P``points`` ``shape`` cell (boundary 0, no dilation)."""
    rows = _points_rows(frame)
    rows = rows[(rows["points"] == points) & (rows["shape"] == shape)
                & (rows["boundary_share"] == 0.0) & (~rows["dilation"])]
    return [float(v) for v in rows.sort_values("seed")["pq"].dropna()]


def p20_share(frame: pd.DataFrame, shape: str = "concave") -> float | None:
    """PQ of P20 (``shape``, boundary 0, no dilation, mean over seeds) over the full-mask PQ."""
    full = full_pq(frame)
    p20 = table13(frame).get(shape, {}).get(20)
    if full is None or p20 is None or full <= 0:
        return None
    return p20 / full


# --------------------------------------------------------------------------- trends
@dataclass
class Trend:
    """One trend row: its id, what study.md claims, the rule applied, the verdict and the numbers.

    The verdict comes from paired per-seed comparisons (:mod:`pointly.pointgen.intervals`): *pass*
    when every comparison's 95 % interval lies on the claimed side of 0, *fail* when one lies on the
    other side, *undecided* otherwise (an interval holding 0, or a single seed); *not measured*
    when the cells are missing. ``numbers`` shows each comparison with its interval."""

    id: str
    claim: str
    rule: str
    verdict: str  # "pass" | "fail" | "undecided" | "not measured"
    numbers: str


def _fmt(x: float | None, digits: int = 1) -> str:
    return "—" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def _spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when a side is constant."""
    rx = pd.Series(xs).rank().to_numpy(float)
    ry = pd.Series(ys).rank().to_numpy(float)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def by_seed(frame: pd.DataFrame, *, supervision: str = "points", points: int | None = None,
            shape: str | None = None, share: float = 0.0, dilation: bool = False) -> dict[int, float]:
    """PQ of one cell per seed (``supervision="full"``: the full-mask reference)."""
    rows = frame[frame["supervision"] == supervision]
    if supervision == "points":
        rows = rows[(rows["points"] == points) & (rows["shape"] == shape) & (rows["boundary_share"] == share)
                    & (rows["dilation"] == dilation)]
    rows = rows.dropna(subset=["pq"])
    return {int(sd): float(pq) for sd, pq in zip(rows["seed"], rows["pq"])}


def _combine(diffs: Sequence[PairedDifference]) -> str:
    """pass when every comparison passes, fail when one fails, else undecided."""
    verdicts = [d.verdict for d in diffs]
    if "fail" in verdicts:
        return "fail"
    return "pass" if verdicts and all(v == "pass" for v in verdicts) else "undecided"


def _pairs(*cells: Mapping[int, float]) -> list[int]:
    """The seeds all ``cells`` share."""
    common = set(cells[0])
    for c in cells[1:]:
        common &= set(c)
    return sorted(common)


def _diff(combo, *cells: Mapping[int, float]) -> PairedDifference:
    """The paired interval of ``combo(values of one seed...)`` over the seeds all cells share."""
    return difference_interval([combo(*(c[sd] for c in cells)) for sd in _pairs(*cells)])


def trend_t1(frame: pd.DataFrame) -> Trend:
    """T1: PQ rises with points per segment from P5 to P100 (each shape).

    Rule: per shape with at least 3 point counts, PQ(largest P) − PQ(smallest P), paired by seed,
    is above 0 (its 95 % interval). The Spearman ρ of the mean PQ with P is shown, not ruled on.
    """
    claim = "PQ rises with points per segment, from P5 to P100"
    rule = "per shape: PQ(max P) − PQ(min P) > 0, 95 % paired interval"
    tab = table13(frame)
    parts, diffs = [], []
    for shape in sorted(tab):
        series = tab[shape]
        if len(series) < 3:
            continue
        ps = sorted(series)
        d = _diff(lambda hi, lo: hi - lo, by_seed(frame, points=ps[-1], shape=shape),
                  by_seed(frame, points=ps[0], shape=shape))
        diffs.append(d)
        rho = _spearman(ps, [series[p] for p in ps])
        parts.append(f"{shape}: " + " ".join(f"P{p} {series[p]:.1f}" for p in ps)
                     + f"; P{ps[-1]}−P{ps[0]} {d.text()} (ρ {rho:.2f})")
    if not diffs:
        return Trend("T1", claim, rule, "not measured", "needs ≥ 3 point counts of one shape")
    return Trend("T1", claim, rule, _combine(diffs), "; ".join(parts))


def trend_t2(frame: pd.DataFrame) -> Trend:
    """T2: convex beats concave with few points (P5, P10); concave wins from P30 on.

    Rule: convex − concave > 0 at every measured P ≤ 10 and concave − convex > 0 at every measured
    P ≥ 30 (95 % paired intervals); both ranges must have at least one measured P.
    """
    claim = "convex beats concave at P5, P10; concave wins from P30 on"
    rule = "convex − concave > 0 at each P ≤ 10, concave − convex > 0 at each P ≥ 30 (paired intervals)"
    tab = table13(frame)
    common = sorted(set(tab.get("convex", {})) & set(tab.get("concave", {})))
    few = [p for p in common if p <= 10]
    many = [p for p in common if p >= 30]
    if not few or not many:
        return Trend("T2", claim, rule, "not measured", "needs both shapes at P ≤ 10 and P ≥ 30")
    diffs, parts = [], []
    for p in few + many:
        cv, cc = by_seed(frame, points=p, shape="convex"), by_seed(frame, points=p, shape="concave")
        d = _diff(lambda a, b: a - b, cv, cc) if p <= 10 else _diff(lambda a, b: a - b, cc, cv)
        diffs.append(d)
        parts.append(f"P{p} {'convex−concave' if p <= 10 else 'concave−convex'} {d.text()}")
    return Trend("T2", claim, rule, _combine(diffs), "; ".join(parts))


def trend_t3(frame: pd.DataFrame) -> Trend:
    """T3: more boundary points help, saturating near a 50% share (P20 concave, no dilation).

    Rule: PQ(50%) − PQ(0%) > 0, and (PQ(100%) − PQ(50%)) − (PQ(50%) − PQ(0%)) < 0 (95 % paired
    intervals).
    """
    claim = "more boundary points help, saturating near a 50% share"
    rule = "no dilation: PQ(50%) − PQ(0%) > 0 and the 50→100% gain − the 0→50% gain < 0 (paired intervals)"
    cells = [by_seed(frame, points=20, shape="concave", share=s) for s in (0.0, 0.5, 1.0)]
    if not all(cells):
        return Trend("T3", claim, rule, "not measured", "needs P20 concave at boundary shares 0, 0.5, 1")
    gain = _diff(lambda a, b: b - a, cells[0], cells[1])
    slowing = _diff(lambda a, b, c: a + c - 2 * b, *cells)  # (c − b) − (b − a), must be < 0
    saturation = PairedDifference(-slowing.mean, slowing.se, -slowing.high, -slowing.low, slowing.n,
                                  slowing.confidence)
    row = table14(frame).get(False, {})
    nums = " ".join(f"{int(round(s * 100))}% {row[s]:.1f}" for s in sorted(row) if s in (0.0, 0.5, 1.0)) + \
        f"; gain 0→50% {gain.text()}; 0→50% gain − 50→100% gain {saturation.text()}"
    return Trend("T3", claim, rule, _combine([gain, saturation]), nums)


def trend_t4(frame: pd.DataFrame) -> Trend:
    """T4: dilation helps, most with no boundary points, less as the boundary share grows.

    Rule: gain(0%) = PQ(dilation) − PQ(none) at boundary share 0 is > 0, and gain(0%) − the mean
    gain over the measured shares ≥ 50% is > 0 (95 % paired intervals).
    """
    claim = "dilation helps, most with no boundary points, less as the boundary share grows"
    rule = "gain at 0% > 0 and gain at 0% − mean gain at shares ≥ 50% > 0 (paired intervals)"
    tab = table14(frame)
    shares = sorted(set(tab.get(False, {})) & set(tab.get(True, {})))
    high = [s for s in shares if s >= 0.5]
    if 0.0 not in shares or not high:
        return Trend("T4", claim, rule, "not measured", "needs P20 concave with/without dilation at 0% and ≥ 50%")
    off = {s: by_seed(frame, points=20, shape="concave", share=s) for s in shares}
    on = {s: by_seed(frame, points=20, shape="concave", share=s, dilation=True) for s in shares}
    gain0 = _diff(lambda a, b: a - b, on[0.0], off[0.0])
    cells = [on[0.0], off[0.0]] + [c for s in high for c in (on[s], off[s])]

    def drop(*v: float) -> float:
        g = [v[i] - v[i + 1] for i in range(0, len(v), 2)]
        return g[0] - float(np.mean(g[1:]))

    rel = _diff(drop, *cells)
    gains = {s: tab[True][s] - tab[False][s] for s in shares}
    nums = " ".join(f"{int(round(s * 100))}% {gains[s]:+.1f}" for s in shares) + \
        f"; gain at 0% {gain0.text()}; gain at 0% − mean gain at ≥ 50% {rel.text()}"
    return Trend("T4", claim, rule, _combine([gain0, rel]), nums)


def trend_t5(frame: pd.DataFrame) -> Trend:
    """T5: the spread over sampling seeds is small against the differences above.

    Rule: with ≥ 3 seeds of P20 concave, twice the seed standard deviation (ddof 1) is smaller than
    the smallest measured effect |PQ(P20) − PQ(P10)| (concave), |PQ(50%) − PQ(0%)| (boundary) and
    |gain of dilation at 0%|; fewer seeds: undecided.
    """
    claim = "the spread over sampling seeds is small against the differences above"
    rule = "≥ 3 seeds: 2·std(seeds of P20) < min(|P20−P10|, |boundary 50%−0%|, |dilation gain at 0%|)"
    pqs = seed_pqs(frame)
    if len(pqs) < 2:
        return Trend("T5", claim, rule, "not measured", "needs ≥ 2 seeds of P20 concave")
    std = float(np.std(pqs, ddof=1))
    effects = {}
    cc = table13(frame).get("concave", {})
    if 10 in cc and 20 in cc:
        effects["P20−P10"] = abs(cc[20] - cc[10])
    t14 = table14(frame)
    off, on = t14.get(False, {}), t14.get(True, {})
    if 0.0 in off and 0.5 in off:
        effects["boundary 50%−0%"] = abs(off[0.5] - off[0.0])
    if 0.0 in off and 0.0 in on:
        effects["dilation at 0%"] = abs(on[0.0] - off[0.0])
    nums = (f"{len(pqs)} seeds: PQ {np.mean(pqs):.2f} ± {std:.2f} sd, ± {std / math.sqrt(len(pqs)):.2f} se "
            f"(paper ± {PAPER_SEED_STD})")
    if not effects:
        return Trend("T5", claim, rule, "not measured", nums + "; no effect measured to compare with")
    smallest = min(effects.values())
    nums += "; effects " + ", ".join(f"{k} {v:.1f}" for k, v in effects.items())
    verdict = ("pass" if 2 * std < smallest else "fail") if len(pqs) >= 3 else "undecided"
    return Trend("T5", claim, rule, verdict, nums)


def trend_t6(frame: pd.DataFrame) -> Trend:
    """T6: P20 reaches about 80% of the fully supervised PQ (paper: 82%).

    Rule: the per-seed ratio PQ(P20 concave, boundary 0, no dilation) / PQ(full masks of the same
    seed) − 0.70 is > 0 (95 % interval over the seeds both cells have).
    """
    claim = "P20 reaches about 80% of the fully supervised PQ (paper 82%)"
    rule = "per seed PQ(P20 concave) / PQ(full) − 0.70 > 0 (paired interval)"
    share = p20_share(frame)
    p20, full = by_seed(frame, points=20, shape="concave"), by_seed(frame, supervision="full")
    if share is None or not _pairs(p20, full):
        return Trend("T6", claim, rule, "not measured", "needs P20 concave and the full-mask reference of a seed")
    d = _diff(lambda a, b: a / b - 0.70 if b > 0 else float("nan"), p20, full)
    nums = (f"P20 {table13(frame)['concave'][20]:.1f} / full {full_pq(frame):.1f} = {share:.0%} "
            f"(paper {PAPER_P20_SHARE:.0%}); share − 70 % per seed {d.text(digits=3)}")
    return Trend("T6", claim, rule, _combine([d]), nums)


def trends(frame: pd.DataFrame) -> list[Trend]:
    """All six trend rows, in order."""
    return [t(frame) for t in (trend_t1, trend_t2, trend_t3, trend_t4, trend_t5, trend_t6)]


# --------------------------------------------------------------------------- Markdown
def _md_table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rows_markdown(frame: pd.DataFrame) -> str:
    """Every row as a Markdown table (axes, PQ/SQ/RQ, PQth/PQst, seconds, training time)."""
    header = ["cell", "P", "shape", "boundary", "dilation", "seed", "iters", "PQ", "SQ", "RQ",
              "PQth", "PQst", "s/segment", "s/image", "train s", "final loss"]
    body = []
    for _, r in frame.iterrows():
        body.append([r["cell_id"], "M" if r["supervision"] == "full" else _fmt_int(r["points"]),
                     r["shape"] or "—", f"{r['boundary_share']:.2f}" if r["supervision"] != "full" else "—",
                     "on" if r["dilation"] else "off", _fmt_int(r["seed"]), _fmt_int(r["iters"]),
                     _fmt(r["pq"]), _fmt(r["sq"]), _fmt(r["rq"]), _fmt(r["pq_th"]), _fmt(r["pq_st"]),
                     _fmt(r["seconds_per_segment"]), _fmt(r["seconds_per_image"]), _fmt(r["train_seconds"], 0),
                     _fmt(r["final_loss"], 2)])
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
        body.append([shape] + [f"{_fmt(tab.get(shape, {}).get(p))} ({PAPER_TABLE13[shape].get(p, '—')})"
                               for p in ps])
    full = full_pq(frame)
    text = _md_table(["shape"] + [f"P{p}" for p in ps], body)
    return text + f"\n\nFull masks (M): {_fmt(full)} (paper {PAPER_FULL_PQ}). Ours (paper's in brackets)."


def table14_markdown(frame: pd.DataFrame) -> str:
    """Table 14 layout: dilation × boundary share for P20 concave, with the paper's in brackets."""
    tab = table14(frame)
    shares = sorted({s for d in tab.values() for s in d} | set(PAPER_TABLE14[False]))
    body = [[label] + [f"{_fmt(tab.get(dil, {}).get(s))} ({PAPER_TABLE14[dil].get(s, '—')})" for s in shares]
            for dil, label in ((False, "no dilation"), (True, "dilation"))]
    return _md_table(["boundary share"] + [f"{int(round(s * 100))}%" for s in shares], body)


def trends_markdown(frame: pd.DataFrame) -> str:
    """The T1–T6 rows as a Markdown table (id, claim, rule, verdict, numbers)."""
    return _md_table(["trend", "claim (study.md)", "rule", "verdict", "measured"],
                     [[t.id, t.claim, t.rule, t.verdict, t.numbers] for t in trends(frame)])


def report_markdown(frame: pd.DataFrame, *, title: str = "Trained study", figure: str | None = None,
                    preamble: str = "") -> str:
    """The whole report page: summary, Table 13 and 14 layouts, trends, figure, every row."""
    share = p20_share(frame)
    pqs = seed_pqs(frame)
    out = io.StringIO()
    out.write(f"# {title}\n\n")
    if preamble:
        out.write(preamble.rstrip() + "\n\n")
    out.write(f"{len(frame)} cells finished.")
    if share is not None:
        out.write(f" P20 (concave) reaches **{share:.0%}** of the fully supervised PQ (paper: 82%).")
    if len(pqs) >= 2:
        out.write(f" {len(pqs)} seeds of P20: PQ {np.mean(pqs):.2f} ± {np.std(pqs, ddof=1):.2f} "
                  f"(paper: 33.96 ± {PAPER_SEED_STD}).")
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
    rows = _points_rows(frame)
    rows = rows[(rows["boundary_share"] == 0.0) & (~rows["dilation"])]
    for shape, marker in (("convex", "o"), ("concave", "s")):
        sub = rows[rows["shape"] == shape].groupby("points")[["pq", x]].mean().sort_index()
        if len(sub):
            ax1.plot(sub[x], sub["pq"], marker=marker, label=shape)
            for p, r in sub.iterrows():
                ax1.annotate(f"P{p}", (r[x], r["pq"]), textcoords="offset points", xytext=(3, 3), fontsize=7)
    full = frame[frame["supervision"] == "full"]
    if len(full):
        ax1.scatter([full[x].mean()], [full["pq"].mean()], marker="*", s=160, color="k",
                    label="full masks", zorder=3)
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


def write_report(frame: pd.DataFrame, out_dir: str | Path, *, title: str = "Trained study",
                 preamble: str = "") -> dict[str, Path]:
    """Write ``table.csv`` (rows sorted by cell), ``report.md`` and ``pq_vs_seconds.png`` into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = normalise(frame).sort_values(["supervision", "shape", "points", "boundary_share", "dilation", "seed"],
                                         na_position="first").reset_index(drop=True)
    paths = {"table": out_dir / "table.csv", "report": out_dir / "report.md",
             "figure": out_dir / "pq_vs_seconds.png"}
    with atomic_open(paths["table"], "w", newline="") as fh:
        frame.to_csv(fh, index=False)
    plot(frame, paths["figure"])
    with atomic_open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(report_markdown(frame, title=title, figure=paths["figure"].name, preamble=preamble))
    return paths


def trend_dict(frame: pd.DataFrame) -> list[Mapping[str, str]]:
    """The trend rows as plain dicts (for JSON output)."""
    return [t.__dict__.copy() for t in trends(frame)]
