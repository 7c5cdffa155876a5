"""ImageNet backbone weights from the user's file, mapped exactly onto our ResNet trunk.

Three formats are read (nothing is downloaded; users bring the file):

* ``msra`` — detectron2's / Detectron's Caffe2 pickles (``R-50.pkl``, ``R-101.pkl``): ``{"blobs":
  {"conv1_w", "res_conv1_bn_s", "res2_0_branch2a_w", "res2_0_branch2a_bn_s", ..., "fc1000_w"}}``.
  BGR input, stage stride on the 1×1 conv (``stride_in_1x1``), BatchNorm already reduced to a
  scale ``_bn_s`` and a bias ``_bn_b``: FrozenBN gets running mean 0 and variance 1, as
  detectron2 fills them when it loads these files.
* ``detectron2`` — detectron2 checkpoints (``.pkl``/``.pth``, weights under ``"model"`` or flat):
  ``stem.conv1.weight``, ``res2.0.conv1.norm.weight``, ``res2.0.shortcut.weight``, ... with or
  without the ``backbone.bottom_up.`` prefix of a full detector. Their conventions are the MSRA
  ones, unless the file says ``"__author__": "torchvision"`` (detectron2's converted torchvision
  weights: torchvision conventions).
* ``torchvision`` — a torchvision ResNet state dict (``conv1.weight``, ``layer1.0.conv1.weight``,
  ``fc.weight``): RGB input scaled by torchvision's mean and std, stage stride on the 3×3 conv.

:func:`weights_conventions` tells what a file expects (stride placement, channel order, pixel
mean and std); ``pointly train --backbone-weights`` applies it to the config. :func:`load_backbone_weights`
then copies every trunk tensor, and converts where the config's input differs from the file's in
ways a first convolution can absorb exactly: channel order (conv1's input channels reversed) and
pixel std (conv1 scaled per input channel, exact because the zero padding scales to zero). A
different stride placement or pixel mean cannot be absorbed and is refused. The
:class:`WeightsReport` lists every tensor used, converted and left over.

Reading goes through :func:`pointly.model.engine.convert.read_checkpoint_file` (numpy arrays and tensors
only, never arbitrary pickled objects).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from pointly.pointgen.base.errors import PointlyError

#: torchvision's ImageNet normalisation, in 0–255 units, RGB order
TORCHVISION_MEAN = [0.485 * 255, 0.456 * 255, 0.406 * 255]
TORCHVISION_STD = [0.229 * 255, 0.224 * 255, 0.225 * 255]


@dataclass(frozen=True)
class Conventions:
    """What a weight file expects of the network's input and layout."""

    format: str  # msra | detectron2 | torchvision | pointly
    stride_in_1x1: bool
    channels: str  # BGR | RGB: the order conv1's input channels were trained on
    pixel_mean: list | None  # in ``channels`` order, 0–255; None: not checked (see module docstring)
    pixel_std: list  # in ``channels`` order, 0–255 units
    # the trunk's normalisation layers the file was trained with, where it says (pointly files);
    # None: ImageNet BatchNorm weights, which fit FrozenBN or BN trunks only
    norm: str | None = None


