"""The trained study (``pointly study --depth trained``): simulate → train → evaluate per grid cell.

A cell (:class:`~pointly.model.study.grid.Cell`, shared with the target study) is one point of the
study's grid (docs/study.md): supervision (points or full masks), points per segment,
shape, boundary share, dilation and the sampling seed, on the preset's dataset. For every cell the
:class:`PipelineRunner`

1. simulates the points from the training split's masks (:mod:`pointly.pointgen.points.simulate`),
2. prices them with the annotation-cost model (:mod:`pointly.pointgen.points.cost`),
3. trains Panoptic FCN from those points (or from the full masks for the reference cell),
4. evaluates PQ / SQ / RQ (overall, things, stuff; in percent) on the validation split.

The grid, the rows (``results.csv``, ``cells/<id>/row.json``), resuming, sharding, failure
isolation and the report are the study engine's (:mod:`pointly.model.study.engine`); this module
holds the presets, the dataset paths and the training pipeline. ``study.json`` records the
settings that change results (dataset, training length, model config, image sizes, target rules);
a rerun into the same folder with different settings is refused, so rows of different studies
are never mixed. The study takes an hour on a CPU and days on GPUs: an interrupted cell resumes
its training from its checkpoint, and ``--shard i/n`` spreads the grid over machines.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pointly.model.study.engine import StudyOutcome, StudySetup, run_study
from pointly.model.study.engine import report_only as rebuild_report
from pointly.model.study.grid import (
    DEFAULT_CONCAVE_RATIO,
    DEPTH_DILATION,
    GRID_DEFAULTS,
    RULES,
    SHAPES,
    TABLE14_SHARES,
    Cell,
    Grid,
    parse_grid,
    parse_shard,
    rules_name,
    unique_cells,
)
from pointly.model.study.trained_cell import DataPaths, PipelineRunner, coco_paths
from pointly.pointgen.base.errors import PointlyError

__all__ = [
    "PARTS",
    "part_cells",
    "StudyPreset",
    "preset",
    "setup",
    "run_from_cli",
    "SHAPES",
]


# --------------------------------------------------------------------------- presets
def part_cells(part: str, **axes: Any) -> list[Cell]:
    """Cells of one part (``axes``: the preset's ``datasets``, ``ratios``, ``rules``): ``table13``
    (P5..P100 × convex/concave + full masks, 13 cells), ``table14`` (P20 concave × 7 boundary
    shares × dilation off/on, 14 cells), ``seeds`` (P20 concave, seeds 0..4: the spread of T5) and
    ``smoke`` (P5 convex and the full masks)."""
    base = {**GRID_DEFAULTS["trained"], **axes}
    if part == "table13":
        parts = {}
    elif part == "table14":
        on = DEPTH_DILATION["trained"]
        parts = {
            "points": (20,),
            "shapes": ("concave",),
            "shares": TABLE14_SHARES,
            "dilations": (None, on),
            "full": False,
        }
    elif part == "seeds":
        parts = {"points": (20,), "shapes": ("concave",), "seeds": range(5), "full": False}
    elif part == "smoke":
        parts = {"points": (5,), "shapes": ("convex",)}
    else:
        raise PointlyError(f"unknown study part {part!r}", fix="use table13, table14, seeds or smoke")
    return Grid(**{**base, **parts}).cells()


PARTS = ("table13", "table14", "seeds")


@dataclass
class StudyPreset:
    """What a study runs: the dataset, the model config and training length, and the grid parts.

    ``settings`` are everything that changes the numbers besides the cells' own axes; they are
    stored in ``study.json`` and a rerun with other settings into the same folder is refused.
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
    target_rules: Any = "corrected"  # a name of grid.RULES, or TargetOptions rule fields ("custom")
    eval_images: int | None = None  # None: the whole validation split
    expected: str = ""  # documented expected time

    def grid_defaults(self) -> dict[str, Any]:
        """The axes a grid of this preset leaves out: its dataset, concave ratio and rule set."""
        ratio = DEFAULT_CONCAVE_RATIO if self.concave_ratio is None else float(self.concave_ratio)
        return {"datasets": (self.dataset,), "ratios": (ratio,), "rules": (rules_name(self.target_rules),)}

    def cells(self) -> list[Cell]:
        if self.grid_cells is not None:
            return unique_cells(self.grid_cells)
        return unique_cells(c for part in self.parts for c in part_cells(part, **self.grid_defaults()))

    def settings(self) -> dict[str, Any]:
        return {
            "depth": "trained",
            "preset": self.name,
            "dataset": self.dataset,
            "model_config": self.model_config,
            "iters": self.iters,
            "config_overrides": list(self.config_overrides),
            "synthetic": self.synthetic,
            "coco": self.coco,
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


def setup(
    preset: str | None = None,
    grid: str | None = None,
    *,
    iters: int | None = None,
    parts: str | None = None,
    coco_root: str | Path | None = None,
    synthetic_root: str | Path | None = None,
    device: str | None = None,
    target_rules: str | Mapping[str, Any] | None = None,
    config_overrides: Sequence[str] = (),
) -> StudySetup:
    """The trained study of ``--preset`` (default ``synthetic``), its ``--parts`` or a ``--grid``
    (a grid replaces the parts; the preset still gives dataset, model and training length).

    ``target_rules``: ``corrected`` (default), ``baseline`` or a dict of
    :class:`~pointly.pointgen.targets.options.TargetOptions` rule fields (``parts``, ``overlap``,
    ``size_correction``; the cells name them ``custom``); ``config_overrides``: ``key=value`` items
    for the model config of every cell."""
    part_list = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
    p = preset_fn(preset or "synthetic", iters=iters, parts=part_list)
    if target_rules is not None:
        if isinstance(target_rules, str) and target_rules not in RULES:
            raise PointlyError(f"unknown target rules {target_rules!r}", fix=f"use one of {', '.join(RULES)}")
        p.target_rules = target_rules if isinstance(target_rules, str) else dict(target_rules)
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
    if grid is not None:
        cells = parse_grid(grid, "trained", p.grid_defaults())
        others = sorted({c.dataset for c in cells} - {p.dataset})
        if others:
            raise PointlyError(
                f"the {p.name} preset trains on {p.dataset}, the --grid names {', '.join(others)}",
                record="--grid",
                fix="drop datasets= from --grid, or pick a preset of that dataset",
            )
        p.grid_cells = tuple(cells)
    runner = PipelineRunner(p, data=data, device=device, progress=False)
    return StudySetup("trained", p.cells(), runner, p.settings())


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
    target_rules: str | Mapping[str, Any] | None = None,
    config_overrides: Sequence[str] = (),
    echo: Callable[[str], None] | None = None,
) -> StudyOutcome | None:
    """``pointly study --depth trained`` as a function (for scripts): :func:`setup`, then the
    engine's :func:`~pointly.model.study.engine.run_study` (run or resume the shard's cells, print a
    summary and the trend rows). ``report_only`` rebuilds the report from the rows in ``out``."""
    if echo is None:
        import click

        echo = click.echo
    if report_only:
        rebuild_report(out, "trained", echo)
        return None
    s = setup(
        preset,
        grid,
        iters=iters,
        parts=parts,
        coco_root=coco_root,
        synthetic_root=synthetic_root,
        device=device,
        target_rules=target_rules,
        config_overrides=config_overrides,
    )
    return run_study(s, out, shard=parse_shard(shard), progress=progress, max_cells=max_cells, echo=echo)


preset_fn = preset
