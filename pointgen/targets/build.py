"""Training targets from points: per segment a centre and a shape mask, per image an ignore mask.

This is the supervision Panoptic FCN trains on when it has points instead of masks (the TPAMI
paper, Sec. 3.5; docs/targets.md has the table of rules). For one image and all its annotations:

* **centre** of a segment = the mean of its (positive) points — the "simulated centre";
* **shape** = :func:`pointly.pointgen.targets.shapes.image_shapes`: the convex or concave hull of the
  points, or, where that hull holds another segment's point, the segment's Delaunay parts (never
  a foreign point inside); rasterised exactly with the closed pixel-centre rule
  (:mod:`pointly.pointgen.targets.raster`) on the *output* grid, after the geometric augmentation
  (:class:`~pointly.pointgen.targets.pixel_transform.PixelTransform`), so stride-4 targets never need a
  full-size mask;
* **overlaps** (``overlap = "nearest"``): a thing's shape beats a stuff shape; between shapes of
  one kind the segment with the nearest point wins, an exact tie is ignored (``"exclusive"``: a
  pixel claimed twice is ignored for both);
* **points are hard labels**: the output pixel holding a segment's point is positive for that
  segment and negative for every other one, whatever the shapes say; a pixel holding points of two
  segments is ignored; a pixel holding a ``point_labels = 0`` point of a segment is never positive
  for it;
* **ignore** = every pixel not in exactly one segment's final mask (covered by no shape, a tie,
  a crowd annotation's shape, outside the image); a segment's pixels are negatives for the others;
* **dilation** (augmentation): every shape is grown by a radius (fixed, or drawn per call from a
  range; in input pixels or relative to the image's longer side) into pixels no shape claims:
  never onto another shape or another segment's point; several dilations reaching a pixel follow
  the overlap rule;
* **size** (:func:`object_box`): the box read for the Gaussian radius and the FPN level, corrected
  for the shrinkage of a point set's box unless ``size_correction`` is off.

Crowd annotations (``iscrowd = 1``) give no segment: their shape pixels are ignored.
The options are :class:`~pointly.pointgen.targets.options.TargetOptions`; the annotations are
checked by :mod:`pointly.pointgen.targets.inputs`; all segments of an image are handled together on
claim maps, resolved into the owner map by :mod:`pointly.pointgen.targets.shape_claims`; each
segment's mask is cut from its own box.

About 400 lines, a third of them this docstring's rules; the stages of ``build_targets`` live in
``inputs.py``, ``shape_claims.py`` and ``packed_claims.py``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.centers import draw_gaussian, gaussian_radius
from pointly.pointgen.targets.inputs import category_isthing, checked_annotations, read_image_size
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.regions import Regions
from pointly.pointgen.targets.shape_claims import clear_outside_image, region_owner, segment_records, shape_owner
from pointly.pointgen.targets.shapes import image_shapes, point_centres, point_centres_each
from pointly.pointgen.targets.sorted_arrays import run_starts, sorted_unique

__all__ = [
    "ImageTargets",
    "SegmentTarget",
    "build_targets",
    "centre_heatmap",
    "corrected_points_box",
    "object_box",
    "shapes_for",
]


@dataclass
class SegmentTarget:
    """The target of one segment on the output grid.

    * ``centre``: ``(x, y)`` mean of the positive points in output **pixel-index** coordinates
      (pixel ``(i, j)`` has its centre at ``(j, i)``, the convention of
      :func:`pointly.pointgen.targets.centers.mass_center`); it may lie off the canvas after a crop.
    * ``mask``: boolean ``H × W`` final positives (after conflicts, point labels and dilation).
    * ``bbox``: ``[x, y, w, h]`` in output pixels of the segment's shape *before* conflicts
      (shape raster ∪ its own point pixels, before dilation): the size used for the Gaussian
      radius and the FPN level. ``(0, 0, 0, 0)`` when the shape misses the canvas.
    """

    annotation_id: int
    category_id: int
    isthing: bool
    centre: tuple[float, float]
    mask: np.ndarray = field(repr=False)
    bbox: tuple[float, float, float, float]
    source_segment_id: int | None = None
    num_points: int = 0

    @property
    def box_size(self) -> tuple[float, float]:
        """``(width, height)`` of :attr:`bbox`."""
        return self.bbox[2], self.bbox[3]

    @property
    def visible(self) -> bool:
        """True when the segment has at least one positive pixel on the canvas."""
        return bool(self.mask.any())


@dataclass
class ImageTargets:
    """All targets of one image: its segments and the ignore mask (``H × W`` bool).

    ``owner`` is the ``H × W`` int32 map behind them: 0 = ignored, ``k + 1`` = ``segments[k]``.
    ``dilation_radius`` is the radius used, in input pixels (0 when off).
    """

    segments: list[SegmentTarget]
    ignore: np.ndarray = field(repr=False)
    owner: np.ndarray = field(repr=False)
    transform: PixelTransform
    dilation_radius: float = 0.0
    image_id: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.transform.shape


# ---------------------------------------------------------------------------------------------


def _box(x0: int, y0: int, x1: int, y1: int) -> tuple[float, float, float, float]:
    """COCO box of the inclusive pixel range; empty when x1 < x0."""
    if x1 < x0 or y1 < y0:
        return (0.0, 0.0, 0.0, 0.0)
    return (float(x0), float(y0), float(x1 - x0 + 1), float(y1 - y0 + 1))


def corrected_points_box(coords: np.ndarray) -> tuple[float, float, float, float] | None:
    """``(x0, y0, x1, y1)`` in input pixel-corner coordinates: the box of the ``n ≥ 2`` distinct
    points grown about its centre by ``(n + 1) / (n − 1)`` per side, plus half a pixel; None for
    one point. ``n`` uniform points span on average ``(n − 1) / (n + 1)`` of the extent they are
    drawn from, so the raw box shrinks the object (√area ratio 0.55 at P5, 0.77 at P20 on the
    synthetic set) and moves it down an FPN level."""
    return _grown_box(point_centres(coords))


def _grown_box(c: np.ndarray) -> tuple[float, float, float, float] | None:
    """:func:`corrected_points_box` of the distinct point centres ``c`` (:func:`point_centres`)."""
    n = c.shape[0]
    if n < 2:
        return None
    lo, hi = c.min(axis=0), c.max(axis=0)
    mid, half = (lo + hi) / 2, (hi - lo) * (n + 1) / (n - 1) / 2 + 0.5
    return mid[0] - half[0], mid[1] - half[1], mid[0] + half[0], mid[1] + half[1]


def object_box(coords: np.ndarray, geometry: Any, correct: bool) -> tuple[float, float, float, float]:
    """``(x0, y0, x1, y1)`` in input pixel-corner coordinates: the box a segment's *size* is read
    from (FPN level, Gaussian radius), never its mask.

    The shape's box, widened by half a pixel (shapes pass through the points' pixel centres, so
    this is the tight pixel box of the rasterised shape, the convention of a mask's COCO
    ``bbox``); with ``correct``, united with :func:`corrected_points_box`.
    """
    if geometry.is_empty:
        c = point_centres(coords)
        minx, miny, maxx, maxy = (*c.min(axis=0), *c.max(axis=0))
    else:
        minx, miny, maxx, maxy = geometry.bounds
    box = (minx - 0.5, miny - 0.5, maxx + 0.5, maxy + 0.5)
    grown = corrected_points_box(coords) if correct else None
    if grown is None:
        return box
    return min(box[0], grown[0]), min(box[1], grown[1]), max(box[2], grown[2]), max(box[3], grown[3])


def build_targets(
    annotations: Sequence[Mapping],
    categories: Any,
    image_size: Any,
    *,
    options: TargetOptions | None = None,
    out_size: tuple[int, int] | None = None,
    transform: PixelTransform | None = None,
    rng: np.random.Generator | None = None,
    file: Any = None,
    shapes: Sequence[Any] | None = None,
    image: np.ndarray | None = None,
) -> ImageTargets:
    """Build the targets of one image from its points.

    * ``annotations``: the points-JSON annotations of one image (``point_coords``, optional
      ``point_labels``, ``category_id``, ``id``, ``iscrowd``, ``source_segment_id``).
    * ``categories``: ``{id: Category}`` or a list of category dicts (needs ``isthing``).
    * ``image_size``: the original image as ``(width, height)``, an image record dict or an
      :class:`~pointly.pointgen.base.coco.ImageInfo`.
    * ``out_size``: ``(width, height)`` of a plain resize of the whole image; or ``transform``: a
      :class:`PixelTransform` describing resize/flip/crop/pad/stride. Neither: full size.
    * ``rng``: needed when ``options.dilation`` is a range (one radius drawn per call).
    * ``shapes``: optional precomputed :func:`shapes_for` results, one per annotation (input
      coordinates), to skip recomputing them across augmentations.
    * ``image``: the original ``H × W × 3`` RGB image, needed by ``shape="watershed"`` (or, to
      skip recomputing the regions across augmentations, ``shapes`` given as their
      :class:`~pointly.pointgen.targets.regions.Regions`, :func:`shapes_for`).
    * ``file``: named in error messages.

    Bad input (points outside the image, NaN, empty segments, unknown categories) raises
    :class:`PointlyError`.
    """
    opts = options or TargetOptions()
    width, height = read_image_size(image_size)
    transform = _output_transform(width, height, out_size, transform)
    isthing = category_isthing(categories)
    H, W = transform.shape

    parsed = checked_annotations(annotations, isthing, width, height, file)
    regions = opts.shape == "watershed"
    if regions:  # the image's regions take the place of the shapes; no dilation
        grown = _image_regions(shapes, image, parsed, width, height, file)
        region_labels, region_known = grown.labels, grown.known
        shapes = [None] * len(parsed)
    else:
        # the distinct points of every annotation in one sort, for its hull and its size box
        centres = point_centres_each([c[l == 1] for _, c, l in parsed])
        shapes = _hull_shapes(shapes, parsed, opts, centres)

    radius_in = 0.0 if regions else opts.dilation_radius(width, height, rng)
    blocked = np.zeros((H, W), dtype=bool)
    segs, crowd_rings, region_segment, region_crowd = segment_records(parsed, shapes, isthing, transform, regions)

    dilated = radius_in > 0 and bool(segs)
    nearest = opts.overlap == "nearest"
    if regions:  # the segment each region belongs to, where it is known; crowd regions ignored
        owner, crowd = region_owner(region_labels, region_known, region_segment, region_crowd, transform)
    else:  # with dilation: the shapes grown into pixels that no shape claims, never onto a point's
        # pixel; several dilations reaching a pixel: as above (exclusive: nobody's)
        owner, crowd = shape_owner(segs, crowd_rings, radius_in, dilated, nearest, transform)

    _points_as_labels(owner, blocked, segs, W)
    if crowd is not None and crowd.any():  # a crowd shape's pixels are nobody's, dilations' included
        np.copyto(owner, 0, where=crowd & ~blocked)
        blocked |= crowd
    if dilated:  # outside the image again, point pixels included (as the dilation step always did)
        clear_outside_image(owner, transform)

    if regions:  # a segment's box: where it owns pixels
        _region_boxes(owner, segs, H, W)
    grown = None  # the size correction of the boxes, from the distinct points of each segment
    if opts.size_correction and not regions:
        kept = [c for c, (ann, _, _) in zip(centres, parsed) if not ann.get("iscrowd", 0)]  # as segs
        grown = _grown_boxes_out(kept, transform)
    out = [
        _segment_target(s, owner, isthing, None if grown is None else grown[i], transform) for i, s in enumerate(segs)
    ]
    image_id = parsed[0][0].get("image_id") if parsed else None
    return ImageTargets(
        segments=out, ignore=owner == 0, owner=owner, transform=transform, dilation_radius=radius_in, image_id=image_id
    )


def _output_transform(
    width: int, height: int, out_size: tuple[int, int] | None, transform: PixelTransform | None
) -> PixelTransform:
    """The transform to the output grid: ``transform``, or a plain resize to ``out_size``, or none."""
    if transform is None:
        transform = PixelTransform.identity(width, height)
        if out_size is not None:
            transform = transform.resize(int(out_size[0]), int(out_size[1]))
    elif out_size is not None:
        raise ValueError("give out_size or transform, not both")
    if (transform.in_width, transform.in_height) != (width, height):
        raise ValueError(f"transform is for a {transform.in_width}x{transform.in_height} image, not {width}x{height}")
    return transform


def _image_regions(shapes: Any, image: np.ndarray | None, parsed: list, width: int, height: int, file: Any) -> Regions:
    """The image's :class:`Regions`: ``shapes`` when given (grown from the same annotations), else
    grown on ``image`` from the annotations' positive points."""
    if shapes is None:
        if image is None:
            raise PointlyError(
                "shape 'watershed' needs the image",
                file=file,
                record="--shape",
                fix="pass the images (pointly targets --images DIR)",
            )
        if tuple(np.asarray(image).shape[:2]) != (height, width):
            raise PointlyError(
                f"image is {np.asarray(image).shape[1]}x{np.asarray(image).shape[0]} but its "
                f"record says {width}x{height}",
                file=file,
                fix="the images and the points file do not belong together",
            )
        shapes = Regions.grow(image, [c[l == 1] for _, c, l in parsed])
    if len(shapes.boxes) != len(parsed):
        raise ValueError("regions must be grown from the same annotations")
    return shapes


