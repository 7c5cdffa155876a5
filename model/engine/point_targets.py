"""Point supervision for Panoptic FCN: points JSON + augmentation → per-image training targets.

The model trains from one structure, :class:`pointly.model.network.gt.TrainTargets` (stride-4 masks,
classes, centres, boxes, stuff maps and a ``valid`` map), and its losses honour ``valid``. Full
supervision fills it from exact masks with nothing ignored (:func:`pointly.model.network.gt.full_targets`);
this module fills it from **points only** (study.md, "Our design"), through
:func:`pointly.pointgen.targets.build.build_targets`, *after* the geometric augmentation and directly on
the stride-4 grid, so no full-size mask is ever built or read:

* the augmentation of one sample (resize to a short side, optional flip) is a
  :class:`~pointly.pointgen.targets.pixel_transform.PixelTransform`; resizing that canvas to the stride-4
  size of the resized image (``int(h/4 + 0.5)``, the size full supervision downsamples to) gives
  the target grid;
* **things**: the shape's raster is the mask (binary, in place of the soft downsampled mask); the
  centre is the *simulated centre* (mean of the points) in stride-4 pixel-index coordinates (the
  convention of :func:`pointly.pointgen.targets.centers.mass_center`); the box — which picks the FPN
  levels and the Gaussian radius in :func:`pointly.model.network.gt.build_level_targets`, the same code
  as full supervision — is :func:`pointly.pointgen.targets.build.object_box` (the shape's box, or the
  points' box corrected for sampling shrinkage) in resized-input pixels, computed from geometry
  so it is not quantised to the stride;
* **stuff**: one map per stuff class present (its shape), and class 0 ("things") = the union of
  the thing shapes, as in full supervision;
* ``valid`` = 0 where no shape says anything (and on ties); 1 elsewhere. The segmentation
  losses then ignore those pixels: top-k kernel candidates come from inside the shape, dice and
  the stuff focal loss are computed on non-ignored pixels only, and a stuff kernel pools over its
  class's shape; the centre loss covers every pixel (:mod:`pointly.model.network.losses`, one
  implementation for points and full masks).

A thing whose mask ends up empty (every point shared with another segment or cropped away) is
dropped, as full supervision drops instances with an empty stride-4 mask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from shapely.geometry import GeometryCollection

from pointly.model.network.gt import TrainTargets, stride4_size
from pointly.pointgen.base.coco import Category, ImageInfo
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import annotations_by_image, load_points
from pointly.pointgen.targets.build import build_targets, object_box, shapes_for
from pointly.pointgen.targets.options import TargetOptions, parse_dilation
from pointly.pointgen.targets.pixel_transform import PixelTransform

#: no shape: object_box then reads the size from the points alone
EMPTY = GeometryCollection()


def shape_box(box: Sequence[float], transform: PixelTransform) -> tuple[float, float, float, float]:
    """``(x1, y1, x2, y2)`` of an input pixel-corner box (:func:`~pointly.pointgen.targets.build.object_box`)
    in the transform's output pixels, clipped to the canvas."""
    corners = transform.apply(np.array([[box[0], box[1]], [box[2], box[3]]], dtype=np.float64))
    x1, x2 = sorted((float(corners[0, 0]), float(corners[1, 0])))
    y1, y2 = sorted((float(corners[0, 1]), float(corners[1, 1])))
    w, h = transform.width, transform.height
    return (min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h))


