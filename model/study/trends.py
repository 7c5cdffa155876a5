"""The trend rows T1–T6 of docs/study.md, written once for both studies.

Both depths of the study (``pointly study --depth targets|trained``) ask whether the paper's
trends appear in their rows. The rules live here, once: the one report
(:func:`pointly.model.study.report.trend_frame`) turns the rows of a dataset and rule set (PQ in
percent in both depths) into a *trend frame* and calls :func:`trends`.

A trend frame has one row per grid cell and seed, for one dataset (and one set of target rules):

===================  =====================================================================
``supervision``      ``"points"`` or ``"full"`` (the fully supervised reference)
``points``           points per segment (points cells)
``shape``            ``"convex"`` or ``"concave"`` (points cells)
``boundary_share``   share of boundary points, 0–1
``dilation``         bool: dilation on
``seed``             the seed; cells that share a seed share their sampled points
``pq``               PQ in **percent** (0–100)
``dataset``          optional; at most one value
===================  =====================================================================

Every comparison is paired by seed and decided by its 95 % Student-t interval
(:mod:`pointly.model.study.intervals`), never by one difference of two means: a comparison passes
when its interval lies on the claimed side of 0 and fails when it lies on the other side; a trend
passes when all its comparisons pass, fails when one fails, and is undecided otherwise (an
interval holding 0, or a single seed). A trend whose cells are absent is ``not measured``. T5 is
the one rule about spread rather than a difference: twice the seed standard deviation, with the
χ² interval of a standard deviation, against the smallest effect's paired interval. The ``numbers`` of a row show each comparison with the interval it was
decided on.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from pointly.model.study.intervals import PairedDifference, difference_interval, sample_sd, sd_interval

#: the columns a trend frame must have (``dataset`` is optional)
TREND_COLUMNS = ("supervision", "points", "shape", "boundary_share", "dilation", "seed", "pq")
#: the paper's P20 share of the fully supervised PQ (Table 13) and seed spread (Table 12), shown in T5/T6
PAPER_P20_SHARE = 0.82
PAPER_SEED_STD = 0.08
#: T6's threshold: P20 must keep more than this share of the fully supervised PQ, seed by seed
T6_SHARE = 0.70
VERDICTS = ("pass", "fail", "undecided", "not measured")


@dataclass
class Trend:
    """One trend row: its id, what docs/study.md claims, the rule applied, the verdict and the numbers
    (each comparison with its interval) it was decided on."""

    id: str
    claim: str
    rule: str
    verdict: str  # "pass" | "fail" | "undecided" | "not measured"
    numbers: str


# --------------------------------------------------------------------------- cells of a trend frame
def check_frame(frame: pd.DataFrame) -> None:
    """Refuse a frame that is not a trend frame of one dataset (missing columns, several datasets)."""
    missing = [c for c in TREND_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"a trend frame needs the columns {', '.join(missing)}")
    if "dataset" in frame.columns and frame["dataset"].dropna().nunique() > 1:
        raise ValueError("a trend frame holds one dataset; use trends_by_dataset for several")


def points_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The point-supervised rows."""
    return frame[frame["supervision"] == "points"]


class MeanSE(NamedTuple):
    """Mean of ``n`` values (one cell's seeds), its standard error ``se`` = sd / √n (sd with
    ddof 1; nan when n < 2) and ``n``; ``mean`` is nan when n = 0."""

    mean: float
    se: float
    n: int

    @property
    def sd(self) -> float:
        """The sample standard deviation (ddof 1) of the values; nan when n < 2."""
        return self.se * math.sqrt(self.n) if self.n >= 2 else float("nan")


def mean_se(values: Iterable[float]) -> MeanSE:
    """Mean, standard error (sample sd with ddof 1 over √n) and count of ``values``, NaNs dropped.

    One value: the value, se nan; none: mean and se nan, n 0."""
    vals = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    n = len(vals)
    if n == 0:
        return MeanSE(float("nan"), float("nan"), 0)
    if n < 2:
        return MeanSE(vals[0], float("nan"), n)
    mean, sd = sample_sd(vals)
    return MeanSE(mean, sd / math.sqrt(n), n)