@dataclass
class WeightsReport:
    """What :func:`load_backbone_weights` did: ``used`` (our key ← file key), ``converted`` (our
    key: how), ``filled`` (our key: value given because the file has none), ``left_over`` (file
    keys not used)."""

    path: str
    conventions: Conventions
    used: dict[str, str] = field(default_factory=dict)
    converted: dict[str, str] = field(default_factory=dict)
    filled: dict[str, str] = field(default_factory=dict)
    left_over: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the log."""
        return (
            f"backbone weights {self.path} ({self.conventions.format}): {len(self.used)} tensors used, "
            f"{len(self.converted)} converted, {len(self.filled)} filled, {len(self.left_over)} left over"
            + (
                f" ({', '.join(self.left_over[:4])}{', ...' if len(self.left_over) > 4 else ''})"
                if self.left_over
                else ""
            )
        )

    def to_json(self) -> dict:
        c = self.conventions
        return {
            "path": self.path,
            "format": c.format,
            "stride_in_1x1": c.stride_in_1x1,
            "channels": c.channels,
            "pixel_mean": c.pixel_mean,
            "pixel_std": c.pixel_std,
            "norm": c.norm,
            "used": self.used,
            "converted": self.converted,
            "filled": self.filled,
            "left_over": self.left_over,
        }


# ----------------------------------------------------------------------------- reading
def read_weights(path: str | Path) -> tuple[Conventions, dict[str, torch.Tensor], dict[str, Any]]:
    """The file's conventions, its tensors by their own names, and its other top-level entries."""
    from pointly.model.engine.convert import read_checkpoint_file

    path = Path(path)
    if not path.is_file():
        raise PointlyError(
            "backbone weights not found",
            file=path,
            record="model.backbone.weights",
            fix="pass the ImageNet weight file (R-50.pkl, or a torchvision resnet50 .pth)",
        )
    obj = read_checkpoint_file(path)
    if not isinstance(obj, Mapping):
        raise PointlyError(
            f"not a weight file (a {type(obj).__name__} at the top)",
            file=path,
            fix="pass R-50.pkl, a detectron2 checkpoint or a torchvision state dict",
        )
    meta = {k: v for k, v in obj.items() if k not in ("blobs", "model", "state_dict")}
    if isinstance(obj.get("blobs"), Mapping):
        fmt, raw = "msra", obj["blobs"]
    else:
        raw = obj.get("model", obj.get("state_dict", obj))
        if not isinstance(raw, Mapping):
            raise PointlyError("no weights found under 'blobs', 'model' or 'state_dict'", file=path)
        keys = [str(k) for k in raw]
        if any(k.startswith(("stem.", "backbone.bottom_up.stem.")) for k in keys):
            fmt = "detectron2"
        elif any(k.startswith(("conv1.", "module.conv1.")) for k in keys):
            fmt = "torchvision"
        else:
            raise PointlyError(
                "unknown weight names (neither Caffe2 blobs, detectron2 nor torchvision ResNet)",
                file=path,
                record=f"e.g. {keys[0] if keys else '(empty)'}",
                fix="pass R-50.pkl, a detectron2 checkpoint or a torchvision ResNet state dict",
            )
    tensors: dict[str, torch.Tensor] = {}
    for key, value in raw.items():
        key = str(key)
        if key.startswith("module."):
            key = key[len("module.") :]
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.ascontiguousarray(value))
        if isinstance(value, torch.Tensor):
            tensors[key] = value
        else:
            meta[f"(entry) {key}"] = value  # scalars such as "__author__" inside "model"
    torchvision_like = fmt == "torchvision" or str(meta.get("__author__", "")).lower() == "torchvision"
    record = meta.get("pointly_pretraining")
    if str(meta.get("__author__", "")).lower() == "pointly" and isinstance(record, Mapping):
        fmt = "pointly"
        try:
            conv = Conventions(
                fmt,
                bool(record["trunk"]["stride_in_1x1"]),
                str(record["input"]["format"]).upper(),
                [float(v) for v in record["input"]["pixel_mean"]],
                [float(v) for v in record["input"]["pixel_std"]],
                str(record["trunk"]["norm"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PointlyError(
                f"a pointly weight file without its input conventions ({exc!r})",
                file=path,
                record="pointly_pretraining",
                fix="make the file again with `pointly pretrain`",
            ) from None
    elif torchvision_like:
        conv = Conventions(fmt, False, "RGB", list(TORCHVISION_MEAN), list(TORCHVISION_STD))
    else:
        conv = Conventions(fmt, True, "BGR", None, [1.0, 1.0, 1.0])
    return conv, tensors, meta


def weights_conventions(path: str | Path) -> Conventions:
    """What the weight file at ``path`` expects (reads the file)."""
    return read_weights(path)[0]


# ----------------------------------------------------------------------------- names
_BRANCH = {
    "2a": ("conv1", "bn1"),
    "2b": ("conv2", "bn2"),
    "2c": ("conv3", "bn3"),
    "1": ("downsample.0", "downsample.1"),
}
_BN_SUFFIX = {"s": "weight", "b": "bias", "rm": "running_mean", "riv": "running_var"}


def _msra_name(key: str) -> str | None:
    """Our trunk key of a Caffe2 blob name, or None when the blob is not a trunk weight."""
    if key == "conv1_w":
        return "conv1.weight"
    m = re.fullmatch(r"res_conv1_bn_(s|b|rm|riv)", key)
    if m:
        return f"bn1.{_BN_SUFFIX[m.group(1)]}"
    m = re.fullmatch(r"res(\d)_(\d+)_branch(2a|2b|2c|1)_(w|bn_s|bn_b|bn_rm|bn_riv)", key)
    if not m:
        return None
    stage, block, branch, what = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    conv, norm = _BRANCH[branch]
    prefix = f"layer{stage - 1}.{block}."
    return prefix + (f"{conv}.weight" if what == "w" else f"{norm}.{_BN_SUFFIX[what[3:]]}")


def _detectron2_name(key: str) -> str | None:
    key = key.removeprefix("backbone.bottom_up.")
    m = re.fullmatch(r"stem\.conv1\.(weight|norm\.(weight|bias|running_mean|running_var))", key)
    if m:
        return "conv1.weight" if m.group(1) == "weight" else f"bn1.{m.group(2)}"
    m = re.fullmatch(
        r"res(\d)\.(\d+)\.(conv[123]|shortcut)\.(weight|norm\.(weight|bias|running_mean|running_var))", key
    )
    if not m:
        return None
    stage, block, conv, what = int(m.group(1)), m.group(2), m.group(3), m.group(4)
    prefix = f"layer{stage - 1}.{block}."
    if conv == "shortcut":
        return prefix + ("downsample.0.weight" if what == "weight" else f"downsample.1.{m.group(5)}")
    return prefix + (f"{conv}.weight" if what == "weight" else f"bn{conv[-1]}.{m.group(5)}")


def _torchvision_name(key: str) -> str | None:
    if key.startswith("fc.") or key.endswith("num_batches_tracked"):
        return None
    return key


# pointly's own files (:mod:`pointly.model.engine.pretrain`) hold our trunk's names: torchvision's
_NAMERS = {
    "msra": _msra_name,
    "detectron2": _detectron2_name,
    "torchvision": _torchvision_name,
    "pointly": _torchvision_name,
}


# ----------------------------------------------------------------------------- loading
def _in_order(values: list, channels: str, target: str) -> list:
    return list(values) if channels == target else list(values)[::-1]


def load_backbone_weights(
    trunk: nn.Module, path: str | Path, *, stride_in_1x1: bool, input_format: str, pixel_mean: list, pixel_std: list
) -> WeightsReport:
    """Copy the ImageNet weights at ``path`` into ``trunk`` (a :class:`~pointly.model.network.backbone.ResNetTrunk`)
    for a network whose input is ``input_format`` (BGR/RGB) normalised by ``pixel_mean`` and
    ``pixel_std``; returns the report. Every trunk tensor must come from the file."""
    conv, tensors, _ = read_weights(path)
    report = WeightsReport(str(path), conv)
    if conv.stride_in_1x1 != stride_in_1x1:
        raise PointlyError(
            f"{conv.format} weights put the stage stride on the "
            f"{'1x1' if conv.stride_in_1x1 else '3x3'} conv, the config on the other",
            file=path,
            record="model.backbone.stride_in_1x1",
            fix=f"--set model.backbone.stride_in_1x1={str(conv.stride_in_1x1).lower()} "
            "(or pass the weights with --backbone-weights, which sets it)",
        )
    fmt = input_format.upper()
    if conv.pixel_mean is not None:
        want = _in_order(conv.pixel_mean, conv.channels, fmt)
        if not np.allclose(want, pixel_mean, atol=1e-3):
            raise PointlyError(
                f"the weights expect pixel mean {[round(v, 3) for v in want]} ({fmt}), the config "
                f"has {list(pixel_mean)}",
                file=path,
                record="input.pixel_mean",
                fix="pass the weights with --backbone-weights, which sets the input normalisation",
            )
    ours = trunk.state_dict()
    namer = _NAMERS[conv.format]
    new: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        name = namer(key)
        if name is None or name not in ours:
            report.left_over.append(key)
            continue
        if tuple(value.shape) != tuple(ours[name].shape):
            raise PointlyError(
                f"{key} has shape {tuple(value.shape)}, {name} needs {tuple(ours[name].shape)}",
                file=path,
                record=key,
                fix="pass weights of the configured ResNet depth",
            )
        new[name] = value.to(ours[name].dtype)
        report.used[name] = key
    # FrozenBN statistics the file does not carry (Caffe2 blobs): mean 0, variance 1
    for name, value in ours.items():
        if name in new or not name.endswith(("running_mean", "running_var")):
            continue
        if name.replace("running_mean", "weight").replace("running_var", "weight") in new:
            new[name] = torch.zeros_like(value) if name.endswith("mean") else torch.ones_like(value)
            report.filled[name] = "0" if name.endswith("mean") else "1"
    missing = [k for k in ours if k not in new and not k.endswith("num_batches_tracked")]
    if missing:
        raise PointlyError(
            f"{len(missing)} trunk tensors are not in the file, e.g. {missing[0]}",
            file=path,
            fix="pass ImageNet weights of the configured ResNet depth",
        )
    w = new["conv1.weight"]
    if conv.channels != fmt:
        w = w.flip(1)
        report.converted["conv1.weight"] = f"input channels reversed ({conv.channels} weights, {fmt} input)"
    scale = torch.tensor(pixel_std, dtype=w.dtype) / torch.tensor(
        _in_order(conv.pixel_std, conv.channels, fmt), dtype=w.dtype
    )
    if not torch.allclose(scale, torch.ones_like(scale)):
        w = w * scale.view(1, 3, 1, 1)
        report.converted["conv1.weight"] = "; ".join(
            filter(None, [report.converted.get("conv1.weight"), f"scaled by config std / weights std {scale.tolist()}"])
        )
    new["conv1.weight"] = w
    trunk.load_state_dict(new, strict=False)
    return report


def apply_conventions(cfg: Any, path: str | Path) -> list[str]:
    """Set ``cfg`` (a training config) to use the weights at ``path``: ``model.backbone.weights``,
    the stride placement and the input normalisation the file expects. Returns the changes made,
    as ``key=value`` texts for the log."""
    conv = weights_conventions(path)
    changes = []

    def put(obj: Any, attr: str, value: Any, key: str) -> None:
        if getattr(obj, attr) != value:
            setattr(obj, attr, value)
            changes.append(f"{key}={value}")

    put(cfg.model.backbone, "weights", str(path), "model.backbone.weights")
    put(cfg.model.backbone, "stride_in_1x1", conv.stride_in_1x1, "model.backbone.stride_in_1x1")
    if conv.pixel_mean is not None:  # torchvision conventions: RGB, its mean and std
        put(cfg.input, "format", conv.channels, "input.format")
        put(cfg.input, "pixel_mean", list(conv.pixel_mean), "input.pixel_mean")
        put(cfg.input, "pixel_std", list(conv.pixel_std), "input.pixel_std")
    return changes
