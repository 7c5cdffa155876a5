"""``pointly data``: the synthetic dataset (``synth``) and dataset statistics (``stats``)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


@click.group()
def data() -> None:
    """Built-in data: generate the synthetic panoptic dataset, describe a dataset folder."""


@data.command()
@click.option(
    "--out", "out", required=True, type=OUTPUT_FOLDER, help="Folder to write the dataset into (created if missing)."
)
@click.option("--train", default=200, show_default=True, type=int, help="Number of training images.")
@click.option("--val", default=50, show_default=True, type=int, help="Number of validation images.")
@click.option("--size", default=128, show_default=True, type=int, help="Image width and height in pixels (>= 32).")
@click.option("--seed", default=0, show_default=True, type=int, help="Random seed; same seed, same bytes.")
@click.option("--no-progress", is_flag=True, help="Hide the progress bar.")
def synth(out: Path, train: int, val: int, size: int, seed: int, no_progress: bool) -> None:
    """Generate the synthetic COCO panoptic dataset (train/val splits) into --out."""
    from pointly.data.synth import generate

    path = generate(out, train=train, val=val, size=size, seed=seed, progress=not no_progress)
    click.echo(f"wrote {train} train + {val} val images of {size}x{size} to {path}")
    click.echo(f"  panoptic: {path}/{{train,val}}/panoptic.json + panoptic/   images: {{train,val}}/images/")


@data.command()
@click.argument("root", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the statistics as JSON instead of Markdown.")
def stats(root: Path, as_json: bool) -> None:
    """Print statistics of the COCO panoptic sets in ROOT: <split>/panoptic.json + <split>/panoptic/,
    or COCO's panoptic_<split>.json + panoptic_<split>/ (ROOT may also be one panoptic JSON)."""
    from pointly.data.synth_stats import dataset_statistics, statistics_markdown

    s = dataset_statistics(root)
    click.echo(json.dumps(s, indent=2) if as_json else statistics_markdown(s))
