"""Official PanopticFCN checkpoints (detectron2 key names, docs/panoptic_fcn_spec.md §4.1) → pointly checkpoints.

The official ``.pth`` files are ``torch.save``'d dicts with the weights under ``"model"`` (plus,
in training snapshots, ``optimizer``, ``scheduler``, ``iteration``); detectron2's model-zoo
``.pkl`` files are pickles of ``{"model": {name: numpy array}, "__author__": ...}``. Both, and a
bare ``{name: tensor}`` dict, are accepted; a ``module.`` prefix (DataParallel) is stripped.

Key mapping: the backbone keys go through :data:`pointly.model.network.backbone.BACKBONE_RENAMES`
(detectron2 ResNet/FPN names → torchvision's); the heads already use the official names
(:mod:`pointly.model.network.heads`). The conversion is strict: every official tensor must land on a
parameter or buffer of the same shape, and every parameter/buffer of our model must be filled,
or a :class:`PointlyError` lists what does not fit. The official model's ``pixel_mean`` /
``pixel_std`` buffers, if present, are checked against the config instead of copied.

Loading is safe: ``.pth`` files go through ``torch.load(weights_only=True)``, ``.pkl`` files through
an unpickler that only rebuilds numpy arrays and plain containers, so a checkpoint cannot run
code. ``allow_unsafe=True`` lifts that for files the user trusts.
"""

from __future__ import annotations

import io
import logging
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pointly.pointgen.base.errors import PointlyError

log = logging.getLogger(__name__)

#: official keys that are not weights of the network: checked, not copied
NON_WEIGHT_KEYS = ("pixel_mean", "pixel_std")

__all__ = ["load_official", "convert_state_dict", "convert_checkpoint", "official_target_key"]


# ----------------------------------------------------------------------------- reading
class _SafeUnpickler(pickle.Unpickler):
    """Rebuilds numpy arrays, numpy scalars and builtin containers; refuses everything else."""

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("collections", "OrderedDict"),
        ("numpy.dtypes", "Float32DType"),
        ("numpy.dtypes", "Float64DType"),
        ("numpy.dtypes", "Int64DType"),
        ("numpy.dtypes", "Float16DType"),
        # Python 3 pickles of protocol 2 (as detectron2's conversion scripts write) rebuild bytes
        # with codecs.encode(text, "latin1"): a pure function, no code of the file's choosing
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _numpy_globals() -> list:
    import numpy.dtypes

    core = getattr(np, "_core", None) or np.core
    return [
        core.multiarray._reconstruct,
        core.multiarray.scalar,
        np.ndarray,
        np.dtype,
        numpy.dtypes.Float32DType,
        numpy.dtypes.Float64DType,
        numpy.dtypes.Float16DType,
        numpy.dtypes.Int64DType,
    ]


def read_checkpoint_file(path: Path, allow_unsafe: bool = False) -> Any:
    """The object in a ``.pkl`` (latin-1 pickle) or ``.pth`` (torch) file, rebuilding only numpy
    arrays, tensors and builtin containers unless ``allow_unsafe``; every failure is one line."""
    data = path.read_bytes()
    if path.suffix.lower() == ".pkl":
        try:
            if allow_unsafe:
                return pickle.loads(data, encoding="latin1")
            return _SafeUnpickler(io.BytesIO(data), encoding="latin1").load()
        except pickle.UnpicklingError as exc:
            if "refusing" in str(exc):
                raise PointlyError(
                    f"the pickle holds Python objects other than arrays ({exc})",
                    file=path,
                    fix="pass --allow-unsafe only if you trust where the file came from",
                ) from None
            raise PointlyError(
                f"not a readable pickle ({exc})", file=path, fix="pass the official .pth or detectron2 .pkl checkpoint"
            ) from None
        except (EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError) as exc:
            raise PointlyError(
                f"not a readable pickle ({exc.__class__.__name__})",
                file=path,
                fix="the download may be truncated; fetch it again",
            ) from None
    try:
        if allow_unsafe:
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=False)
        # numpy arrays inside a .pth are data, not code: allow exactly their rebuild functions
        with torch.serialization.safe_globals(_numpy_globals()):
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not allow_unsafe and "GLOBAL" in str(exc):
            raise PointlyError(
                "the checkpoint holds Python objects other than tensors",
                file=path,
                fix="pass --allow-unsafe only if you trust where the file came from",
            ) from None
        raise PointlyError(
            f"not a readable torch checkpoint ({exc.__class__.__name__})",
            file=path,
            fix="the download may be truncated; fetch it again",
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError, ImportError) as exc:
        raise PointlyError(
            f"not a readable torch checkpoint ({exc.__class__.__name__})",
            file=path,
            fix="the download may be truncated; fetch it again",
        ) from None


def load_official(path: str | Path, *, allow_unsafe: bool = False) -> dict[str, torch.Tensor]:
    """The official weights of a checkpoint file as ``{detectron2 key: float tensor}``."""
    path = Path(path)
    if not path.is_file():
        raise PointlyError("checkpoint not found", file=path, fix="check the path")
    obj = read_checkpoint_file(path, allow_unsafe)
    if isinstance(obj, Mapping) and "model" in obj and isinstance(obj["model"], Mapping):
        obj = obj["model"]
    if not isinstance(obj, Mapping) or not obj:
        raise PointlyError(
            "no state dict found (expected a dict with the weights under 'model')",
            file=path,
            fix="pass the official PanopticFCN .pth or a detectron2 .pkl",
        )
    out: dict[str, torch.Tensor] = {}
    for key, value in obj.items():
        if not isinstance(key, str):
            raise PointlyError(f"state-dict key {key!r} is not a string", file=path)
        if key.startswith("module."):
            key = key[len("module.") :]
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if not isinstance(value, torch.Tensor):
            raise PointlyError(
                f"entry {key!r} is a {type(value).__name__}, not an array",
                file=path,
                fix="pass the file holding the model weights",
            )
        out[key] = value
    return out