def _pq_stats(rows: pd.DataFrame) -> MeanSE:
    """Mean PQ, its standard error and the number of seeds over the rows (several seeds of one cell)."""
    return mean_se(rows["pq"])


def table13_stats(frame: pd.DataFrame, dilation: bool = False) -> dict[str, dict[int, MeanSE]]:
    """PQ by shape and points per segment, boundary share 0, dilation off (or on): mean, standard
    error and number of seeds of each cell (cells without a PQ are left out)."""
    rows = points_rows(frame)
    rows = rows[(rows["boundary_share"] == 0.0) & (rows["dilation"] == dilation)]
    out: dict[str, dict[int, MeanSE]] = {}
    for (shape, points), group in rows.groupby(["shape", "points"]):
        stats = _pq_stats(group)
        if stats.n:
            out.setdefault(str(shape), {})[int(points)] = stats
    return out


def table13(frame: pd.DataFrame, dilation: bool = False) -> dict[str, dict[int, float]]:
    """PQ by shape and points per segment, boundary share 0, dilation off (or on), mean over seeds."""
    return {shape: {p: s.mean for p, s in series.items()} for shape, series in table13_stats(frame, dilation).items()}


def table14_stats(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> dict[bool, dict[float, MeanSE]]:
    """PQ of P20 concave by dilation and boundary share: mean, standard error and number of seeds."""
    rows = points_rows(frame)
    rows = rows[(rows["points"] == points) & (rows["shape"] == shape)]
    out: dict[bool, dict[float, MeanSE]] = {}
    for (dil, share), group in rows.groupby(["dilation", "boundary_share"]):
        stats = _pq_stats(group)
        if stats.n:
            out.setdefault(bool(dil), {})[float(share)] = stats
    return out


def table14(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> dict[bool, dict[float, float]]:
    """PQ of P20 concave by dilation and boundary share, mean over seeds."""
    return {dil: {s: m.mean for s, m in series.items()} for dil, series in table14_stats(frame, points, shape).items()}


def full_pq_stats(frame: pd.DataFrame) -> MeanSE:
    """PQ of the fully supervised reference: mean, standard error and number of seeds (n 0: none)."""
    return _pq_stats(frame[frame["supervision"] == "full"])


def full_pq(frame: pd.DataFrame) -> float | None:
    """PQ of the fully supervised reference (mean over its seeds)."""
    stats = full_pq_stats(frame)
    return stats.mean if stats.n else None


def by_seed(
    frame: pd.DataFrame,
    *,
    supervision: str = "points",
    points: int | None = None,
    shape: str | None = None,
    share: float = 0.0,
    dilation: bool = False,
) -> dict[int, float]:
    """PQ of one cell per seed (``supervision="full"``: the full-mask reference).

    A cell with two rows for one seed cannot be paired (two grids mixed in one frame): refused.
    """
    rows = frame[frame["supervision"] == supervision]
    if supervision == "points":
        rows = rows[
            (rows["points"] == points)
            & (rows["shape"] == shape)
            & (rows["boundary_share"] == share)
            & (rows["dilation"] == dilation)
        ]
    rows = rows.dropna(subset=["pq"])
    seeds = [int(sd) for sd in rows["seed"]]
    if len(set(seeds)) < len(seeds):
        raise ValueError(
            f"two rows for one seed of the cell {supervision} P{points} {shape} share {share} "
            f"dilation {dilation}: a trend frame holds one grid (one dataset, one rule set)"
        )
    return {sd: float(pq) for sd, pq in zip(seeds, rows["pq"])}


def seed_pqs(frame: pd.DataFrame, points: int = 20, shape: str = "concave") -> list[float]:
    """PQ of every seed of the P``points`` ``shape`` cell (boundary 0, no dilation), by seed."""
    cell = by_seed(frame, points=points, shape=shape)
    return [cell[s] for s in sorted(cell)]


def p20_share_interval(frame: pd.DataFrame, shape: str = "concave") -> MeanSE | None:
    """P20's share of the full-mask PQ, paired by seed: the mean of the per-seed ratios
    PQ(P20 ``shape``, boundary 0, no dilation) / PQ(full masks) over the seeds both cells have
    (a fraction), its standard error (nan with one paired seed) and the number of paired seeds.
    None when no seed has both cells (or no full-mask PQ above 0)."""
    return paired_ratio(by_seed(frame, points=20, shape=shape), by_seed(frame, supervision="full"))


def paired_ratio(a: Mapping[int, float], b: Mapping[int, float]) -> MeanSE | None:
    """Mean ± standard error of the per-seed ratios a / b over the seeds both hold (b > 0); None
    when no seed has both."""
    ratios = [a[sd] / b[sd] for sd in _pairs(a, b) if b[sd] > 0]
    return mean_se(ratios) if ratios else None


def p20_share(frame: pd.DataFrame, shape: str = "concave") -> float | None:
    """PQ of P20 (``shape``, boundary 0, no dilation, mean over seeds) over the full-mask PQ (mean
    over its seeds): the ratio of the means, every seed of each cell counted. The paired share with
    its standard error is :func:`p20_share_interval`."""
    full = full_pq(frame)
    p20 = table13(frame).get(shape, {}).get(20)
    if full is None or p20 is None or full <= 0:
        return None
    return p20 / full


# --------------------------------------------------------------------------- paired comparisons
def _spearman(xs: Sequence[float], ys: Sequence[float]) -> float:
    """Spearman rank correlation (average ranks for ties); nan when a side is constant."""
    rx = pd.Series(xs).rank().to_numpy(float)
    ry = pd.Series(ys).rank().to_numpy(float)
    if rx.std() == 0 or ry.std() == 0:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


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


def _diff(combo: Callable[..., float], *cells: Mapping[int, float]) -> PairedDifference:
    """The paired interval of ``combo(values of one seed...)`` over the seeds all cells share."""
    return difference_interval([combo(*(c[sd] for c in cells)) for sd in _pairs(*cells)])


# --------------------------------------------------------------------------- the rules
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
        d = _diff(
            lambda hi, lo: hi - lo,
            by_seed(frame, points=ps[-1], shape=shape),
            by_seed(frame, points=ps[0], shape=shape),
        )
        diffs.append(d)
        rho = _spearman(ps, [series[p] for p in ps])
        parts.append(
            f"{shape}: "
            + " ".join(f"P{p} {series[p]:.1f}" for p in ps)
            + f"; P{ps[-1]}−P{ps[0]} {d.text()} (ρ {rho:.2f})"
        )
    if not diffs:
        return Trend("T1", claim, rule, "not measured", "needs ≥ 3 point counts of one shape")
    return Trend("T1", claim, rule, _combine(diffs), "; ".join(parts))


def trend_t2(frame: pd.DataFrame, dilation: bool = False) -> Trend:
    """T2: convex beats concave with few points (P5, P10); concave wins from P30 on.

    Rule: convex − concave > 0 at every measured P ≤ 10 and concave − convex > 0 at every measured
    P ≥ 30 (95 % paired intervals); both ranges must have at least one measured P. With
    ``dilation`` the same rule on the cells with dilation on, reported as "T2 (dilated)": the paper
    trains with dilation as an augmentation, so the dilated targets are what its network sees.
    """
    tid = "T2 (dilated)" if dilation else "T2"
    claim = (
        "as T2, on the cells with dilation" if dilation else "convex beats concave at P5, P10; concave wins from P30 on"
    )
    rule = "convex − concave > 0 at each P ≤ 10, concave − convex > 0 at each P ≥ 30 (paired intervals)" + (
        ", dilation on" if dilation else ""
    )
    tab = table13(frame, dilation=dilation)
    common = sorted(set(tab.get("convex", {})) & set(tab.get("concave", {})))
    few = [p for p in common if p <= 10]
    many = [p for p in common if p >= 30]
    if not few or not many:
        return Trend(tid, claim, rule, "not measured", "needs both shapes at P ≤ 10 and P ≥ 30")
    diffs, parts = [], []
    for p in few + many:
        cv = by_seed(frame, points=p, shape="convex", dilation=dilation)
        cc = by_seed(frame, points=p, shape="concave", dilation=dilation)
        d = _diff(lambda a, b: a - b, cv, cc) if p <= 10 else _diff(lambda a, b: a - b, cc, cv)
        diffs.append(d)
        parts.append(f"P{p} {'convex−concave' if p <= 10 else 'concave−convex'} {d.text()}")
    return Trend(tid, claim, rule, _combine(diffs), "; ".join(parts))


def trend_t2_dilated(frame: pd.DataFrame) -> Trend:
    """T2 on the cells with dilation on (see :func:`trend_t2`)."""
    return trend_t2(frame, dilation=True)


def trend_t3(frame: pd.DataFrame) -> Trend:
    """T3: more boundary points help, saturating near a 50% share (P20 concave, no dilation).

    Rule: PQ(50%) − PQ(0%) > 0, PQ(100%) − PQ(0%) > 0 and (PQ(50%) − PQ(0%)) − (PQ(100%) − PQ(50%))
    > 0 (95 % paired intervals). The 100 % comparison makes a share that decidedly *hurts* a fail,
    even where the 50 % cells are too noisy to decide (the paper: 0 % 32.7, 100 % 35.8).
    """
    claim = "more boundary points help, saturating near a 50% share"
    rule = (
        "no dilation: PQ(50%) − PQ(0%) > 0, PQ(100%) − PQ(0%) > 0 and the 50→100% gain − the 0→50% gain < 0 "
        "(paired intervals)"
    )
    cells = [by_seed(frame, points=20, shape="concave", share=s) for s in (0.0, 0.5, 1.0)]
    if not all(cells):
        return Trend("T3", claim, rule, "not measured", "needs P20 concave at boundary shares 0, 0.5, 1")
    gain = _diff(lambda a, b: b - a, cells[0], cells[1])
    gain_all = _diff(lambda a, c: c - a, cells[0], cells[2])
    saturation = _diff(lambda a, b, c: 2 * b - a - c, *cells)  # (b − a) − (c − b), must be > 0
    row = table14(frame).get(False, {})
    nums = (
        " ".join(f"{int(round(s * 100))}% {row[s]:.1f}" for s in sorted(row) if s in (0.0, 0.5, 1.0))
        + f"; gain 0→50% {gain.text()}; gain 0→100% {gain_all.text()};"
        + f" 0→50% gain − 50→100% gain {saturation.text()}"
    )
    return Trend("T3", claim, rule, _combine([gain, gain_all, saturation]), nums)


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
    nums = (
        " ".join(f"{int(round(s * 100))}% {gains[s]:+.1f}" for s in shares)
        + f"; gain at 0% {gain0.text()}; gain at 0% − mean gain at ≥ 50% {rel.text()}"
    )
    return Trend("T4", claim, rule, _combine([gain0, rel]), nums)


def _magnitude(d: PairedDifference) -> tuple[float, float]:
    """The interval of |effect| that a paired interval gives: ``[low, high]`` when it lies above 0,
    ``[−high, −low]`` when below, ``[0, max(−low, high)]`` when it holds 0; ``(0, inf)`` without one."""
    if d.n < 2 or math.isnan(d.low):
        return 0.0, math.inf
    if d.low > 0:
        return d.low, d.high
    if d.high < 0:
        return -d.high, -d.low
    return 0.0, max(-d.low, d.high)


def trend_t5(frame: pd.DataFrame) -> Trend:
    """T5: the spread over sampling seeds is small against the differences above.

    Rule: twice the seed standard deviation of P20 concave, with its 95 % χ² interval
    (:func:`~pointly.model.study.intervals.sd_interval`), against the smallest measured effect,
    with the 95 % paired intervals of |PQ(P20) − PQ(P10)| (concave), |PQ(50%) − PQ(0%)| (boundary)
    and |gain of dilation at 0%| (the smallest effect lies between the smallest lower and the
    smallest upper end). **pass** when even the spread's upper end is below the smallest effect's
    lower end, **fail** when even its lower end is above the smallest effect's upper end, else
    undecided. Three seeds put the upper end at 6.3 standard deviations: only a spread far below
    the effects passes.
    """
    claim = "the spread over sampling seeds is small against the differences above"
    rule = "2·std(P20 seeds), 95 % χ² interval, against min(|P20−P10|, |boundary 50%−0%|, |dilation gain at 0%|), 95 % paired intervals"
    pqs = seed_pqs(frame)
    if len(pqs) < 2:
        return Trend("T5", claim, rule, "not measured", "needs ≥ 2 seeds of P20 concave")
    spread = sd_interval(pqs)
    p20 = by_seed(frame, points=20, shape="concave")
    effects: dict[str, PairedDifference] = {}
    p10 = by_seed(frame, points=10, shape="concave")
    if p10 and _pairs(p20, p10):
        effects["P20−P10"] = _diff(lambda a, b: a - b, p20, p10)
    b50 = by_seed(frame, points=20, shape="concave", share=0.5)
    if b50 and _pairs(b50, p20):
        effects["boundary 50%−0%"] = _diff(lambda a, b: a - b, b50, p20)
    dil = by_seed(frame, points=20, shape="concave", dilation=True)
    if dil and _pairs(dil, p20):
        effects["dilation at 0%"] = _diff(lambda a, b: a - b, dil, p20)
    nums = (
        f"{len(pqs)} seeds: PQ {np.mean(pqs):.2f} ± {spread.sd:.2f} sd, ± {spread.sd / math.sqrt(len(pqs)):.2f} se "
        f"(paper ± {PAPER_SEED_STD}); 2·sd {2 * spread.sd:.2f} [{2 * spread.low:.2f}, {2 * spread.high:.2f}] "
        f"({spread.confidence:.0%} χ²)"
    )
    if not effects:
        return Trend("T5", claim, rule, "not measured", nums + "; no effect measured to compare with")
    bounds = [_magnitude(d) for d in effects.values()]
    smallest_low, smallest_high = min(lo for lo, _ in bounds), min(hi for _, hi in bounds)
    nums += "; effects " + ", ".join(f"{k} {d.text()}" for k, d in effects.items())
    if 2 * spread.high < smallest_low:
        verdict = "pass"
    elif 2 * spread.low > smallest_high:
        verdict = "fail"
    else:
        verdict = "undecided"
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
    d = _diff(lambda a, b: a / b - T6_SHARE if b > 0 else float("nan"), p20, full)
    nums = (
        f"P20 {table13(frame)['concave'][20]:.1f} / full {full_pq(frame):.1f} = {share:.0%} "
        f"(paper {PAPER_P20_SHARE:.0%}); share − 70 % per seed {d.text(digits=3)}"
    )
    return Trend("T6", claim, rule, _combine([d]), nums)


#: T1–T6 in order
RULES = (trend_t1, trend_t2, trend_t3, trend_t4, trend_t5, trend_t6)


def trends(frame: pd.DataFrame) -> list[Trend]:
    """All six trend rows of one dataset's trend frame, in order."""
    check_frame(frame)
    return [rule(frame) for rule in RULES]


def trends_by_dataset(frame: pd.DataFrame) -> dict[str, list[Trend]]:
    """The six trend rows of each dataset of a trend frame with a ``dataset`` column."""
    return {str(name): trends(group) for name, group in frame.groupby("dataset", sort=True)}


# --------------------------------------------------------------------------- Markdown
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table (no trailing newline); a ``|`` inside a cell is escaped. The one table
    writer of the study reports."""
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines)


def trends_table(rows: Iterable[Trend]) -> str:
    """Trend rows as a Markdown table (trend, claim, rule, verdict, measured)."""
    header = ["trend", "claim (docs/study.md)", "rule", "verdict", "measured"]
    return markdown_table(header, [(t.id, t.claim, t.rule, t.verdict, t.numbers) for t in rows])