def _hull_shapes(
    shapes: Sequence[Any] | None, parsed: list, opts: TargetOptions, centres: list[np.ndarray]
) -> Sequence[Any]:
    """One input-coordinate geometry per annotation: ``shapes`` when given, else the image's shapes
    (:func:`~pointly.pointgen.targets.shapes.image_shapes`) of ``opts``, from the annotations'
    distinct positive points ``centres``."""
    if shapes is not None and len(shapes) != len(parsed):
        raise ValueError("shapes must hold one geometry per annotation")
    if shapes is None:
        shapes = image_shapes(
            [c[l == 1] for _, c, l in parsed],
            [c[l != 1] for _, c, l in parsed],
            shape=opts.shape,
            concave_ratio=opts.concave_ratio,
            point_radius=opts.point_radius,
            parts=opts.parts,
            centres=centres,
        )
    return shapes


def _points_as_labels(owner: np.ndarray, blocked: np.ndarray, segs: list[dict], W: int) -> None:
    """Points are hard labels, in place in ``owner``: a point's pixel belongs to its segment, unless
    two segments' points share it; a segment's label-0 point pixels are never positive for it.
    Every point's pixel is marked in ``blocked`` (no dilation reaches it)."""
    if segs:
        all_r = np.concatenate([s["pix"][0] for s in segs])
        all_c = np.concatenate([s["pix"][1] for s in segs])
        all_k = np.concatenate([np.full(s["pix"][0].size, s["k"], np.int32) for s in segs])
        if all_r.size:
            nk = len(segs) + 1
            pairs = sorted_unique((all_r * W + all_c) * nk + all_k)  # distinct (pixel, segment), sorted
            pair_pix, pair_k = pairs // nk, (pairs % nk).astype(np.int32)
            first = run_starts(pair_pix)  # pair_pix is sorted: its runs are the distinct pixels
            pix, nseg = pair_pix[first], np.diff(np.append(first, pair_pix.size))
            first_k = pair_k[first]
            rr, cc = pix // W, pix % W
            owner[rr, cc] = np.where(nseg == 1, first_k, 0)
            blocked[rr, cc] = True
        for s in segs:
            nr, nc = s["neg"]
            if nr.size:
                hit = owner[nr, nc] == s["k"]
                owner[nr[hit], nc[hit]] = 0
                blocked[nr, nc] = True


