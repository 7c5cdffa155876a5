"""Training data: COCO panoptic / synthetic datasets, augmentation, targets, batching.

* :func:`dataset_paths` — (panoptic JSON, PNG folder, image folder) of a split from the config
  (``data.kind`` ``coco_panoptic`` or ``synthetic``; the synthetic set comes from
  :func:`pointly.data.synth.ensure_dataset`).
* :class:`PanopticTrainSet` — one sample = RGB image tensor (3, h, w) uint8 after
  ResizeShortestEdge (short side drawn from ``input.min_size_train``, long side ≤
  ``max_size_train``, PIL bilinear; label map PIL nearest) and a horizontal flip with
  probability ``input.flip_prob``, plus its :class:`~pointly.model.network.gt.TrainTargets`.
  The augmentation of a sample is drawn from a ``numpy.random.Generator`` seeded by
  ``(seed, iteration, slot in the global batch)``, so a run is the same whatever the number of
  workers or processes, and ``--resume`` continues bit for bit.
* :class:`IterationBatchSampler` — deterministic batches per iteration: the global batch of
  iteration ``it`` is a slice of a per-epoch permutation; with ``world_size`` processes each rank
  takes its contiguous share (the role of ``DistributedSampler``, but indexed by iteration so a
  resumed run sees the same batches).
* :func:`collate` — lists of images and targets; padding to a multiple of 32 happens in
  :meth:`pointly.model.network.panoptic_fcn.PanopticFCN.preprocess` (images) and
  :meth:`~pointly.model.network.gt.TrainTargets.pad_to` (targets), on the batch's largest size.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from pointly.model.network.gt import TrainTargets, full_targets
from pointly.model.network.inference import resize_shortest_edge
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.errors import PointlyError

if TYPE_CHECKING:
    from pointly.model.engine.point_targets import PointSupervision

log = logging.getLogger(__name__)


def dataset_paths(cfg, split: str) -> tuple[Path, Path, Path]:
    """(panoptic JSON, panoptic PNG folder, image folder) for ``split`` in ``train``/``val``."""
    d = cfg.data
    js, pd, im = (getattr(d, f"{split}_{k}") for k in ("json", "panoptic_dir", "image_dir"))
    if d.kind == "synthetic" and not js:
        from pointly.data.synth import ensure_dataset

        root = ensure_dataset() / split
        return root / "panoptic.json", root / "panoptic", root / "images"
    if d.kind not in ("coco_panoptic", "synthetic"):
        raise PointlyError(f"unknown data.kind {d.kind!r}", fix="use coco_panoptic or synthetic")
    if not (js and pd and im):
        raise PointlyError(
            f"no {split} dataset configured",
            fix=f"set data.{split}_json, data.{split}_panoptic_dir and data.{split}_image_dir "
            f"(--set data.{split}_json=FILE ...)",
        )
    return Path(js), Path(pd), Path(im)


def coco_split_paths(root: str | Path, split: str) -> tuple[Path, Path, Path]:
    """(panoptic JSON, PNG folder, image folder) of ``split`` (e.g. ``train2017``) in a COCO folder.

    COCO's own layout: ``annotations/panoptic_<split>.json`` with ``annotations/panoptic_<split>/``
    (the PNG zip unpacked beside it) and images in ``<split>/``; the JSON and PNG folder may also
    sit in ``root`` itself, the PNGs in ``panoptic/`` and the images in ``images/`` (the layout of
    a sample folder). A folder per split, ``<split>/panoptic.json``, ``<split>/panoptic/`` and
    ``<split>/images/``, is the layout ``pointly data synth`` writes (``split`` = ``train``, ``val``)."""
    root = Path(root)
    if not root.is_dir():
        raise PointlyError(
            "COCO folder not found",
            file=root,
            record="--coco-root",
            fix="pass the folder holding annotations/ and train2017/, val2017/",
        )
    own = root / split
    if (own / "panoptic.json").is_file():
        missing = [d for d in (own / "panoptic", own / "images") if not d.is_dir()]
        if missing:
            raise PointlyError(
                f"{missing[0]}/ not found",
                file=root,
                record="--coco-root",
                fix=f"a split folder holds panoptic.json, panoptic/ and images/ (as `pointly data synth` writes {split}/)",
            )
        return own / "panoptic.json", own / "panoptic", own / "images"
    for folder in (root / "annotations", root):
        js = folder / f"panoptic_{split}.json"
        if js.is_file():
            break
    else:
        raise PointlyError(
            f"no panoptic_{split}.json in {root} or {root / 'annotations'}",
            file=root,
            record="--coco-root",
            fix="unpack COCO's panoptic annotations there",
        )
    pngs = next((d for d in (js.with_suffix(""), js.parent / "panoptic") if d.is_dir()), None)
    images = next((d for d in (root / split, root / "images") if d.is_dir()), None)
    if pngs is None or images is None:
        missing = f"{js.with_suffix('')}/" if pngs is None else f"{root / split}/ (or {root / 'images'}/)"
        raise PointlyError(
            f"{missing} not found",
            file=root,
            record="--coco-root",
            fix="unpack the panoptic PNGs beside the JSON and the images in <split>/",
        )
    return js, pngs, images


def category_indices(cfg, categories: dict) -> tuple[dict[int, int], dict[int, int]]:
    """Contiguous class indices: things 0..T-1 and stuff 1..S-1 (0 = "things"), in ``cfg.thing_ids`` /
    ``cfg.stuff_ids`` order; when those are empty they are filled from the dataset (sorted ids), and
    so is ``cfg.categories`` (the records that name the classes in every checkpoint).
    The counts must equal ``model.thing.num_classes`` and ``model.stuff.num_classes - 1``."""
    if not cfg.thing_ids and not cfg.stuff_ids:
        cfg.thing_ids = sorted(c.id for c in categories.values() if c.isthing)
        cfg.stuff_ids = sorted(c.id for c in categories.values() if not c.isthing)
    for cid in list(cfg.thing_ids) + list(cfg.stuff_ids):
        if cid not in categories:
            raise PointlyError(
                f"category id {cid} of the config is not in the dataset",
                fix="use the config preset that matches the dataset",
            )
    if not cfg.categories:  # name the model's classes after the data it learns from
        cfg.categories = [categories[c].to_json() for c in list(cfg.thing_ids) + list(cfg.stuff_ids)]
    if len(cfg.thing_ids) != cfg.model.thing.num_classes or len(cfg.stuff_ids) + 1 != cfg.model.stuff.num_classes:
        raise PointlyError(
            f"the dataset has {len(cfg.thing_ids)} thing and {len(cfg.stuff_ids)} stuff categories "
            f"but the model is configured for {cfg.model.thing.num_classes} things and "
            f"{cfg.model.stuff.num_classes - 1} stuff (+1 'things' class)",
            fix="set model.thing.num_classes and model.stuff.num_classes to match",
        )
    return ({c: i for i, c in enumerate(cfg.thing_ids)}, {c: i + 1 for i, c in enumerate(cfg.stuff_ids)})


def load_rgb(path: Path) -> np.ndarray:
    """An image file as H × W × 3 uint8 RGB."""
    if not path.is_file():
        raise PointlyError("image not found", file=path, fix="check the image folder and file_name")
    with Image.open(path) as im:
        return np.asarray(im.convert("RGB"))


@dataclass
class Sample:
    image: torch.Tensor  # (3, h, w) uint8 RGB
    targets: TrainTargets
    image_id: int


class PanopticTrainSet(torch.utils.data.Dataset):
    """Training samples from a COCO panoptic dataset (see the module docstring).

    ``supervision``, when given (a :class:`~pointly.model.engine.point_targets.PointSupervision`),
    trains from points: it supplies the image list and classes, so no panoptic JSON or PNG is read,
    and replaces :func:`~pointly.model.network.gt.full_targets` with its targets, called with
    ``(image_info, dict(size=(h, w), flip=bool, rng=numpy Generator, image=rgb))``.
    """

    def __init__(
        self,
        cfg,
        split: str = "train",
        *,
        supervision: PointSupervision | None = None,
        dataset: PanopticDataset | None = None,
        image_dir: Path | None = None,
    ) -> None:
        self.cfg = cfg
        self.supervision = supervision
        if dataset is None and supervision is not None:
            image_dir = image_dir or getattr(cfg.data, f"{split}_image_dir")
            if image_dir is None and cfg.data.kind == "synthetic":
                image_dir = dataset_paths(cfg, split)[2]
        elif dataset is None:
            js, pd, default_dir = dataset_paths(cfg, split)
            image_dir = image_dir or default_dir
            dataset = PanopticDataset(js, pd, check=False)
        if image_dir is None:
            raise PointlyError("no image folder given", fix="set data.train_image_dir")
        self.image_dir = Path(image_dir)
        self.ds = dataset
        if dataset is not None:
            categories, images = dataset.categories, list(dataset.images)
            seg_info = dataset.segments_info
            where = dataset.json_path
        else:
            categories, images = supervision.categories, list(supervision.images)
            seg_info = supervision.segments_info
            where = supervision.path
        self.thing_index, self.stuff_index = category_indices(cfg, categories)
        if cfg.data.filter_empty:

            def has_thing(im) -> bool:
                return any(
                    int(s["category_id"]) in self.thing_index and not s.get("iscrowd", 0) for s in seg_info(im.id)
                )

            images = [im for im in images if has_thing(im)]
        if not images:
            raise PointlyError(
                "no training images (none with a non-crowd thing)",
                file=where,
                fix="check the dataset or set data.filter_empty=false",
            )
        missing = [im for im in images if not (self.image_dir / im.file_name).is_file()]
        if missing:  # found here, before a training run writes anything, not at iteration 1000
            raise PointlyError(
                f"{len(missing)} of {len(images)} training images are not in {self.image_dir}, "
                f"e.g. {missing[0].file_name} (image_id {missing[0].id})",
                file=where,
                fix="the annotation and the image folder do not belong together; check "
                "data.train_image_dir or --points",
            )
        self.images = images
        if supervision is not None:
            supervision.bind(self.thing_index, self.stuff_index)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> Sample:
        index, aug_seed = key
        info = self.images[index]
        rng = np.random.default_rng(aug_seed)
        inp = self.cfg.input
        short = int(rng.choice(np.asarray(inp.min_size_train)))
        flip = bool(rng.random() < inp.flip_prob)
        rgb = load_rgb(self.image_dir / info.file_name)
        h0, w0 = rgb.shape[:2]
        if (h0, w0) != (info.height, info.width):
            raise PointlyError(
                f"image is {w0}x{h0} but its record says {info.width}x{info.height}",
                file=self.image_dir / info.file_name,
                fix="the images and the JSON do not belong together",
            )
        h, w = resize_shortest_edge(h0, w0, short, inp.max_size_train)
        img = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
        if flip:
            img = img[:, ::-1]
        if self.supervision is not None:
            targets = self.supervision(info, dict(size=(h, w), flip=flip, rng=rng, image=rgb))
        else:
            sx, sy = w / w0, h / h0
            lm = self.ds.label_map(info.id).astype(np.int32)
            lm = np.asarray(Image.fromarray(lm, mode="I").resize((w, h), Image.NEAREST)).astype(np.int64)
            if flip:
                lm = lm[:, ::-1]
            segs = []
            for s in self.ds.segments_info(info.id):
                x, y, bw, bh = (float(v) for v in s["bbox"])
                x1, x2 = x * sx, (x + bw) * sx
                if flip:
                    x1, x2 = w - x2, w - x1
                segs.append(dict(s, bbox=[x1, y * sy, x2 - x1, bh * sy]))
            targets = full_targets(lm, segs, self.thing_index, self.stuff_index)
        image = torch.from_numpy(np.array(img, copy=True)).permute(2, 0, 1).contiguous()
        return Sample(image, targets, info.id)


class IterationBatchSampler(torch.utils.data.Sampler):
    """Yields, for iterations ``start_iter .. max_iter-1``, this rank's share of the global batch as
    ``(dataset index, augmentation seed)`` pairs (see the module docstring)."""

    def __init__(
        self, n: int, global_batch: int, seed: int, start_iter: int, max_iter: int, rank: int = 0, world_size: int = 1
    ) -> None:
        if global_batch % world_size:
            raise PointlyError(
                f"solver.ims_per_batch {global_batch} is not divisible by {world_size} processes",
                fix="choose a batch size that is a multiple of the process count",
            )
        self.n, self.gb, self.seed = n, global_batch, seed
        self.start, self.stop = start_iter, max_iter
        self.rank, self.world = rank, world_size

    def __len__(self) -> int:
        return max(self.stop - self.start, 0)

    def batch(self, it: int) -> list[tuple[int, int]]:
        per = self.gb // self.world
        out = []
        for slot in range(self.rank * per, (self.rank + 1) * per):
            g = it * self.gb + slot  # global sample counter
            epoch, pos = divmod(g, self.n)
            perm = np.random.default_rng([self.seed, epoch]).permutation(self.n)
            aug = int(np.random.default_rng([self.seed, it, slot, 7]).integers(2**62))
            out.append((int(perm[pos]), aug))
        return out

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for it in range(self.start, self.stop):
            yield self.batch(it)


def collate(samples: list[Sample]) -> tuple[list[torch.Tensor], list[TrainTargets], list[int]]:
    """Keep images and targets as lists; padding to 32 is done on the batch by the model."""
    return [s.image for s in samples], [s.targets for s in samples], [s.image_id for s in samples]


def make_loader(dataset: PanopticTrainSet, sampler: IterationBatchSampler, num_workers: int):
    """A DataLoader over iterations (workers keep the sampler's order)."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate,
        persistent_workers=False,
        prefetch_factor=2 if num_workers else None,
    )
