"""Checkpoint files of training runs: written atomically, read back into an eval-mode network.

Prediction and evaluation load weights from here without importing the training loop."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from pointly.model.engine.build import build_panoptic_fcn
from pointly.model.engine.config import config_from_dict
from pointly.model.network.panoptic_fcn import PanopticFCN
from pointly.pointgen.base.errors import PointlyError


def write_checkpoint(obj, path: Path) -> None:
    """``torch.save`` through a temporary file and a rename: a killed run never leaves half a file."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> PanopticFCN:
    """A :class:`PanopticFCN` in eval mode from ``model_final.pth`` or ``checkpoint.pth`` of a run."""
    path = Path(path)
    if not path.is_file():
        raise PointlyError("checkpoint not found", file=path, fix="pass OUT/model_final.pth of a training run")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file for the user
        raise PointlyError(f"unreadable checkpoint ({exc.__class__.__name__})", file=path) from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "config" not in ckpt:
        raise PointlyError(
            "not a pointly checkpoint (no 'model' and 'config')",
            file=path,
            fix="official PanopticFCN weights must go through `pointly convert-weights` first",
        )
    cfg = config_from_dict(ckpt["config"], str(path))
    model = build_panoptic_fcn(cfg)
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval()