def _region_boxes(owner: np.ndarray, segs: list[dict], H: int, W: int) -> None:
    """Each record's ``box``: where its segment owns pixels (find_objects: one pass for all)."""
    from scipy.ndimage import find_objects

    found = find_objects(owner, max_label=len(segs)) if segs else []
    for s, sl in zip(segs, found):
        s["box"] = [W, H, -1, -1] if sl is None else [sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1]


def _grown_boxes_out(distinct: list[np.ndarray], transform: PixelTransform) -> np.ndarray:
    """Per segment, :func:`_grown_box` of its distinct point centres mapped to the output grid and
    clipped to it: rows ``x0, y0, x1, y1`` (NaN for a segment of one distinct point).

    All segments at once, with the same arithmetic as :func:`_grown_box` and
    :meth:`PixelTransform.apply` element by element (the same values): a dozen small numpy calls
    per image instead of per segment (0.2 ms of the 6-segment image's build, measured)."""
    H, W = transform.shape
    n = np.array([c.shape[0] for c in distinct])
    out = np.full((n.size, 4), np.nan)
    if not n.size:
        return out
    starts = np.cumsum(n) - n
    allc = np.concatenate(distinct)
    lo, hi = np.minimum.reduceat(allc, starts, axis=0), np.maximum.reduceat(allc, starts, axis=0)
    many = n >= 2
    n, lo, hi = n[many, None], lo[many], hi[many]
    mid, half = (lo + hi) / 2, (hi - lo) * (n + 1) / (n - 1) / 2 + 0.5
    corners = transform.apply(np.stack([mid - half, mid + half], axis=1))  # (K, 2 corners, xy)
    xs, ys = np.clip(corners[:, :, 0], 0, W), np.clip(corners[:, :, 1], 0, H)
    out[many] = np.stack([xs.min(1), ys.min(1), xs.max(1), ys.max(1)], axis=1)
    return out


