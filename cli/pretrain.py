"""``pointly pretrain``: pre-train a config's ResNet trunk on image-level tags of synthetic images
that no study uses, and write it as a weight file for ``pointly train --backbone-weights``
(:mod:`pointly.model.engine.pretrain`, docs/training.md "A backbone from tags").

Thin: resolves the config and the settings, calls :func:`pretrain_backbone`, prints the record.
"""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.option(
    "--config",
    "config_name",
    default="synthetic_small",
    show_default=True,
    help="Preset or YAML file whose trunk, input normalisation and categories are pre-trained.",
)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
@click.option(
    "--out",
    "out_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The weight file to write (written to a temporary file first, then renamed).",
)
@click.option("--images", type=click.IntRange(min=1), default=4000, show_default=True, help="Training images.")
@click.option(
    "--held-out", type=click.IntRange(min=1), default=500, show_default=True, help="Images to measure the tags on."
)
@click.option("--iters", type=click.IntRange(min=1), default=2500, show_default=True, help="AdamW steps.")
@click.option("--batch", type=click.IntRange(min=1), default=16, show_default=True, help="Images per step.")
@click.option("--base-lr", type=click.FloatRange(min=0, min_open=True), default=1e-3, show_default=True)
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Images and training seed.")
@click.option("--threads", type=click.IntRange(min=1), default=None, help="torch CPU threads.")
def pretrain(
    config_name: str,
    overrides: tuple[str, ...],
    out_file: Path,
    images: int,
    held_out: int,
    iters: int,
    batch: int,
    base_lr: float,
    seed: int,
    threads: int | None,
) -> None:
    """Pre-train the backbone on image tags (which categories an image shows; no masks)."""
    from pointly.model.engine.config import load_config
    from pointly.model.engine.pretrain import TagPretraining, pretrain_backbone

    cfg = load_config(config_name, overrides)
    settings = TagPretraining(
        images=images, held_out=held_out, iters=iters, batch=batch, base_lr=base_lr, seed=seed, size=128
    )
    record = pretrain_backbone(cfg, settings, out_file, threads=threads)
    click.echo(json.dumps({"out": str(out_file), **record}, indent=2))
