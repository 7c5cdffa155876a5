"""``pointly predict``: images or folders → COCO panoptic PNG + JSON and overlay pictures.

Thin: loads the checkpoint (:func:`pointly.model.train.load_checkpoint`) and calls
:func:`pointly.model.panoptic_io.predict_to_folder`. Unreadable images are reported and skipped;
every other user mistake is one line with exit code 2. Guide: docs/predict.md.
"""
from __future__ import annotations

import click


@click.command()
@click.argument("inputs", nargs=-1, required=True, type=click.Path())
@click.option("--checkpoint", type=click.Path(dir_okay=False), required=True,
              help="Model checkpoint (training run's model_final.pth or convert-weights output).")
@click.option("-o", "--out", "out", type=click.Path(file_okay=False), required=True,
              help="Output folder: predictions.json, panoptic/*.png, overlays/*.jpg.")
@click.option("--overlay/--no-overlay", default=True, show_default=True, help="Write overlay pictures.")
@click.option("--names/--no-names", default=True, show_default=True,
              help="Write category names (and thing scores) on the overlays.")
@click.option("--categories", type=click.Path(dir_okay=False), default=None,
              help="Category names/colours (a COCO JSON or a list of categories) for the model's ids.")
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1, ...")
@click.option("--precision", type=click.Choice(["fp32", "bf16", "fp16"]), default="fp32", show_default=True,
              help="Network precision: bf16 autocast (CPU or CUDA), fp16 autocast (CUDA); the rest stays fp32.")
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def predict(inputs: tuple[str, ...], checkpoint: str, out: str, overlay: bool, names: bool,
            categories: str | None, device: str, precision: str, no_progress: bool) -> None:
    """Panoptic segmentation of IMAGES (files or folders of .jpg/.png/...) with a trained model."""
    from pointly.model.panoptic_io import (check_device, inference_precision, list_images, model_categories,
                                           predict_to_folder)
    from pointly.pointgen.errors import PointlyError

    check_device(device)
    inference_precision(device, precision)  # fp16 without CUDA fails before any work
    paths = list_images(inputs)
    if not paths:
        raise PointlyError("no images found", fix="pass image files or folders holding .jpg/.png images")
    from pointly.data.categories import load_categories
    from pointly.model.train import load_checkpoint

    user_cats = load_categories(categories) if categories else None
    model = load_checkpoint(checkpoint, device=device)
    cats = model_categories(model.cfg, user_cats)
    items = [(i + 1, p) for i, p in enumerate(paths)]
    json_path, written, skipped = predict_to_folder(model, items, out, cats, overlays=overlay, names=names,
                                                    progress=not no_progress, precision=precision)
    for path, reason in skipped:
        click.echo(f"pointly: skipped {path}: {reason}", err=True)
    click.echo(f"wrote {json_path} ({written} image{'s' if written != 1 else ''}"
               f"{f', {len(skipped)} skipped' if skipped else ''})")
