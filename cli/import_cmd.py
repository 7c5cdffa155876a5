"""``pointly import``: a PointSup, CVAT or Label Studio file as a points JSON.

Thin: calls :func:`pointly.pointgen.interop.convert.import_file` and prints what it wrote and any
warnings. Every user mistake is one PointlyError line (exit code 2) and leaves no output.
Guide: docs/interop.md.
"""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FILE


@click.command("import")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--from",
    "fmt",
    type=click.Choice(["pointsup", "cvat", "labelstudio"]),
    required=True,
    help="Format of SOURCE: detectron2 PointSup JSON, CVAT for images 1.1 XML, Label Studio JSON.",
)
@click.option(
    "--images-json",
    type=click.Path(path_type=Path),
    default=None,
    help="COCO JSON (instances, panoptic or points) giving image ids and records, category ids "
    "and isthing, and licenses.",
)
@click.option("-o", "--output", type=OUTPUT_FILE, required=True, help="Points JSON to write (atomically).")
def import_points(source: Path, fmt: str, images_json: Path | None, output: Path) -> None:
    """Read SOURCE (a PointSup, CVAT or Label Studio file) and write a points JSON."""
    from pointly.pointgen.interop.convert import import_file

    doc, warnings = import_file(source, fmt, output, images_json=images_json)
    n_points = sum(len(a["point_coords"]) for a in doc["annotations"])
    click.echo(f"wrote {output}: {len(doc['images'])} images, {len(doc['annotations'])} segments, {n_points} points")
    for line in warnings:
        click.echo(f"pointly: warning: {line}", err=True)
