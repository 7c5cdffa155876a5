"""``pointly predict``: images or folders → COCO panoptic PNG + JSON and overlay pictures.

Thin: loads the checkpoint (:func:`pointly.model.engine.train.load_checkpoint`) and calls
:func:`pointly.model.engine.panoptic_io.predict_to_folder`. Unreadable images are reported and skipped;
every other user mistake is one line with exit code 2. Guide: docs/predict.md.
"""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    required=True,
    help="Model checkpoint (training run's model_final.pth or convert-weights output).",
)
@click.option(
    "-o",
    "--out",
    "out",
    type=OUTPUT_FOLDER,
    required=True,
    help="Output folder: predictions.json, panoptic/*.png, overlays/*.jpg.",
)
@click.option("--overlay/--no-overlay", default=True, show_default=True, help="Write overlay pictures.")
@click.option(
    "--names/--no-names",
    default=True,
    show_default=True,
    help="Write category names (and thing scores) on the overlays.",
)
@click.option(
    "--categories",
    type=click.Path(dir_okay=False),
    default=None,
    help="Category names/colours (a COCO JSON or a list of categories) for the model's ids.",
)
@click.option(
    "--images-json",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A COCO JSON (panoptic or instances) whose images are the inputs: predictions keep its image "
    "ids and file names (and are checked against its sizes), so they score against its ground truth.",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="Network precision: bf16 autocast (CPU or CUDA), fp16 autocast (CUDA); the rest stays fp32.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def predict(
    inputs: tuple[str, ...],
    checkpoint: str,
    out: str,
    overlay: bool,
    names: bool,
    categories: str | None,
    images_json: Path | None,
    device: str,
    precision: str,
    no_progress: bool,
) -> None:
    """Panoptic segmentation of IMAGES (files or folders of .jpg/.png/...) with a trained model."""
    from pointly.model.engine.panoptic_io import (
        check_device,
        coco_image_ids,
        inference_precision,
        list_images,
        model_categories,
        predict_to_folder,
        readable_images,
    )

    check_device(device)
    inference_precision(device, precision)  # fp16 without CUDA fails before any work
    paths = list_images(inputs)
    sizes = None
    if images_json is None:
        image_ids = {p: i + 1 for i, p in enumerate(paths)}  # by position among all inputs, read or not
    else:
        image_ids, sizes = coco_image_ids(images_json, paths)
    readable, unreadable = readable_images(paths)  # before the first write: nothing readable, no output
    from pointly.model.engine.checkpoint import load_checkpoint
    from pointly.pointgen.base.categories import load_categories
    from pointly.pointgen.base.files import staged_folder

    user_cats = load_categories(categories) if categories else None
    model = load_checkpoint(checkpoint, device=device)
    cats = model_categories(model.cfg, user_cats)
    items = [(image_ids[p], p) for p in readable]
    with staged_folder(out) as stage:  # all files or none
        json_path, written, skipped = predict_to_folder(
            model,
            items,
            stage,
            cats,
            overlays=overlay,
            names=names,
            progress=not no_progress,
            precision=precision,
            sizes=sizes,
        )
    json_path = Path(out) / json_path.relative_to(stage)
    for path, reason in unreadable + skipped:
        click.echo(f"pointly: skipped {path}: {reason}", err=True)
    click.echo(
        f"wrote {json_path} ({written} image{'s' if written != 1 else ''}"
        f"{f', {len(unreadable + skipped)} skipped' if unreadable or skipped else ''})"
    )
