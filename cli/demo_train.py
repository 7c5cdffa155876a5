"""The training part of ``pointly demo``: a two-cell trained study (points and full masks).

It reuses the study engine (:mod:`pointly.model.study.engine`, the trained depth of
:mod:`pointly.model.study.trained`), so the demo trains, evaluates, resumes and reports exactly as
``pointly study --depth trained`` does.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.options import TargetOptions


def grid_dilation(options: TargetOptions, root: Path) -> str:
    """The ``--grid`` dilation of step 4's options: ``off``, a radius or ``lo:hi``, relative to
    the longer image side (a study cell's units); pixels are converted with the training images'
    size (the synthetic set's images are all ``size × size``)."""
    d = options.dilation
    if d is None:
        return "off"
    values = list(d) if isinstance(d, (list, tuple)) else [d]
    if options.dilation_units == "pixels":
        doc = json.loads((Path(root) / "train" / "panoptic.json").read_text(encoding="utf-8"))
        sides = {max(int(im["width"]), int(im["height"])) for im in doc["images"]}
        if len(sides) != 1:
            raise PointlyError(
                "a dilation in pixels needs training images of one size",
                record="--dilation",
                fix="give the dilation relative to the longer side, e.g. 0.02",
            )
        side = sides.pop()
        values = [v / side for v in values]
    return ":".join(f"{v:g}" for v in values)


def train_and_evaluate(
    root: Path,
    out: Path,
    *,
    points: int,
    shape: str,
    seed: int,
    iters: int,
    echo: Callable[[str], None],
    step: Callable[[str], None],
    options: TargetOptions | None = None,
) -> None:
    """Train Panoptic FCN (``synthetic_small``) from P_n points and from full masks; print PQ.

    ``options``: the target options of step 4 (shape, concave ratio and dilation), so that the
    points train on the targets step 4 measured."""
    from pointly.model.study.store import load_rows
    from pointly.model.study.trained import run_from_cli

    opts = options or TargetOptions(shape=shape)
    step(f"5. Panoptic FCN trained {iters} iterations from P{points} {shape} points and from full masks")
    study = out / "trained"
    grid = (
        f"points={points};shapes={opts.shape};ratios={opts.concave_ratio:g};seeds={seed};"
        f"dilations={grid_dilation(opts, root)};full=1"
    )
    run_from_cli(preset="synthetic-quick", out=study, iters=iters, synthetic_root=root, grid=grid, progress=True)
    frame = load_rows(study)
    for _, row in frame.iterrows():
        name = "full masks" if row["supervision"] == "full" else f"P{int(row['points'])} {row['shape']}"
        echo(
            f"{name:>14}: PQ {row['pq']:.1f}  (things {row['pq_th']:.1f}, stuff {row['pq_st']:.1f}); "
            f"annotation {row['annotation_seconds']:.0f} s"
        )
    echo(f"rows, checkpoints and the report in {study}")
