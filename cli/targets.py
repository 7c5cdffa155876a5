"""``pointly targets``: training targets from points, with previews and the target-quality report.

Thin: parses the options into :class:`~pointly.pointgen.targets.options.TargetOptions` and calls
:func:`pointly.pointgen.targets.report.run_targets`. Guide: docs/targets.md.
"""

from __future__ import annotations

import click

from pointly.cli.paths import OUTPUT_FOLDER
from pointly.pointgen.targets.options import TARGET_SHAPES, TargetOptions, parse_dilation
from pointly.pointgen.targets.report import run_targets


@click.command()
@click.argument("points_json", type=click.Path())
@click.option("--out", "out_dir", type=OUTPUT_FOLDER, required=True, help="Output folder.")
@click.option(
    "--images",
    "images_dir",
    type=click.Path(),
    default=None,
    help="Folder of the images (previews draw on them; else a dark background).",
)
@click.option("--gt-json", type=click.Path(), default=None, help="True COCO panoptic JSON (with --gt-dir).")
@click.option("--gt-dir", type=click.Path(), default=None, help="Folder of the true panoptic PNGs.")
@click.option(
    "--gt-instances",
    type=click.Path(),
    default=None,
    help="True COCO instances JSON instead of panoptic (things only).",
)
@click.option(
    "--shape",
    type=click.Choice(list(TARGET_SHAPES)),
    default=TargetOptions.shape,
    show_default=True,
    help="Hull of each segment's points (convex, concave), or watershed: the region "
    "the points grow to over the image's colour edges, uncertain pixels ignored "
    "(needs --images; no dilation).",
)
@click.option(
    "--concave-ratio",
    type=float,
    default=TargetOptions.concave_ratio,
    show_default=True,
    help="shapely concave_hull ratio in [0, 1] (1 = convex hull).",
)
@click.option(
    "--point-radius",
    type=float,
    default=TargetOptions.point_radius,
    show_default=True,
    help="Disc radius for one point, capsule half-width for two/collinear points (input px).",
)
@click.option(
    "--dilation",
    default="on",
    show_default=True,
    help="off | on (0.02) | R | MIN:MAX (fractions of the longer image side) | Rpx | MIN:MAXpx (pixels).",
)
@click.option(
    "--parts",
    type=click.Choice(["delaunay", "hull"]),
    default=TargetOptions.parts,
    show_default=True,
    help="delaunay: a hull holding another segment's point is replaced by the segment's Delaunay "
    "parts; hull: one hull per segment (the first design, a baseline).",
)
@click.option(
    "--overlap",
    type=click.Choice(["nearest", "exclusive"]),
    default=TargetOptions.overlap,
    show_default=True,
    help="nearest: thing beats stuff, else the nearest point's segment; "
    "exclusive: a pixel claimed twice is ignored (the first design).",
)
@click.option(
    "--size-correction/--no-size-correction",
    default=TargetOptions.size_correction,
    show_default=True,
    help="Read a segment's size (Gaussian radius) from its points' box grown by (n+1)/(n-1).",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for a dilation range.")
@click.option(
    "--preview-images",
    "preview",
    default="4",
    show_default=True,
    help="Previews for: a count N (first N images), 'all', 'none', or ids '139,285'.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def targets(
    points_json: str,
    out_dir: str,
    images_dir: str | None,
    gt_json: str | None,
    gt_dir: str | None,
    gt_instances: str | None,
    shape: str,
    concave_ratio: float,
    point_radius: float,
    dilation: str,
    parts: str,
    overlap: str,
    size_correction: bool,
    seed: int,
    preview: str,
    no_progress: bool,
) -> None:
    """Build the training targets of POINTS_JSON; previews and, with true masks, their quality."""
    dil, units = parse_dilation(dilation)
    options = TargetOptions(
        shape=shape,
        concave_ratio=concave_ratio,
        point_radius=point_radius,
        dilation=dil,
        dilation_units=units,
        parts=parts,
        overlap=overlap,
        size_correction=size_correction,
    )
    run = run_targets(
        points_json,
        out_dir,
        options=options,
        images_dir=images_dir,
        gt_json=gt_json,
        gt_dir=gt_dir,
        gt_instances=gt_instances,
        preview=preview,
        seed=seed,
        progress=not no_progress,
    )
    click.echo(run.markdown, nl=False)
    click.echo(
        f"wrote {out_dir} ({len(run.previews)} previews"
        + (", quality.csv, images.csv, summary.csv" if run.summary is not None else "")
        + ")"
    )
