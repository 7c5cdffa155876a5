"""The trained study (``pointly study --depth trained``): simulate → train → evaluate per grid cell.

A *cell* is one point of the study's grid (study.md, "The study"): supervision (points or full
masks), points per segment, shape (convex / concave), boundary share, dilation on/off and the
sampling seed. For every cell the engine

1. simulates the points from the training split's masks (:mod:`pointly.pointgen.points.simulate`),
2. prices them with the annotation-cost model (:mod:`pointly.pointgen.points.cost`),
3. trains Panoptic FCN from those points (or from the full masks for the reference cell),
4. evaluates PQ / SQ / RQ (overall, things, stuff) on the validation split,

and writes one tidy row (all axes, metrics, annotation seconds, training time).

Resumability and sharding (the study takes an hour on a CPU and days on GPUs, so it must survive
interruptions and spread over machines):

* every finished cell writes ``cells/<cell_id>/row.json`` atomically, *then* appends the same row
  to ``results.csv`` (under a file lock, so several processes can share one folder). The row files
  are the truth: a rerun skips every cell that has one, and re-appends any row the CSV lost;
* a cell that raises is logged to ``cells/<cell_id>/error.txt`` and retried on the next run;
  an interrupted cell (Ctrl-C, a killed machine) has no row and is simply run again;
* ``shard=(i, n)`` runs the cells whose index in the grid is ``i`` modulo ``n``; the grid order is
  fixed by the preset, so shards on different machines never overlap, and copying their ``cells/``
  folders together gives the whole study (``report`` rebuilds the table from them);
* ``study.json`` records the settings that change results (dataset, training length, model
  config, image sizes); a rerun into the same folder with different settings is refused, so
  rows of different studies are never mixed.

The report (table, Markdown, figure, trends T1–T6) is :mod:`pointly.model.study.trained_report`.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import math
import os
import time
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from pointly.model.study.targets import RULES as TARGET_RULES
from pointly.model.study.targets import unique_cells
from pointly.model.study.trained_report import ROW_COLUMNS, normalise, write_report
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import write_bytes_atomic, write_json_atomic

log = logging.getLogger(__name__)

SHAPES = ("convex", "concave")
TABLE13_POINTS = (5, 10, 20, 30, 50, 100)
TABLE14_SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)


# --------------------------------------------------------------------------- cells and grids
@dataclass(frozen=True, order=True)
class Cell:
    """One grid cell. ``supervision`` is ``"points"`` or ``"full"`` (then the point axes are unused)."""

    supervision: str
    points: int | None = None
    shape: str | None = None
    boundary_share: float = 0.0
    dilation: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.supervision not in ("points", "full"):
            raise PointlyError(f"unknown supervision {self.supervision!r}", fix="use points or full")
        if self.supervision == "points":
            if not isinstance(self.points, int) or self.points < 1:
                raise PointlyError(f"points per segment must be a positive integer, got {self.points!r}")
            if self.shape not in SHAPES:
                raise PointlyError(f"unknown shape {self.shape!r}", fix=f"use one of {', '.join(SHAPES)}")
            if not 0.0 <= self.boundary_share <= 1.0:
                raise PointlyError(f"boundary share {self.boundary_share} outside [0, 1]")

    @property
    def cell_id(self) -> str:
        """A stable, file-name-safe id, e.g. ``P20-concave-b050-dil-s0`` or ``full-s0``."""
        if self.supervision == "full":
            return f"full-s{self.seed}"
        share = int(round(self.boundary_share * 100))
        return f"P{self.points}-{self.shape}-b{share:03d}-{'dil' if self.dilation else 'nodil'}-s{self.seed}"

    def axes(self) -> dict[str, Any]:
        return {
            "supervision": self.supervision,
            "points": self.points,
            "shape": self.shape,
            "boundary_share": self.boundary_share if self.supervision == "points" else None,
            "dilation": self.dilation,
            "seed": self.seed,
        }


def grid(
    points: Iterable[int] = TABLE13_POINTS,
    shapes: Iterable[str] = SHAPES,
    boundary_shares: Iterable[float] = (0.0,),
    dilations: Iterable[bool] = (False,),
    seeds: Iterable[int] = (0,),
    *,
    full: bool = True,
) -> list[Cell]:
    """The product of the axes (points-supervised cells), plus the full-mask reference per seed."""
    seeds = list(seeds)
    cells = [
        Cell("points", int(p), s, float(b), bool(d), int(seed))
        for p in points
        for s in shapes
        for b in boundary_shares
        for d in dilations
        for seed in seeds
    ]
    if full:
        cells += [Cell("full", seed=int(seed)) for seed in seeds]
    return cells


#: drop repeated cells, keeping the first occurrence (grids of different parts overlap)
unique = unique_cells


#: the parts a preset's grid is made of (study.md's tables)
def part_cells(part: str) -> list[Cell]:
    """Cells of one part: ``table13`` (P5..P100 × convex/concave + full masks, 13 cells),
    ``table14`` (P20 concave × 7 boundary shares × dilation off/on, 14 cells) and ``seeds``
    (P20 concave, seeds 0..4: the spread of T5)."""
    if part == "table13":
        return grid()
    if part == "table14":
        return grid((20,), ("concave",), TABLE14_SHARES, (False, True), (0,), full=False)
    if part == "seeds":
        return grid((20,), ("concave",), (0.0,), (False,), range(5), full=False)
    if part == "smoke":
        return [Cell("points", 5, "convex"), Cell("full")]
    raise PointlyError(f"unknown study part {part!r}", fix="use table13, table14, seeds or smoke")


PARTS = ("table13", "table14", "seeds")


def parse_grid(text: str) -> list[Cell]:
    """A custom grid: ``points=5,20;shapes=convex,concave;shares=0,0.5;dilations=0,1;seeds=0;full=1``.

    Missing keys take Table 13's defaults (points 5..100, both shapes, share 0, no dilation,
    seed 0, with the full-mask reference).
    """
    spec: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in str(text).split(";"))):
        if "=" not in part:
            raise PointlyError(
                f"bad --grid item {part!r}",
                fix="write key=v1,v2;key=... (points, shapes, shares, dilations, seeds, full)",
            )
        k, v = part.split("=", 1)
        spec[k.strip()] = v.strip()
    known = {"points", "shapes", "shares", "dilations", "seeds", "full"}
    if set(spec) - known:
        raise PointlyError(f"unknown --grid keys {sorted(set(spec) - known)}", fix=f"use {', '.join(sorted(known))}")

    def values(key: str, conv, default):
        if key not in spec:
            return list(default)
        try:
            return [conv(v) for v in spec[key].split(",") if v.strip()]
        except ValueError:
            raise PointlyError(f"bad --grid values for {key}: {spec[key]!r}") from None

    def onoff(v: str) -> bool:
        t = v.strip().lower()
        if t in ("1", "on", "true", "yes"):
            return True
        if t in ("0", "off", "false", "no"):
            return False
        raise ValueError(v)

    cells = grid(
        values("points", int, TABLE13_POINTS),
        values("shapes", str.strip, SHAPES),
        values("shares", float, (0.0,)),
        values("dilations", onoff, (False,)),
        values("seeds", int, (0,)),
        full=values("full", onoff, (True,))[0],
    )
    if not cells:
        raise PointlyError("the --grid is empty")
    return cells


@dataclass
class StudyPreset:
    """What a study runs: the dataset, the model config and training length, and the grid parts.

    ``settings`` are everything that changes the numbers; they are stored in ``study.json`` and a
    rerun with other settings into the same folder is refused.
    """

    name: str
    dataset: str  # "synthetic" or "coco"
    model_config: str  # a model config preset name or YAML path
    iters: int  # training iterations per cell
    parts: tuple[str, ...] = PARTS
    grid_cells: tuple[Cell, ...] | None = None  # a custom grid (--grid) instead of the parts
    config_overrides: tuple[str, ...] = ()  # "--set key=value" items for the model config
    synthetic: dict = field(default_factory=dict)  # ensure_dataset(train=, val=, size=, seed=)
    coco: dict = field(default_factory=dict)  # train/val json + png dirs + image dirs
    concave_ratio: float | None = None  # None: pointgen.targets' default
    dilation: dict = field(default_factory=dict)  # TargetOptions dilation fields when dilation is on
    target_rules: Any = "corrected"  # a name of pointgen.study_targets.RULES, or TargetOptions rule fields
    eval_images: int | None = None  # None: the whole validation split
    expected: str = ""  # documented expected time

    def cells(self) -> list[Cell]:
        if self.grid_cells is not None:
            return unique(self.grid_cells)
        return unique(c for part in self.parts for c in part_cells(part))

    def settings(self) -> dict[str, Any]:
        from pointly.pointgen.targets.build import DEFAULT_DILATION_RANGE, TargetOptions

        ratio = TargetOptions().concave_ratio if self.concave_ratio is None else self.concave_ratio
        dilation = dict(self.dilation) or {"dilation": list(DEFAULT_DILATION_RANGE), "dilation_units": "relative"}
        return {
            "preset": self.name,
            "dataset": self.dataset,
            "model_config": self.model_config,
            "iters": self.iters,
            "config_overrides": list(self.config_overrides),
            "synthetic": self.synthetic,
            "coco": self.coco,
            "concave_ratio": ratio,
            "dilation": dilation,
            "eval_images": self.eval_images,
            "target_rules": self.target_rules,
        }


def preset(name: str, *, iters: int | None = None, parts: Sequence[str] | None = None) -> StudyPreset:
    """The named study preset, with optional overrides of the training length and the parts.

    * ``synthetic``: CPU. The synthetic set (200 train / 50 val images of 128 px), model preset
      ``synthetic_small``, :data:`SYNTHETIC_ITERS` iterations per cell, chosen so that the 13 cells
      of Table 13 fit in an hour on 2 CPU cores (docs/study.md has the measurement).
    * ``coco``: GPU. COCO panoptic train2017/val2017, ``coco_r50_1x`` (90k iterations at 16
      images per batch, the paper's setting); paths come from ``coco`` settings / the CLI.
    """
    if name == "synthetic":
        p = StudyPreset(
            name="synthetic",
            dataset="synthetic",
            model_config="synthetic_small",
            iters=SYNTHETIC_ITERS,
            synthetic={"train": 200, "val": 50, "size": 128, "seed": 0},
            expected="Table 13 (13 cells) ≈ 51 min on 2 quiet CPU cores; all parts (30 cells) ≈ 2 h (measured)",
        )
    elif name == "synthetic-long":
        p = StudyPreset(
            name="synthetic-long",
            dataset="synthetic",
            model_config="synthetic_small",
            iters=SYNTHETIC_LONG_ITERS,
            synthetic={"train": 200, "val": 50, "size": 128, "seed": 0},
            expected="≈ 30 min per cell on 2 CPU cores: Table 13 ≈ 6.5 h, all parts ≈ 15 h; "
            "with --shard over 8 processes of 2 cores (16 cores) Table 13 ≈ 1 h",
        )
    elif name == "smoke":
        p = StudyPreset(
            name="smoke",
            dataset="synthetic",
            model_config="synthetic_small",
            iters=2,
            parts=("smoke",),
            synthetic={"train": 4, "val": 2, "size": 64, "seed": 1},
            config_overrides=(
                "input.min_size_train=[64]",
                "input.max_size_train=128",
                "input.min_size_test=64",
                "input.max_size_test=128",
                "solver.ims_per_batch=2",
                "inference.stuff_area_limit=16",
            ),
            expected="two cells of 2 iterations on 64 px images: about a minute on a CPU",
        )
    elif name == "coco":
        p = StudyPreset(
            name="coco",
            dataset="coco",
            model_config="coco_r50_1x",
            iters=90000,
            coco={},
            expected="≈ 10 GPU-hours per cell on 8 V100-class GPUs (1× schedule)",
        )
    else:
        raise PointlyError(f"unknown study preset {name!r}", fix="use synthetic, synthetic-long, coco or smoke")
    if iters is not None:
        if iters < 1:
            raise PointlyError(f"--iters must be ≥ 1, got {iters}")
        p.iters = int(iters)
    if parts is not None:
        for part in parts:
            part_cells(part)  # validates
        p.parts = tuple(parts)
    return p


#: training iterations per cell of the synthetic preset: what fits Table 13 in an hour on 2 quiet
#: cores (measured: 219-239 s of training + 2 s of evaluation per cell at 400 iterations; at 200
#: iterations the full-mask reference reached only PQ 3.0, at 400 it reaches 23.7; docs/study.md)
SYNTHETIC_ITERS = 400
#: synthetic-long: the synthetic_small config's own schedule (1500 iterations)
SYNTHETIC_LONG_ITERS = 1500


# --------------------------------------------------------------------------- sharding
def parse_shard(text: str | None) -> tuple[int, int]:
    """Parse ``--shard i/n`` (0 ≤ i < n) into ``(i, n)``; ``None`` means ``(0, 1)``."""
    if text is None or text == "":
        return 0, 1
    try:
        i_s, n_s = str(text).split("/")
        i, n = int(i_s), int(n_s)
    except ValueError:
        raise PointlyError(f"bad --shard {text!r}", fix="write --shard i/n, e.g. 0/4 for the first of 4") from None
    if n < 1 or not 0 <= i < n:
        raise PointlyError(f"bad --shard {text!r}: need 0 <= i < n", fix="e.g. --shard 0/2 and --shard 1/2")
    return i, n


def shard_cells(cells: Sequence[Cell], shard: tuple[int, int]) -> list[Cell]:
    """The cells of shard ``i`` of ``n``: grid positions ``i, i+n, i+2n, ...``."""
    i, n = shard
    return [c for k, c in enumerate(cells) if k % n == i]


# --------------------------------------------------------------------------- rows on disk
class CellRunner(Protocol):
    """Runs one cell and returns its metrics and costs (the row minus the axes)."""

    def run(self, cell: Cell, cell_dir: Path) -> Mapping[str, Any]: ...


def _row_line(row: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(["" if row.get(c) is None else row.get(c) for c in ROW_COLUMNS])
    return buf.getvalue()


def _header_line() -> str:
    return ",".join(ROW_COLUMNS) + "\n"


def append_row(csv_path: Path, row: Mapping[str, Any]) -> None:
    """Append one row to ``csv_path`` (header first if the file is new), under an exclusive lock.

    One ``write`` per row on an ``O_APPEND`` descriptor, then fsync: a crash leaves the file
    with whole rows only (a torn last line at worst, which :func:`csv_cell_ids` ignores).
    """
    lock_path = csv_path.with_name(csv_path.name + ".lock")
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            new = not csv_path.exists() or csv_path.stat().st_size == 0
            torn = False
            if not new:  # a crash mid-write may have left a last line without its newline
                with open(csv_path, "rb") as fh:
                    fh.seek(-1, os.SEEK_END)
                    torn = fh.read(1) != b"\n"
            data = (_header_line() if new else "\n" if torn else "") + _row_line(row)
            fd = os.open(csv_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, data.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def csv_cell_ids(csv_path: Path) -> set[str]:
    """Cell ids with a complete row in ``csv_path`` (rows with the wrong field count are skipped)."""
    if not csv_path.is_file():
        return set()
    out = set()
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None:
            return set()
        for rec in reader:
            if len(rec) == len(header) and rec[0]:
                out.add(rec[0])
    return out


def finished_rows(out_dir: Path) -> dict[str, dict]:
    """``cell_id → row`` for every cell with a ``cells/<id>/row.json``."""
    rows = {}
    for path in sorted((out_dir / "cells").glob("*/row.json")):
        try:
            row = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.warning("ignoring unreadable %s (the cell will run again)", path)
            continue
        rows[row["cell_id"]] = row
    return rows


def csv_rows(csv_path: Path) -> dict[str, dict]:
    """``cell_id → row`` of the complete rows of a results CSV (the last one wins)."""
    if not csv_path.is_file():
        return {}
    out = {}
    with open(csv_path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        for rec in reader if header else ():
            if len(rec) == len(header) and rec[0]:
                out[rec[0]] = {k: (None if v == "" else v) for k, v in zip(header, rec)}
    return out


def all_rows(out_dir: Path) -> dict[str, dict]:
    """Every finished cell of a study folder: the row files, plus CSV rows without one (e.g. a
    ``results.csv`` copied from another machine without its ``cells/``)."""
    rows = csv_rows(out_dir / "results.csv")
    rows.update(finished_rows(out_dir))
    return rows


def load_frame(out_dir: str | Path) -> pd.DataFrame:
    """All finished rows of a study folder as a frame (sorted by cell id)."""
    rows = all_rows(Path(out_dir))
    frame = pd.DataFrame([rows[k] for k in sorted(rows)], columns=ROW_COLUMNS)
    return normalise(frame)


def _check_settings(out_dir: Path, settings: Mapping[str, Any]) -> None:
    path = out_dir / "study.json"
    if path.is_file():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            raise PointlyError("not valid JSON", file=path, fix="delete it if the folder holds no results") from None
        if old != json.loads(json.dumps(settings)):
            diff = sorted(k for k in set(old) | set(settings) if old.get(k) != json.loads(json.dumps(settings)).get(k))
            raise PointlyError(
                f"this folder holds a study with other settings ({', '.join(diff)})",
                file=path,
                fix="use a new --out folder, or the same settings to resume",
            )
    else:
        write_json_atomic(path, dict(settings), indent=2)


# --------------------------------------------------------------------------- the engine
@dataclass
class StudyOutcome:
    """What one :func:`run_study` call did."""

    ran: list[str]
    skipped: list[str]
    failed: list[str]
    report: dict[str, Path]


def run_study(
    cells: Sequence[Cell],
    out_dir: str | Path,
    runner: CellRunner,
    *,
    settings: Mapping[str, Any],
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    max_cells: int | None = None,
    report_title: str = "Trained study",
) -> StudyOutcome:
    """Run the cells of ``shard`` that have no row yet, appending a row as each finishes.

    ``settings`` (dataset, iters, ...) go into every row and ``study.json``. ``max_cells`` stops
    after that many cells have run (for smoke runs). The report is rewritten at the end from
    every row in the folder (all shards).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_settings(out_dir, settings)
    csv_path = out_dir / "results.csv"
    done = finished_rows(out_dir)
    in_csv = csv_cell_ids(csv_path)
    for cid, row in done.items():  # a crash between row.json and the CSV append: heal the CSV
        if cid not in in_csv:
            append_row(csv_path, row)
    done = {**{cid: None for cid in in_csv}, **done}  # a CSV row counts as finished too
    mine = shard_cells(cells, shard)
    todo = [c for c in mine if c.cell_id not in done]
    skipped = [c.cell_id for c in mine if c.cell_id in done]
    if skipped:
        log.info("skipping %d finished cells", len(skipped))
    ran, failed = [], []
    bar = tqdm(total=len(todo), desc=f"study shard {shard[0]}/{shard[1]}", unit="cell", disable=not progress)
    for cell in todo:
        if max_cells is not None and len(ran) + len(failed) >= max_cells:
            break
        cell_dir = out_dir / "cells" / cell.cell_id
        cell_dir.mkdir(parents=True, exist_ok=True)
        bar.set_postfix_str(cell.cell_id)
        try:
            result = dict(runner.run(cell, cell_dir))
        except (KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:  # one broken cell must not stop a day-long study
            log.error("cell %s failed: %s", cell.cell_id, exc)
            write_bytes_atomic(cell_dir / "error.txt", traceback.format_exc().encode("utf-8"))
            failed.append(cell.cell_id)
            bar.update(1)
            continue
        row = {c: None for c in ROW_COLUMNS}
        row.update({k: settings.get(k) for k in ("dataset", "iters")})
        row["split"] = settings.get("split", "val")
        row["concave_ratio"] = settings.get("concave_ratio")
        row.update(cell.axes())
        row.update({k: _plain(v) for k, v in result.items() if k in ROW_COLUMNS})
        row["cell_id"] = cell.cell_id
        write_json_atomic(cell_dir / "row.json", row, indent=2)
        (cell_dir / "error.txt").unlink(missing_ok=True)
        append_row(csv_path, row)
        ran.append(cell.cell_id)
        bar.update(1)
    bar.close()
    frame = load_frame(out_dir)
    report = write_report(frame, out_dir, title=report_title) if len(frame) else {}
    return StudyOutcome(ran=ran, skipped=skipped, failed=failed, report=report)


def _plain(v: Any) -> Any:
    """JSON-safe scalars (numpy → Python, NaN → None)."""
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v


# --------------------------------------------------------------------------- the real pipeline
def _pct(v: Any) -> float | None:
    return None if v is None else 100.0 * float(v)


def metrics_row(results: Mapping[str, Any]) -> dict[str, Any]:
    """PQ/SQ/RQ (in percent) overall, things and stuff from a ``pq_compute``-shaped result."""
    row: dict[str, Any] = {}
    for group, suffix in (("All", ""), ("Things", "_th"), ("Stuff", "_st")):
        g = results[group]
        for k in ("pq", "sq", "rq"):
            row[k + suffix] = _pct(g[k])
    row["n_th"] = int(results["Things"]["n"])
    row["n_st"] = int(results["Stuff"]["n"])
    return row


@dataclass
class DataPaths:
    """The train/val panoptic JSON, PNG folder and image folder of a study's dataset."""

    train_json: Path
    train_png: Path
    train_images: Path
    val_json: Path
    val_png: Path
    val_images: Path


class PipelineRunner:
    """simulate → cost → train → evaluate for one cell (the real :class:`CellRunner`).

    * points: :func:`pointly.pointgen.points.simulate.simulate_points` on the training split's masks
      (seeded by the cell's seed), saved as ``cells/<id>/points.json``; the model then trains from
      that file and the images only (:class:`pointly.model.engine.point_targets.PointsTrainSet`);
    * full masks: the model's own fully supervised training set;
    * annotation seconds: :func:`pointly.pointgen.points.cost.modelled_seconds` for points (0.9 s per
      point), the full-mask cost (79 s per thing, 45 s per stuff segment) for the reference;
    * training: :func:`pointly.model.engine.train.train` into ``cells/<id>/train`` with the preset's
      model config and ``iters`` iterations; an interrupted cell resumes from its checkpoint;
      the training seed is the config's (fixed), so the seed axis varies the *point sampling* only;
    * evaluation: :func:`pointly.model.engine.evaluation.evaluate_checkpoint` on the validation split.
    """

    def __init__(
        self,
        preset: StudyPreset,
        *,
        data: DataPaths | None = None,
        device: str | None = None,
        data_root: str | Path | None = None,
        progress: bool = False,
    ) -> None:
        self.preset = preset
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = device
        self.data_root = data_root
        self.progress = progress
        self._data = data
        self._train_ds = None

    # -- data ------------------------------------------------------------------------------
    def data(self) -> DataPaths:
        if self._data is None:
            p = self.preset
            if p.dataset == "synthetic":
                from pointly.data.synth import ensure_dataset

                root = ensure_dataset(self.data_root, progress=self.progress, **p.synthetic)
                self._data = DataPaths(
                    *(
                        root / split / name
                        for split in ("train", "val")
                        for name in ("panoptic.json", "panoptic", "images")
                    )
                )
            else:
                keys = (
                    "train_json",
                    "train_panoptic_dir",
                    "train_image_dir",
                    "val_json",
                    "val_panoptic_dir",
                    "val_image_dir",
                )
                missing = [k for k in keys if not p.coco.get(k)]
                if missing:
                    raise PointlyError(
                        f"the coco study needs {', '.join(missing)}",
                        fix="pass --coco-root DIR (train2017/val2017 layout) or the six paths",
                    )
                self._data = DataPaths(*(Path(p.coco[k]) for k in keys))
        return self._data

    def train_dataset(self):
        if self._train_ds is None:
            from pointly.pointgen.base.coco import PanopticDataset

            d = self.data()
            self._train_ds = PanopticDataset(d.train_json, d.train_png, check=False)
        return self._train_ds

    # -- one cell --------------------------------------------------------------------------
    def config(self, cell: Cell):
        """The model config of a cell: the preset's, with its paths and training length."""
        from pointly.model.engine.config import load_config

        p = self.preset
        cfg = load_config(p.model_config, tuple(p.config_overrides))
        d = self.data()
        cfg.data.kind = "coco_panoptic"
        cfg.data.train_json, cfg.data.train_panoptic_dir, cfg.data.train_image_dir = (
            str(d.train_json),
            str(d.train_png),
            str(d.train_images),
        )
        cfg.data.val_json, cfg.data.val_panoptic_dir, cfg.data.val_image_dir = (
            str(d.val_json),
            str(d.val_png),
            str(d.val_images),
        )
        cfg.solver.max_iter = int(p.iters)
        cfg.solver.warmup_iters = min(cfg.solver.warmup_iters, max(1, p.iters // 10))
        cfg.solver.checkpoint_period = max(1, min(cfg.solver.checkpoint_period, p.iters // 4 or 1))
        return cfg

    def target_options(self, cell: Cell):
        from pointly.pointgen.targets.build import TargetOptions

        p = self.preset
        kwargs: dict[str, Any] = {"shape": cell.shape}
        if p.concave_ratio is not None:
            kwargs["concave_ratio"] = p.concave_ratio
        if cell.dilation:
            # default: the radius drawn per sample from pointgen.targets' training range (relative)
            dil = p.settings()["dilation"]
            d = dil.get("dilation")
            kwargs["dilation"] = tuple(d) if isinstance(d, list) else d
            kwargs["dilation_units"] = dil.get("dilation_units", "relative")
        rules = TARGET_RULES[p.target_rules] if isinstance(p.target_rules, str) else dict(p.target_rules)
        return TargetOptions(**kwargs, **rules)

    def full_mask_seconds(self) -> tuple[float, int]:
        """Seconds to draw every non-crowd segment of the training split as a full mask, and their count."""
        from pointly.pointgen.points.cost import CostModel

        ds, model = self.train_dataset(), CostModel()
        total, n = 0.0, 0
        for im in ds.images:
            for s in ds.segments_info(im.id):
                if s.get("iscrowd", 0):
                    continue
                total += model.mask_seconds(ds.categories[int(s["category_id"])].isthing)
                n += 1
        return total, n

    def run(self, cell: Cell, cell_dir: Path) -> dict[str, Any]:
        from pointly.model.engine.evaluation import evaluate_checkpoint
        from pointly.model.engine.train import train

        cfg = self.config(cell)
        d = self.data()
        row: dict[str, Any] = {"images": len(self.train_dataset().images)}
        dataset = None
        if cell.supervision == "points":
            from pointly.model.engine.point_targets import PointsTrainSet
            from pointly.pointgen.base.points_format import save_points
            from pointly.pointgen.points.cost import modelled_seconds
            from pointly.pointgen.points.simulate import simulate_points

            points_json = cell_dir / "points.json"
            doc = simulate_points(
                self.train_dataset(),
                points=cell.points,
                boundary_share=cell.boundary_share,
                seed=cell.seed,
                workers=max(1, min(8, (os.cpu_count() or 1) // 2)),
            )
            save_points(points_json, doc)
            row["annotation_seconds"] = modelled_seconds(doc)
            row["segments"] = len(doc["annotations"])
            dataset = PointsTrainSet(cfg, points_json, d.train_images, self.target_options(cell))
            write_json_atomic(cell_dir / "target_options.json", dataset.options.to_dict(), indent=2)
        else:
            row["annotation_seconds"], row["segments"] = self.full_mask_seconds()
        row["seconds_per_segment"] = row["annotation_seconds"] / max(row["segments"], 1)
        row["seconds_per_image"] = row["annotation_seconds"] / max(row["images"], 1)

        run_dir = cell_dir / "train"
        resume = (run_dir / "checkpoint.pth").is_file()
        t0 = time.perf_counter()
        result = train(cfg, run_dir, resume=resume, device=self.device, dataset=dataset, progress=self.progress)
        row["train_seconds"] = time.perf_counter() - t0
        row["final_loss"] = _final_loss(run_dir / "metrics.csv")
        ckpt = result.final if getattr(result, "final", None) else run_dir / "model_final.pth"
        t0 = time.perf_counter()
        results, _cats = evaluate_checkpoint(
            ckpt,
            str(d.val_json),
            gt_dir=str(d.val_png),
            image_dir=str(d.val_images),
            pred_out=None,
            limit=self.preset.eval_images,
            device=self.device,
            progress=self.progress,
        )
        row["eval_seconds"] = time.perf_counter() - t0
        write_json_atomic(cell_dir / "pq.json", _jsonable(results), indent=1)
        row.update(metrics_row(results))
        return row


def _final_loss(metrics_csv: Path, last: int = 20) -> float | None:
    """Mean total loss of the last ``last`` iterations of a run (how far training got)."""
    if not metrics_csv.is_file():
        return None
    with open(metrics_csv, newline="") as fh:
        vals = [float(r["loss_total"]) for r in csv.DictReader(fh) if r.get("loss_total")]
    return sum(vals[-last:]) / len(vals[-last:]) if vals else None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    return _plain(obj)


def run_preset(
    preset_obj: StudyPreset,
    out_dir: str | Path,
    *,
    shard: tuple[int, int] = (0, 1),
    device: str | None = None,
    data_root: str | Path | None = None,
    progress: bool = True,
    max_cells: int | None = None,
    runner: CellRunner | None = None,
) -> StudyOutcome:
    """Run a preset's grid into ``out_dir`` with the real pipeline (or ``runner``)."""
    runner = runner or PipelineRunner(preset_obj, device=device, data_root=data_root, progress=False)
    settings = preset_obj.settings()
    title = f"Trained study: preset {preset_obj.name}, {preset_obj.iters} iterations per cell"
    return run_study(
        preset_obj.cells(),
        out_dir,
        runner,
        settings=settings,
        shard=shard,
        progress=progress,
        max_cells=max_cells,
        report_title=title,
    )


def coco_paths(coco_root: str | Path) -> dict[str, str]:
    """The six paths of a standard COCO panoptic layout under ``coco_root``::

    annotations/panoptic_{train,val}2017.json   annotations/panoptic_{train,val}2017/ (PNGs)
    {train,val}2017/ (images)
    """
    root = Path(coco_root)
    out = {}
    for split in ("train", "val"):
        out[f"{split}_json"] = str(root / "annotations" / f"panoptic_{split}2017.json")
        out[f"{split}_panoptic_dir"] = str(root / "annotations" / f"panoptic_{split}2017")
        out[f"{split}_image_dir"] = str(root / f"{split}2017")
    for key, path in out.items():
        if not Path(path).exists():
            raise PointlyError(
                f"{key.replace('_', ' ')} not found",
                file=path,
                fix="--coco-root must hold annotations/panoptic_{train,val}2017[.json] and {train,val}2017/",
            )
    return out


def run_from_cli(
    *,
    preset: str | None,
    out: str | Path,
    shard: str | None = None,
    grid: str | None = None,
    progress: bool = True,
    iters: int | None = None,
    parts: str | None = None,
    report_only: bool = False,
    coco_root: str | Path | None = None,
    synthetic_root: str | Path | None = None,
    device: str | None = None,
    max_cells: int | None = None,
    dilation: Mapping[str, Any] | None = None,
    target_rules: str | Mapping[str, Any] | None = None,
    config_overrides: Sequence[str] = (),
) -> StudyOutcome | None:
    """``pointly study --depth trained``: resolve the preset and options, run (or resume) the
    shard's cells, print a summary and the trend rows. ``report_only`` rebuilds the report from
    the rows in ``out``. ``dilation``: the TargetOptions dilation fields of the cells with dilation
    on (default: the training range); ``target_rules``: ``corrected`` (default), ``baseline`` or a
    dict of :class:`~pointly.pointgen.targets.build.TargetOptions` rule fields (``parts``, ``overlap``,
    ``size_correction``);
    ``config_overrides``: ``key=value`` items for the model config of every cell."""
    import click

    from pointly.model.study.trained_report import trends

    out = Path(out)
    if report_only:
        frame = load_frame(out)
        if frame.empty:
            raise PointlyError("no rows to report", file=out, fix="run the study first (without --report-only)")
        title = "Trained study"
        if (out / "study.json").is_file():
            meta = json.loads((out / "study.json").read_text(encoding="utf-8"))
            title = f"Trained study: preset {meta.get('preset')}, {meta.get('iters')} iterations per cell"
        paths = write_report(frame, out, title=title)
        click.echo(f"{len(frame)} rows; report in {paths['report']}")
        for t in trends(frame):
            click.echo(f"{t.id} {t.verdict}: {t.numbers}")
        return None
    part_list = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
    p = preset_fn(preset or "synthetic", iters=iters, parts=part_list)
    if grid is not None:
        p.grid_cells = tuple(parse_grid(grid))
    if dilation is not None:
        p.dilation = dict(dilation)
    if target_rules is not None:
        if isinstance(target_rules, str) and target_rules not in TARGET_RULES:
            raise PointlyError(f"unknown target rules {target_rules!r}", fix=f"use one of {', '.join(TARGET_RULES)}")
        p.target_rules = target_rules
    p.config_overrides = tuple(p.config_overrides) + tuple(config_overrides)
    data = None
    if p.dataset == "coco":
        if coco_root is None:
            raise PointlyError(
                "the coco study needs --coco-root",
                fix="point it at a COCO panoptic folder "
                "(annotations/panoptic_{train,val}2017[.json], {train,val}2017/)",
            )
        p.coco = coco_paths(coco_root)
    elif synthetic_root is not None:
        root = Path(synthetic_root)
        if not (root / "train" / "panoptic.json").is_file():
            raise PointlyError(
                "not a synthetic dataset folder",
                file=root,
                fix="pass a folder made by `pointly data synth` (train/, val/)",
            )
        p.synthetic = {"root": str(root.resolve())}
        data = DataPaths(
            *(root / split / name for split in ("train", "val") for name in ("panoptic.json", "panoptic", "images"))
        )
    shard_t = parse_shard(shard)
    runner = PipelineRunner(p, data=data, device=device, progress=False)
    outcome = run_preset(p, out, shard=shard_t, progress=progress, max_cells=max_cells, runner=runner)
    click.echo(
        f"{len(outcome.ran)} cells run, {len(outcome.skipped)} already done, {len(outcome.failed)} failed "
        f"(shard {shard_t[0]}/{shard_t[1]}, {len(p.cells())} cells in the grid); rows in {out / 'results.csv'}"
    )
    for cid in outcome.failed:
        click.echo(f"  failed: {cid} (see {out / 'cells' / cid / 'error.txt'}; it runs again on the next call)")
    frame = load_frame(out)
    for t in trends(frame):
        click.echo(f"{t.id} {t.verdict}: {t.numbers}")
    if outcome.failed:
        raise PointlyError(
            f"{len(outcome.failed)} cells failed ({', '.join(outcome.failed[:3])}"
            f"{', ...' if len(outcome.failed) > 3 else ''})",
            file=out / "cells",
            fix="read their error.txt; a rerun retries them and skips the finished cells",
        )
    return outcome


preset_fn = preset
