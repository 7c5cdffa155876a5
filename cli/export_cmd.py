"""``pointly export``: a points JSON as a PointSup, CVAT or Label Studio file.

Thin: checks that each option belongs to the chosen format, calls
:func:`pointly.pointgen.interop.convert.export_file` and prints what it wrote and any warnings. Every
user mistake is one PointlyError line (exit code 2) and leaves no output. Guide: docs/interop.md.
"""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FILE

#: option -> the formats it applies to
_APPLIES = {
    "--images-json": ("pointsup",),
    "--points": ("pointsup",),
    "--seed": ("pointsup",),
    "--include-stuff": ("pointsup",),
    "--drop-times": ("pointsup", "cvat"),
    "--image-prefix": ("labelstudio",),
    "--idle-cutoff": ("labelstudio",),
}


@click.command("export")
@click.argument("points", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "fmt",
    type=click.Choice(["pointsup", "cvat", "labelstudio"]),
    required=True,
    help="Target format: detectron2 PointSup JSON, CVAT for images 1.1 XML, Label Studio JSON.",
)
@click.option("-o", "--output", type=OUTPUT_FILE, required=True, help="File to write (atomically).")
@click.option(
    "--images-json",
    type=click.Path(path_type=Path),
    default=None,
    help="PointSup: the COCO JSON the points were made from; its boxes become the instance boxes.",
)
@click.option(
    "-n",
    "--points",
    "n_points",
    type=click.IntRange(min=1),
    default=None,
    help="PointSup: points per instance [default: the largest count in the file].",
)
@click.option(
    "--seed",
    type=click.IntRange(min=0),
    default=None,
    help="PointSup: seed of the sample kept from instances with more than --points points [default: 0].",
)
@click.option("--include-stuff", is_flag=True, help="PointSup: keep stuff segments as instances too.")
@click.option("--drop-times", is_flag=True, help="PointSup, CVAT: export without point_times (they cannot hold them).")
@click.option(
    "--image-prefix",
    default=None,
    help="Label Studio: put before each file_name in data.image (e.g. /data/local-files/?d=coco/).",
)
@click.option(
    "--idle-cutoff",
    type=click.FloatRange(min=0),
    default=None,
    help="Label Studio: idle cut-off of lead_time, as in pointly cost [default: 60].",
)
def export_points(
    points: Path,
    fmt: str,
    output: Path,
    images_json: Path | None,
    n_points: int | None,
    seed: int | None,
    include_stuff: bool,
    drop_times: bool,
    image_prefix: str | None,
    idle_cutoff: float | None,
) -> None:
    """Write the POINTS file (a points JSON) as a PointSup, CVAT or Label Studio file."""
    from pointly.pointgen.base.errors import PointlyError
    from pointly.pointgen.interop.convert import export_file

    given = {
        "--images-json": images_json is not None,
        "--points": n_points is not None,
        "--seed": seed is not None,
        "--include-stuff": include_stuff,
        "--drop-times": drop_times,
        "--image-prefix": image_prefix is not None,
        "--idle-cutoff": idle_cutoff is not None,
    }
    for option, used in given.items():
        if used and fmt not in _APPLIES[option]:
            raise PointlyError(
                f"{option} does not apply to --to {fmt}",
                record=option,
                fix=f"use it with --to {' or '.join(_APPLIES[option])}, or leave it out",
            )
    options = {
        "pointsup": {"points": n_points, "seed": seed or 0, "include_stuff": include_stuff, "drop_times": drop_times},
        "cvat": {"drop_times": drop_times},
        "labelstudio": {
            "image_prefix": image_prefix or "",
            "idle_cutoff": 60.0 if idle_cutoff is None else idle_cutoff,
        },
    }[fmt]
    warnings = export_file(points, fmt, output, images_json=images_json, **options)
    click.echo(f"wrote {output}")
    for line in warnings:
        click.echo(f"pointly: warning: {line}", err=True)
