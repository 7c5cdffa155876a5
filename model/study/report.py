"""The study report, one entry for both depths: :func:`write_report`.

It only *reads* rows (:mod:`pointly.model.study.store`, PQ in percent), so a report can be rebuilt
at any time from a finished, partial or merged (several shards) study, old folders included.
Per dataset and set of target rules it writes the depth's tables
(:func:`pointly.model.study.targets_report.section`: target PQ, IoU and coverage by points,
shape, boundary share and dilation; :func:`pointly.model.study.trained_report.section`: the
paper's Table 13 and 14 layouts with its numbers in brackets) and the trend rows T1–T6 of
docs/study.md from the one evaluator :func:`pointly.model.study.trends.trends` (each comparison paired by
seed and decided by its 95 % Student-t interval), the cost–PQ frontier
(:mod:`pointly.model.study.frontier`: which options the seconds buy, by paired intervals), plus the
figure "PQ against annotation seconds".

Files: ``report.md``, ``table.csv`` (every row, sorted) and ``pq_vs_seconds.png``.

The trend frame of a dataset (:func:`trend_frame`) is its *main grid* for one rule set: concave
cells at the main concave ratio (the default 0.3 if present), dilation off or at the main dilation
(the depth's default if present, else the most common), plus the full-mask reference; ``dilation``
becomes "on/off". T6 needs the full-mask reference, which target rows never have.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from pointly.model.study import trends as study_trends
from pointly.model.study.frontier import frontier_markdown
from pointly.model.study.grid import DEFAULT_CONCAVE_RATIO, DEPTH_DILATION, dilation_text
from pointly.model.study.store import normalise_frame, read_settings
from pointly.model.study.trends import Trend
from pointly.pointgen.base.files import atomic_open

TITLES = {"targets": "Target-quality study", "trained": "Trained study"}
FIGURE = "pq_vs_seconds.png"
FRONTIER_HEADING = (
    "### What each annotation second buys (cost–PQ frontier)\n\n"
    "Every cell is an option, its seeds pooled (PQ: mean ± standard error). An option is *dominated* "
    "when one that costs no more beats it by a paired 95 % interval above 0; on the *frontier*, the "
    "reading compares it with the best cheaper frontier option (where the interval holds 0, the "
    "extra seconds buy nothing the seeds can show). Share of full PQ: per-seed ratio, paired.\n\n"
)
#: the default "on" dilations, preferred as a grid's main dilation
DEFAULT_DILATIONS = tuple(dilation_text(d) for d in DEPTH_DILATION.values())
SORT = ["dataset", "rules", "supervision", "shape", "points", "boundary_share", "dilation", "concave_ratio", "seed"]


# --------------------------------------------------------------------------- the main grid
def points_rows(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["supervision"] == "points"]


def rule_sets(frame: pd.DataFrame) -> list[str]:
    """The target rule sets of the points rows (``corrected`` first); ``["corrected"]`` if none."""
    sets = points_rows(frame)["rules"].dropna().astype(str).unique() if "rules" in frame else []
    return sorted(sets, key=lambda r: (r != "corrected", r)) or ["corrected"]


def main_ratio(frame: pd.DataFrame) -> float | None:
    """The concave ratio of the main grid: the default one if present, else the most common."""
    ratios = frame.loc[frame["shape"] == "concave", "concave_ratio"].astype(float).dropna()
    if ratios.empty:
        return None
    if np.isclose(ratios, DEFAULT_CONCAVE_RATIO).any():
        return float(DEFAULT_CONCAVE_RATIO)
    return float(ratios.round(6).mode().iloc[0])


def main_dilation(frame: pd.DataFrame) -> str | None:
    """The dilation of the main grid's "on" cells: a depth's default if present, else the most common."""
    on = points_rows(frame)
    on = on[on["dilation"] != "off"]
    if on.empty:
        return None
    for label in DEFAULT_DILATIONS:
        if (on["dilation"] == label).any():
            return label
    return str(on["dilation"].mode().iloc[0])


def main_grid(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of the main grid: concave at the main ratio (other shapes have none), dilation off or
    at the main dilation; full-mask rows kept."""
    r, d = main_ratio(frame), main_dilation(frame)
    pts = frame["supervision"] == "points"
    ratio = frame["concave_ratio"].astype(float)
    keep = (frame["shape"] != "concave") | (np.isclose(ratio, r) if r is not None else True)
    keep &= (frame["dilation"] == "off") | (frame["dilation"] == d)
    return frame[~pts | keep]


