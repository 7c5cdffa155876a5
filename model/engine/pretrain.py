"""A backbone pre-trained on image-level tags of synthetic images that no study ever sees.

The paper's models start from ImageNet weights: a trunk that already tells textures and shapes
apart, trained without a single mask. The synthetic presets cannot download those weights, and a
random GroupNorm ResNet-18 needs thousands of iterations before its features are worth anything
(the full-mask reference was still rising by 3.7 PQ from 2000 to 4000 iterations, docs/study.md).
This module gives it the same kind of start, from the same kind of labels as ImageNet's:

* **Images.** Drawn by the synthetic generator (:func:`pointly.data.synth.generate_image`) from
  their own seed stream, ``SeedSequence([TAG_STREAM, seed, index])``. Dataset images come from
  ``SeedSequence([dataset_seed, split, index])``, so as long as no dataset is generated with the
  seed ``TAG_STREAM`` (the four bytes "tags") no pre-training image is a training or validation
  image of a study; :func:`pretraining_images` holds them in memory (13 ms each to draw) and
  nothing is written but the weights.
* **Labels.** The image's tags: which of the dataset's categories (things and stuff) appear, as a
  multi-hot vector. No mask, box, point or count is used.
* **Network.** Exactly the trunk of the configured Panoptic FCN (``build_panoptic_fcn(cfg)``'s
  ``backbone.bottom_up``, with the model's own input normalisation), global average pooling of
  its last stage and one linear layer, trained with a per-tag binary cross-entropy under AdamW, a
  linear warm-up and polynomial decay (the training loop's :func:`lr_factor`), random horizontal
  flips and a random short side from ``input.min_size_train`` per batch.
* **File.** The trunk's state dict under ``"model"`` (our trunk's names, which are torchvision's)
  with ``"__author__": "pointly"`` and a ``"pointly_pretraining"`` record: the settings, the
  input conventions the trunk was trained with (channel order, pixel mean and std, stride
  placement, depth, norm) and the held-out tag accuracy and mean average precision. The weight
  loader (:mod:`pointly.model.engine.backbone_weights`, format ``pointly``) reads it like any other
  weight file. :func:`ensure_pretrained` caches it by the hash of everything that decides it, as
  :func:`pointly.data.synth.ensure_dataset` does for datasets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pointly.data.synth import cache_root, generate_image
from pointly.model.engine.config import Config, config_to_dict
from pointly.pointgen.base.errors import PointlyError

log = logging.getLogger(__name__)

#: the first word of every pre-training image's seed ("tags" in ASCII): a stream of its own
TAG_STREAM = 0x74616773
#: bump when the recipe below changes, so cached files are made again
PRETRAINING_VERSION = 1


@dataclass(frozen=True)
class TagPretraining:
    """What a pre-training run does. ``images`` are drawn for training and ``held_out`` more
    (indices after them) to measure the tags on; ``iters`` AdamW steps of ``batch`` images."""

    images: int = 4000
    held_out: int = 500
    iters: int = 2500
    batch: int = 16
    base_lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 100
    seed: int = 0
    size: int = 128

    def check(self) -> None:
        for name in ("images", "held_out", "iters", "batch", "size"):
            if int(getattr(self, name)) < 1:
                raise PointlyError(
                    f"pre-training {name} must be at least 1, got {getattr(self, name)}",
                    fix=f"pass --{name.replace('_', '-')} 1 or more",
                )
        if self.seed < 0:
            raise PointlyError(f"pre-training seed must be >= 0, got {self.seed}", fix="pass --seed 0 or more")


def tag_image_rng(seed: int, index: int) -> np.random.Generator:
    """The generator of pre-training image ``index``: a seed stream no dataset split uses."""
    return np.random.default_rng(np.random.SeedSequence([TAG_STREAM, int(seed), int(index)]))


def tag_columns(cfg: Config) -> list[int]:
    """The dataset category ids in tag-vector order: the config's things, then its stuff."""
    ids = [int(c) for c in cfg.thing_ids] + [int(c) for c in cfg.stuff_ids]
    if not ids:
        raise PointlyError(
            f"config {cfg.name} names no categories to tag",
            record="thing_ids / stuff_ids",
            fix="use a config whose categories are known (synthetic_small)",
        )
    return ids


