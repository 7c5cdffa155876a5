"""What each annotation second buys: a study's cells as options on a cost–PQ frontier.

Every cell of a trend frame (one dataset, one rule set, the main grid; seeds pooled) is an
*option* a user can choose: its cost is the mean annotation seconds per image (the cost model's,
``pointgen.cost``), its value the mean PQ over seeds. An option is **dominated** when another that
costs no more beats it by a paired interval that lies above 0 (:mod:`pointly.model.study.intervals`,
95 % Student-t over shared seeds; costs within 1 % count as equal); the others form the
**frontier**. For every frontier option the report also gives what it buys over the best cheaper
frontier option (the highest mean PQ among those sharing at least two seeds with it, so that
there is an interval; among all of them where none does), with its interval: where that interval
holds 0, the extra seconds buy nothing the seeds can show. Two point estimates never decide either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from pointly.model.study.intervals import PairedDifference, paired_difference
from pointly.model.study.trends import MeanSE, by_seed, markdown_table, mean_se, paired_ratio

#: the columns that name an option (every axis but the seed)
OPTION_AXES = ("supervision", "points", "shape", "boundary_share", "dilation")
#: costs closer than this share count as equal: the simulated points of one P cost slightly
#: different seconds on different seeds (segments smaller than P pixels get fewer points)
COST_TOLERANCE = 0.01


@dataclass(frozen=True)
class Option:
    """One cell of the study, its seeds pooled."""

    label: str
    seconds: float  # mean annotation seconds per image over the seeds
    pq: MeanSE
    seeds: dict[int, float]  # PQ by seed, for pairing


@dataclass(frozen=True)
class FrontierRow:
    """An option's place: ``dominated`` by a no-dearer option (``against`` = it, ``difference`` =
    it − this option, a pass), or on the ``frontier`` (``against`` = the best cheaper frontier
    option, ``difference`` = this option − it; None for the cheapest)."""

    option: Option
    verdict: str
    against: Option | None
    difference: PairedDifference | None
    share_of_full: MeanSE | None  # per-seed PQ / full-mask PQ, paired by seed (a fraction)


def option_label(supervision: str, points, shape, share, dilation) -> str:
    """``full masks`` or e.g. ``P20 concave, 50 % boundary, dilation``."""
    if supervision != "points":
        return "full masks"
    text = f"P{int(points)} {shape}"
    if share and float(share) > 0:
        text += f", {float(share):.0%} boundary"
    if bool(dilation):
        text += ", dilation"
    return text


def _seconds_per_image(rows: pd.DataFrame) -> float:
    """Mean annotation seconds per image of an option's rows; nan where the rows hold no cost."""
    if "seconds_per_image" in rows and rows["seconds_per_image"].notna().all():
        return float(rows["seconds_per_image"].mean())
    if {"annotation_seconds", "images"} <= set(rows.columns):
        return float((rows["annotation_seconds"].astype(float) / rows["images"].astype(float)).mean())
    return math.nan


def options(frame: pd.DataFrame) -> list[Option]:
    """The options of a trend frame (:func:`pointly.model.study.report.trend_frame`), cheapest first."""
    out = []
    frame = frame.dropna(subset=["pq"])
    for key, rows in frame.groupby(list(OPTION_AXES), dropna=False, sort=False):
        supervision, points, shape, share, dilation = key
        if supervision == "points":
            seeds = by_seed(frame, points=int(points), shape=shape, share=float(share), dilation=bool(dilation))
        else:
            seeds = by_seed(frame, supervision=supervision)
        label = option_label(supervision, points, shape, share, dilation)
        out.append(Option(label, _seconds_per_image(rows), mean_se(seeds.values()), seeds))
    return sorted(out, key=lambda o: (round(o.seconds, 1), -o.pq.mean, o.label))


def _no_dearer(a: Option, b: Option) -> bool:
    """``a`` costs at most what ``b`` costs (within :data:`COST_TOLERANCE`)."""
    return a.seconds <= b.seconds * (1 + COST_TOLERANCE)


def _cheaper(a: Option, b: Option) -> bool:
    """``a`` costs less than ``b`` by more than :data:`COST_TOLERANCE`."""
    return a.seconds < b.seconds * (1 - COST_TOLERANCE)


def _share(option: Option, full: Option | None) -> MeanSE | None:
    if full is None:
        return None
    return paired_ratio(option.seeds, full.seeds)


def frontier(frame: pd.DataFrame, *, confidence: float = 0.95) -> list[FrontierRow]:
    """Every option of ``frame``, cheapest first, as frontier or dominated (module docstring)."""
    opts = options(frame)
    full = next((o for o in opts if o.label == "full masks"), None)
    rows: list[FrontierRow] = []
    on_frontier: list[Option] = []
    for option in opts:
        beats = []
        for other in opts:
            if other is option or not _no_dearer(other, option):
                continue
            d = paired_difference(other.seeds, option.seeds, confidence=confidence)
            if d.verdict == "pass":
                beats.append((d.mean, other, d))
        if beats:
            _, other, d = max(beats, key=lambda b: b[0])
            rows.append(FrontierRow(option, "dominated", other, d, _share(option, full)))
            continue
        cheaper = [o for o in on_frontier if _cheaper(o, option)]
        # read against the best of them that can be paired (two shared seeds give an interval)
        paired = [o for o in cheaper if len(set(o.seeds) & set(option.seeds)) >= 2] or cheaper
        best = max(paired, key=lambda o: o.pq.mean) if paired else None
        d = None if best is None else paired_difference(option.seeds, best.seeds, confidence=confidence)
        rows.append(FrontierRow(option, "frontier", best, d, _share(option, full)))
        on_frontier.append(option)
    return rows


def _pq(m: MeanSE) -> str:
    return f"{m.mean:.1f}" if m.n < 2 or math.isnan(m.se) else f"{m.mean:.1f} ± {m.se:.1f}"


def _reading(row: FrontierRow) -> str:
    if row.verdict == "dominated":
        return f"dominated by {row.against.label}: {row.difference.text()}"
    if row.against is None:
        return "frontier (the cheapest)"
    d, label = row.difference, row.against.label
    if d.verdict == "pass":
        return f"frontier; buys {d.text()} over {label}"
    if d.verdict == "fail":
        return f"frontier; loses to {label}: {d.text()}"
    return f"frontier; not separable from {label}: {d.text()}"


def frontier_markdown(frame: pd.DataFrame) -> str:
    """The frontier as a Markdown table: option, seconds per image, PQ, share of full, reading."""
    rows = frontier(frame)
    if not rows or any(math.isnan(r.option.seconds) for r in rows):
        return ""  # rows without a cost (hand-made or foreign): no frontier to draw
    with_full = any(r.share_of_full is not None for r in rows)  # target studies have no full masks
    body = []
    for r in rows:
        share = "—"
        if r.share_of_full is not None and r.option.label != "full masks":
            s = r.share_of_full
            share = f"{100 * s.mean:.1f} %" if s.n < 2 else f"{100 * s.mean:.1f} ± {100 * s.se:.1f} %"
        cells = [r.option.label, f"{r.option.seconds:.1f}", _pq(r.option.pq)] + ([share] if with_full else [])
        body.append(cells + [_reading(r)])
    header = ["option", "annotation s / image", "PQ"] + (["share of full PQ"] if with_full else []) + ["reading"]
    return markdown_table(header, body)
