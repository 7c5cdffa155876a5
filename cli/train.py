"""``pointly train``: train Panoptic FCN, fully supervised (masks) or from points (issue 5).

Thin: resolves the config, builds the point-target function when asked, calls
:func:`pointly.model.train.train`. Multi-GPU / multi-process: ``torchrun --nproc_per_node N -m
pointly.cli.main train ...`` (only rank 0 writes).
"""
from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


@click.command()
@click.option("--config", "config_name", default="coco_r50_1x", show_default=True,
              help="Preset name (coco_r50_1x, coco_r50_3x, coco_r50_512_3x, synthetic_small) or a YAML file.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a config field, e.g. --set solver.base_lr=0.005 (repeatable).")
@click.option("--out", "out_dir", required=True, type=OUTPUT_FOLDER,
              help="Run folder: config.yaml, metrics.csv, checkpoint.pth, model_final.pth, training_curve.png.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its checkpoint.pth.")
@click.option("--max-iter", type=click.IntRange(min=1), default=None, help="Shorthand for --set solver.max_iter=N.")
@click.option("--device", default=None, help="cpu, cuda (default: cuda when available).")
@click.option("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice).")
@click.option("--supervision", type=click.Choice(["full", "points"]), default="full", show_default=True,
              help="full: masks from the panoptic PNGs; points: targets built from --points.")
@click.option("--points", "points_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Points JSON (pointly simulate / annotate) for --supervision points.")
@click.option("--shape", type=click.Choice(["convex", "concave"]), default=None, help="Shape of a segment's points.")
@click.option("--concave-ratio", type=float, default=None, help="shapely concave_hull ratio (1 = convex).")
@click.option("--point-radius", type=float, default=None, help="Disc radius of a single point (input px).")
@click.option("--dilation", default=None, help="Dilation radius or MIN:MAX range (fraction of the image side, or NNpx).")
@click.option("--parts", type=click.Choice(["delaunay", "hull"]), default=None,
              help="delaunay (default): a hull holding another segment's point is replaced by the segment's "
                   "Delaunay parts; hull: one hull per segment (the first design, a baseline).")
@click.option("--overlap", type=click.Choice(["nearest", "exclusive"]), default=None,
              help="nearest (default): thing beats stuff, else the nearest point's segment; "
                   "exclusive: a pixel claimed twice is ignored (the first design, a baseline).")
@click.option("--size-correction/--no-size-correction", default=None,
              help="Read a segment's size from its points' box grown by (n+1)/(n-1) (default on).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr.")
def train(config_name: str, overrides: tuple[str, ...], out_dir: Path, resume: bool, max_iter: int | None,
          device: str | None, threads: int | None, supervision: str, points_file: Path | None, shape: str | None,
          concave_ratio: float | None, point_radius: float | None, dilation: str | None, parts: str | None,
          overlap: str | None, size_correction: bool | None, progress: bool) -> None:
    """Train Panoptic FCN; writes the run into --out."""
    import torch

    from pointly.model.config import load_config
    from pointly.model.train import train as run_training
    from pointly.pointgen.errors import PointlyError

    if threads:
        torch.set_num_threads(threads)
    sets = list(overrides) + ([f"solver.max_iter={max_iter}"] if max_iter is not None else [])
    cfg = load_config(config_name, sets)
    target_fn = None
    point_opts = {k: v for k, v in dict(shape=shape, concave_ratio=concave_ratio, point_radius=point_radius,
                                        dilation=dilation, parts=parts, overlap=overlap,
                                        size_correction=size_correction).items() if v is not None}
    if supervision == "points":
        if points_file is None and not resume:
            raise PointlyError("--supervision points needs --points FILE.json",
                               fix="make one with `pointly simulate` or `pointly annotate`")
        # point-supervision hook (issue 5): the one implementation of point targets lives in
        # model/point_targets.py (shared with the trained study)
        from pointly.model.point_targets import PointTargets

        if points_file is not None:
            target_fn = PointTargets(points_file, cfg, **point_opts)
    elif points_file is not None or point_opts:
        raise PointlyError("--points and the target options (--shape, --concave-ratio, --point-radius, --dilation, "
                           "--parts, --overlap, --size-correction) need --supervision points")
    result = run_training(cfg, out_dir, resume=resume, device=device, target_fn=target_fn, progress=progress)
    click.echo(f"trained {result.iteration} iterations in {result.seconds:.0f} s; "
               f"final loss {result.losses.get('loss_total', float('nan')):.4f}; run in {out_dir}")
