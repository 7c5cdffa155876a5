"""Panoptic FCN configuration: dataclasses with the official defaults, presets, YAML/``--set`` overrides.

Defaults are those of the official detectron2 project (``add_panopticfcn_config`` + its R50 yaml +
detectron2 defaults), as docs/model.md lists them. A preset is a function that
returns a :class:`Config`; a YAML file overrides any subset of the fields (nested mappings, the
same names as the dataclasses) and may name a preset to start from with ``_base_: NAME``.
``--set model.thing.pos_num=3`` style overrides are parsed with YAML scalars.

Every run writes its resolved config (:func:`config_to_dict`) next to its outputs, so a run can be
repeated from that file alone (``--config run/config.yaml``).

One module, though long: the dataclasses, the presets and the YAML/``--set`` reader are the one
place where the config's keys are defined and checked.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pointly.model.network.choices import DEFORM_IMPLEMENTATIONS, HEAD_INITS
from pointly.pointgen.base.errors import PointlyError


@dataclass
class BackboneConfig:
    """ResNet trunk. ``norm``: FrozenBN (official), BN (trainable), GN; ``stride_in_1x1``: MSRA/Caffe2
    layout of the official weights (stride on the 1×1 conv1 of each stage's first bottleneck)."""

    depth: int = 50
    norm: str = "FrozenBN"
    stride_in_1x1: bool = True
    freeze_at: int = 2
    # ImageNet weights (model/engine/backbone_weights.py: Caffe2 R-50.pkl, detectron2 or torchvision
    # files), loaded when a training run starts; `pointly train --backbone-weights FILE` sets it
    # with the input conventions the file expects
    weights: str | None = None
    # the recipe starts from ImageNet weights: training refuses random init unless this is false
    # (`pointly train --from-scratch`); the official COCO recipe does, the synthetic one cannot
    require_weights: bool = True


@dataclass
class FPNConfig:
    channels: int = 256


@dataclass
class SemanticFPNConfig:
    channels: int = 256
    norm: str = "GN"


@dataclass
class FeatureEncoderConfig:
    num_convs: int = 3
    channels: int = 64
    coord: bool = True


@dataclass
class PositionHeadConfig:
    num_convs: int = 3
    channels: int = 256
    deform: bool = True
    norm: str = "GN"
    # DCNv2 implementation: "auto" = pointly's grid_sample path on the CPU (faster there, see
    # model/network/deform_conv.py), torchvision's kernel elsewhere; "torchvision" / "sampled" force one.
    deform_impl: str = "auto"


@dataclass
class KernelHeadConfig:
    num_convs: int = 3
    channels: int = 256
    coord: bool = True
    norm: str = "GN"


@dataclass
class ThingConfig:
    num_classes: int = 80
    bias: float = -2.19
    min_overlap: float = 0.7
    gaussian_sigma: float = 3.0
    pos_num: int = 7
    thres: float = 0.05
    top_num: int = 100


@dataclass
class StuffConfig:
    num_classes: int = 54  # stuff classes + the "things" class 0
    bias: float = -2.19
    thres: float = 0.05


@dataclass
class ModelConfig:
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    fpn: FPNConfig = field(default_factory=FPNConfig)
    semantic_fpn: SemanticFPNConfig = field(default_factory=SemanticFPNConfig)
    feature_encoder: FeatureEncoderConfig = field(default_factory=FeatureEncoderConfig)
    position_head: PositionHeadConfig = field(default_factory=PositionHeadConfig)
    kernel_head: KernelHeadConfig = field(default_factory=KernelHeadConfig)
    thing: ThingConfig = field(default_factory=ThingConfig)
    stuff: StuffConfig = field(default_factory=StuffConfig)
    gn_groups: int = 32
    # how the heads start (pointly.model.network.heads.HEAD_INITS): "official" = dvlab-research/PanopticFCN's
    # head.py (encoder and heads' plain convs at PyTorch's default, generators N(0, 0.01)); "msra" =
    # c2_msra_fill on those convs and generators (the prediction convs and DCNv2 layers keep the
    # official init under both)
    head_init: str = "official"
    # run CPU inference (autograd off) on channels-last (NHWC) activations: faster with oneDNN,
    # same values up to rounding; training stays NCHW (no gain there)
    cpu_channels_last: bool = True
    # sqrt(box area) ranges in resized-input pixels, P3..P7, both bounds inclusive
    instance_scales: list = field(default_factory=lambda: [[1, 64], [32, 128], [64, 256], [128, 512], [256, 2048]])


@dataclass
class LossConfig:
    position_weight: float = 1.0
    segment_weight: float = 3.0
    focal_alpha: float = 0.25
    focal_gamma: float = 2.0
    dice_eps: float = 1e-8
    # the first point-supervision design masked the thing-centre focal loss with the ignore map;
    # kept only as a study baseline (the centre heatmap is known everywhere: never mask it)
    mask_centre_loss: bool = False


@dataclass
class InferenceConfig:
    pool_sizes: list = field(default_factory=lambda: [3, 3, 3, 5, 5])
    inst_thres: float = 0.4  # mask binarisation
    similar_thres: float = 0.9  # cosine kernel fusion
    class_specific: bool = True
    score_floor: float = 0.05  # hard-coded after maskness rescoring
    overlap_thresh: float = 0.5  # panoptic merge
    stuff_area_limit: int = 4096  # px at the original resolution
    inst_thresh: float = 0.2  # thing score floor in the merge


@dataclass
class InputConfig:
    format: str = "BGR"
    pixel_mean: list = field(default_factory=lambda: [123.675, 116.28, 103.53])
    pixel_std: list = field(default_factory=lambda: [1.0, 1.0, 1.0])
    min_size_train: list = field(default_factory=lambda: [640, 672, 704, 736, 768, 800])
    max_size_train: int = 1333
    min_size_test: int = 800
    max_size_test: int = 1333
    flip_prob: float = 0.5
    size_divisibility: int = 32


@dataclass
class DataConfig:
    """Datasets: ``kind`` coco_panoptic (``*_json`` + ``*_panoptic_dir`` + ``*_image_dir``) or
    synthetic (the cached set of :mod:`pointly.data.synth`)."""

    kind: str = "coco_panoptic"
    train_json: str | None = None
    train_panoptic_dir: str | None = None
    train_image_dir: str | None = None
    val_json: str | None = None
    val_panoptic_dir: str | None = None
    val_image_dir: str | None = None
    categories: str | None = None  # optional categories file / builtin name, checked against the data
    filter_empty: bool = True
    num_workers: int = 2


@dataclass
class SolverConfig:
    """``optimizer``: SGD (official) or AdamW (our choice for from-scratch CPU training of the
    synthetic preset, where SGD's step on the dynamic-kernel path saturates the mask logits)."""

    optimizer: str = "SGD"
    base_lr: float = 0.01
    ims_per_batch: int = 16
    momentum: float = 0.9
    weight_decay: float = 1e-4
    weight_decay_norm: float = 0.0
    max_iter: int = 90000
    warmup_iters: int = 1000
    warmup_factor: float = 0.001
    poly_power: float = 0.9
    clip_value: float = 35.0
    checkpoint_period: int = 10000
    log_period: int = 20
    amp: bool = True  # autocast on CUDA (amp_dtype; float16 adds a gradient scaler)
    amp_dtype: str = "bfloat16"
    # bfloat16 autocast on the CPU too (oneDNN): a synthetic_small step 1.45x faster on a CPU with
    # AVX512-BF16 (benchmarks/results_model.md); off by default, since it changes the numbers
    cpu_amp: bool = False
    # the process count the batch, learning rate and schedule above are written for (detectron2's
    # REFERENCE_WORLD_SIZE); another count rescales them linearly (scale_to_world); 0 = never
    reference_world_size: int = 0


@dataclass
class Config:
    name: str = "coco_r50_1x"
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    inference: InferenceConfig = field(default_factory=InferenceConfig)
    input: InputConfig = field(default_factory=InputConfig)
    data: DataConfig = field(default_factory=DataConfig)
    solver: SolverConfig = field(default_factory=SolverConfig)
    seed: int = 0
    # dataset category ids in contiguous order; filled from the training data and saved with
    # every checkpoint so that predictions map back to dataset ids
    thing_ids: list = field(default_factory=list)
    stuff_ids: list = field(default_factory=list)
    # the dataset's category records (id, name, isthing, supercategory, color) of thing_ids and
    # stuff_ids, filled from the training data and saved with every checkpoint, so that predictions
    # are named by the data the model was trained on (predict refuses a checkpoint without them)
    categories: list = field(default_factory=list)


# ------------------------------------------------------------------------------------ presets


def coco_r50_1x() -> Config:
    """R50-FPN, 1× schedule (90k iterations), short side 640–800 / test 800 (PQ 41.1 officially);
    16 images per iteration written for the official 8 GPUs (2 each): other process counts keep 2
    images per process and scale the learning rate and schedule (``solver.reference_world_size``)."""
    cfg = Config(name="coco_r50_1x")
    cfg.solver.reference_world_size = 8
    return cfg


def coco_r50_3x() -> Config:
    """R50-FPN, 3× schedule (270k iterations)."""
    cfg = coco_r50_1x()
    cfg.name = "coco_r50_3x"
    cfg.solver.max_iter = 270000
    return cfg


def coco_r50_512_3x() -> Config:
    """R50-FPN at 512: short side 352–512 (max 854), test 512/854, POS_NUM 3, 3× schedule."""
    cfg = coco_r50_3x()
    cfg.name = "coco_r50_512_3x"
    cfg.input.min_size_train = list(range(352, 513, 32))
    cfg.input.max_size_train = 854
    cfg.input.min_size_test = 512
    cfg.input.max_size_test = 854
    cfg.model.thing.pos_num = 3
    return cfg


def synthetic_small() -> Config:
    """A small model for the synthetic set on a CPU: ResNet-18 with GroupNorm (random init: no
    pretrained weights can be downloaded here), 64/32-channel necks, 128 px input, POS_NUM 3,
    class counts from ``data/categories/synthetic.json``, stuff area limit scaled to 128 px."""
    from pointly.pointgen.base.categories import load_categories

    cats = load_categories("synthetic")
    cfg = Config(name="synthetic_small")
    m = cfg.model
    m.backbone = BackboneConfig(depth=18, norm="GN", stride_in_1x1=False, freeze_at=0, require_weights=False)
    m.fpn.channels = 64
    m.semantic_fpn.channels = 64
    m.feature_encoder.channels = 32
    m.position_head = PositionHeadConfig(num_convs=2, channels=64, deform=False)  # DCNv2 backward dominates on CPU
    m.kernel_head = KernelHeadConfig(num_convs=2, channels=64)
    m.gn_groups = 16
    # the heads start from the official init, as in the COCO presets: measured against msra over
    # three paired seeds under AdamW (docs/training.md, "Head initialisation and optimiser")
    m.head_init = "official"
    m.thing.num_classes = sum(1 for c in cats if c["isthing"])
    m.thing.pos_num = 3
    m.stuff.num_classes = 1 + sum(1 for c in cats if not c["isthing"])
    # objects are 10-80 px on a 128 px image: shift the scale ranges down by 4× (P3 keeps the small ones)
    m.instance_scales = [[1, 32], [16, 64], [32, 128], [64, 256], [128, 512]]
    cfg.input = InputConfig(min_size_train=[112, 128, 144], max_size_train=256, min_size_test=128, max_size_test=256)
    cfg.inference.stuff_area_limit = 64  # 4096 px at 800 px short side ≈ 0.64 % of the image
    cfg.data = DataConfig(kind="synthetic", num_workers=0)
    cfg.solver = SolverConfig(
        optimizer="AdamW",
        base_lr=1e-3,
        ims_per_batch=8,
        max_iter=400,
        warmup_iters=50,
        checkpoint_period=500,
        log_period=10,
        clip_value=35.0,
    )
    cfg.thing_ids = [c["id"] for c in cats if c["isthing"]]
    cfg.stuff_ids = [c["id"] for c in cats if not c["isthing"]]
    cfg.categories = [dict(c) for c in cats]
    return cfg


PRESETS: dict[str, Callable[[], Config]] = {
    "coco_r50_1x": coco_r50_1x,
    "coco_r50_3x": coco_r50_3x,
    "coco_r50_512_3x": coco_r50_512_3x,
    "synthetic_small": synthetic_small,
}


# ------------------------------------------------------------------------------ (de)serialise


def config_to_dict(cfg: Config) -> dict:
    """A plain nested dict (YAML/JSON friendly) of a config."""
    return dataclasses.asdict(cfg)


def _merge(obj: Any, updates: dict, where: str, source: str) -> None:
    for key, value in updates.items():
        if not dataclasses.is_dataclass(obj) or key not in {f.name for f in dataclasses.fields(obj)}:
            names = sorted(f.name for f in dataclasses.fields(obj)) if dataclasses.is_dataclass(obj) else []
            raise PointlyError(
                f"unknown config key '{where}{key}'", file=source, fix=f"valid keys here: {', '.join(names)}"
            )
        current = getattr(obj, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise PointlyError(f"config key '{where}{key}' needs a mapping, got {value!r}", file=source)
            _merge(current, value, f"{where}{key}.", source)
            continue
        value = _coerce(current, value, f"{where}{key}", source)
        allowed = _CHOICES.get(f"{where}{key}")
        if allowed is not None and value not in allowed:
            raise PointlyError(
                f"config key '{where}{key}' is {value!r}", file=source, fix=f"use one of {', '.join(allowed)}"
            )
        setattr(obj, key, value)


# String settings with a fixed set of values, checked when a YAML file or --set changes them:
# the DCNv2 implementations of ``model.position_head.deform_impl`` and the head initialisations of
# ``model.head_init``, both owned by the network modules that implement them.
_CHOICES: dict[str, tuple[str, ...]] = {
    "model.position_head.deform_impl": DEFORM_IMPLEMENTATIONS,
    "model.head_init": HEAD_INITS,
}


def _coerce(current: Any, value: Any, key: str, source: str) -> Any:
    if value is None or current is None:
        return value
    if isinstance(current, bool):
        if not isinstance(value, bool):
            raise PointlyError(f"config key '{key}' needs true/false, got {value!r}", file=source)
        return value
    if isinstance(current, (int, float)) and not isinstance(current, bool):
        if isinstance(value, str):  # YAML 1.1 reads "1e-3" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PointlyError(f"config key '{key}' needs a number, got {value!r}", file=source)
        return type(current)(value) if isinstance(current, float) or float(value).is_integer() else value
    if isinstance(current, list) and not isinstance(value, list):
        raise PointlyError(f"config key '{key}' needs a list, got {value!r}", file=source)
    if isinstance(current, str) and not isinstance(value, str):
        raise PointlyError(f"config key '{key}' needs a string, got {value!r}", file=source)
    return copy.deepcopy(value)


def config_from_dict(doc: dict, source: str = "<dict>") -> Config:
    """Build a config from a nested dict, starting from ``_base_`` (a preset) or the defaults."""
    doc = dict(doc)
    base = doc.pop("_base_", None) or doc.get("name")
    if base is not None and base in PRESETS:
        cfg = PRESETS[base]()
    elif base is not None and doc.get("_base_") is not None:
        raise PointlyError(f"unknown base preset {base!r}", file=source, fix=f"use one of {sorted(PRESETS)}")
    else:
        cfg = Config()
    _merge(cfg, doc, "", source)
    return cfg


def load_config(name_or_path: str | Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Resolve ``--config NAME_OR_YAML`` and ``--set key.sub=value`` overrides into a :class:`Config`."""
    if name_or_path is None:
        name_or_path = "coco_r50_1x"
    name = str(name_or_path)
    if name in PRESETS:
        cfg = PRESETS[name]()
    else:
        path = Path(name)
        if not path.is_file():
            raise PointlyError(
                f"config {name!r} is neither a preset nor a file",
                file=path,
                fix=f"use one of {sorted(PRESETS)} or a YAML file",
            )
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise PointlyError(f"not valid YAML ({exc.__class__.__name__})", file=path) from None
        if not isinstance(doc, dict):
            raise PointlyError("a config file must be a YAML mapping", file=path)
        cfg = config_from_dict(doc, str(path))
    for item in overrides:
        if "=" not in item:
            raise PointlyError(f"bad --set {item!r}", fix="write --set key.sub=value, e.g. solver.max_iter=100")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            value = raw
        nested: dict = {}
        cur = nested
        parts = key.strip().split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = value
        _merge(cfg, nested, "", "--set")
    check_ranges(cfg, name)
    return cfg


def scale_to_world(cfg: Config, world: int) -> list[str]:
    """Rescale the solver, written for ``solver.reference_world_size`` processes, to ``world``
    (detectron2's rule): the global batch by ``world / reference``, the learning rate with it (the
    same rate per image), iteration counts (schedule, warm-up, checkpoint period) by its inverse (the
    same number of images). Returns the changes as ``key old→new`` texts; afterwards the reference
    is ``world``, so a config already scaled (a resumed run) is left alone."""
    s = cfg.solver
    ref = s.reference_world_size
    if ref == 0 or ref == world:
        return []
    scale = world / ref
    batch = s.ims_per_batch * scale
    if abs(batch - round(batch)) > 1e-9 or round(batch) < world:
        raise PointlyError(
            f"solver.ims_per_batch {s.ims_per_batch} for {ref} processes does not scale to {world} "
            f"(it would be {batch:g} images)",
            record="solver.reference_world_size",
            fix="choose a batch that does, or --set solver.reference_world_size=0 to keep the batch as given",
        )
    changes = []
    for key, new in (
        ("ims_per_batch", int(round(batch))),
        ("base_lr", s.base_lr * scale),
        ("max_iter", max(1, int(round(s.max_iter / scale)))),
        ("warmup_iters", int(round(s.warmup_iters / scale))),
        ("checkpoint_period", max(1, int(round(s.checkpoint_period / scale)))),
    ):
        old = getattr(s, key)
        if new != old:
            setattr(s, key, new)
            changes.append(f"solver.{key} {old:g}→{new:g}")
    s.reference_world_size = world
    return changes


def check_ranges(cfg: Config, source: str) -> None:
    """Refuse solver values that would train nothing or diverge at once (a run with max_iter 0
    would write a checkpoint with a NaN loss)."""
    s = cfg.solver
    for key, value, ok, need in (
        ("solver.max_iter", s.max_iter, s.max_iter >= 1, "at least 1"),
        ("solver.ims_per_batch", s.ims_per_batch, s.ims_per_batch >= 1, "at least 1"),
        ("solver.base_lr", s.base_lr, s.base_lr > 0, "positive"),
        ("solver.warmup_iters", s.warmup_iters, s.warmup_iters >= 0, "0 or more"),
    ):
        if not ok:
            raise PointlyError(
                f"{key} is {value!r}; it must be {need}", file=source, fix=f"--set {key}=... with a value {need}"
            )


def save_config(cfg: Config, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically)."""
    from pointly.pointgen.base.files import write_bytes_atomic

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    write_bytes_atomic(Path(path), text.encode("utf-8"))