def trend_frame(frame: pd.DataFrame, rules: str | None = None) -> pd.DataFrame:
    """The rows of one dataset as a trend frame (:mod:`pointly.model.study.trends`): the main grid
    of one rule set (``rules``, or the only one present) and the full-mask rows; ``dilation`` is
    on/off (the label stays in ``dilation_label``). Other columns are kept."""
    frame = normalise_frame(frame)
    if rules is None:
        sets = rule_sets(frame)
        if len(sets) > 1:
            raise ValueError(f"the rows hold several target rule sets ({', '.join(sets)}): pick one")
        rules = sets[0]
    keep = (frame["supervision"] != "points") | (frame["rules"] == rules)
    f = main_grid(frame[keep]).copy()
    f["dilation_label"] = f["dilation"]
    f["dilation"] = f["dilation"] != "off"
    return f.reset_index(drop=True)


def trends(frame: pd.DataFrame, rules: str | None = None) -> list[Trend]:
    """T1–T6 of one dataset's rows (one rule set), with "T2 (dilated)" after T2 where measured."""
    tf = trend_frame(frame, rules)
    rows = study_trends.trends(tf)
    dilated = study_trends.trend_t2_dilated(tf)
    if dilated.verdict != "not measured":
        rows.insert(2, dilated)
    return rows


def groups(frame: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """``(dataset, rules) → rows``: each rule set's points rows with the dataset's full-mask rows."""
    frame = normalise_frame(frame)
    out = {}
    for name in sorted(frame["dataset"].unique()):
        ds = frame[frame["dataset"] == name]
        for rules in rule_sets(ds):
            out[(str(name), rules)] = ds[(ds["supervision"] != "points") | (ds["rules"] == rules)]
    return out


def trend_groups(frame: pd.DataFrame) -> dict[tuple[str, str], list[Trend]]:
    """The trend rows of every dataset and rule set."""
    return {key: trends(rows, key[1]) for key, rows in groups(frame).items()}


# --------------------------------------------------------------------------- the report
def _title(out_dir: Path, depth: str) -> str:
    meta = read_settings(out_dir)
    if depth == "trained" and meta.get("preset"):
        return f"Trained study: preset {meta.get('preset')}, {meta.get('iters')} iterations per cell"
    return TITLES.get(depth, "Study")


def write_report(
    frame: pd.DataFrame, out_dir: str | Path, depth: str, *, title: str | None = None, preamble: str = ""
) -> dict[str, Path]:
    """Write ``table.csv``, ``report.md`` and ``pq_vs_seconds.png`` of ``frame`` into ``out_dir``.

    ``depth`` picks the tables and the figure (targets or trained); the trend rows are the same
    for both. The title is the depth's, with the trained study's preset from study.json."""
    from pointly.model.study import targets_report, trained_report

    if depth not in TITLES:
        raise ValueError(f"unknown depth {depth!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = normalise_frame(frame).sort_values(SORT, na_position="first").reset_index(drop=True)
    paths = {"table": out_dir / "table.csv", "report": out_dir / "report.md", "figure": out_dir / FIGURE}
    with atomic_open(paths["table"], "w", encoding="utf-8", newline="") as fh:
        frame.to_csv(fh, index=False)
    depth_module = targets_report if depth == "targets" else trained_report
    parts = groups(frame)
    depth_module.plot(frame, paths["figure"])
    out = io.StringIO()
    out.write(f"# {title or _title(out_dir, depth)}\n\n")
    if preamble:
        out.write(preamble.rstrip() + "\n\n")
    out.write(f"{len(frame)} cells finished. {depth_module.NOTE}\n\n")
    out.write(f"![PQ against annotation seconds]({FIGURE})\n\n")
    for (dataset, rules), rows in parts.items():
        several = len([k for k in parts if k[0] == dataset]) > 1
        out.write(f"## {dataset}" + (f" (target rules: {rules})" if several else "") + "\n\n")
        tf = trend_frame(rows, rules)
        out.write(depth_module.section(rows, tf).rstrip() + "\n\n")
        out.write(
            "### Trends T1–T6 (docs/study.md), as measured\n\nPQ in %; each comparison is paired by seed "
            "and decided by its 95 % interval.\n\n"
        )
        out.write(study_trends.trends_table(trends(rows, rules)) + "\n\n")
        table = frontier_markdown(tf)
        if table:
            out.write(FRONTIER_HEADING + table + "\n\n")
    tail = depth_module.tail(frame)
    if tail:
        out.write(tail.rstrip() + "\n")
    with atomic_open(paths["report"], "w", encoding="utf-8") as fh:
        fh.write(out.getvalue())
    return paths
