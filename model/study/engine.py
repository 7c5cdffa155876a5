"""The study engine, one for both depths: run the cells of a grid, resumably, into one folder.

``pointly study --depth targets|trained`` differ only in how a cell is *scored*: a
:class:`Scorer` turns a :class:`~pointly.model.study.grid.Cell` into its metrics and costs. The
target study's scorer (:class:`pointly.model.study.targets.TargetScorer`) builds and scores the
targets of simulated points in a second; the trained study's
(:class:`pointly.model.study.trained_cell.PipelineRunner`) simulates, trains and evaluates a model.
Everything else is here and shared:

* the grid, cell ids, ``--grid`` and ``--shard`` (:mod:`pointly.model.study.grid`);
* the rows: ``results.csv`` with locked appends, ``cells/<id>/row.json`` for scorers that keep a
  folder, ``study.json`` with the settings, old folders read (:mod:`pointly.model.study.store`);
* the loop (:func:`run_cells`): the shard's cells without a row run in grid order under a progress
  bar; where cells keep a folder (trained cells, minutes to days each), a process first claims the
  cell (:mod:`pointly.model.study.claims`), so that jobs, shards and machines sharing the folder
  each take the next cell nobody runs; a cell that raises writes ``cells/<id>/error.txt`` and the loop goes on (it runs again on
  the next call); an interrupted cell has no row and simply runs again; the report is rewritten
  at the end from every row of the folder (all shards);
* the report (:func:`pointly.model.study.report.write_report`): tables, figure and the trend rows
  T1–T6 with their intervals.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from pointly.model.study.claims import try_claim
from pointly.model.study.grid import Cell, parse_grid, parse_shard, shard_cells, unique_cells
from pointly.model.study.report import trend_groups, write_report
from pointly.model.study.store import (
    RESULTS,
    ROW_COLUMNS,
    append_row,
    check_settings,
    csv_rows,
    folder_depth,
    legacy_defaults,
    legacy_shard_rows,
    load_rows,
    locked,
    plain,
    read_settings,
    row_files,
    upgrade_results,
)
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

__all__ = [
    "Cell",
    "Scorer",
    "StudyOutcome",
    "StudySetup",
    "run_cells",
    "run_study",
    "report_only",
    "load_rows",
    "parse_grid",
    "parse_shard",
    "shard_cells",
    "unique_cells",
    "write_report",
]


class Scorer(Protocol):
    """Scores one cell: returns its metrics and costs (row columns; PQ/SQ/RQ in percent).

    ``needs_folder``: the scorer keeps files in ``cells/<id>/`` (then the row is also written
    there as ``row.json``); otherwise ``cell_dir`` is only created for an ``error.txt``."""

    needs_folder: bool

    def score(self, cell: Cell, cell_dir: Path) -> Mapping[str, Any]: ...


@dataclass
class StudyOutcome:
    """What one :func:`run_cells` call did (cell ids), and the report files it wrote."""

    ran: list[str]
    skipped: list[str]
    failed: list[str]
    total: int
    rows_path: Path
    report: dict[str, Path] = field(default_factory=dict)
    elsewhere: list[str] = field(default_factory=list)  # run (or failed) by another process meanwhile


def _done(out_dir: Path) -> tuple[set[str], dict[str, dict]]:
    """Ids of the finished cells, and the row files missing from ``results.csv`` (to heal)."""
    defaults = legacy_defaults(read_settings(out_dir))
    in_csv = set(csv_rows(out_dir / RESULTS, defaults))
    files = row_files(out_dir, defaults)
    old = set(legacy_shard_rows(out_dir, defaults))
    return in_csv | set(files) | old, {k: v for k, v in files.items() if k not in in_csv}


def _row(cell: Cell, result: Mapping[str, Any], settings: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = dict.fromkeys(ROW_COLUMNS)
    row.update({k: plain(v) for k, v in result.items() if k in ROW_COLUMNS})
    row.update(cell.axes())
    row["cell_id"] = cell.cell_id
    row["depth"] = settings.get("depth")
    row["iters"] = settings.get("iters")
    row["split"] = row.get("split") or settings.get("split", "val")
    return row


def run_cells(
    cells: Sequence[Cell],
    out_dir: str | Path,
    scorer: Scorer,
    *,
    settings: Mapping[str, Any] | Callable[[Sequence[Cell]], Mapping[str, Any]],
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    max_cells: int | None = None,
) -> StudyOutcome:
    """Score the cells of ``shard`` that have no row yet, appending a row as each finishes.

    ``settings`` (with ``depth``) go into ``study.json``; a callable gets the shard's cells and
    returns them (the target study records the sources of the datasets they name). ``max_cells``
    stops after that many cells (smoke runs). The report is rewritten at the end from every row in
    the folder.

    Where the scorer keeps a folder, each cell is claimed first (:func:`~pointly.model.study.claims.try_claim`,
    under the folder's lock): a cell another live process runs, or that got its row or failed in
    another process since this run began, is passed over (``elsewhere``), so any number of
    processes can work through one grid at once."""
    from tqdm import tqdm

    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PointlyError("the output path is a file", file=out_dir, fix="pass a folder for --out")
    done, heal = _done(out_dir)
    mine = shard_cells(cells, shard)
    todo = [c for c in mine if c.cell_id not in done]
    skipped = [c.cell_id for c in mine if c.cell_id in done]
    if callable(settings):
        settings = settings(mine)
    out_dir.mkdir(parents=True, exist_ok=True)
    merged = check_settings(out_dir, settings)
    csv_path = out_dir / RESULTS
    upgrade_results(out_dir, legacy_defaults(merged))
    for row in heal.values():  # a crash between row.json and the CSV append: heal the CSV
        append_row(csv_path, row)
    if skipped:
        log.info("skipping %d finished cells", len(skipped))
    ran: list[str] = []
    failed: list[str] = []
    elsewhere: list[str] = []
    began = time.time()
    depth = settings.get("depth", "")
    bar = tqdm(total=len(todo), desc=f"{depth} study shard {shard[0]}/{shard[1]}", unit="cell", disable=not progress)
    try:
        for cell in todo:
            if max_cells is not None and len(ran) + len(failed) >= max_cells:
                break
            cell_dir = out_dir / "cells" / cell.cell_id
            claim = None
            if scorer.needs_folder:
                with locked(csv_path):
                    if not _taken_meanwhile(cell_dir, began):
                        claim = try_claim(cell_dir)
                if claim is None:
                    elsewhere.append(cell.cell_id)
                    bar.update(1)
                    continue
            bar.set_postfix_str(cell.cell_id)
            try:
                row = _score(cell, cell_dir, scorer, settings, csv_path)
            finally:
                if claim is not None:  # only once the row is written: nobody may start it again before
                    claim.release()
            (failed if row is None else ran).append(cell.cell_id)
            bar.update(1)
            if row is not None and row.get("pq") is not None:
                bar.set_postfix_str(f"{cell.cell_id} PQ {row['pq']:.1f}")
    finally:
        bar.close()
    frame = load_rows(out_dir)
    report = write_report(frame, out_dir, depth or folder_depth(out_dir, frame) or "targets") if len(frame) else {}
    return StudyOutcome(
        ran=ran, skipped=skipped, failed=failed, total=len(mine), rows_path=csv_path, report=report, elsewhere=elsewhere
    )


def _score(cell: Cell, cell_dir: Path, scorer: Scorer, settings: Mapping[str, Any], csv_path: Path) -> dict | None:
    """Score one cell and store its row (``row.json`` where the scorer keeps a folder, then the
    CSV); a cell that raises leaves ``error.txt`` and gives ``None``."""
    if scorer.needs_folder:
        cell_dir.mkdir(parents=True, exist_ok=True)
    try:
        result = scorer.score(cell, cell_dir)
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # one broken cell must not stop a day-long study
        log.error("cell %s failed: %s", cell.cell_id, exc)
        cell_dir.mkdir(parents=True, exist_ok=True)
        write_bytes_atomic(cell_dir / "error.txt", traceback.format_exc().encode("utf-8"))
        return None
    row = _row(cell, result, settings)
    if scorer.needs_folder:
        write_json_atomic(cell_dir / "row.json", row, indent=2)
    if (cell_dir / "error.txt").is_file():
        (cell_dir / "error.txt").unlink()
        if not scorer.needs_folder and not any(cell_dir.iterdir()):
            cell_dir.rmdir()
    append_row(csv_path, row)
    return row


def _taken_meanwhile(cell_dir: Path, began: float) -> bool:
    """The cell got its row, or failed, in another process since this run began (its failure
    waits for the next run, as a failure in this process does)."""
    if (cell_dir / "row.json").is_file():
        return True
    error = cell_dir / "error.txt"
    return error.is_file() and error.stat().st_mtime >= began


# --------------------------------------------------------------------------- the command
@dataclass
class StudySetup:
    """What a depth hands the engine: the cells, the scorer and the settings (or a callable)."""

    depth: str
    cells: list[Cell]
    scorer: Scorer
    settings: Mapping[str, Any] | Callable[[Sequence[Cell]], Mapping[str, Any]]


def trend_lines(frame) -> list[str]:
    """``T1 pass: ...`` per trend, prefixed by the dataset (and rule set) when there are several."""
    groups = trend_groups(frame)
    out = []
    for (dataset, rules), rows in groups.items():
        prefix = f"[{dataset}{'' if rules == 'corrected' else ', rules ' + rules}] " if len(groups) > 1 else ""
        out += [f"{prefix}{t.id} {t.verdict}: {t.numbers}" for t in rows]
    return out


def run_study(
    setup: StudySetup,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    max_cells: int | None = None,
    echo: Callable[[str], None] = print,
) -> StudyOutcome:
    """Run (or resume) a study, print a summary and the trend rows; failed cells raise at the end."""
    out_dir = Path(out_dir)
    outcome = run_cells(
        setup.cells,
        out_dir,
        setup.scorer,
        settings=setup.settings,
        shard=shard,
        progress=progress,
        max_cells=max_cells,
    )
    echo(
        f"{len(outcome.ran)} cells run, {len(outcome.skipped)} already done, {len(outcome.failed)} failed, "
        f"{len(outcome.elsewhere)} run by other processes "
        f"(shard {shard[0]}/{shard[1]}, {len(setup.cells)} cells in the grid); rows in {outcome.rows_path}"
    )
    for cid in outcome.failed:
        echo(f"  failed: {cid} (see {out_dir / 'cells' / cid / 'error.txt'}; it runs again on the next call)")
    frame = load_rows(out_dir)
    for line in trend_lines(frame):
        echo(line)
    if outcome.report:
        echo(f"report in {outcome.report['report']}")
    if outcome.failed:
        raise PointlyError(
            f"{len(outcome.failed)} cells failed ({', '.join(outcome.failed[:3])}"
            f"{', ...' if len(outcome.failed) > 3 else ''})",
            file=out_dir / "cells",
            fix="read their error.txt; a rerun retries them and skips the finished cells",
        )
    return outcome


def report_only(out_dir: str | Path, depth: str | None = None, echo: Callable[[str], None] = print) -> dict[str, Path]:
    """Rebuild the report of a study folder from its rows (any layout); the depth is the folder's."""
    out_dir = Path(out_dir)
    frame = load_rows(out_dir)
    if frame.empty:
        raise PointlyError("no rows to report", file=out_dir, fix="run the study first (without --report-only)")
    paths = write_report(frame, out_dir, folder_depth(out_dir, frame) or depth or "targets")
    echo(f"{len(frame)} rows; report in {paths['report']}")
    for line in trend_lines(frame):
        echo(line)
    return paths
