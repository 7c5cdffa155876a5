"""``pointly convert-weights``: official PanopticFCN checkpoints → pointly checkpoints.

Thin: parses the options and calls :func:`pointly.model.engine.convert.convert_checkpoint`. Every user
mistake is a PointlyError (one line, exit code 2); the output is written atomically.
Guide: docs/convert-weights.md.
"""

from __future__ import annotations

import click

from pointly.cli.paths import OUTPUT_FILE


@click.command("convert-weights")
@click.argument("checkpoint", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "out", type=OUTPUT_FILE, required=True, help="pointly checkpoint to write (.pth).")
@click.option(
    "--config",
    default="coco_r50_3x",
    show_default=True,
    help="Preset or YAML the weights belong to (coco_r50_1x, coco_r50_3x, coco_r50_512_3x, ...); "
    "it sets the test resolution and thresholds stored with the weights.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Config override, e.g. --set model.thing.thres=0.2 (the FAST variant). Repeatable.",
)
@click.option(
    "--allow-unsafe", is_flag=True, help="Load pickles that hold arbitrary Python objects (only for files you trust)."
)
def convert_weights(checkpoint: str, out: str, config: str, overrides: tuple[str, ...], allow_unsafe: bool) -> None:
    """Convert an official PanopticFCN R50 checkpoint (.pth, or detectron2 .pkl) to pointly's format."""
    from pointly.model.engine.convert import convert_checkpoint

    report = convert_checkpoint(checkpoint, out, config=config, overrides=overrides, allow_unsafe=allow_unsafe)
    click.echo(
        f"wrote {report['output']}: {report['tensors']} tensors, "
        f"{report['parameters'] / 1e6:.1f}M values, config {report['config']}"
    )
