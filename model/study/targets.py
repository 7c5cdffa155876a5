"""The target-quality study (``pointly study --depth targets``): how good are point targets, by cell?

No training: for every cell of the grid (dataset × points per segment × shape × boundary share ×
dilation × seed, plus concave ratio and dilation radius for choosing the defaults) the engine

1. simulates the points from the true masks (:func:`pointly.pointgen.points.simulate.simulate_points`;
   one simulation serves every shape / dilation / ratio cell of the same points, share and seed),
2. builds the full-size targets of every image (:func:`pointly.pointgen.targets.build.build_targets`),
3. scores them against the true masks (:class:`pointly.pointgen.targets.quality.QualityReport`):
   PQ/SQ/RQ of the targets read as a panoptic prediction (ignore = VOID; overall, things,
   stuff), mean precision / recall / IoU, coverage, agreement,
4. prices the points with the cost model (:class:`pointly.pointgen.points.cost.CostModel`, 0.9 s a point),

and writes one tidy row per cell. Datasets: ``coco`` (the real COCO panoptic sample in
``shared/data/coco_panoptic_val2017``, 3 images, 53 non-crowd segments) and ``synthetic`` (the
validation split of :func:`pointly.data.synth.ensure_dataset`, 50 images of 128 px).

Resumable and shardable: shard ``i/n`` takes the grid positions ``i, i+n, …``; each shard keeps
its rows in ``DIR/rows-<i>of<n>.csv``, rewritten atomically after every cell, and a rerun skips
every cell whose row is in any ``rows-*.csv`` of DIR. ``study.json`` holds the settings that
change numbers (dataset sources); a rerun with other settings into the same DIR is refused.
The report (:func:`write_report`) merges the rows of all shards.
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.files import atomic_open, write_json_atomic
from pointly.pointgen.base.points_format import annotations_by_image
from pointly.pointgen.points.cost import CostModel, modelled_seconds
from pointly.pointgen.targets.build import DEFAULT_DILATION, TARGET_SHAPES, TargetOptions, build_targets
from pointly.pointgen.targets.quality import QualityReport

log = logging.getLogger(__name__)

POINTS = (5, 10, 20, 30, 50, 100)
SHAPES = ("convex", "concave")  # the presets' shape axis (the paper's Table 13)
#: every shape a grid may name: the hulls and the image-aware regions (which take no dilation)
SHAPE_VALUES = TARGET_SHAPES
SHARES = (0.0, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0)
SEEDS = (0, 1, 2, 3, 4)
DATASETS = ("coco", "synthetic")
#: the defaults the main grid uses (chosen by the ``defaults`` preset; docs/targets.md says why)
DEFAULT_CONCAVE_RATIO = TargetOptions.concave_ratio
#: dilation radius of the "on" cells, relative to the longer image side
STUDY_DILATION = DEFAULT_DILATION
#: target rules: ``corrected`` = TargetOptions' defaults (study.md, "Our design"); ``baseline`` =
#: the first design (one hull per segment, a pixel claimed twice ignored, size from the shape's box)
RULES = {"corrected": {}, "baseline": {"parts": "hull", "overlap": "exclusive", "size_correction": False}}

ROW_COLUMNS = [
    "cell_id",
    "dataset",
    "split",
    "depth",
    "supervision",
    "points",
    "shape",
    "concave_ratio",
    "boundary_share",
    "dilation",
    "dilation_radius",
    "seed",
    "rules",
    "pq",
    "sq",
    "rq",
    "pq_th",
    "sq_th",
    "rq_th",
    "pq_st",
    "sq_st",
    "rq_st",
    "n_th",
    "n_st",
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
    "annotation_seconds",
    "seconds_per_segment",
    "segments",
    "images",
    "compute_seconds",
]


# ------------------------------------------------------------------------------ cells and grids
@dataclass(frozen=True)
class TargetCell:
    """One cell of the target-quality grid (``dilation_radius`` relative to the longer side, 0 = off)."""

    dataset: str
    points: int
    shape: str
    boundary_share: float
    dilation_radius: float
    seed: int
    concave_ratio: float = DEFAULT_CONCAVE_RATIO
    rules: str = "corrected"

    @property
    def dilation(self) -> bool:
        return self.dilation_radius > 0

    @property
    def cell_id(self) -> str:
        """Stable id, e.g. ``coco-P20-concave-r030-b050-d020-s0`` (ratio, share, radius in 1/100 or 1/1000)."""
        return (
            f"{self.dataset}-P{self.points}-{self.shape}-r{round(self.concave_ratio * 100):03d}"
            f"-b{round(self.boundary_share * 100):03d}-d{round(self.dilation_radius * 1000):03d}"
            f"-s{self.seed}" + ("" if self.rules == "corrected" else f"-{self.rules}")
        )

    def options(self) -> TargetOptions:
        return TargetOptions(
            shape=self.shape,
            concave_ratio=self.concave_ratio,
            dilation=self.dilation_radius if self.dilation else None,
            dilation_units="relative",
            **RULES[self.rules],
        )

    def simulation_key(self) -> tuple:
        return (self.dataset, self.points, self.boundary_share, self.seed)


@dataclass
class TargetGrid:
    """A product of axes. ``dilations`` are relative radii (0 = off)."""

    datasets: tuple[str, ...] = DATASETS
    points: tuple[int, ...] = POINTS
    shapes: tuple[str, ...] = SHAPES
    boundary_shares: tuple[float, ...] = SHARES
    dilations: tuple[float, ...] = (0.0, STUDY_DILATION)
    seeds: tuple[int, ...] = SEEDS
    concave_ratios: tuple[float, ...] = (DEFAULT_CONCAVE_RATIO,)
    rules: tuple[str, ...] = ("corrected",)

    def cells(self) -> list[TargetCell]:
        """Cells in a fixed order (simulation groups stay together, so a shard reuses them)."""
        out = []
        for d, p, b, s in itertools.product(self.datasets, self.points, self.boundary_shares, self.seeds):
            for shape in self.shapes:
                ratios = self.concave_ratios if shape == "concave" else (1.0,)
                for r, dil, rules in itertools.product(ratios, self.dilations, self.rules):
                    out.append(TargetCell(d, int(p), shape, float(b), float(dil), int(s), float(r), rules))
        return out


#: named grids; ``standard`` is what docs/study-targets.md reports
PRESETS: dict[str, tuple[str, Callable[[], list[TargetCell]]]] = {}


def _preset(name: str, doc: str):
    def deco(fn):
        PRESETS[name] = (doc, fn)
        return fn

    return deco


@_preset(
    "full", "the issue's grid: 6 points × 2 shapes × 7 shares × dilation off/on × 5 seeds × 2 datasets (1680 cells)"
)
def _full() -> list[TargetCell]:
    return TargetGrid().cells()


@_preset(
    "standard",
    "Table 13 axes (6 points × 2 shapes, 5 seeds) and Table 14 axes (P20 × 7 shares × "
    "dilation off/on, 5 seeds), both datasets (400 cells)",
)
def _standard() -> list[TargetCell]:
    t13 = TargetGrid(boundary_shares=(0.0,), dilations=(0.0,)).cells()
    t14 = TargetGrid(points=(20,)).cells()
    return unique_cells(t13 + t14)


@_preset(
    "defaults",
    "choosing the defaults: concave ratio {0.05, 0.1, 0.2, 0.3, 0.5} and dilation radius "
    "{0, 0.005, 0.01, 0.02, 0.04} at P10/P20/P50, shares 0 and 0.5, 3 seeds, both datasets",
)
def _defaults() -> list[TargetCell]:
    return (
        TargetGrid(
            points=(10, 20, 50),
            shapes=("concave",),
            boundary_shares=(0.0, 0.5),
            dilations=(0.0, 0.005, 0.01, 0.02, 0.04),
            seeds=(0, 1, 2),
            concave_ratios=(0.05, 0.1, 0.2, 0.3, 0.5),
        ).cells()
        + TargetGrid(
            points=(10, 20, 50),
            shapes=("convex",),
            boundary_shares=(0.0, 0.5),
            dilations=(0.0, 0.005, 0.01, 0.02, 0.04),
            seeds=(0, 1, 2),
        ).cells()
    )


@_preset("quick", "a smoke test: coco, P5/P20, both shapes, share 0, dilation off/on, seed 0 (8 cells)")
def _quick() -> list[TargetCell]:
    return TargetGrid(datasets=("coco",), points=(5, 20), boundary_shares=(0.0,), seeds=(0,)).cells()


def unique_cells(cells: Iterable[Any]) -> list[Any]:
    """Drop repeated cells (same ``cell_id``), keeping the first; grids of different parts overlap.

    Shared by the target study and the trained study (:mod:`pointly.model.study.trained`).
    """
    seen, out = set(), []
    for c in cells:
        if c.cell_id not in seen:
            seen.add(c.cell_id)
            out.append(c)
    return out


def preset_cells(name: str) -> list[TargetCell]:
    if name not in PRESETS:
        raise PointlyError(
            f"unknown target-study preset {name!r}", record="--preset", fix=f"use one of {', '.join(PRESETS)}"
        )
    return PRESETS[name][1]()


_GRID_KEYS = {
    "datasets": str,
    "points": int,
    "shapes": str,
    "boundary_shares": float,
    "dilations": float,
    "seeds": int,
    "concave_ratios": float,
    "rules": str,
}
_GRID_ALIASES = {
    "dataset": "datasets",
    "point": "points",
    "shape": "shapes",
    "share": "boundary_shares",
    "shares": "boundary_shares",
    "boundary_share": "boundary_shares",
    "dilation": "dilations",
    "seed": "seeds",
    "ratio": "concave_ratios",
    "ratios": "concave_ratios",
    "concave_ratio": "concave_ratios",
}


def parse_grid(text: str) -> list[TargetCell]:
    """``--grid``: the full grid restricted by ``axis=v1,v2;axis=…``, e.g.
    ``datasets=coco;points=5,20;shares=0;dilations=0,0.02;seeds=0``."""
    grid = TargetGrid()
    for part in filter(None, (p.strip() for p in text.split(";"))):
        if "=" not in part:
            raise PointlyError(
                f"cannot read --grid part {part!r}",
                record="--grid",
                fix="write axis=v1,v2;axis=... with axes " + ", ".join(_GRID_KEYS),
            )
        key, vals = (s.strip() for s in part.split("=", 1))
        key = _GRID_ALIASES.get(key, key)
        if key not in _GRID_KEYS:
            raise PointlyError(f"unknown grid axis {key!r}", record="--grid", fix="axes: " + ", ".join(_GRID_KEYS))
        try:
            values = tuple(_GRID_KEYS[key](v.strip()) for v in vals.split(",") if v.strip())
        except ValueError:
            raise PointlyError(f"bad value in --grid {part!r}", record="--grid") from None
        if key == "shapes" and any(v not in SHAPE_VALUES for v in values):
            raise PointlyError(f"unknown shape in {part!r}", record="--grid", fix=", ".join(SHAPE_VALUES))
        if key == "rules" and any(v not in RULES for v in values):
            raise PointlyError(f"unknown target rules in {part!r}", record="--grid", fix=", ".join(RULES))
        if key == "datasets" and any(v not in DATASETS for v in values):
            raise PointlyError(f"unknown dataset in {part!r}", record="--grid", fix="coco, synthetic")
        setattr(grid, key, values)
    return grid.cells()


def parse_shard(text: str | None) -> tuple[int, int]:
    """``--shard i/n`` with ``0 <= i < n``; None → ``(0, 1)``."""
    if not text:
        return 0, 1
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise PointlyError(f"bad --shard {text!r}", fix="write i/n, e.g. 0/4") from None
    if n < 1 or not 0 <= i < n:
        raise PointlyError(f"bad --shard {text!r}: need 0 <= i < n", fix="e.g. --shard 0/2 and --shard 1/2")
    return i, n


# ------------------------------------------------------------------------------ datasets
def default_coco_root() -> Path:
    """``$POINTLY_SHARED_DATA/coco_panoptic_val2017`` or ``<repo>/../shared/data/coco_panoptic_val2017``."""
    env = os.environ.get("POINTLY_SHARED_DATA")
    base = Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data"
    return base / "coco_panoptic_val2017"


@dataclass
class DatasetSource:
    """A panoptic dataset the study scores against, with its true segments cached per image."""

    name: str
    split: str
    json_path: Path
    png_dir: Path
    image_dir: Path | None = None  # the pictures, read by the image-aware shape only
    _ds: Any = None
    _segments: dict = field(default_factory=dict)
    _truth_rle: dict = field(default_factory=dict)

    @property
    def dataset(self):
        if self._ds is None:
            from pointly.pointgen.base.coco import PanopticDataset

            self._ds = PanopticDataset(self.json_path, self.png_dir)
        return self._ds

    def segments(self, image_id: int):
        if image_id not in self._segments:
            self._segments[image_id] = self.dataset.segments(image_id)
        return self._segments[image_id]

    def image(self, image_id: int):
        """The RGB picture of an image (for ``shape="watershed"``)."""
        from pointly.pointgen.targets.report import load_image

        if self.image_dir is None:
            raise PointlyError(
                f"dataset {self.name} has no image folder",
                record="shape watershed",
                fix="the image-aware shape needs the pictures",
            )
        return load_image(self.image_dir, self.dataset.image(image_id).file_name)

    def settings(self) -> dict:
        return {"name": self.name, "split": self.split, "json": str(self.json_path), "png_dir": str(self.png_dir)}


def dataset_sources(
    coco_root: str | Path | None = None, synthetic_root: str | Path | None = None
) -> dict[str, Callable[[], DatasetSource]]:
    """Lazy constructors for the study's two datasets (a dataset is opened only if a cell needs it)."""

    def coco() -> DatasetSource:
        root = Path(coco_root) if coco_root is not None else default_coco_root()
        js = root / "panoptic_val2017.json"
        if not js.is_file():
            raise PointlyError(
                "COCO panoptic sample not found",
                file=js,
                fix="pass --coco-root DIR (a folder with panoptic_val2017.json and panoptic/) "
                "or set POINTLY_SHARED_DATA",
            )
        return DatasetSource("coco", "val2017", js, root / "panoptic", root / "images")

    def synthetic() -> DatasetSource:
        if synthetic_root is not None:
            root = Path(synthetic_root)
        else:
            from pointly.data.synth import ensure_dataset

            root = ensure_dataset()
        return DatasetSource(
            "synthetic", "val", root / "val" / "panoptic.json", root / "val" / "panoptic", root / "val" / "images"
        )

    return {"coco": coco, "synthetic": synthetic}


