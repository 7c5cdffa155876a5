"""The target-quality study (``pointly study --depth targets``): how good are point targets, by cell?

No training: for every cell of the grid (dataset × points per segment × shape × boundary share ×
dilation × seed, plus concave ratio and dilation radius for choosing the defaults) the
:class:`TargetScorer`

1. simulates the points from the true masks (:func:`pointly.pointgen.points.simulate.simulate`;
   one simulation serves every shape / dilation / ratio / rules cell of the same points, share and
   seed, which the grid order keeps together),
2. builds the full-size targets of every image (:func:`pointly.pointgen.targets.build.build_targets`),
3. scores them against the true masks (:class:`pointly.pointgen.targets.quality.QualityReport`):
   PQ/SQ/RQ of the targets read as a panoptic prediction (ignore = VOID; overall, things,
   stuff; in percent), mean precision / recall / IoU, coverage, agreement (fractions 0–1),
4. prices the points with the cost model (:class:`pointly.pointgen.points.cost.CostModel`, 0.9 s a point).

Datasets: ``coco`` (the real COCO panoptic sample in ``shared/data/coco_panoptic_val2017``, 3
images, 53 non-crowd segments) and ``synthetic`` (the validation split of
:func:`pointly.data.synth.ensure_dataset`, 50 images of 128 px).

The grid, the rows, resuming, sharding and the report are the study engine's
(:mod:`pointly.model.study.engine`); this module holds the presets, the dataset sources and the
scoring. ``study.json`` records the dataset sources; a dataset may join a folder, another source
of the same dataset is refused.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pointly.model.study.engine import StudySetup
from pointly.model.study.grid import (
    DATASETS,
    DEFAULT_CONCAVE_RATIO,
    DEPTH_DILATION,
    GRID_DEFAULTS,
    RULES,
    SHAPES,
    TABLE13_POINTS,
    TABLE14_SHARES,
    Cell,
    Grid,
    parse_grid,
    unique_cells,
)
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import annotations_by_image
from pointly.pointgen.points.cost import CostModel, modelled_seconds
from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.quality import QualityReport

POINTS = TABLE13_POINTS
SHARES = TABLE14_SHARES
SEEDS = (0, 1, 2, 3, 4)
#: dilation radius of the "on" cells, relative to the longer image side
STUDY_DILATION = DEPTH_DILATION["targets"]

__all__ = [
    "RULES",
    "DATASETS",
    "SHAPES",
    "DEFAULT_CONCAVE_RATIO",
    "PRESETS",
    "preset_cells",
    "dataset_sources",
    "DatasetSource",
    "score_cell",
    "TargetScorer",
    "setup",
]


# ------------------------------------------------------------------------------ presets
def target_grid(**axes: Any) -> list[Cell]:
    """The cells of a target-study grid: the depth's default axes (all 1680 cells) overridden by ``axes``."""
    return Grid(**{**GRID_DEFAULTS["targets"], **axes}).cells()


#: named grids; ``standard`` is what docs/study-targets.md reports
PRESETS: dict[str, tuple[str, Callable[[], list[Cell]]]] = {}


def _preset(name: str, doc: str):
    def deco(fn):
        PRESETS[name] = (doc, fn)
        return fn

    return deco


@_preset(
    "full", "the issue's grid: 6 points × 2 shapes × 7 shares × dilation off/on × 5 seeds × 2 datasets (1680 cells)"
)
def _full() -> list[Cell]:
    return target_grid()


@_preset(
    "standard",
    "Table 13 axes (6 points × 2 shapes, 5 seeds) and Table 14 axes (P20 × 7 shares × "
    "dilation off/on, 5 seeds), both datasets (380 cells)",
)
def _standard() -> list[Cell]:
    return unique_cells(target_grid(shares=(0.0,), dilations=(None,)) + target_grid(points=(20,)))


_SWEEP = (None, 0.005, 0.01, 0.02, 0.04)


@_preset(
    "defaults",
    "choosing the defaults: concave ratio {0.05, 0.1, 0.2, 0.3, 0.5} and dilation radius "
    "{0, 0.005, 0.01, 0.02, 0.04} at P10/P20/P50, shares 0 and 0.5, 3 seeds, both datasets",
)
def _defaults() -> list[Cell]:
    common = {"points": (10, 20, 50), "shares": (0.0, 0.5), "dilations": _SWEEP, "seeds": (0, 1, 2)}
    return target_grid(shapes=("concave",), ratios=(0.05, 0.1, 0.2, 0.3, 0.5), **common) + target_grid(
        shapes=("convex",), **common
    )