def point_train_targets(
    annotations: Sequence[Mapping],
    categories: Any,
    image_size: tuple[int, int],
    transform: PixelTransform,
    thing_index: Mapping[int, int],
    stuff_index: Mapping[int, int],
    *,
    options: TargetOptions | None = None,
    rng: np.random.Generator | None = None,
    shapes: Sequence[Any] | None = None,
    file: Any = None,
) -> TrainTargets:
    """The :class:`TrainTargets` of one augmented sample, from its points alone.

    * ``annotations``: the points-JSON annotations of the image; ``categories``: category dicts
      or ``{id: Category}``; ``image_size``: the original ``(width, height)``.
    * ``transform``: original image → augmented input canvas (resize, flip); its canvas is the
      input image size ``(h, w)`` before padding.
    * ``thing_index``: dataset thing category id → contiguous class; ``stuff_index``: stuff id →
      1..S-1 (0 is "things"), as for :func:`pointly.model.network.gt.full_targets`. Segments of other
      categories are skipped (as unknown categories are by full supervision).
    * ``options``: shape, concave ratio, dilation... (:class:`TargetOptions`); ``rng`` draws the
      dilation radius when it is a range; ``shapes``: the cached hull of every annotation
      (:func:`pointly.pointgen.targets.build.shapes_for`), reused across augmentations.
    """
    opts = options or TargetOptions()
    h, w = transform.height, transform.width
    h4, w4 = stride4_size(h, w)
    t4 = transform.resize(w4, h4)
    kept = [
        i
        for i, a in enumerate(annotations)
        if int(a["category_id"]) in thing_index or int(a["category_id"]) in stuff_index
    ]
    anns = [annotations[i] for i in kept]
    regions = opts.shape == "watershed"
    if regions:  # image-aware regions, grown once per image from all its annotations
        if shapes is None:
            raise ValueError("shape 'watershed' needs the image's Regions (shapes_for with the image)")
        shapes = shapes.subset(kept)
        box_by_ann = {id(a): b for a, b in zip(anns, shapes.boxes)}
    elif shapes is None:
        shapes = shapes_for(anns, opts)
    elif len(shapes) != len(annotations):
        raise ValueError("shapes must hold one geometry per annotation")
    else:
        shapes = [shapes[i] for i in kept]
    geom_by_ann = {} if regions else {id(a): g for a, g in zip(anns, shapes)}
    if anns:
        built = build_targets(
            anns, categories, image_size, options=opts, transform=t4, rng=rng, shapes=shapes, file=file
        )
        segments, ignore = built.segments, built.ignore
    else:
        segments, ignore = [], np.ones((h4, w4), dtype=bool)
    non_crowd = [a for a in anns if not a.get("iscrowd", 0)]  # build_targets' segment order

    thing_masks, classes, centres, boxes = [], [], [], []
    stuff_maps: dict[int, np.ndarray] = {}
    for ann, seg in zip(non_crowd, segments):
        cat = int(seg.category_id)
        if cat in thing_index:
            if not seg.mask.any():
                continue
            thing_masks.append(seg.mask)
            classes.append(thing_index[cat])
            centres.append(seg.centre)
            coords = np.asarray(ann["point_coords"], dtype=np.int64).reshape(-1, 2)
            labels = np.asarray(ann.get("point_labels", [1] * len(coords))).reshape(-1)
            if regions:  # the box of the region's known pixels (the points' box where it has none)
                box = box_by_ann[id(ann)] or object_box(coords[labels == 1], EMPTY, False)
            else:
                box = object_box(coords[labels == 1], geom_by_ann[id(ann)], opts.size_correction)
            boxes.append(shape_box(box, transform))
            stuff_maps[0] = seg.mask | stuff_maps.get(0, np.zeros((h4, w4), dtype=bool))
        else:
            cls = stuff_index[cat]
            stuff_maps[cls] = seg.mask | stuff_maps.get(cls, np.zeros((h4, w4), dtype=bool))
    present = sorted(c for c, m in stuff_maps.items() if m.any())

    def stack(masks: list[np.ndarray]) -> torch.Tensor:
        if not masks:
            return torch.zeros((0, h4, w4), dtype=torch.float32)
        return torch.from_numpy(np.stack(masks)).to(torch.float32)

    return TrainTargets(
        thing_masks=stack(thing_masks),
        thing_classes=torch.tensor(classes, dtype=torch.int64),
        thing_centers=torch.tensor(centres, dtype=torch.float32).reshape(-1, 2),
        thing_boxes=torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
        stuff_masks=stack([stuff_maps[c] for c in present]),
        stuff_classes=torch.tensor(present, dtype=torch.int64),
        valid=torch.from_numpy(~ignore).to(torch.float32),
        image_size=(h, w),
    )


def augment_transform(width: int, height: int, new_width: int, new_height: int, flip: bool) -> PixelTransform:
    """The transform of a sample resized to ``new_width × new_height`` and optionally mirrored."""
    t = PixelTransform.identity(width, height).resize(new_width, new_height)
    return t.hflip() if flip else t


def stride4_centre(x: float, y: float, transform: PixelTransform) -> tuple[float, float]:
    """Where an input pixel-centre position lands on the stride-4 grid, in pixel-index coordinates.

    Used by tests and by callers that need to compare a centre with :attr:`TrainTargets.thing_centers`.
    """
    h4, w4 = stride4_size(transform.height, transform.width)
    c = transform.resize(w4, h4).apply(np.array([[x, y]], dtype=np.float64))[0]
    return float(c[0] - 0.5), float(c[1] - 0.5)