def _segment_target(
    s: dict,
    owner: np.ndarray,
    isthing: Mapping[int, bool],
    grown: np.ndarray | None,
    transform: PixelTransform,
) -> SegmentTarget:
    """The target of one segment record: its mask cut from the owner map over its (dilated) box,
    its size box (united with ``grown``, its :func:`_grown_boxes_out` row, unless None or NaN: no
    size correction), and its annotation's fields."""
    H, W = transform.shape
    x0, y0, x1, y1 = s["box"]
    rx0, ry0, rx1, ry1 = x0, y0, x1, y1
    if "dbox" in s:
        dx0, dy0, dx1, dy1 = s["dbox"]
        rx0, ry0, rx1, ry1 = min(rx0, dx0), min(ry0, dy0), max(rx1, dx1), max(ry1, dy1)
    mask = np.zeros((H, W), dtype=bool)
    if rx1 >= rx0 and ry1 >= ry0:
        np.equal(owner[ry0 : ry1 + 1, rx0 : rx1 + 1], s["k"], out=mask[ry0 : ry1 + 1, rx0 : rx1 + 1])
    bbox = _box(x0, y0, x1, y1)
    # the points' box underestimates the object (a region's box does not): grown by (n+1)/(n-1)
    if grown is not None and bbox[2] > 0 and not np.isnan(grown[0]):
        bx0, by0, bx1, by1 = grown
        bx0, by0 = min(bx0, bbox[0]), min(by0, bbox[1])
        bx1, by1 = max(bx1, bbox[0] + bbox[2]), max(by1, bbox[1] + bbox[3])
        bbox = (float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0))
    ann = s["ann"]
    src = ann.get("source_segment_id")
    return SegmentTarget(
        annotation_id=int(ann.get("id", s["k"])),
        category_id=int(ann["category_id"]),
        isthing=isthing[int(ann["category_id"])],
        centre=s["centre"],
        mask=mask,
        bbox=bbox,
        source_segment_id=None if src is None else int(src),
        num_points=s["npos"],
    )