def pretraining_images(settings: TagPretraining, columns: list[int], start: int, count: int):
    """``count`` images from index ``start``: (N,H,W,3) uint8 RGB and their (N,C) 0/1 tags."""
    col = {c: j for j, c in enumerate(columns)}
    rgb = np.empty((count, settings.size, settings.size, 3), np.uint8)
    tags = np.zeros((count, len(columns)), np.float32)
    for k in range(count):
        im = generate_image(tag_image_rng(settings.seed, start + k), settings.size)
        rgb[k] = im.rgb
        for seg in im.segments:
            cid = int(seg["category_id"])
            if cid not in col:
                raise PointlyError(
                    f"the synthetic generator draws category {cid}, which the config does not know",
                    record=f"pre-training image {start + k}",
                    fix="pre-train with the config of the synthetic dataset (synthetic_small)",
                )
            tags[k, col[cid]] = 1.0
    return rgb, tags


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Mean over tags (those with at least one positive) of the average precision: the mean, over
    the positives, of the precision at each positive's rank (ties broken by order)."""
    aps = []
    for j in range(labels.shape[1]):
        y = labels[:, j] > 0
        if not y.any():
            continue
        order = np.argsort(-scores[:, j], kind="stable")
        hits = y[order]
        precision = np.cumsum(hits) / np.arange(1, len(hits) + 1)
        aps.append(float(precision[hits].mean()))
    return float(np.mean(aps)) if aps else float("nan")


class TagClassifier(nn.Module):
    """The trunk, global average pooling of its last stage, one linear layer to tag logits."""

    def __init__(self, trunk: nn.Module, num_tags: int) -> None:
        super().__init__()
        self.trunk = trunk
        self.classifier = nn.Linear(trunk.out_channels[-1], num_tags)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.trunk(batch)[-1].float().mean((2, 3)))


def _batch(model, rgb: np.ndarray, idx: np.ndarray, rng: np.random.Generator, sizes: list[int]) -> torch.Tensor:
    """Normalised batch of images ``idx``: the model's own preprocessing, after a random flip each
    and one random short side for the batch (bilinear, as the training set resizes)."""
    side = int(sizes[int(rng.integers(len(sizes)))]) if sizes else rgb.shape[1]
    images = []
    for i in idx:
        x = torch.from_numpy(rgb[i]).permute(2, 0, 1).float()
        if rng.random() < 0.5:
            x = x.flip(-1)
        if side != x.shape[-1]:
            x = F.interpolate(x[None], size=(side, side), mode="bilinear", align_corners=False)[0]
        images.append(x)
    return model.preprocess(images)


def _evaluate(model, classifier: TagClassifier, rgb: np.ndarray, tags: np.ndarray, batch: int) -> dict[str, float]:
    classifier.eval()
    scores = []
    with torch.no_grad():
        for s in range(0, len(rgb), batch):
            imgs = [torch.from_numpy(rgb[i]).permute(2, 0, 1).float() for i in range(s, min(s + batch, len(rgb)))]
            scores.append(torch.sigmoid(classifier(model.preprocess(imgs))).numpy())
    classifier.train()
    p = np.concatenate(scores)
    return {
        "tag_accuracy": float(((p > 0.5) == (tags > 0)).mean()),
        "image_exact": float(((p > 0.5) == (tags > 0)).all(1).mean()),
        "mean_ap": average_precision(p, tags),
    }