# ------------------------------------------------------------------------------ one cell
def _mean(frame: pd.DataFrame, col: str, isthing: bool | None = None) -> float:
    part = frame if isthing is None else frame[frame["isthing"] == isthing]
    return float(part[col].mean()) if len(part) else math.nan


def score_cell(
    cell: TargetCell, source: DatasetSource, points_doc: Mapping, cost: CostModel = CostModel()
) -> dict[str, Any]:
    """Build and score one cell's targets; returns its row (all :data:`ROW_COLUMNS`)."""
    t0 = time.perf_counter()
    ds = source.dataset
    opts = cell.options()
    rng = np.random.default_rng(cell.seed)
    report = QualityReport(ds.categories, truth_cache=source._truth_rle)
    by_image = annotations_by_image(points_doc)
    images = {im["id"]: im for im in points_doc["images"]}
    for iid, anns in by_image.items():
        picture = source.image(iid) if opts.shape == "watershed" else None
        targets = build_targets(anns, points_doc["categories"], images[iid], options=opts, rng=rng, image=picture)
        report.add_image(ds.image(iid), anns, targets, source.segments(iid))
    pq = report.panoptic_quality()
    seg = report.segments_frame()
    img = report.images_frame()
    seconds = modelled_seconds(points_doc, cost)
    nseg = len(points_doc["annotations"])
    row = {
        "cell_id": cell.cell_id,
        "dataset": cell.dataset,
        "split": source.split,
        "depth": "targets",
        "supervision": "points",
        "points": cell.points,
        "shape": cell.shape,
        "concave_ratio": cell.concave_ratio if cell.shape == "concave" else 1.0,
        "boundary_share": cell.boundary_share,
        "dilation": cell.dilation,
        "dilation_radius": cell.dilation_radius,
        "seed": cell.seed,
        "rules": cell.rules,
    }
    for split, sfx in (("all", ""), ("things", "_th"), ("stuff", "_st")):
        for m in ("pq", "sq", "rq"):
            row[f"{m}{sfx}"] = pq[split][m]
    row["n_th"], row["n_st"] = pq["things"]["n"], pq["stuff"]["n"]
    for col in ("precision", "recall", "iou"):
        row[col] = _mean(seg, col)
        row[f"{col}_th"] = _mean(seg, col, True)
        row[f"{col}_st"] = _mean(seg, col, False)
    row["coverage"] = float(img["coverage"].mean()) if len(img) else math.nan
    row["agreement"] = float(img["agreement"].mean()) if len(img) else math.nan
    row["annotation_seconds"] = seconds
    row["seconds_per_segment"] = seconds / nseg if nseg else math.nan
    row["segments"] = nseg
    row["images"] = len(img)
    row["compute_seconds"] = time.perf_counter() - t0
    return row


