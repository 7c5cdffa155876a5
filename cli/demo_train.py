"""The training part of ``pointly demo``: a two-cell trained study (points and full masks).

It reuses the trained-study engine (:mod:`pointly.model.study.trained`), so the demo trains,
evaluates, resumes and reports exactly as ``pointly study --depth trained`` does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pointly.pointgen.targets.build import TargetOptions


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

    ``options``: the target options of step 4 (shape and dilation), so that the points train on
    the targets step 4 measured."""
    from pointly.model.study.trained import load_frame, run_from_cli

    opts = options or TargetOptions(shape=shape)
    step(f"5. Panoptic FCN trained {iters} iterations from P{points} {shape} points and from full masks")
    study = out / "trained"
    dilation = None
    if opts.dilation is not None:
        d = opts.dilation
        dilation = {"dilation": list(d) if isinstance(d, tuple) else d, "dilation_units": opts.dilation_units}
    run_from_cli(
        preset="synthetic",
        out=study,
        iters=iters,
        synthetic_root=root,
        grid=f"points={points};shapes={opts.shape};seeds={seed};dilations={int(dilation is not None)};full=1",
        dilation=dilation,
        progress=True,
    )
    frame = load_frame(study)
    for _, row in frame.iterrows():
        name = "full masks" if row["supervision"] == "full" else f"P{int(row['points'])} {row['shape']}"
        echo(
            f"{name:>14}: PQ {row['pq']:.1f}  (things {row['pq_th']:.1f}, stuff {row['pq_st']:.1f}); "
            f"annotation {row['annotation_seconds']:.0f} s"
        )
    echo(f"rows, checkpoints and the report in {study}")