def pretrain_backbone(
    cfg: Config, settings: TagPretraining, out: str | Path, *, threads: int | None = None, progress: bool = True
) -> dict[str, Any]:
    """Pre-train the trunk of ``cfg`` on tags (module docstring) and write it to ``out`` (a temporary
    file renamed into place); return the file's ``pointly_pretraining`` record."""
    from tqdm import tqdm

    from pointly.model.engine.build import build_panoptic_fcn
    from pointly.model.engine.train import lr_factor

    settings.check()
    out = Path(out)
    if out.exists() and out.is_dir():
        raise PointlyError("the output is a folder", file=out, fix="pass a file name, e.g. tags_r18.pth")
    if threads:
        torch.set_num_threads(int(threads))
    torch.manual_seed(settings.seed)
    columns = tag_columns(cfg)
    model = build_panoptic_fcn(cfg)  # its trunk and its preprocessing, nothing else is trained
    classifier = TagClassifier(model.backbone.bottom_up, len(columns))
    t0 = time.time()
    rgb, tags = pretraining_images(settings, columns, 0, settings.images)
    held_rgb, held_tags = pretraining_images(settings, columns, settings.images, settings.held_out)
    data_s = time.time() - t0
    params = [p for p in classifier.parameters() if p.requires_grad]
    decay = [p for p in params if p.ndim > 1]
    no_decay = [p for p in params if p.ndim <= 1]  # norms and biases, as detectron2 leaves them
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": settings.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=settings.base_lr,
    )
    # the training loop's schedule (its warm-up factor and power) over the pre-training's length
    sched = replace(cfg, solver=replace(cfg.solver, max_iter=settings.iters, warmup_iters=settings.warmup_iters))
    use_amp = bool(cfg.solver.cpu_amp)
    rng = np.random.default_rng(np.random.SeedSequence([TAG_STREAM, settings.seed, -1 % 2**32]))
    order = rng.permutation(settings.images)
    pos = 0
    losses = []
    t1 = time.time()
    bar = tqdm(range(settings.iters), desc="tag pre-training", unit="it", disable=not progress)
    for it in bar:
        if pos + settings.batch > len(order):
            order, pos = rng.permutation(settings.images), 0
        idx = order[pos : pos + settings.batch]
        pos += settings.batch
        for g in optimizer.param_groups:
            g["lr"] = settings.base_lr * lr_factor(it, sched)
        batch = _batch(model, rgb, idx, rng, list(cfg.input.min_size_train))
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=use_amp):
            logits = classifier(batch)
        loss = F.binary_cross_entropy_with_logits(logits.float(), torch.from_numpy(tags[idx]))
        if not math.isfinite(loss.item()):
            raise PointlyError(f"tag pre-training diverged at iteration {it}", fix="lower --base-lr")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if it % 50 == 0:
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    train_s = time.time() - t1
    metrics = _evaluate(model, classifier, held_rgb, held_tags, 64)
    prevalence = held_tags.mean(0)
    b, i = cfg.model.backbone, cfg.input
    record = {
        "version": PRETRAINING_VERSION,
        "settings": asdict(settings),
        "tag_stream": TAG_STREAM,
        "tag_columns": columns,
        "config": cfg.name,
        "trunk": {"depth": b.depth, "norm": b.norm, "gn_groups": cfg.model.gn_groups, "stride_in_1x1": b.stride_in_1x1},
        "input": {"format": i.format, "pixel_mean": list(i.pixel_mean), "pixel_std": list(i.pixel_std)},
        "cpu_amp": use_amp,
        "held_out": metrics,
        # the accuracy a network that always says the majority answer per tag would get
        "held_out_majority_accuracy": float(np.maximum(prevalence, 1 - prevalence).mean()),
        "final_loss": float(np.mean(losses[-100:])),
        "seconds": {"data": round(data_s, 1), "train": round(train_s, 1)},
        "torch": str(torch.__version__),
    }
    state = {k: v.detach().clone() for k, v in classifier.trunk.state_dict().items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(fd)
    try:
        torch.save({"model": state, "__author__": "pointly", "pointly_pretraining": record}, tmp)
        os.replace(tmp, out)
    finally:
        Path(tmp).unlink(missing_ok=True)
    log.info(
        "tag pre-training: held-out tag accuracy %.3f (majority %.3f), mAP %.3f; %s",
        metrics["tag_accuracy"],
        record["held_out_majority_accuracy"],
        metrics["mean_ap"],
        out,
    )
    return record


def pretraining_key(cfg: Config, settings: TagPretraining) -> str:
    """Hash of everything that decides the file: the recipe version, the settings, the trunk and
    input sections of the config, its categories and its CPU autocast."""
    doc = config_to_dict(cfg)
    decided = {
        "version": PRETRAINING_VERSION,
        "settings": asdict(settings),
        "backbone": {k: v for k, v in doc["model"]["backbone"].items() if k != "weights"},
        "gn_groups": doc["model"]["gn_groups"],
        "input": doc["input"],
        "tags": tag_columns(cfg),
        "cpu_amp": bool(cfg.solver.cpu_amp),
    }
    return hashlib.sha256(json.dumps(decided, sort_keys=True).encode()).hexdigest()[:12]


def ensure_pretrained(
    cfg: Config, settings: TagPretraining, root: str | Path | None = None, *, progress: bool = False
) -> Path:
    """The cached pre-trained trunk for ``cfg`` and ``settings``, made first if missing:
    ``<root>/pretrained-tags-<key>.pth`` (``root`` defaults to the dataset cache)."""
    base = Path(root) if root is not None else cache_root()
    path = base / f"pretrained-tags-{pretraining_key(cfg, settings)}.pth"
    if not path.is_file():
        log.info("pre-training the backbone on tags once (cached as %s)", path)
        pretrain_backbone(cfg, settings, path, progress=progress)
    return path
