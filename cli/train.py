"""``pointly train``: train Panoptic FCN, fully supervised (masks) or from points
(docs/training.md, docs/point-supervision.md).

Thin: resolves the config, builds the point-target function when asked, calls
:func:`pointly.model.engine.train.train`. Multi-GPU / multi-process: ``torchrun --nproc_per_node N -m
pointly.cli.main train ...`` (only rank 0 writes).
"""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


@click.command()
@click.option(
    "--config",
    "config_name",
    default="coco_r50_1x",
    show_default=True,
    help="Preset name (coco_r50_1x, coco_r50_3x, coco_r50_512_3x, synthetic_small) or a YAML file.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config field, e.g. --set solver.base_lr=0.005 (repeatable).",
)
@click.option(
    "--out",
    "out_dir",
    required=True,
    type=OUTPUT_FOLDER,
    help="Run folder: config.yaml, metrics.csv, checkpoint.pth, model_final.pth, training_curve.png.",
)
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.pth.")
@click.option("--max-iter", type=click.IntRange(min=1), default=None, help="Shorthand for --set solver.max_iter=N.")
@click.option("--device", default=None, help="cpu, cuda (default: cuda when available).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option(
    "--supervision",
    type=click.Choice(["full", "points"]),
    default="full",
    show_default=True,
    help="full: masks from the panoptic PNGs; points: targets built from --points.",
)
@click.option(
    "--points",
    "points_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Points JSON (pointly simulate / annotate) for --supervision points.",
)
@click.option(
    "--shape",
    type=click.Choice(["convex", "concave", "watershed"]),
    default=None,
    help="Shape of a segment's points (convex, concave hull) or watershed: the region the points grow to "
    "over the image (no dilation).",
)
@click.option("--concave-ratio", type=float, default=None, help="shapely concave_hull ratio (1 = convex).")
@click.option("--point-radius", type=float, default=None, help="Disc radius of a single point (input px).")
@click.option(
    "--dilation", default=None, help="Dilation radius or MIN:MAX range (fraction of the image side, or NNpx)."
)
@click.option(
    "--parts",
    type=click.Choice(["delaunay", "hull"]),
    default=None,
    help="delaunay (default): a hull holding another segment's point is replaced by the segment's "
    "Delaunay parts; hull: one hull per segment (the first design, a baseline).",
)
@click.option(
    "--overlap",
    type=click.Choice(["nearest", "exclusive"]),
    default=None,
    help="nearest (default): thing beats stuff, else the nearest point's segment; "
    "exclusive: a pixel claimed twice is ignored (the first design, a baseline).",
)
@click.option(
    "--size-correction/--no-size-correction",
    default=None,
    help="Read a segment's size from its points' box grown by (n+1)/(n-1) (default on).",
)
@click.option(
    "--backbone-weights",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="ImageNet weights to start from: detectron2's MSRA R-50.pkl/R-101.pkl, a detectron2 "
    "checkpoint or a torchvision resnet .pth; sets the stride placement and input "
    "normalisation the file expects (see docs/training.md).",
)
@click.option(
    "--coco-root",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A COCO folder (annotations/panoptic_<split>.json + panoptic_<split>/, images in <split>/), "
    "or one with a folder per split (<split>/panoptic.json, panoptic/, images/: what `pointly data "
    "synth` writes, with --coco-splits train,val): sets the data.* paths of --coco-splits.",
)
@click.option(
    "--coco-splits", default="train2017,val2017", show_default=True, help="TRAIN,VAL split names inside --coco-root."
)
@click.option(
    "--from-scratch",
    is_flag=True,
    help="Train a recipe that starts from ImageNet weights (the COCO presets) from random init.",
)
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def train(
    config_name: str,
    overrides: tuple[str, ...],
    out_dir: Path,
    resume: bool,
    max_iter: int | None,
    device: str | None,
    threads: int | None,
    supervision: str,
    points_file: Path | None,
    shape: str | None,
    concave_ratio: float | None,
    point_radius: float | None,
    dilation: str | None,
    parts: str | None,
    overlap: str | None,
    size_correction: bool | None,
    backbone_weights: Path | None,
    coco_root: Path | None,
    coco_splits: str,
    from_scratch: bool,
    progress: bool,
) -> None:
    """Train Panoptic FCN; writes the run into --out."""
    import torch

    from pointly.model.engine.config import load_config
    from pointly.model.engine.train import train as run_training
    from pointly.pointgen.base.errors import PointlyError

    if threads:
        torch.set_num_threads(threads)
    sets = list(overrides) + ([f"solver.max_iter={max_iter}"] if max_iter is not None else [])
    if coco_root is not None:
        from pointly.model.engine.data import coco_split_paths

        names = [n.strip() for n in coco_splits.split(",")]
        if len(names) != 2 or not all(names):
            raise PointlyError(
                f"--coco-splits {coco_splits!r} is not TRAIN,VAL", fix="e.g. --coco-splits train2017,val2017"
            )
        coco_sets = ["data.kind=coco_panoptic"]
        for split, name in zip(("train", "val"), names):
            js, pngs, images = coco_split_paths(coco_root, name)
            coco_sets += [
                f"data.{split}_json={js}",
                f"data.{split}_panoptic_dir={pngs}",
                f"data.{split}_image_dir={images}",
            ]
        sets = coco_sets + sets  # explicit --set wins
    cfg = load_config(config_name, sets)
    if backbone_weights is not None and from_scratch:
        raise PointlyError("--backbone-weights and --from-scratch contradict each other", fix="give one of them")
    if from_scratch:
        cfg.model.backbone.require_weights = False
    if backbone_weights is not None and not resume:
        from pointly.model.engine.backbone_weights import apply_conventions

        for change in apply_conventions(cfg, backbone_weights):
            click.echo(f"--backbone-weights: {change}", err=True)
    point_supervision = None
    point_opts = {
        k: v
        for k, v in dict(
            shape=shape,
            concave_ratio=concave_ratio,
            point_radius=point_radius,
            dilation=dilation,
            parts=parts,
            overlap=overlap,
            size_correction=size_correction,
        ).items()
        if v is not None
    }
    if supervision == "points":
        if points_file is None and not resume:
            raise PointlyError(
                "--supervision points needs --points FILE.json",
                fix="make one with `pointly simulate` or `pointly annotate`",
            )
        # the one implementation of point targets lives in model/engine/point_targets.py
        # (shared with the trained study)
        from pointly.model.engine.point_targets import PointSupervision

        if points_file is not None:
            point_supervision = PointSupervision(points_file, **point_opts)
    elif points_file is not None or point_opts:
        raise PointlyError(
            "--points and the target options (--shape, --concave-ratio, --point-radius, --dilation, "
            "--parts, --overlap, --size-correction) need --supervision points"
        )
    result = run_training(cfg, out_dir, resume=resume, device=device, supervision=point_supervision, progress=progress)
    if not result.losses:  # --resume of a run that had finished: no step ran, so no loss to show
        click.echo(f"nothing left to train: the run in {out_dir} had finished {cfg.solver.max_iter} iterations")
        return
    click.echo(
        f"trained {result.iteration} iterations in {result.seconds:.0f} s; "
        f"final loss {result.losses['loss_total']:.4f}; run in {out_dir}"
    )