# --------------------------------------------------------------------------- training data
class PointsSource:
    """A points JSON seen through the dataset interface :class:`~pointly.model.engine.data.PanopticTrainSet`
    uses (``images``, ``categories``, ``segments_info``, ``json_path``) — and nothing else.

    It holds no masks: :meth:`label_map` raises, so a training run that reached for a mask would
    fail loudly instead of silently reading one. ``segments_info`` returns the image's point
    annotations (they carry ``category_id`` and ``iscrowd``, which is all the empty-image filter
    needs).
    """

    kind = "points"

    def __init__(self, points_json: str | Path, *, doc: Mapping | None = None) -> None:
        self.json_path = Path(points_json)
        doc = load_points(self.json_path) if doc is None else doc
        self.doc = doc
        self.images = [
            ImageInfo(int(im["id"]), str(im["file_name"]), int(im["width"]), int(im["height"])) for im in doc["images"]
        ]
        self.categories = {
            int(c["id"]): Category(
                int(c["id"]), str(c["name"]), bool(c.get("isthing", 1)), str(c.get("supercategory", ""))
            )
            for c in doc["categories"]
        }
        self._anns = annotations_by_image(doc)

    def segments_info(self, image_id: int) -> list[dict]:
        return list(self._anns.get(image_id, []))

    def label_map(self, image_id: int) -> np.ndarray:
        raise PointlyError(
            "point supervision reads no masks",
            file=self.json_path,
            record=f"image_id {image_id}",
            fix="this is a bug: report it",
        )


class PointSupervision:
    """Point supervision, the one object training takes (``PanopticTrainSet(cfg, supervision=...)``,
    ``train(cfg, out, supervision=...)``); it differs from full supervision in exactly two ways:

    * the training images and their classes come from the points JSON (``images``,
      ``categories``, ``segments_info``, ``path``), so no panoptic JSON or PNG is read;
    * each sample's :class:`TrainTargets` are built from the points after the sample's
      augmentation (``__call__(image_info, {"size", "flip", "rng", "image"})``) by
      :func:`point_train_targets`, instead of downsampled from masks.

    ``options``: a :class:`TargetOptions`, or its fields (``dilation`` may be CLI text: ``off``,
    ``on``, ``0.02``, ``0.01:0.03``, ``8px``). Shapes are computed once per image and cached (they
    live in original-image coordinates, so every augmentation reuses them). The dilation radius of
    a sample is drawn from the sample's augmentation generator (``aug["rng"]``), so runs are
    reproducible. The training set calls :meth:`bind` with the model's contiguous class indices.
    """

    #: shapes of this many images are kept (oldest dropped first); a hull costs tens of µs to redo
    CACHE_IMAGES = 4096
    #: image-aware regions (two image-sized maps each, ~1.5 MB at 640x480) of this many images
    CACHE_REGION_IMAGES = 256

    def __init__(
        self, points_file: str | Path | PointsSource, *, options: TargetOptions | None = None, **fields: Any
    ) -> None:
        if options is not None and fields:
            raise ValueError("give options or option fields, not both")
        if isinstance(fields.get("dilation"), str):
            fields["dilation"], fields["dilation_units"] = parse_dilation(fields["dilation"])
        self.source = points_file if isinstance(points_file, PointsSource) else PointsSource(points_file)
        self.options = options if options is not None else TargetOptions(**fields)
        self.path = self.source.json_path
        self.images = self.source.images
        self.categories = self.source.categories
        self.thing_index: dict[int, int] = {}
        self.stuff_index: dict[int, int] = {}
        self._shapes: dict[int, list] = {}

    def segments_info(self, image_id: int) -> list[dict]:
        return self.source.segments_info(image_id)

    def bind(self, thing_index: Mapping[int, int], stuff_index: Mapping[int, int]) -> None:
        """Receive the model's contiguous class indices (called by the training set)."""
        self.thing_index, self.stuff_index = dict(thing_index), dict(stuff_index)

    def __call__(self, info: ImageInfo, aug: Mapping[str, Any]) -> TrainTargets:
        anns = self.source.segments_info(info.id)
        if info.id not in self._shapes:
            cap = self.CACHE_REGION_IMAGES if self.options.shape == "watershed" else self.CACHE_IMAGES
            if len(self._shapes) >= cap:  # bounded: COCO has 118k images per worker
                self._shapes.pop(next(iter(self._shapes)))
            self._shapes[info.id] = shapes_for(anns, self.options, image=aug.get("image"))
        h, w = aug["size"]
        transform = augment_transform(info.width, info.height, w, h, bool(aug["flip"]))
        rng = aug.get("rng")
        if rng is None and isinstance(self.options.dilation, tuple):
            rng = np.random.default_rng([info.id])
        return point_train_targets(
            anns,
            self.source.categories,
            (info.width, info.height),
            transform,
            self.thing_index,
            self.stuff_index,
            options=self.options,
            rng=rng,
            shapes=self._shapes[info.id],
            file=self.source.json_path,
        )


__all__ = [
    "point_train_targets",
    "shape_box",
    "augment_transform",
    "stride4_centre",
    "TargetOptions",
    "PointsSource",
    "PointSupervision",
]
