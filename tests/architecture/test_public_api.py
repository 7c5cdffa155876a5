"""The curated public API: the names users import from the package roots (docs/architecture.md).

``pointly.pointgen`` exports the simulator's and the target builder's entry points and loads them
on first use, so that importing the package alone stays cheap.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

POINTGEN = ["SimulationOptions", "TargetOptions", "build_targets", "simulate"]


def test_pointgen_exports_the_entry_points():
    from pointly.pointgen import SimulationOptions, TargetOptions, build_targets, simulate
    from pointly.pointgen.points import simulate as simulate_module
    from pointly.pointgen.targets import build as build_module
    from pointly.pointgen.targets import options as options_module

    assert simulate is simulate_module.simulate
    assert SimulationOptions is simulate_module.SimulationOptions
    assert build_targets is build_module.build_targets
    assert TargetOptions is options_module.TargetOptions
    assert SimulationOptions(points=5).points == 5
    assert TargetOptions().shape in ("convex", "concave", "watershed")


def test_pointgen_all_lists_exactly_the_exports():
    import pointly.pointgen as pg

    assert sorted(pg.__all__) == sorted(POINTGEN)
    assert set(POINTGEN) <= set(dir(pg))
    assert pg.__doc__ and "simulate" in pg.__doc__
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        pg.nope  # noqa: B018


def test_importing_pointgen_loads_nothing_else():
    """``import pointly.pointgen`` runs no simulator, target or numpy import (PEP 562 exports);
    only the standard-library helper that makes the exports lazy is loaded."""
    code = (
        "import sys, pointly.pointgen\n"
        "light = ('pointly.pointgen.base', 'pointly.pointgen.base.lazy_exports')\n"
        "heavy = [m for m in sys.modules if (m.startswith('pointly.pointgen.') and m not in light)\n"
        "         or m in ('numpy', 'shapely')]\n"
        "print(','.join(sorted(heavy)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


MODEL = ["PanopticFCN", "build_panoptic_fcn", "load_checkpoint"]


def test_model_exports_the_network_builder_and_loader(tmp_path):
    import torch

    import pointly.model as pm
    from pointly.model import PanopticFCN, build_panoptic_fcn, load_checkpoint
    from pointly.model.engine.checkpoint import write_checkpoint
    from pointly.model.engine.config import config_to_dict, load_config

    assert sorted(pm.__all__) == sorted(MODEL) and set(MODEL) <= set(dir(pm))
    torch.manual_seed(0)
    cfg = load_config("synthetic_small", [])
    model = build_panoptic_fcn(cfg)
    assert isinstance(model, PanopticFCN)
    path = tmp_path / "model_final.pth"
    write_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg)}, path)
    loaded = load_checkpoint(path)
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key


def test_importing_model_does_not_import_torch():
    code = "import sys, pointly.model\nprint('torch' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"