@_preset("quick", "a smoke test: coco, P5/P20, both shapes, share 0, dilation off/on, seed 0 (8 cells)")
def _quick() -> list[Cell]:
    return target_grid(datasets=("coco",), points=(5, 20), shares=(0.0,), seeds=(0,))


def preset_cells(name: str) -> list[Cell]:
    if name not in PRESETS:
        raise PointlyError(
            f"unknown target-study preset {name!r}", record="--preset", fix=f"use one of {', '.join(PRESETS)}"
        )
    return PRESETS[name][1]()


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


def score_cell(cell: Cell, source: DatasetSource, points_doc: Mapping, cost: CostModel | None = None) -> dict[str, Any]:
    """Build and score one cell's targets: its metrics (PQ/SQ/RQ in percent, precision / recall /
    IoU / coverage / agreement as fractions 0–1) and costs, and the dataset's split."""
    t0 = time.perf_counter()
    ds = source.dataset
    opts = cell.target_options()
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
    seconds = modelled_seconds(points_doc, cost or CostModel())
    nseg = len(points_doc["annotations"])
    row: dict[str, Any] = {"split": source.split}
    for split, sfx in (("all", ""), ("things", "_th"), ("stuff", "_st")):
        for m in ("pq", "sq", "rq"):
            row[f"{m}{sfx}"] = 100.0 * pq[split][m]  # QualityReport gives 0–1; rows hold percent
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


class TargetScorer:
    """The target depth's scorer: :func:`score_cell` with a simulation cache (the cells of one
    simulation are adjacent in the grid order, so one cached simulation serves them all)."""

    needs_folder = False

    def __init__(
        self,
        sources: Mapping[str, Callable[[], DatasetSource]] | None = None,
        *,
        simulate: Callable[..., dict] | None = None,
        cost: CostModel | None = None,
        edge_is_boundary: bool = False,
    ) -> None:
        self.sources = dict(sources if sources is not None else dataset_sources())
        self._simulate = simulate
        self.edge_is_boundary = bool(edge_is_boundary)
        self.cost = cost or CostModel()
        self._opened: dict[str, DatasetSource] = {}
        self._sim: tuple[tuple, dict] | None = None
        self.simulations = 0

    def source(self, name: str) -> DatasetSource:
        if name not in self._opened:
            if name not in self.sources:
                raise PointlyError(f"unknown dataset {name!r}", fix=", ".join(self.sources))
            self._opened[name] = self.sources[name]()
        return self._opened[name]

    def settings(self, cells: Sequence[Cell]) -> dict[str, Any]:
        """study.json's settings: the depth, the sources of the datasets ``cells`` need and how
        points are simulated."""
        names = sorted({c.dataset for c in cells})
        return {
            "depth": "targets",
            "datasets": {n: self.source(n).settings() for n in names},
            "edge_is_boundary": self.edge_is_boundary,
        }

    def points(self, cell: Cell) -> dict:
        key = (cell.dataset, cell.points, cell.boundary_share, cell.seed)
        if self._sim is None or self._sim[0] != key:
            from pointly.pointgen.points.simulate import SimulationOptions, simulate

            options = SimulationOptions(
                points=cell.points,
                boundary_share=cell.boundary_share,
                seed=cell.seed,
                edge_is_boundary=self.edge_is_boundary,
            )
            src = self.source(cell.dataset)
            self._sim = None
            if self._simulate is not None:
                doc = self._simulate(src.dataset, options)
            else:
                doc = simulate(src.dataset, options).document
            self._sim = (key, doc)
            self.simulations += 1
        return self._sim[1]

    def score(self, cell: Cell, cell_dir: Path | None = None) -> dict[str, Any]:
        if cell.supervision != "points":
            raise PointlyError("the target study scores point targets; a full-mask cell has none")
        return score_cell(cell, self.source(cell.dataset), self.points(cell), self.cost)


def setup(
    preset: str | None = None,
    grid: str | None = None,
    *,
    coco_root: str | Path | None = None,
    synthetic_root: str | Path | None = None,
    simulate: Callable[..., dict] | None = None,
    edge_is_boundary: bool = False,
) -> StudySetup:
    """The target study of ``--preset`` (default ``standard``) or ``--grid``, for the engine;
    ``edge_is_boundary``: the simulated points count the image edge as a boundary."""
    if preset is not None and grid is not None:
        raise PointlyError("give --preset or --grid, not both")
    cells = parse_grid(grid, "targets") if grid is not None else preset_cells(preset or "standard")
    scorer = TargetScorer(
        dataset_sources(coco_root, synthetic_root), simulate=simulate, edge_is_boundary=edge_is_boundary
    )
    return StudySetup("targets", cells, scorer, scorer.settings)
