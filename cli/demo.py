"""``pointly demo``: the whole pipeline on built-in data, no downloads.

1. generate (or reuse) the bundled synthetic panoptic dataset;
2. simulate P_n points per segment on its val split (the annotation a person would make);
3. print the annotation-cost table (points against full masks);
4. build the training targets from the points and measure them against the true masks
   (target-quality report, previews);
5. unless ``--train-iters 0``: train Panoptic FCN from the points, and from the full masks, on the
   train split and evaluate both with PQ on the val split.

Everything is written under ``--out`` (default ``pointly-demo/``); re-running reuses what exists.
"""

from __future__ import annotations

from pathlib import Path

import click

from pointly.cli.paths import OUTPUT_FOLDER


def _step(text: str) -> None:
    click.secho(f"\n== {text}", bold=True, err=False)


@click.command()
@click.option(
    "--out",
    "out_dir",
    type=OUTPUT_FOLDER,
    default="pointly-demo",
    show_default=True,
    help="Folder for everything the demo writes.",
)
@click.option("-n", "--points", type=int, default=20, show_default=True, help="Points per segment.")
@click.option("--shape", type=click.Choice(["convex", "concave"]), default="concave", show_default=True)
@click.option(
    "--dilation",
    default="on",
    show_default=True,
    help="Dilation of the shapes: off, on (0.02 of the longer side), R, MIN:MAX or Rpx.",
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--train-iters", type=int, default=300, show_default=True, help="Training iterations per model (0 skips training)."
)
def demo(out_dir: str, points: int, shape: str, dilation: str, seed: int, train_iters: int) -> None:
    """Run the pipeline end to end on the built-in synthetic dataset."""
    from pointly.data.synth import ensure_dataset
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.base.points_format import load_points
    from pointly.pointgen.points.cost import cost_table, to_markdown
    from pointly.pointgen.points.simulate import SimulationOptions, simulate_to_file
    from pointly.pointgen.targets.options import TargetOptions, parse_dilation
    from pointly.pointgen.targets.report import run_targets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _step("1. synthetic panoptic dataset")
    root = ensure_dataset(progress=True)
    click.echo(f"dataset: {root}")
    val = PanopticDataset(root / "val" / "panoptic.json", root / "val" / "panoptic")

    _step(f"2. simulate {points} points per segment (seed {seed})")
    points_file = out / f"val_points_p{points}.json"
    summary = simulate_to_file(points_file, val, SimulationOptions(points=points, seed=seed), progress=True)
    click.echo(f"wrote {points_file}: {summary.images} images, {summary.segments} segments, {summary.points} points")

    _step("3. annotation cost (0.9 s per point against full masks)")
    doc = load_points(points_file)
    click.echo(to_markdown(cost_table(doc)))

    _step(f"4. training targets ({shape} shapes, dilation {dilation}) against the true masks")
    dil, units = parse_dilation(dilation)
    options = TargetOptions(shape=shape, dilation=dil, dilation_units=units)
    run = run_targets(
        points_file,
        out / "targets",
        options=options,
        images_dir=root / "val" / "images",
        gt_json=root / "val" / "panoptic.json",
        gt_dir=root / "val" / "panoptic",
        preview="4",
        progress=True,
    )
    click.echo(run.markdown, nl=False)
    click.echo(f"previews and quality tables in {out / 'targets'}")

    if train_iters > 0:
        from pointly.cli.demo_train import train_and_evaluate

        train_and_evaluate(
            root,
            out,
            points=points,
            shape=shape,
            seed=seed,
            iters=train_iters,
            echo=click.echo,
            step=_step,
            options=options,
        )
    click.echo(f"\ndone: everything is in {out}/")
