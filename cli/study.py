"""``pointly study``: the cost-versus-quality study over a grid of point-annotation settings.

Two depths (docs/study.md) of one engine (:mod:`pointly.model.study.engine`: the grid,
resumable rows, shards, the report); the depth only decides how a cell is scored:

* ``--depth targets`` (:mod:`pointly.model.study.targets`): no training; the PQ, IoU and coverage
  of the generated targets against the true masks, per grid cell. Seconds per cell on a CPU.
  Guide: docs/study-targets.md.
* ``--depth trained`` (:mod:`pointly.model.study.trained`): simulate → train → evaluate per cell.
  Guide: docs/study.md.

Both share ``--preset``, ``--grid``, ``--out DIR``, ``--shard i/n`` and resumability (finished
cells are skipped on a rerun). ``--report-only`` rebuilds the report from the rows in DIR (the
folder's own depth).
"""

from __future__ import annotations

import click

from pointly.cli.paths import OUTPUT_FOLDER
from pointly.pointgen.base.errors import PointlyError


@click.command()
@click.option(
    "--depth",
    type=click.Choice(["targets", "trained"]),
    default="targets",
    show_default=True,
    help="targets: score the targets against true masks (no training); trained: train per cell.",
)
@click.option(
    "--preset",
    default=None,
    help="Named grid. targets: full | standard | defaults | quick (default standard); trained: see docs/study.md.",
)
@click.option(
    "--grid",
    "grid_spec",
    default=None,
    help="A grid instead of a preset: key=v1,v2;... with keys datasets, points, shapes, shares, "
    "dilations (off, on = the depth's default, a radius 0.02 or a range 0.01:0.03), seeds, ratios, "
    "rules, full (trained); missing keys take the depth's defaults, e.g. "
    "'datasets=coco;points=5,20;shares=0;dilations=off,0.02;seeds=0;ratios=0.3'.",
)
@click.option("--out", "out_dir", type=OUTPUT_FOLDER, required=True, help="Study folder (rows, report).")
@click.option(
    "--shard",
    default=None,
    help="Run shard i of n (cells i, i+n, ...), e.g. 0/4, for machines that do not share --out; "
    "processes that share it split the trained cells by claims without shards.",
)
@click.option(
    "--coco-root",
    type=click.Path(),
    default=None,
    help="targets: the COCO panoptic folder scored against (panoptic_val2017.json + panoptic/; "
    "default $POINTLY_SHARED_DATA/coco_panoptic_val2017). trained: the COCO root (see docs/study.md).",
)
@click.option(
    "--synthetic-root",
    type=click.Path(),
    default=None,
    help="Synthetic dataset folder (default: pointly.data.synth.ensure_dataset()).",
)
@click.option(
    "--report-only", is_flag=True, help="Only rebuild the report from the rows in --out (the folder's own depth)."
)
@click.option("--iters", type=int, default=None, help="(trained) training iterations per cell.")
@click.option("--parts", default=None, help="(trained) grid parts, comma-separated.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=None,
    help="(trained) cells trained at once, each in its own process, each taking the next free cell "
    "(default: the preset's).",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    default=None,
    help="(trained) torch threads per job (default: the CPU count divided by --jobs).",
)
@click.option(
    "--device",
    type=click.Choice(["cpu", "cuda"]),
    default=None,
    help="(trained) where cells train (default: the preset's; else cuda when available).",
)
@click.option(
    "--target-rules",
    default=None,
    help="(trained) corrected (default), baseline, or rule fields, e.g. parts=hull,overlap=nearest,"
    "size_correction=true; a setting of the --out folder.",
)
@click.option(
    "--edge-is-boundary",
    is_flag=True,
    help="Simulated points count the image edge as a boundary (pointly simulate --edge-is-boundary); "
    "a setting of the --out folder.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def study(
    depth: str,
    preset: str | None,
    grid_spec: str | None,
    out_dir: str,
    shard: str | None,
    coco_root: str | None,
    synthetic_root: str | None,
    report_only: bool,
    iters: int | None,
    parts: str | None,
    jobs: int | None,
    threads: int | None,
    device: str | None,
    target_rules: str | None,
    edge_is_boundary: bool,
    no_progress: bool,
) -> None:
    """Run (or resume) a study grid and write its rows, tables, trend rows and figure into --out."""
    from pointly.model.study import engine

    if report_only:
        engine.report_only(out_dir, depth, echo=click.echo)
        return
    shard_t = engine.parse_shard(shard)
    if depth == "trained":
        from pointly.model.study import trained

        trained.run_from_cli(
            preset=preset,
            out=out_dir,
            shard=shard,
            grid=grid_spec,
            progress=not no_progress,
            iters=iters,
            parts=parts,
            coco_root=coco_root,
            synthetic_root=synthetic_root,
            device=device,
            jobs=jobs,
            threads=threads,
            edge_is_boundary=edge_is_boundary or None,
            target_rules=trained.parse_target_rules(target_rules) if target_rules else None,
            echo=click.echo,
        )
        return
    given = [
        name
        for name, v in (
            ("--iters", iters),
            ("--parts", parts),
            ("--jobs", jobs),
            ("--threads", threads),
            ("--device", device),
            ("--target-rules", target_rules),
        )
        if v
    ]
    if given:
        raise PointlyError(f"{', '.join(given)} belong to --depth trained", fix="drop them for --depth targets")
    from pointly.model.study import targets

    setup = targets.setup(
        preset, grid_spec, coco_root=coco_root, synthetic_root=synthetic_root, edge_is_boundary=edge_is_boundary
    )
    engine.run_study(setup, out_dir, shard=shard_t, progress=not no_progress, echo=click.echo)
