"""``pointly cost``: the paper's Table 1 (annotation cost) for a points file."""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FILE


@click.command()
@click.argument("points", type=click.Path(path_type=Path))
@click.option(
    "--panoptic-json",
    type=click.Path(path_type=Path),
    help="Source COCO panoptic JSON: count the full-mask baseline over its segments.",
)
@click.option("--panoptic-dir", type=click.Path(path_type=Path), help="PNG folder of --panoptic-json.")
@click.option(
    "--instances-json", type=click.Path(path_type=Path), help="Source COCO instances JSON, instead of a panoptic one."
)
@click.option("--seconds-per-point", default=0.9, show_default=True, type=float, help="Modelled seconds for one point.")
@click.option(
    "--seconds-per-thing-mask",
    default=79.0,
    show_default=True,
    type=float,
    help="Seconds for a full (polygon) mask of a thing.",
)
@click.option(
    "--seconds-per-stuff-mask",
    default=45.0,
    show_default=True,
    type=float,
    help="Seconds for a full mask of a stuff region.",
)
@click.option(
    "--idle-cutoff",
    default=60.0,
    show_default=True,
    type=float,
    help="Measured time: gaps between points longer than this (seconds) are idle and left out.",
)
@click.option(
    "-o", "--output", type=OUTPUT_FILE, help="Also save the table: FILE.csv (full precision) or FILE.md (as printed)."
)
def cost(
    points: Path,
    panoptic_json: Path | None,
    panoptic_dir: Path | None,
    instances_json: Path | None,
    seconds_per_point: float,
    seconds_per_thing_mask: float,
    seconds_per_stuff_mask: float,
    idle_cutoff: float,
    output: Path | None,
) -> None:
    """Print the annotation-cost table (thing / stuff / all) of the POINTS file.

    Modelled seconds (points x seconds per point) against full masks (79 s per thing, 45 s per
    stuff segment), and measured active seconds when the file has point_times (annotator files).
    """
    from pointly.pointgen.base.points_format import load_points
    from pointly.pointgen.points.cost import CostModel, cost_table, save_table, source_segment_counts, to_markdown

    model = CostModel(seconds_per_point, seconds_per_thing_mask, seconds_per_stuff_mask)
    if output is not None and output.suffix.lower() not in (".csv", ".md"):
        from pointly.pointgen.base.errors import PointlyError

        raise PointlyError(
            f"unknown table format {output.suffix or '(none)'!r}",
            file=output,
            fix="name the output FILE.csv or FILE.md",
        )
    doc = load_points(points)
    counts = None
    if panoptic_json or panoptic_dir or instances_json:
        from pointly.pointgen.base.coco import open_dataset

        ds = open_dataset(
            panoptic_json=panoptic_json, panoptic_dir=panoptic_dir, instances_json=instances_json, check=False
        )
        counts = source_segment_counts(ds, [im["id"] for im in doc["images"]], doc, file=points)
    df = cost_table(doc, model, idle_cutoff, full_mask_segments=counts)
    click.echo(to_markdown(df), nl=False)
    if output is not None:
        save_table(df, output)
        click.echo(f"saved {output}")