# ----------------------------------------------------------------------------- mapping
def official_target_key(key: str) -> str:
    """Our state-dict name of an official key (heads keep their names; see the module docstring)."""
    from pointly.model.network.backbone import official_to_pointly_key

    return official_to_pointly_key(key)


def convert_state_dict(
    official: Mapping[str, torch.Tensor],
    target: Mapping[str, torch.Tensor],
    *,
    pixel_mean: tuple[float, ...] | None = None,
    pixel_std: tuple[float, ...] | None = None,
    source: str | Path | None = None,
) -> dict[str, torch.Tensor]:
    """Rename and check: official tensors → a state dict with exactly ``target``'s keys and shapes.

    Values are copied unchanged (cast to the target's dtype). Raises :class:`PointlyError` for a
    Star (deformable encoder) checkpoint, official keys with no place, shape mismatches and
    target entries left empty.
    """
    if any(".encode_head_head_1.offset_mask_conv." in k or ".encode_head_head_1.dcnv2." in k for k in official):
        raise PointlyError(
            "this is a PanopticFCN* (Star) checkpoint with a deformable feature encoder",
            file=source,
            fix="only the R50 models (1x, 3x, 400/512/600) are supported",
        )
    out: dict[str, torch.Tensor] = {}
    unused: list[str] = []
    for key, value in official.items():
        if key in NON_WEIGHT_KEYS:
            want = pixel_mean if key == "pixel_mean" else pixel_std
            got = [float(v) for v in value.flatten()]
            if want is not None and not np.allclose(got, want, atol=1e-4):
                log.warning("%s in the checkpoint is %s but the config uses %s", key, got, list(want))
            continue
        new = official_target_key(key)
        if new not in target:
            unused.append(key)
            continue
        if new in out:
            raise PointlyError(f"two official keys map to {new}", file=source, record=key)
        want_shape = tuple(target[new].shape)
        if tuple(value.shape) != want_shape:
            raise PointlyError(
                f"{key}: shape {tuple(value.shape)} but our model expects {want_shape}",
                file=source,
                fix="choose a config with the checkpoint's class counts and widths (e.g. --config coco_r50_3x)",
            )
        out[new] = value.detach().to(dtype=target[new].dtype).clone()
    missing = [k for k in target if k not in out]
    if unused:
        raise PointlyError(
            f"{len(unused)} checkpoint entries have no place in the model: "
            f"{', '.join(unused[:4])}{' …' if len(unused) > 4 else ''}",
            file=source,
            fix="is this a PanopticFCN R50 checkpoint?",
        )
    if missing:
        raise PointlyError(
            f"{len(missing)} model entries are not in the checkpoint: "
            f"{', '.join(missing[:4])}{' …' if len(missing) > 4 else ''}",
            file=source,
            fix="is this a PanopticFCN R50 checkpoint?",
        )
    return {k: out[k] for k in target}


# ----------------------------------------------------------------------------- whole files
def coco_class_ids() -> tuple[list[int], list[int]]:
    """detectron2's contiguous order for COCO panoptic "separated": thing ids, stuff ids, sorted."""
    from pointly.pointgen.base.categories import load_categories

    cats = load_categories("coco")
    return (sorted(c["id"] for c in cats if c["isthing"]), sorted(c["id"] for c in cats if not c["isthing"]))


def convert_checkpoint(
    src: str | Path,
    dst: str | Path,
    *,
    config: str = "coco_r50_3x",
    overrides: tuple[str, ...] = (),
    allow_unsafe: bool = False,
) -> dict:
    """Convert an official checkpoint file into a pointly checkpoint at ``dst``.

    The result has the layout of a training run's ``model_final.pth`` (so
    :func:`pointly.model.engine.checkpoint.load_checkpoint` reads it): ``model`` (our state dict), ``config``
    (the resolved config, with the COCO category ids in contiguous order), ``pointly_checkpoint``
    and ``converted_from`` (source name, number of tensors).
    Returns a small report dict.
    """
    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.config import config_to_dict, load_config
    from pointly.pointgen.base.files import atomic_open

    cfg = load_config(config, list(overrides))
    cfg.model.backbone.weights = None
    if not cfg.thing_ids and not cfg.stuff_ids:
        cfg.thing_ids, cfg.stuff_ids = coco_class_ids()
    if not cfg.categories:  # the official checkpoints are COCO panoptic models
        from pointly.pointgen.base.categories import load_categories

        by_id = {int(c["id"]): c for c in load_categories("coco")}
        cfg.categories = [dict(by_id[i]) for i in list(cfg.thing_ids) + list(cfg.stuff_ids) if i in by_id]
    official = load_official(src, allow_unsafe=allow_unsafe)
    model = build_panoptic_fcn(cfg)
    target = model.state_dict()
    state = convert_state_dict(
        official, target, pixel_mean=tuple(cfg.input.pixel_mean), pixel_std=tuple(cfg.input.pixel_std), source=src
    )
    model.load_state_dict(state, strict=True)  # a last check that the result really loads
    ckpt = {
        "model": state,
        "config": config_to_dict(cfg),
        "pointly_checkpoint": 1,
        "converted_from": {"file": Path(src).name, "tensors": len(official)},
    }
    with atomic_open(dst, "wb") as fh:
        torch.save(ckpt, fh)
    n_params = sum(v.numel() for v in state.values())
    return {"tensors": len(state), "parameters": n_params, "config": cfg.name, "output": str(dst)}