def centre_heatmap(
    targets: ImageTargets,
    class_index: Mapping[int, int],
    num_classes: int,
    *,
    things_only: bool = True,
    scale: float = 1.0,
    out_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """``(num_classes, H, W)`` float32 heatmap with a CenterNet Gaussian at each thing's centre.

    The peak sits at ``floor(centre · scale)`` (clamped), the radius is
    :func:`~pointly.pointgen.targets.centers.gaussian_radius` of the shape's box scaled by ``scale``, drawn
    with :func:`~pointly.pointgen.targets.centers.draw_gaussian` (max-merge) — the same code as the
    fully supervised targets. ``scale`` maps the target grid to a coarser level
    (e.g. 0.5 for stride 8 from stride-4 targets); ``out_shape`` defaults to the grid scaled.
    """
    H, W = targets.shape
    if out_shape is None:
        out_shape = (max(1, int(math.ceil(H * scale - 1e-9))), max(1, int(math.ceil(W * scale - 1e-9))))
    heat = np.zeros((num_classes, *out_shape), dtype=np.float32)
    for s in targets.segments:
        if (things_only and not s.isthing) or s.category_id not in class_index:
            continue
        cx = min(max(int(math.floor(s.centre[0] * scale)), 0), out_shape[1] - 1)
        cy = min(max(int(math.floor(s.centre[1] * scale)), 0), out_shape[0] - 1)
        w, h = s.box_size
        r = gaussian_radius(h * scale, w * scale)
        draw_gaussian(heat[class_index[s.category_id]], cx, cy, r)
    return heat


def shapes_for(annotations: Iterable[Mapping], options: TargetOptions, image: np.ndarray | None = None) -> Any:
    """The input-coordinate shapes of one image's annotations (:func:`~pointly.pointgen.targets.shapes.image_shapes`
    over all of them together), or with ``shape="watershed"`` their :class:`Regions` on ``image``,
    to reuse across augmentations."""
    pos, neg = [], []
    for ann in annotations:
        coords = np.asarray(ann["point_coords"], dtype=np.int64).reshape(-1, 2)
        labels = np.asarray(ann.get("point_labels", [1] * len(coords))).reshape(-1)
        pos.append(coords[labels == 1])
        neg.append(coords[labels != 1])
    if options.shape == "watershed":
        if image is None:
            raise PointlyError(
                "shape 'watershed' needs the image",
                record="--shape",
                fix="the regions grow over the image: pass it (the training set does)",
            )
        return Regions.grow(image, pos)
    return image_shapes(
        pos,
        neg,
        shape=options.shape,
        concave_ratio=options.concave_ratio,
        point_radius=options.point_radius,
        parts=options.parts,
    )
