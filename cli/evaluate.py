"""``pointly evaluate``: PQ / SQ / RQ of panoptic predictions, as panopticapi's ``pq_compute``.

Two modes:

* folders: ``--gt-json --gt-dir --pred-json --pred-dir`` (two COCO panoptic folders);
* model: ``--checkpoint CKPT --dataset DATASET`` runs the model on a dataset's images, writes
  its predictions (to ``--pred-out`` or a temporary folder) and evaluates them. ``DATASET`` is
  ``synthetic-val`` or a COCO panoptic JSON (with ``--gt-dir`` and ``--image-dir``).

Prints a Markdown table (All / Things / Stuff, then per category); ``--json-out`` writes the
``pq_compute`` structure. Thin: the work is in :mod:`pointly.model.engine.evaluation`. Guide:
docs/evaluate.md.
"""

from __future__ import annotations

import click

from pointly.cli.paths import OUTPUT_FILE, OUTPUT_FOLDER
from pointly.pointgen.base.errors import PointlyError


@click.command()
@click.option(
    "--gt-json",
    type=click.Path(dir_okay=False),
    default=None,
    help="Ground-truth COCO panoptic JSON (folders mode; with --checkpoint: the dataset's JSON).",
)
@click.option(
    "--gt-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Ground-truth panoptic PNG folder (default: the JSON path without .json, else panoptic/ beside it).",
)
@click.option("--pred-json", type=click.Path(dir_okay=False), default=None, help="Predicted COCO panoptic JSON.")
@click.option(
    "--pred-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Predicted panoptic PNG folder (default: the JSON path without .json, else panoptic/ beside "
    "the JSON, where `pointly predict` writes).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False),
    default=None,
    help="Model checkpoint (training run's model_final.pth or convert-weights output).",
)
@click.option(
    "--dataset",
    default=None,
    help="With --checkpoint: 'synthetic-val', or a COCO panoptic JSON (then --gt-dir, --image-dir).",
)
@click.option(
    "--image-dir",
    type=click.Path(file_okay=False),
    default=None,
    help="With --checkpoint and a JSON dataset: folder of the images.",
)
@click.option(
    "--pred-out",
    type=OUTPUT_FOLDER,
    default=None,
    help="With --checkpoint: keep the predictions (PNG + JSON + overlays) in this folder.",
)
@click.option("--limit", type=int, default=None, help="With --checkpoint: evaluate only the first N images.")
@click.option("--device", default="cpu", show_default=True, help="With --checkpoint: cpu, cuda, cuda:1, ...")
@click.option(
    "--json-out", type=OUTPUT_FILE, default=None, help="Write the results (pq_compute's structure) to this JSON file."
)
@click.option(
    "--precision",
    type=click.Choice(["fp32", "bf16", "fp16"]),
    default="fp32",
    show_default=True,
    help="With --checkpoint: network precision (bf16 autocast on CPU or CUDA, fp16 on CUDA).",
)
@click.option(
    "--all",
    "all_categories",
    is_flag=True,
    help="List every category, also those in neither ground truth nor prediction.",
)
@click.option("--no-progress", is_flag=True, help="No progress bar on stderr.")
def evaluate(
    gt_json: str | None,
    gt_dir: str | None,
    pred_json: str | None,
    pred_dir: str | None,
    checkpoint: str | None,
    dataset: str | None,
    image_dir: str | None,
    pred_out: str | None,
    limit: int | None,
    device: str,
    json_out: str | None,
    precision: str,
    all_categories: bool,
    no_progress: bool,
) -> None:
    """Panoptic Quality of predictions against COCO panoptic ground truth."""
    from pointly.model.engine import evaluation as ev
    from pointly.pointgen.base.files import write_json_atomic

    if checkpoint is not None:
        if pred_json or pred_dir:
            raise PointlyError(
                "--checkpoint predicts by itself; --pred-json/--pred-dir are for the folders mode",
                fix="drop --pred-json/--pred-dir, or drop --checkpoint",
            )
        if dataset is None and gt_json is None:
            raise PointlyError(
                "--checkpoint needs --dataset", fix="pass --dataset synthetic-val or a COCO panoptic JSON"
            )
        if limit is not None and limit < 1:
            raise PointlyError(f"--limit must be at least 1, got {limit}")
        results, categories = ev.evaluate_checkpoint(
            checkpoint,
            dataset if dataset is not None else gt_json,
            gt_dir=gt_dir,
            image_dir=image_dir,
            pred_out=pred_out,
            limit=limit,
            device=device,
            progress=not no_progress,
            precision=precision,
        )
    else:
        if (
            dataset is not None
            or image_dir is not None
            or pred_out is not None
            or limit is not None
            or precision != "fp32"
        ):
            raise PointlyError("--dataset, --image-dir, --pred-out, --limit and --precision need --checkpoint")
        if gt_json is None or pred_json is None:
            raise PointlyError(
                "nothing to evaluate",
                fix="pass --gt-json/--gt-dir with --pred-json/--pred-dir, or --checkpoint with --dataset",
            )
        results = ev.pq_compute(gt_json, gt_dir, pred_json, pred_dir)
        categories = ev.categories_of(gt_json)
    if results is None:  # a torchrun rank other than 0: rank 0 reports for all
        return
    click.echo(ev.format_table(results, categories, all_categories=all_categories))
    if json_out:
        write_json_atomic(json_out, ev.results_to_json(results), indent=1)
        click.echo(f"\nwrote {json_out}")
