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
def part_cells(part: str, overrides: Mapping[str, Any] | None = None, **axes: Any) -> list[Cell]:
    """Cells of one part (``axes``: the preset's ``datasets``, ``ratios``, ``rules``; ``overrides``:
    the preset's own axes for this part, e.g. its points and seeds): ``table13`` (P5..P100 ×
    convex/concave + full masks, 13 cells), ``table14`` (P20 concave × 7 boundary shares ×
    dilation off/on, 14 cells), ``seeds`` (P20 concave, seeds 0..4: the spread of T5) and
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
    return Grid(**{**base, **parts, **dict(overrides or {})}).cells()


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
    #: per-part axis overrides (e.g. the preset's points and seeds of table13)
    part_axes: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: ``cell``: the cell's seed is also the training seed (paired seeds vary sampling and training
    #: together); ``fixed``: the model config's seed for every cell (the first studies)
    training_seed: str = "cell"
    device: str | None = None  # None: cuda when available, else cpu
    jobs: int = 1  # cells trained at once, each in its own process (on one device)
    #: None: the trunk starts from random init; else :class:`~pointly.model.engine.pretrain.TagPretraining`
    #: fields: every cell starts from that tag pre-trained trunk (made once, cached beside the datasets)
    backbone_pretraining: dict | None = None
    #: simulated points count the image edge as a boundary (``pointly simulate --edge-is-boundary``)
    edge_is_boundary: bool = False
    expected: str = ""  # documented expected time

    def grid_defaults(self) -> dict[str, Any]:
        """The axes a grid of this preset leaves out: its dataset, concave ratio and rule set."""
        ratio = DEFAULT_CONCAVE_RATIO if self.concave_ratio is None else float(self.concave_ratio)
        return {"datasets": (self.dataset,), "ratios": (ratio,), "rules": (rules_name(self.target_rules),)}

    def cells(self) -> list[Cell]:
        if self.grid_cells is not None:
            return unique_cells(self.grid_cells)
        return unique_cells(
            c for part in self.parts for c in part_cells(part, self.part_axes.get(part), **self.grid_defaults())
        )

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
            "training_seed": self.training_seed,
            "backbone_pretraining": self.backbone_pretraining,
            "edge_is_boundary": self.edge_is_boundary,
        }


def preset(name: str, *, iters: int | None = None, parts: Sequence[str] | None = None) -> StudyPreset:
    """The named study preset, with optional overrides of the training length and the parts.

    * ``synthetic`` (the default): CPU. The synthetic set (1000 train / 500 val images of 128 px),
      model preset ``synthetic_small`` under bfloat16 CPU autocast, :data:`SYNTHETIC_ITERS`
      iterations per cell (docs/study.md, "The converged reference": not yet the plateau);
      P5, P10, P20, P50, P100 × convex/concave + full masks, and P20 concave × boundary 0/50/100 %
      × dilation off/on, each × seeds 0, 1, 2 (48 cells; each seed is the sampling and the
      training seed), two jobs: about 8–8.7 hours on 2 cores.
    * ``synthetic-gpu``: the same cells, data and schedule on one CUDA GPU (bfloat16 autocast),
      :data:`GPU_JOBS` cells trained at once.
    * ``synthetic-quick``: the first, unconverged preset (200 train / 50 val images, 400
      iterations, training seed fixed): Table 13 in under an hour; for demos, not for conclusions.
    * ``smoke``: two cells of 2 iterations on 64 px images (the CI test).
    * ``coco``: GPU. COCO panoptic train2017/val2017, ``coco_r50_1x`` (90k iterations at 16
      images per batch, the paper's setting); paths come from ``coco`` settings / the CLI.
    """
    synthetic_parts = {
        "table13": {"points": STUDY_POINTS, "seeds": STUDY_SEEDS},
        "table14": {"shares": STUDY_SHARES, "seeds": STUDY_SEEDS},
        "seeds": {"seeds": tuple(range(5))},
    }
    if name in ("synthetic", "synthetic-gpu"):
        gpu = name == "synthetic-gpu"
        p = StudyPreset(
            name=name,
            dataset="synthetic",
            model_config="synthetic_small",
            iters=SYNTHETIC_ITERS,
            parts=("table13", "table14"),
            part_axes=synthetic_parts,
            synthetic={"train": 1000, "val": 500, "size": 128, "seed": 0},
            config_overrides=() if gpu else ("solver.cpu_amp=true",),
            device="cuda" if gpu else None,
            jobs=GPU_JOBS if gpu else 2,
            expected=(
                f"48 cells, {GPU_JOBS} at once on one GPU: not measured here (no GPU was lent)"
                if gpu
                else "48 cells, two at once on 2 cores (one thread each): ≈ 8–8.7 h (measured per cell, docs/study.md)"
            ),
        )
    elif name == "synthetic-quick":
        p = StudyPreset(
            name="synthetic-quick",
            dataset="synthetic",
            model_config="synthetic_small",
            iters=QUICK_ITERS,
            synthetic={"train": 200, "val": 50, "size": 128, "seed": 0},
            training_seed="fixed",
            expected="Table 13 (13 cells) ≈ 51 min on 2 quiet CPU cores; all parts (30 cells) ≈ 2 h (measured)",
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
        raise PointlyError(f"unknown study preset {name!r}", fix=f"use one of {', '.join(PRESETS)}")
    if iters is not None:
        if iters < 1:
            raise PointlyError(f"--iters must be ≥ 1, got {iters}")
        p.iters = int(iters)
    if parts is not None:
        for part in parts:
            part_cells(part)  # validates
        p.parts = tuple(parts)
    return p


#: the names :func:`preset` knows
PRESETS = ("synthetic", "synthetic-gpu", "synthetic-quick", "smoke", "coco")
#: the synthetic presets' axes: Table 13's points without P30 (8 hours hold 48 cells, not 54), the
#: boundary shares 0, 50 and 100 % of Table 14, three paired seeds
STUDY_POINTS = (5, 10, 20, 50, 100)
STUDY_SHARES = (0.0, 0.5, 1.0)
STUDY_SEEDS = (0, 1, 2)
#: training iterations per cell of the synthetic presets: what fits 48 cells in about 8 hours on 2
#: cores; the full-mask reference gains 16.2 PQ from 1000 to 2000 and 3.7 more at 4000, and about
#: 3.5 per doubling at batch 4 or 2 too, so it is short of its plateau (docs/study.md, "The
#: converged reference")
SYNTHETIC_ITERS = 2000
#: synthetic-quick: what fits Table 13 in an hour on 2 quiet cores (measured: 219-239 s of training
#: + 2 s of evaluation per cell at 400 iterations; the full-mask reference reaches PQ 23.7)
QUICK_ITERS = 400
#: cells trained at once by synthetic-gpu (each a process with its own CUDA context and loader)
GPU_JOBS = 8


def parse_target_rules(text: str) -> str | dict[str, Any]:
    """``--target-rules``: a rule-set name (``corrected``, ``baseline``) or ``key=value`` pairs
    joined by commas over the rule fields, e.g. ``parts=hull,overlap=nearest,size_correction=true``
    (fields left out keep the corrected rules' values; such cells are named ``custom``)."""
    from pointly.pointgen.targets.options import OVERLAPS, TargetOptions
    from pointly.pointgen.targets.shapes import PARTS

    text = text.strip()
    if "=" not in text:
        if text not in RULES:
            raise PointlyError(
                f"unknown target rules {text!r}", fix=f"use {', '.join(RULES)} or key=value pairs, e.g. parts=hull"
            )
        return text
    choices = {"parts": PARTS, "overlap": OVERLAPS, "size_correction": ("true", "false")}
    corrected = {key: getattr(TargetOptions(), key) for key in choices}  # the library's defaults
    fields: dict[str, Any] = dict(corrected)
    for pair in text.split(","):
        key, _, value = (x.strip() for x in pair.partition("="))
        value = value.lower() if key == "size_correction" else value
        if key not in choices or value not in choices[key]:
            raise PointlyError(
                f"bad target rule {pair.strip()!r}",
                record="--target-rules",
                fix="; ".join(f"{k}: {', '.join(v)}" for k, v in choices.items()),
            )
        fields[key] = value == "true" if key == "size_correction" else value
    for name, named in (("corrected", corrected), ("baseline", RULES["baseline"])):
        if fields == named:  # a named set spelled out is that set (and its cells keep their names)
            return name
    return fields


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
    edge_is_boundary: bool | None = None,
) -> StudySetup:
    """The trained study of ``--preset`` (default ``synthetic``), its ``--parts`` or a ``--grid``
    (a grid replaces the parts; the preset still gives dataset, model and training length).

    ``target_rules``: ``corrected`` (default), ``baseline`` or a dict of
    :class:`~pointly.pointgen.targets.options.TargetOptions` rule fields (``parts``, ``overlap``,
    ``size_correction``; the cells name them ``custom``); ``config_overrides``: ``key=value`` items
    for the model config of every cell; ``edge_is_boundary``: the cells' simulated points count the
    image edge as a boundary (a setting of the folder, like the rules of a study.json)."""
    part_list = [p.strip() for p in parts.split(",") if p.strip()] if parts else None
    p = preset_fn(preset or "synthetic", iters=iters, parts=part_list)
    if target_rules is not None:
        if isinstance(target_rules, str) and target_rules not in RULES:
            raise PointlyError(f"unknown target rules {target_rules!r}", fix=f"use one of {', '.join(RULES)}")
        p.target_rules = target_rules if isinstance(target_rules, str) else dict(target_rules)
    p.config_overrides = tuple(p.config_overrides) + tuple(config_overrides)
    if edge_is_boundary is not None:
        p.edge_is_boundary = bool(edge_is_boundary)
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
        data = DataPaths.of_folder(root)
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
    if device is not None:
        p.device = device
    runner = PipelineRunner(p, data=data, device=p.device, progress=False)
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
    edge_is_boundary: bool | None = None,
    jobs: int | None = None,
    threads: int | None = None,
    echo: Callable[[str], None] | None = None,
) -> StudyOutcome | None:
    """``pointly study --depth trained`` as a function (for scripts): :func:`setup`, then the
    engine's :func:`~pointly.model.study.engine.run_study` (run or resume the shard's cells, print a
    summary and the trend rows). ``report_only`` rebuilds the report from the rows in ``out``.

    ``jobs`` (default: the preset's) > 1 trains that many cells at once, each job a process of its
    own on the same device (:func:`run_jobs`); one job runs in this process. ``threads``: torch
    threads per job (default: ``cpu_count // jobs``)."""
    if echo is None:
        import click

        echo = click.echo
    if report_only:
        rebuild_report(out, "trained", echo)
        return None
    kwargs = dict(
        iters=iters,
        parts=parts,
        coco_root=coco_root,
        synthetic_root=synthetic_root,
        device=device,
        target_rules=target_rules,
        config_overrides=tuple(config_overrides),
        edge_is_boundary=edge_is_boundary,
    )
    s = setup(preset, grid, **kwargs)
    n_jobs = s.scorer.preset.jobs if jobs is None else int(jobs)
    if n_jobs < 1:
        raise PointlyError(f"--jobs must be ≥ 1, got {n_jobs}")
    if threads is not None and threads < 1:
        raise PointlyError(f"--threads must be ≥ 1, got {threads}")
    if n_jobs == 1:
        if threads is not None:
            import torch

            torch.set_num_threads(threads)
        return run_study(s, out, shard=parse_shard(shard), progress=progress, max_cells=max_cells, echo=echo)
    s.scorer.data()  # make (or find) the dataset and the pre-trained trunk once, so that the jobs find them made
    s.scorer.backbone_weights()
    return run_jobs(
        dict(kwargs, preset=preset, grid=grid, max_cells=max_cells),
        out,
        jobs=n_jobs,
        shard=parse_shard(shard),
        threads=threads,
        echo=echo,
    )


