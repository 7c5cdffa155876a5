"""``pointly study``: the cost-versus-quality study over a grid of point-annotation settings.

Two depths (study.md, "The study"):

* ``--depth targets`` (this module → :mod:`pointly.model.study.targets`): no training; the PQ,
  IoU and coverage of the generated targets against the true masks, per grid cell. Seconds per
  cell on a CPU. Guide: docs/study-targets.md.
* ``--depth trained``: simulate → train → evaluate per cell. Delegated to
  ``pointly.model.study.trained.run_from_cli(preset=, out=, shard=, grid=, progress=, iters=,
  parts=)`` when that entry point exists in this build.

Both share ``--preset``, ``--grid``, ``--out DIR``, ``--shard i/n`` and resumability (finished cells are
skipped on a rerun). ``--report-only`` rebuilds the tables and figure from the rows in DIR.
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
    help="A subset of the full grid instead of a preset, e.g. "
    "'datasets=coco;points=5,20;shares=0;dilations=0,0.02;seeds=0;ratios=0.3'.",
)
@click.option("--out", "out_dir", type=OUTPUT_FOLDER, required=True, help="Study folder (rows, report).")
@click.option("--shard", default=None, help="Run shard i of n (cells i, i+n, ...), e.g. 0/4.")
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
@click.option("--report-only", is_flag=True, help="Only rebuild the report from the rows in --out.")
@click.option("--iters", type=int, default=None, help="(trained) training iterations per cell.")
@click.option("--parts", default=None, help="(trained) grid parts, comma-separated.")
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
    no_progress: bool,
) -> None:
    """Run (or resume) a study grid and write its rows, tables, trend rows and figure into --out."""
    if depth == "trained":
        try:
            from pointly.model.study import trained as study_trained
        except ModuleNotFoundError:
            study_trained = None
        entry = getattr(study_trained, "run_from_cli", None)
        if entry is None:
            raise PointlyError(
                "the trained study is not available in this build", record="--depth trained", fix="use --depth targets"
            )
        entry(
            preset=preset,
            out=out_dir,
            shard=shard,
            grid=grid_spec,
            progress=not no_progress,
            iters=iters,
            parts=parts,
            report_only=report_only,
            # hook added for the trained study (model/study/trained.py): dataset roots
            coco_root=coco_root,
            synthetic_root=synthetic_root,
        )
        return
    if iters is not None or parts is not None:
        raise PointlyError("--iters and --parts belong to --depth trained", fix="drop them for --depth targets")
    from pointly.model.study import targets as st
    from pointly.model.study.targets_report import write_report

    if preset is not None and grid_spec is not None:
        raise PointlyError("give --preset or --grid, not both")
    shard_t = st.parse_shard(shard)
    if not report_only:
        cells = st.parse_grid(grid_spec) if grid_spec is not None else st.preset_cells(preset or "standard")
        outcome = st.run_target_study(
            cells,
            out_dir,
            shard=shard_t,
            progress=not no_progress,
            sources=st.dataset_sources(coco_root, synthetic_root),
        )
        click.echo(
            f"{outcome.ran} cells run, {outcome.skipped} already done (shard {shard_t[0]}/{shard_t[1]}, "
            f"{outcome.total} cells); rows in {outcome.rows_path}"
        )
    frame = st.load_rows(out_dir)
    if frame.empty:
        raise PointlyError("no rows to report", file=out_dir, fix="run the study first (without --report-only)")
    text = write_report(frame, out_dir)
    click.echo(text)
