"""The study's rows on disk, for both depths: ``results.csv``, ``cells/<id>/row.json``, ``study.json``.

* ``results.csv`` holds one row per finished cell (:data:`ROW_COLUMNS`), appended under a file
  lock as each cell finishes (:func:`append_row`): several processes (shards) may share one
  folder. A crash mid-write leaves at worst a torn last line without its newline; readers ignore
  it and the next append cuts it off (the cell runs again, or comes back from its ``row.json``).
* ``cells/<id>/row.json``: the same row, written first, for cells that have a folder (the trained
  study's checkpoints and points); these files are the truth and heal a CSV that lost a row.
* ``study.json``: the settings that change numbers, with the depth. A rerun whose settings differ
  on any key both hold is refused (:func:`check_settings`), and so is one that sets a key added
  later to anything but what the folder did before it existed; a target study may add a dataset.

Units: **PQ, SQ, RQ (overall, ``_th``, ``_st``) in percent in both depths**; the target study's
precision, recall, IoU, coverage and agreement are fractions 0–1.

Old folders still load and resume (:func:`load_rows`): a target study's ``rows-<i>of<n>.csv``
(or its old sorted ``results.csv``) with PQ in 0–1 and ``dilation_radius`` becomes percent and a
``dilation``; an old trained row's ``dilation`` True/False becomes study.json's range or ``off``;
rows without ``rules`` were made with the first design's rules (``baseline``). Cell ids are
recomputed from the axes (:meth:`~pointly.model.study.grid.Cell.from_row`), so old ids such as
``P20-concave-b000-nodil-s0`` are read as the cell they describe.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import logging
import math
import os
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointly.model.study.grid import Cell, rules_name
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import atomic_open, write_json_atomic

log = logging.getLogger(__name__)

#: the axes of a row (``depth``: targets or trained; ``iters``: training iterations, trained only;
#: ``dilation``: ``off``, a radius ``0.02`` or a range ``0.01:0.03`` relative to the longer side)
AXES = [
    "dataset",
    "split",
    "depth",
    "supervision",
    "points",
    "shape",
    "concave_ratio",
    "boundary_share",
    "dilation",
    "seed",
    "rules",
    "iters",
]
#: panoptic quality, in **percent** (0–100) in both depths
PANOPTIC = ["pq", "sq", "rq", "pq_th", "sq_th", "rq_th", "pq_st", "sq_st", "rq_st"]
METRICS = PANOPTIC + ["n_th", "n_st"]
#: the target study's per-segment and per-image measures, fractions **0–1**
TARGET_METRICS = [
    "precision",
    "recall",
    "iou",
    "precision_th",
    "recall_th",
    "iou_th",
    "precision_st",
    "recall_st",
    "iou_st",
    "coverage",
    "agreement",
]
#: costs and times (seconds; ``final_loss``: the trained study's mean loss of the last iterations)
COSTS = [
    "annotation_seconds",
    "seconds_per_image",
    "seconds_per_segment",
    "segments",
    "images",
    "compute_seconds",
    "train_seconds",
    "eval_seconds",
    "final_loss",
]
ROW_COLUMNS = ["cell_id"] + AXES + METRICS + TARGET_METRICS + COSTS
NUMERIC = ["concave_ratio", "boundary_share"] + METRICS + TARGET_METRICS + COSTS
RESULTS = "results.csv"
SETTINGS = "study.json"
#: the version of study.json's layout; a study.json without it is an old folder's
FORMAT = 2


# --------------------------------------------------------------------------- one line
def format_value(v: Any) -> str:
    """A CSV field: empty for None/NaN, ``True``/``False``, floats in full precision."""
    if v is None:
        return ""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.15g}"
    return str(v)


def row_line(row: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([format_value(row.get(c)) for c in ROW_COLUMNS])
    return buf.getvalue()


def header_line() -> str:
    return ",".join(ROW_COLUMNS) + "\n"


@contextmanager
def locked(csv_path: Path):
    """An exclusive lock on ``<csv>.lock`` (every writer of the CSV takes it)."""
    with open(csv_path.with_name(csv_path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _cut_torn_tail(csv_path: Path) -> None:
    """Cut a last line that lost its newline (a crash mid-write) off the file."""
    size = csv_path.stat().st_size
    if size == 0:
        return
    with open(csv_path, "rb+") as fh:
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        log.warning("cutting a torn last line off %s", csv_path)
        fh.truncate(keep)


def append_row(csv_path: Path, row: Mapping[str, Any]) -> None:
    """Append one row to ``csv_path`` (header first if the file is new), under an exclusive lock.

    One ``write`` per row on an ``O_APPEND`` descriptor, then fsync: a crash leaves whole rows and
    at worst a torn last line, which readers ignore and this function cuts off before appending.
    """
    with locked(csv_path):
        new = not csv_path.exists() or csv_path.stat().st_size == 0
        if not new:
            _cut_torn_tail(csv_path)
            new = csv_path.stat().st_size == 0
        data = (header_line() if new else "") + row_line(row)
        fd = os.open(csv_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data.encode("utf-8"))
            os.fsync(fd)
        finally:
            os.close(fd)


def read_records(csv_path: Path) -> tuple[list[str], list[dict[str, Any]]]:
    """The header and the complete records of a CSV: a torn last line (no newline) and records
    with the wrong field count are skipped; empty fields are None."""
    if not csv_path.is_file():
        return [], []
    text = csv_path.read_text(encoding="utf-8")
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return [], []
    out = []
    for rec in reader:
        if len(rec) == len(header) and rec[0]:
            out.append({k: (None if v == "" else v) for k, v in zip(header, rec)})
    return header, out


# --------------------------------------------------------------------------- settings
def read_settings(out_dir: str | Path) -> dict[str, Any]:
    path = Path(out_dir) / SETTINGS
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise PointlyError("not valid JSON", file=path, fix="delete it if the folder holds no results") from None


def legacy_defaults(settings: Mapping[str, Any]) -> dict[str, Any]:
    """What old rows of a folder lack, from its study.json (:meth:`Cell.from_row`'s ``defaults``).

    Frozen into study.json's ``legacy`` entry when an old folder is first resumed, so that the
    settings added then cannot change how its old rows read."""
    if "legacy" in settings:
        return dict(settings["legacy"])
    out: dict[str, Any] = {"rules": rules_name(settings["target_rules"]) if "target_rules" in settings else "baseline"}
    if settings.get("dataset"):
        out["dataset"] = settings["dataset"]
    dil = settings.get("dilation")
    if isinstance(dil, Mapping) and dil.get("dilation_units", "relative") == "relative" and dil.get("dilation"):
        d = dil["dilation"]
        out["dilation_on"] = list(d) if isinstance(d, (list, tuple)) else d
    if settings.get("concave_ratio") is not None:
        out["concave_ratio"] = settings["concave_ratio"]
    return out


def _plain_json(value: Any) -> Any:
    return json.loads(json.dumps(value))


#: what a setting meant in folders written before it was recorded: such a folder resumes only with
#: that value (a folder of the first trained studies trained every cell with the config's seed)
SETTINGS_BEFORE_THEIR_KEY: dict[str, Any] = {
    "training_seed": "fixed",
    "backbone_pretraining": None,
    "edge_is_boundary": False,
}


def check_settings(out_dir: Path, settings: Mapping[str, Any]) -> dict[str, Any]:
    """Refuse ``settings`` that differ from study.json's on a key both hold; else write the merge.

    ``datasets`` (the target study's per-dataset sources) compares dataset by dataset, so a new
    dataset may join a folder. Returns the merged settings."""
    path = out_dir / SETTINGS
    new = _plain_json({**settings, "format": FORMAT})
    if not path.is_file():
        write_json_atomic(path, new, indent=2)
        return new
    old = read_settings(out_dir)
    diffs = [
        key for key, before in SETTINGS_BEFORE_THEIR_KEY.items() if key in new and key not in old and new[key] != before
    ]
    for key in sorted(set(old) & set(new)):
        a, b = old[key], new[key]
        if key == "datasets" and isinstance(a, dict) and isinstance(b, dict):
            diffs += [f"datasets.{n}" for n in sorted(set(a) & set(b)) if a[n] != b[n]]
        elif key != "format" and a != b:
            diffs.append(key)
    if diffs:
        raise PointlyError(
            f"this folder holds a study with other settings ({', '.join(diffs)})",
            file=path,
            fix="use a new --out folder, or the settings in study.json to resume",
        )
    merged = dict(old)
    if "format" not in old:  # an old folder: freeze how its old rows read
        merged["legacy"] = legacy_defaults(old)
    for key, value in new.items():
        if key == "datasets" and isinstance(old.get(key), dict):
            merged[key] = {**old[key], **value}
        elif key not in old:
            merged[key] = value
    if merged != old:
        write_json_atomic(path, merged, indent=2)
    return merged


# --------------------------------------------------------------------------- reading rows
def normalise_row(record: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A stored row (any format) as a current row: axes and ``cell_id`` recomputed from the cell,
    an old target row's PQ/SQ/RQ from 0–1 to percent."""
    old_targets = "dilation_radius" in record
    old_trained = not old_targets and not record.get("depth")
    cell = Cell.from_row(record, defaults)
    row = {c: record.get(c) for c in ROW_COLUMNS}
    row.update(cell.axes())
    row["cell_id"] = cell.cell_id
    if old_targets:
        row["depth"] = "targets"
        for col in PANOPTIC:
            v = row.get(col)
            row[col] = None if v is None or v == "" else 100.0 * float(v)
    elif old_trained:
        row["depth"] = "trained"
    return row


def _normalised(records: Iterable[Mapping[str, Any]], defaults: Mapping[str, Any], where: Path) -> list[dict]:
    out = []
    for rec in records:
        try:
            out.append(normalise_row(rec, defaults))
        except (PointlyError, ValueError, TypeError) as exc:
            log.warning("ignoring a row of %s that names no cell (%s)", where, exc)
    return out


def csv_rows(csv_path: Path, defaults: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """``cell_id → row`` of the complete rows of a results CSV (the last one wins)."""
    _, records = read_records(csv_path)
    return {r["cell_id"]: r for r in _normalised(records, defaults or {}, csv_path)}


def row_files(out_dir: Path, defaults: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """``cell_id → row`` for every ``cells/*/row.json`` (unreadable files are skipped: the cell runs again)."""
    rows = {}
    for path in sorted((out_dir / "cells").glob("*/row.json")):
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            log.warning("ignoring unreadable %s (the cell will run again)", path)
            continue
        for row in _normalised([rec], defaults or {}, path):
            rows[row["cell_id"]] = row
    return rows


def legacy_shard_rows(out_dir: Path, defaults: Mapping[str, Any] | None = None) -> dict[str, dict]:
    """The rows of an old target study's ``rows-<i>of<n>.csv`` files (the first of a cell wins)."""
    rows: dict[str, dict] = {}
    for path in sorted(out_dir.glob("rows-*.csv")):
        _, records = read_records(path)
        for row in _normalised(records, defaults or {}, path):
            rows.setdefault(row["cell_id"], row)
    return rows


def all_rows(out_dir: str | Path) -> dict[str, dict]:
    """Every finished cell of a study folder: old shard files, then ``results.csv``, then the
    row files (which win)."""
    out_dir = Path(out_dir)
    defaults = legacy_defaults(read_settings(out_dir))
    rows = legacy_shard_rows(out_dir, defaults)
    rows.update(csv_rows(out_dir / RESULTS, defaults))
    rows.update(row_files(out_dir, defaults))
    return rows


def normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A rows frame with every column of :data:`ROW_COLUMNS` (added empty) and the study's dtypes."""
    frame = frame.copy()
    for col in ROW_COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan
    for col in ("points", "seed", "iters"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype("Int64")
    for col in NUMERIC:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    frame["supervision"] = frame["supervision"].where(frame["supervision"].notna(), "points").astype(str)
    frame["dilation"] = frame["dilation"].where(frame["dilation"].notna(), "off").astype(str)
    frame["rules"] = frame["rules"].where(frame["rules"].notna(), "corrected").astype(str)
    for col in ("shape", "dataset", "split", "depth"):
        frame[col] = frame[col].where(frame[col].notna(), "").astype(str)
    return frame[ROW_COLUMNS + [c for c in frame.columns if c not in ROW_COLUMNS]].reset_index(drop=True)


def rows_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    return normalise_frame(pd.DataFrame(list(rows), columns=ROW_COLUMNS))


def load_rows(out_dir: str | Path) -> pd.DataFrame:
    """All finished rows of a study folder (any format, any shard) as a typed frame, by cell id."""
    rows = all_rows(out_dir)
    return rows_frame(rows[k] for k in sorted(rows))


def upgrade_results(out_dir: Path, defaults: Mapping[str, Any]) -> None:
    """Rewrite a ``results.csv`` of an older layout (other columns) in the current one, so that
    rows can be appended to it."""
    path = out_dir / RESULTS
    if not path.is_file():
        return
    with locked(path):
        header, records = read_records(path)
        if header == ROW_COLUMNS or not header:
            return
        rows = _normalised(records, defaults, path)
        log.info("rewriting %s in the current layout (%d rows)", path, len(rows))
        with atomic_open(path, "w", encoding="utf-8") as fh:
            fh.write(header_line())
            fh.writelines(row_line(r) for r in rows)


def folder_depth(out_dir: str | Path, frame: pd.DataFrame | None = None) -> str | None:
    """The depth of a study folder: study.json's, else the most common of its rows'."""
    depth = read_settings(out_dir).get("depth")
    if depth:
        return str(depth)
    if frame is not None and len(frame) and frame["depth"].astype(bool).any():
        return str(frame.loc[frame["depth"].astype(bool), "depth"].mode().iloc[0])
    return None


def plain(v: Any) -> Any:
    """JSON-safe scalars (numpy → Python, NaN → None)."""
    if hasattr(v, "item") and not isinstance(v, (str, bytes)):
        v = v.item()
    if isinstance(v, float) and math.isnan(v):
        return None
    return v