def run_jobs(
    kwargs: Mapping[str, Any],
    out: str | Path,
    *,
    jobs: int,
    shard: tuple[int, int] = (0, 1),
    threads: int | None = None,
    echo: Callable[[str], None] = print,
) -> StudyOutcome | None:
    """Train the cells of ``shard`` in ``jobs`` processes at once (``multiprocessing`` spawn) with
    ``cpu_count // jobs`` torch threads each, all appending to one folder (the row store locks its
    appends); then rebuild the report once from every row. Every job walks the shard's cells and
    claims the next one nobody runs (:mod:`pointly.model.study.claims`), so the jobs stay busy
    until the shard is done, however much of it a resumed run finds finished.

    On a GPU this keeps one device busy with small models (synthetic-gpu); on 2 CPU cores two
    one-thread jobs train faster together than one two-thread job (docs/study.md). A job that
    fails leaves its cells without rows (they run again on the next call) and makes this raise."""
    import multiprocessing
    import os

    threads = threads or max(1, (os.cpu_count() or 1) // jobs)
    ctx = multiprocessing.get_context("spawn")
    procs = []
    for j in range(jobs):
        proc = ctx.Process(target=_job, args=(dict(kwargs), str(out), shard, threads, j), daemon=False)
        proc.start()
        procs.append((j, proc))
    echo(f"{jobs} jobs of {threads} thread(s) each, sharing shard {shard[0]}/{shard[1]}'s cells by claims")
    try:
        for _, proc in procs:
            proc.join()
    except KeyboardInterrupt:
        for _, proc in procs:
            proc.terminate()
        raise
    bad = [f"{j} (exit {proc.exitcode})" for j, proc in procs if proc.exitcode != 0]
    if Path(out, "results.csv").is_file():
        rebuild_report(out, "trained", echo)
    if bad:
        raise PointlyError(
            f"{len(bad)} of {jobs} study jobs failed: jobs {', '.join(bad)}",
            file=Path(out) / "cells",
            fix="read the cells' error.txt; a rerun retries them and skips the finished cells",
        )
    return None


def _job(kwargs: dict[str, Any], out: str, shard: tuple[int, int], threads: int, job: int) -> None:
    """One job of :func:`run_jobs` (a spawned process): the shard's cells it claims, one line per
    finished cell."""
    import torch

    torch.set_num_threads(threads)
    kwargs = dict(kwargs)
    preset_name, grid, max_cells = kwargs.pop("preset"), kwargs.pop("grid"), kwargs.pop("max_cells")
    s = setup(preset_name, grid, **kwargs)
    tag = f"[job {job}]"
    try:
        run_study(s, out, shard=shard, progress=False, max_cells=max_cells, echo=lambda x: print(tag, x, flush=True))
    except PointlyError as exc:
        print(tag, f"error: {exc}", flush=True)
        raise SystemExit(1) from None


preset_fn = preset
