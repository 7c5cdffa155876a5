"""``pointly simulate``: simulated point annotations from COCO panoptic or instances masks.

Thin: builds the :class:`~pointly.pointgen.points.simulate.SimulationOptions` once (checked before
the dataset is opened), opens the dataset, calls
:func:`pointly.pointgen.points.simulate.simulate_to_file` and prints the summary. Every user
mistake is a PointlyError (one line, exit code 2), and the output file is written atomically only
after the whole run succeeded. Guide: docs/simulate.md.
"""

from __future__ import annotations

import click

from pointly.cli.paths import OUTPUT_FILE
from pointly.pointgen.base.coco import open_dataset
from pointly.pointgen.points.simulate import SimulationOptions, simulate_to_file


@click.command()
@click.option("--panoptic-json", type=click.Path(), default=None, help="COCO panoptic JSON (with --panoptic-dir).")
@click.option(
    "--panoptic-dir",
    type=click.Path(),
    default=None,
    help="Folder of the panoptic PNGs (ids R + 256·G + 256²·B, 0 = VOID).",
)
@click.option(
    "--instances-json",
    type=click.Path(),
    default=None,
    help="COCO instances JSON (polygons, RLE or uncompressed RLE) instead of panoptic.",
)
@click.option("-o", "--output", type=OUTPUT_FILE, required=True, help="Points JSON to write (atomically).")
@click.option("-n", "--points", type=int, default=20, show_default=True, help="Points per segment.")
@click.option(
    "--boundary-share",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of the points drawn from boundary pixels, in [0, 1].",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed (>= 0).")
@click.option("--workers", type=int, default=1, show_default=True, help="Worker processes.")
@click.option("--things-only", is_flag=True, help="Only thing segments.")
@click.option("--stuff-only", is_flag=True, help="Only stuff segments.")
@click.option("--include-crowd", is_flag=True, help="Keep crowd segments (marked iscrowd=1).")
@click.option(
    "--edge-is-boundary",
    is_flag=True,
    help="Pixels on the image edge are boundary pixels too (an outline traced around the mask); "
    "by default only pixels next to another segment or VOID are.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def simulate(
    panoptic_json: str | None,
    panoptic_dir: str | None,
    instances_json: str | None,
    output: str,
    points: int,
    boundary_share: float,
    seed: int,
    workers: int,
    things_only: bool,
    stuff_only: bool,
    include_crowd: bool,
    edge_is_boundary: bool,
    no_progress: bool,
) -> None:
    """Simulate N points per segment from full COCO masks and write a points JSON."""
    options = SimulationOptions(
        points=points,
        boundary_share=boundary_share,
        seed=seed,
        things_only=things_only,
        stuff_only=stuff_only,
        include_crowd=include_crowd,
        edge_is_boundary=edge_is_boundary,
    )
    options.check()  # cheap, so a bad option never waits for the dataset to load
    dataset = open_dataset(panoptic_json=panoptic_json, panoptic_dir=panoptic_dir, instances_json=instances_json)
    summary = simulate_to_file(output, dataset, options, workers=workers, progress=not no_progress)
    click.echo(f"wrote {output}")
    for line in summary.lines():
        click.echo(f"  {line}")