# ------------------------------------------------------------------------------ rows on disk
def _fmt(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, (bool, np.bool_)):
        return "True" if v else "False"
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(v) else f"{float(v):.6g}"
    return str(v)


def _line(row: Mapping[str, Any]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow([_fmt(row.get(c)) for c in ROW_COLUMNS])
    return buf.getvalue()


def done_cell_ids(out_dir: Path) -> set[str]:
    """Cell ids with a row in any ``rows-*.csv`` of ``out_dir``."""
    ids: set[str] = set()
    for path in sorted(out_dir.glob("rows-*.csv")):
        with open(path, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                if rec.get("cell_id"):
                    ids.add(rec["cell_id"])
    return ids


def load_rows(out_dir: str | Path) -> pd.DataFrame:
    """All rows of all shards of a study folder (duplicates by cell id dropped)."""
    out_dir = Path(out_dir)
    frames = [pd.read_csv(p) for p in sorted(out_dir.glob("rows-*.csv")) if p.stat().st_size > 0]
    if not frames:
        return pd.DataFrame(columns=ROW_COLUMNS)
    frame = pd.concat(frames, ignore_index=True).drop_duplicates("cell_id", keep="first")
    frame["dilation"] = frame["dilation"].astype(str).str.lower().isin(("true", "1"))
    # rows written before the rules were an axis were made with the first design's rules
    frame["rules"] = frame["rules"].fillna("baseline") if "rules" in frame else "baseline"
    return frame.reset_index(drop=True)


def _check_settings(out_dir: Path, settings: Mapping[str, Any]) -> None:
    path = out_dir / "study.json"
    if path.is_file():
        import json

        old = json.loads(path.read_text(encoding="utf-8"))
        for name, value in settings.get("datasets", {}).items():
            prev = old.get("datasets", {}).get(name)
            if prev is not None and prev != value:
                raise PointlyError(
                    f"this folder holds a study of another {name} dataset ({prev.get('json')})",
                    file=path,
                    fix="use a new --out folder, or the same dataset",
                )
        merged = dict(old)
        merged.setdefault("datasets", {}).update(settings.get("datasets", {}))
        settings = merged
    write_json_atomic(path, dict(settings), indent=2)


@dataclass
class StudyOutcome:
    ran: int
    skipped: int
    rows_path: Path
    total: int


def run_target_study(
    cells: Sequence[TargetCell],
    out_dir: str | Path,
    *,
    sources: Mapping[str, Callable[[], DatasetSource]] | None = None,
    shard: tuple[int, int] = (0, 1),
    progress: bool = True,
    simulate: Callable[..., dict] | None = None,
) -> StudyOutcome:
    """Run the cells of one shard that have no row yet; rows are written as cells finish."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise PointlyError("the output path is a file", file=out_dir, fix="pass a folder for --out")
    out_dir.mkdir(parents=True, exist_ok=True)
    sources = dict(sources or dataset_sources())
    if simulate is None:
        from pointly.pointgen.points.simulate import simulate_points as simulate
    i, n = shard
    mine = [c for k, c in enumerate(cells) if k % n == i]
    done = done_cell_ids(out_dir)
    todo = [c for c in mine if c.cell_id not in done]
    rows_path = out_dir / f"rows-{i}of{n}.csv"
    lines: list[str] = []
    if rows_path.is_file():
        with open(rows_path, encoding="utf-8") as fh:
            lines = fh.read().splitlines(keepends=True)[1:]
    header = ",".join(ROW_COLUMNS) + "\n"
    opened: dict[str, DatasetSource] = {}
    for name in sorted({c.dataset for c in todo}):
        if name not in sources:
            raise PointlyError(f"unknown dataset {name!r}", fix="coco or synthetic")
        opened[name] = sources[name]()
    _check_settings(out_dir, {"depth": "targets", "datasets": {k: v.settings() for k, v in opened.items()}})

    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), desc="target study", unit="cell")
    sim_cache: dict[tuple, dict] = {}
    try:
        for cell in todo:
            key = cell.simulation_key()
            if key not in sim_cache:
                sim_cache.clear()  # cells of one simulation are adjacent in the grid order
                src = opened[cell.dataset]
                sim_cache[key] = simulate(
                    src.dataset, points=cell.points, boundary_share=cell.boundary_share, seed=cell.seed
                )
            row = score_cell(cell, opened[cell.dataset], sim_cache[key])
            lines.append(_line(row))
            with atomic_open(rows_path, "w", encoding="utf-8", fsync=False) as fh:
                fh.write(header)
                fh.writelines(lines)
            if bar is not None:
                bar.update(1)
                bar.set_postfix_str(f"{cell.cell_id} PQ {100 * row['pq']:.1f}")
    finally:
        if bar is not None:
            bar.close()
    return StudyOutcome(ran=len(todo), skipped=len(mine) - len(todo), rows_path=rows_path, total=len(mine))
