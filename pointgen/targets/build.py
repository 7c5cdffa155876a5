"""Training targets from points: per segment a centre and a shape mask, per image an ignore mask.

This is the supervision Panoptic FCN trains on when it has points instead of masks (the TPAMI
paper, Sec. 3.5; our design in study.md, "Our design"; docs/targets.md has the table of rules).
For one image and all its annotations:

* **centre** of a segment = the mean of its (positive) points — the "simulated centre";
* **shape** = :func:`pointly.pointgen.targets.shapes.image_shapes`: the convex or concave hull of the
  points, or, where that hull holds another segment's point, the segment's Delaunay parts (never
  a foreign point inside); rasterised exactly with the closed pixel-centre rule
  (:mod:`pointly.pointgen.targets.raster`) on the *output* grid, after the geometric augmentation
  (:class:`~pointly.pointgen.targets.pixel_transform.PixelTransform`), so stride-4 targets never need a
  full-size mask;
* **overlaps** (``overlap = "nearest"``): a thing's shape beats a stuff shape; between shapes of
  one kind the segment with the nearest point wins, an exact tie is ignored (``"exclusive"``, the
  first design: a pixel claimed twice is ignored for both);
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
All segments of an image are handled together on claim maps (per layer — things, stuff, and their
dilations — how many shapes claim a pixel, the sum of their segment ids and of the squared ids,
which name the two claimers of a pixel claimed twice: :mod:`pointly.pointgen.targets.overlaps`), filled by
:func:`pointly.pointgen.targets.raster.pack_claims` in one batched scanline pass over the union box of all
shapes, never by drawing a full-size mask per shape; each segment's mask is cut from its own box.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.centers import draw_gaussian, gaussian_radius
from pointly.pointgen.targets.overlaps import resolve_layer
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.raster import claim_maps, pack_claims
from pointly.pointgen.targets.regions import Regions
from pointly.pointgen.targets.shapes import PARTS, SHAPES, dilate, image_shapes, map_rings, point_centres, shape_rings

DILATION_UNITS = ("relative", "pixels")
#: how overlapping shapes share a pixel (``TargetOptions.overlap``): ``nearest`` = the corrected rules
#: (a thing's shape beats a stuff shape; between shapes of one kind the segment of the nearest point
#: wins, a tie is ignored); ``exclusive`` = the first design, a pixel claimed twice is ignored for
#: both (kept as a study baseline)
OVERLAPS = ("nearest", "exclusive")
#: the dilation radius ``--dilation on`` means: a fraction of the image's longer side, chosen by the
#: target-quality study (docs/targets.md, "Defaults, and why"); training draws from DEFAULT_DILATION_RANGE
DEFAULT_DILATION = 0.02
DEFAULT_DILATION_RANGE = (0.01, 0.03)
#: the hull shapes (pointgen.shapes) and the image-aware regions (pointgen.regions)
TARGET_SHAPES = SHAPES + ("watershed",)

__all__ = [
    "OVERLAPS",
    "object_box",
    "corrected_points_box",
    "DEFAULT_DILATION",
    "DEFAULT_DILATION_RANGE",
    "TargetOptions",
    "SegmentTarget",
    "ImageTargets",
    "build_targets",
    "parse_dilation",
    "centre_heatmap",
    "PixelTransform",
    "DILATION_UNITS",
]


@dataclass(frozen=True)
class TargetOptions:
    """How points become targets (every field is a CLI option of ``pointly targets``/``train``).

    * ``shape``: ``"convex"`` or ``"concave"`` hull of a segment's points, or ``"watershed"``: the
      region the segment's points grow to over the image's colour edges, uncertain pixels ignored
      (:mod:`pointly.pointgen.targets.regions`; needs the image, and takes no dilation).
    * ``concave_ratio``: shapely's ``concave_hull`` ratio in [0, 1] (1 = convex hull; smaller is
      tighter). Default chosen by the target-quality study (docs/targets.md).
    * ``point_radius``: radius of the disc around a single point and half-width of the capsule of
      two or collinear points, in input-image pixels.
    * ``dilation``: ``None`` (off), a radius, or a ``(min, max)`` range drawn uniformly per call.
    * ``dilation_units``: ``"relative"`` (fraction of the input image's longer side) or
      ``"pixels"`` (input-image pixels).
    * ``parts``: ``"delaunay"`` (shapes from the triangulation of all the image's points: never a
      foreign point inside, one part per cluster) or ``"hull"`` (one hull per segment; baseline).
    * ``overlap``: ``"nearest"`` (thing beats stuff, nearest point within a kind) or
      ``"exclusive"`` (a pixel claimed twice is ignored; baseline).
    * ``size_correction``: read a segment's size (FPN level, Gaussian radius) from its points'
      box grown by ``(n + 1) / (n − 1)`` (:func:`object_box`); off = the shape's box (baseline).
    """

    shape: str = "concave"
    concave_ratio: float = 0.3
    point_radius: float = 6.0
    dilation: float | tuple[float, float] | None = None
    dilation_units: str = "relative"
    parts: str = "delaunay"
    overlap: str = "nearest"
    size_correction: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.dilation, list):
            object.__setattr__(self, "dilation", tuple(self.dilation))
        self.validate()

    def validate(self) -> None:
        """Raise :class:`PointlyError` on an out-of-range option."""
        if self.shape not in TARGET_SHAPES:
            raise PointlyError(
                f"unknown shape {self.shape!r}", record="--shape", fix=f"use one of {', '.join(TARGET_SHAPES)}"
            )
        if not (0.0 <= float(self.concave_ratio) <= 1.0):
            raise PointlyError(
                f"concave ratio {self.concave_ratio} is outside [0, 1]",
                record="--concave-ratio",
                fix="1 is the convex hull, 0 the tightest",
            )
        if not (math.isfinite(self.point_radius) and self.point_radius > 0):
            raise PointlyError(f"point radius {self.point_radius} must be a positive number", record="--point-radius")
        if self.parts not in PARTS:
            raise PointlyError(
                f"unknown parts rule {self.parts!r}", record="--parts", fix=f"use one of {', '.join(PARTS)}"
            )
        if self.overlap not in OVERLAPS:
            raise PointlyError(
                f"unknown overlap rule {self.overlap!r}", record="--overlap", fix=f"use one of {', '.join(OVERLAPS)}"
            )
        if self.dilation_units not in DILATION_UNITS:
            raise PointlyError(
                f"unknown dilation units {self.dilation_units!r}",
                record="--dilation",
                fix=f"use one of {', '.join(DILATION_UNITS)}",
            )
        d = self.dilation
        if d is None:
            return
        values = d if isinstance(d, tuple) else (d,)
        if len(values) not in (1, 2) or not all(
            isinstance(v, (int, float)) and math.isfinite(v) and v >= 0 for v in values
        ):
            raise PointlyError(
                f"dilation {d!r} must be a non-negative radius or a (min, max) range",
                record="--dilation",
                fix="e.g. 0.02, 0.01:0.03 or 8px",
            )
        if len(values) == 2 and values[0] > values[1]:
            raise PointlyError(
                f"dilation range {d!r} has min > max", record="--dilation", fix="write MIN:MAX with MIN <= MAX"
            )
        if self.dilation_units == "relative" and max(values) > 0.5:
            raise PointlyError(
                f"relative dilation {d!r} exceeds half the image side",
                record="--dilation",
                fix="relative radii are fractions, e.g. 0.02; use NNpx for pixels",
            )

    def dilation_radius(self, width: int, height: int, rng: np.random.Generator | None = None) -> float:
        """The dilation radius for one call, in input pixels (0.0 when off).

        A range needs ``rng`` (one uniform draw per call); a fixed radius draws nothing.
        """
        d = self.dilation
        if d is None:
            return 0.0
        if isinstance(d, tuple):
            lo, hi = (float(d[0]), float(d[1])) if len(d) == 2 else (float(d[0]), float(d[0]))
            if hi > lo:
                if rng is None:
                    raise ValueError("a dilation range needs rng (a numpy Generator)")
                r = float(rng.uniform(lo, hi))
            else:
                r = lo
        else:
            r = float(d)
        return r * max(width, height) if self.dilation_units == "relative" else r

    def to_dict(self) -> dict[str, Any]:
        """The options as plain JSON values (for resolved-config files)."""
        out = asdict(self)
        if isinstance(self.dilation, tuple):
            out["dilation"] = list(self.dilation)
        return out


def parse_dilation(text: str | None) -> tuple[float | tuple[float, float] | None, str]:
    """Parse a CLI dilation: ``off``, ``on`` (:data:`DEFAULT_DILATION`), ``0.02``, ``0.01:0.03``
    (relative to the longer image side) or ``8px``, ``4:12px`` (input pixels).

    Returns ``(dilation, units)`` for :class:`TargetOptions`.
    """
    if text is None:
        return None, "relative"
    t = str(text).strip().lower()
    if t in ("", "off", "none", "0", "no"):
        return None, "relative"
    if t in ("on", "yes", "default"):
        return DEFAULT_DILATION, "relative"
    units = "relative"
    if t.endswith("px"):
        units, t = "pixels", t[:-2]
    try:
        parts = [float(p.replace("px", "")) for p in t.split(":")]
    except ValueError:
        raise PointlyError(
            f"cannot read dilation {text!r}",
            record="--dilation",
            fix="write off, a radius (0.02), a range (0.01:0.03), or pixels (8px, 4:12px)",
        ) from None
    if len(parts) == 1:
        return parts[0], units
    if len(parts) == 2:
        return (parts[0], parts[1]), units
    raise PointlyError(f"cannot read dilation {text!r}", record="--dilation", fix="a range has two numbers, MIN:MAX")


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
# input checking


def _image_size(image_size: Any) -> tuple[int, int]:
    if isinstance(image_size, Mapping):
        return int(image_size["width"]), int(image_size["height"])
    if hasattr(image_size, "width") and hasattr(image_size, "height"):
        return int(image_size.width), int(image_size.height)
    w, h = image_size
    return int(w), int(h)


def _category_isthing(categories: Any) -> dict[int, bool]:
    if isinstance(categories, Mapping):
        items = categories.values()
    else:
        items = categories
    out = {}
    for c in items:
        if isinstance(c, Mapping):
            out[int(c["id"])] = bool(c.get("isthing", 1))
        else:
            out[int(c.id)] = bool(c.isthing)
    return out


def _record(ann: Mapping, i: int) -> str:
    return f"annotation id {ann.get('id', f'#{i}')} (image_id {ann.get('image_id', '?')})"


def _checked_points(ann: Mapping, i: int, width: int, height: int, file: Any) -> tuple[np.ndarray, np.ndarray]:
    """``(coords int (N, 2), labels int (N,))`` of one annotation, or a PointlyError."""
    rec = _record(ann, i)
    raw = ann.get("point_coords")
    if raw is None or len(raw) == 0:
        raise PointlyError(
            "annotation has no points (empty segment)",
            file=file,
            record=rec,
            fix="drop the annotation or give it at least one point",
        )
    try:
        arr = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError):
        raise PointlyError(
            "point_coords is not a list of [x, y] numbers",
            file=file,
            record=rec,
            fix="write point_coords as [[x, y], ...]",
        ) from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise PointlyError(
            "point_coords is not a list of [x, y] pairs",
            file=file,
            record=rec,
            fix="write point_coords as [[x, y], ...]",
        )
    if not np.all(np.isfinite(arr)):
        j = int(np.nonzero(~np.isfinite(arr).all(axis=1))[0][0])
        raise PointlyError(
            f"point {j} has a NaN or infinite coordinate",
            file=file,
            record=rec,
            fix="points are integer pixel indices; remove or fix the point",
        )
    outside = (arr[:, 0] < 0) | (arr[:, 0] >= width) | (arr[:, 1] < 0) | (arr[:, 1] >= height)
    if outside.any():
        j = int(np.nonzero(outside)[0][0])
        raise PointlyError(
            f"point {j} ({arr[j, 0]:g}, {arr[j, 1]:g}) lies outside the {width}x{height} image",
            file=file,
            record=rec,
            fix="points are pixel indices with 0 <= x < width, 0 <= y < height",
        )
    coords = np.floor(arr).astype(np.int64)
    labels = np.asarray(ann.get("point_labels", [1] * len(coords)), dtype=np.int64).reshape(-1)
    if labels.shape[0] != coords.shape[0]:
        raise PointlyError(
            f"point_labels has {labels.shape[0]} entries but point_coords has {coords.shape[0]}",
            file=file,
            record=rec,
            fix="give one label per point",
        )
    if not np.any(labels == 1):
        raise PointlyError(
            "annotation has no positive point (all point_labels are 0)",
            file=file,
            record=rec,
            fix="a segment needs at least one point with label 1",
        )
    return coords, labels


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
    c = point_centres(coords)
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


def _clear_outside_image(owner: np.ndarray, transform: PixelTransform) -> None:
    """Set to 0 the output pixels whose centres lie outside the image (discs, capsules and
    dilation may reach past its border; padding is no segment's)."""
    H, W = owner.shape
    corners = transform.apply(np.array([[0.0, 0.0], [transform.in_width, transform.in_height]]))
    x0, x1 = sorted(corners[:, 0])
    y0, y1 = sorted(corners[:, 1])
    c0, c1 = max(0, math.ceil(x0 - 0.5)), min(W, math.floor(x1 - 0.5) + 1)
    r0, r1 = max(0, math.ceil(y0 - 0.5)), min(H, math.floor(y1 - 0.5) + 1)
    if r0 > 0:
        owner[:r0] = 0
    if r1 < H:
        owner[r1:] = 0
    if c0 > 0:
        owner[:, :c0] = 0
    if c1 < W:
        owner[:, c1:] = 0


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
    width, height = _image_size(image_size)
    if transform is None:
        transform = PixelTransform.identity(width, height)
        if out_size is not None:
            transform = transform.resize(int(out_size[0]), int(out_size[1]))
    elif out_size is not None:
        raise ValueError("give out_size or transform, not both")
    if (transform.in_width, transform.in_height) != (width, height):
        raise ValueError(f"transform is for a {transform.in_width}x{transform.in_height} image, not {width}x{height}")
    isthing = _category_isthing(categories)
    H, W = transform.shape

    parsed = []
    for i, ann in enumerate(annotations):
        cat = ann.get("category_id")
        if cat not in isthing:
            raise PointlyError(
                f"unknown category_id {cat}",
                file=file,
                record=_record(ann, i),
                fix="add the category to categories or correct category_id",
            )
        coords, labels = _checked_points(ann, i, width, height, file)
        parsed.append((ann, coords, labels))
    regions = opts.shape == "watershed"
    if regions:  # the image's regions take the place of the shapes; no dilation
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
        region_labels, region_known = shapes.labels, shapes.known
        shapes = [None] * len(parsed)
    elif shapes is not None and len(shapes) != len(parsed):
        raise ValueError("shapes must hold one geometry per annotation")
    if shapes is None:
        shapes = image_shapes(
            [c[l == 1] for _, c, l in parsed],
            [c[l != 1] for _, c, l in parsed],
            shape=opts.shape,
            concave_ratio=opts.concave_ratio,
            point_radius=opts.point_radius,
            parts=opts.parts,
        )

    radius_in = 0.0 if regions else opts.dilation_radius(width, height, rng)
    blocked = np.zeros((H, W), dtype=bool)

    # shapes (input coordinates) of every annotation, mapped to the output grid
    segs: list[dict] = []  # non-crowd segments, in annotation order
    crowd_rings = []
    region_segment = np.zeros(len(parsed) + 1, dtype=np.int32)  # regions: annotation index + 1 -> segment k
    region_crowd = np.zeros(len(parsed) + 1, dtype=bool)  # regions: annotation index + 1 -> crowd
    for index, ((ann, coords, labels), geom) in enumerate(zip(parsed, shapes), start=1):
        pos = coords[labels == 1]
        rings = None if regions else map_rings(shape_rings(geom), transform.apply)
        if ann.get("iscrowd", 0):
            if regions:
                region_crowd[index] = True
            else:
                crowd_rings.append(rings)
            continue
        region_segment[index] = len(segs) + 1
        pc, pr, pin = transform.point_pixels(pos)
        neg = coords[labels != 1]
        nc, nr, nin = transform.point_pixels(neg)
        centres = transform.point_centres(pos)
        centre_xy = centres.mean(axis=0) - 0.5
        segs.append(
            dict(
                ann=ann,
                k=len(segs) + 1,
                pix=(pr[pin], pc[pin]),
                neg=(nr[nin], nc[nin]),
                centre=(float(centre_xy[0]), float(centre_xy[1])),
                npos=int(len(pos)),
                thing=isthing[int(ann["category_id"])],
                geom=geom,
                rings=rings,
                pos=pos,
                points=centres,
            )
        )

    dilated = radius_in > 0 and bool(segs)
    nearest = opts.overlap == "nearest"
    if regions:  # the segment each region belongs to, where it is known; crowd regions ignored
        owner, crowd = _region_owner(region_labels, region_known, region_segment, region_crowd, transform)
    else:
        # things and stuff in separate layers, and with dilation the dilated shapes in two more: per
        # pixel and layer, how many shapes claim it, the sum of their segment ids and (to name the two
        # claimers of a contested pixel) the sum of the squared ids, all in one pass
        kinds = [[s for s in segs if s["thing"]], [s for s in segs if not s["thing"]]]
        layers = [[s["rings"] for s in kind] for kind in kinds]
        layer_ids = [[s["k"] for s in kind] for kind in kinds]
        if dilated:
            for s in segs:
                s["drings"] = map_rings(shape_rings(dilate(s["geom"], radius_in)), transform.apply)
            layers += [[s["drings"] for s in kind] for kind in kinds]
            layer_ids += layer_ids
        claims = pack_claims(layers, H, W, ids=layer_ids, squares=nearest)
        ys, xs = claims.box_slices()
        crowd = claim_maps(crowd_rings, H, W)[0] > 0 if crowd_rings else None
        for li, kind in enumerate(kinds):
            for s, box in zip(kind, claims.boxes[li]):
                region = [int(v) for v in box]  # x0, y0, x1, y1 inclusive (x1 < x0: empty)
                pr, pc = s["pix"]
                if pc.size:
                    if region[2] < region[0]:
                        region = [W, H, -1, -1]
                    region = [
                        min(region[0], int(pc.min())),
                        min(region[1], int(pr.min())),
                        max(region[2], int(pc.max())),
                        max(region[3], int(pr.max())),
                    ]
                s["box"] = region
        seg_rings = [s["rings"] for s in segs]
        seg_points = [s["points"] for s in segs]

        # owner = the segment a pixel is positive for (0: ignored); see the module docstring
        owner = np.zeros((H, W), dtype=np.int32)
        count_t, count_s = claims.count(0), claims.count(1)
        if not nearest:  # a pixel claimed by two shapes is nobody's
            own = claims.idsum(0)
            own += claims.idsum(1)
            own[(count_t + count_s) != 1] = 0
        else:  # nearest point among same-kind claimers; a thing's shape beats a stuff shape
            own = resolve_layer(claims, 1, count_s, count_t == 0, layer_ids[1], seg_rings, seg_points)
            np.copyto(
                own, resolve_layer(claims, 0, count_t, None, layer_ids[0], seg_rings, seg_points), where=count_t > 0
            )
        owner[ys, xs] = own
        _clear_outside_image(owner, transform)

    # points are hard labels: a point's pixel belongs to its segment, unless two segments' points share it
    if segs:
        all_r = np.concatenate([s["pix"][0] for s in segs])
        all_c = np.concatenate([s["pix"][1] for s in segs])
        all_k = np.concatenate([np.full(s["pix"][0].size, s["k"], np.int32) for s in segs])
        if all_r.size:
            nk = len(segs) + 1
            pairs = np.unique((all_r * W + all_c) * nk + all_k)  # distinct (pixel, segment), sorted
            pair_pix, pair_k = pairs // nk, (pairs % nk).astype(np.int32)
            pix, first, nseg = np.unique(pair_pix, return_index=True, return_counts=True)
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
    if crowd is not None and crowd.any():
        np.copyto(owner, 0, where=crowd & ~blocked)
        blocked |= crowd

    # dilation: grow the shapes into pixels that no shape claimed (never onto a point's pixel);
    # several dilations reaching a pixel: as above (exclusive: nobody's)
    if dilated:
        for li, kind in enumerate(kinds):
            for s, box in zip(kind, claims.boxes[2 + li]):
                if box[2] >= box[0]:
                    s["dbox"] = tuple(int(v) for v in box)
        free = ((count_t + count_s) == 0) & ~blocked[ys, xs]
        dcount_t, dcount_s = claims.count(2), claims.count(3)
        if not nearest:
            grown = claims.idsum(2)
            grown += claims.idsum(3)
            one = free & ((dcount_t + dcount_s) == 1)
        else:
            drings = [s["drings"] for s in segs]
            grown = resolve_layer(claims, 3, dcount_s, free & (dcount_t == 0), layer_ids[3], drings, seg_points)
            np.copyto(
                grown, resolve_layer(claims, 2, dcount_t, free, layer_ids[2], drings, seg_points), where=dcount_t > 0
            )
            one = free & (grown > 0)
        np.copyto(owner[ys, xs], grown, where=one, casting="unsafe")
        _clear_outside_image(owner, transform)

    if regions:  # a segment's box: where it owns pixels (find_objects: one pass for all)
        from scipy.ndimage import find_objects

        found = find_objects(owner, max_label=len(segs)) if segs else []
        for s, sl in zip(segs, found):
            s["box"] = [W, H, -1, -1] if sl is None else [sl[1].start, sl[0].start, sl[1].stop - 1, sl[0].stop - 1]
    out: list[SegmentTarget] = []
    for s in segs:
        x0, y0, x1, y1 = s["box"]
        rx0, ry0, rx1, ry1 = x0, y0, x1, y1
        if "dbox" in s:
            dx0, dy0, dx1, dy1 = s["dbox"]
            rx0, ry0, rx1, ry1 = min(rx0, dx0), min(ry0, dy0), max(rx1, dx1), max(ry1, dy1)
        mask = np.zeros((H, W), dtype=bool)
        if rx1 >= rx0 and ry1 >= ry0:
            mask[ry0 : ry1 + 1, rx0 : rx1 + 1] = owner[ry0 : ry1 + 1, rx0 : rx1 + 1] == s["k"]
        bbox = _box(x0, y0, x1, y1)
        # the points' box underestimates the object (a region's box does not): grown by (n+1)/(n-1)
        grown = corrected_points_box(s["pos"]) if opts.size_correction and not regions and bbox[2] > 0 else None
        if grown is not None:
            corners = transform.apply(np.array(grown).reshape(2, 2))
            bx0, bx1 = sorted(np.clip(corners[:, 0], 0, W))
            by0, by1 = sorted(np.clip(corners[:, 1], 0, H))
            bx0, by0 = min(bx0, bbox[0]), min(by0, bbox[1])
            bx1, by1 = max(bx1, bbox[0] + bbox[2]), max(by1, bbox[1] + bbox[3])
            bbox = (float(bx0), float(by0), float(bx1 - bx0), float(by1 - by0))
        ann = s["ann"]
        src = ann.get("source_segment_id")
        out.append(
            SegmentTarget(
                annotation_id=int(ann.get("id", s["k"])),
                category_id=int(ann["category_id"]),
                isthing=isthing[int(ann["category_id"])],
                centre=s["centre"],
                mask=mask,
                bbox=bbox,
                source_segment_id=None if src is None else int(src),
                num_points=s["npos"],
            )
        )
    image_id = parsed[0][0].get("image_id") if parsed else None
    return ImageTargets(
        segments=out, ignore=owner == 0, owner=owner, transform=transform, dilation_radius=radius_in, image_id=image_id
    )


def _region_owner(
    labels: np.ndarray, known: np.ndarray, segment: np.ndarray, crowd: np.ndarray, transform: PixelTransform
) -> tuple[np.ndarray, np.ndarray | None]:
    """The output grid's owner map (0 = ignored) and crowd mask from input-resolution regions:
    each output pixel takes the region under its centre (nearest neighbour through
    ``transform``); pixels of a crowd region, of no known region, or outside the image are 0."""
    H, W = transform.shape
    cols = np.floor((np.arange(W) + 0.5 - transform.bx) / transform.ax).astype(np.int64)
    rows = np.floor((np.arange(H) + 0.5 - transform.by) / transform.ay).astype(np.int64)
    inside = (
        (rows[:, None] >= 0)
        & (rows[:, None] < labels.shape[0])
        & (cols[None, :] >= 0)
        & (cols[None, :] < labels.shape[1])
    )
    rr, cc = np.clip(rows, 0, labels.shape[0] - 1), np.clip(cols, 0, labels.shape[1] - 1)
    lab = labels[rr[:, None], cc[None, :]]
    ok = inside & known[rr[:, None], cc[None, :]]
    owner = np.where(ok, segment[lab], 0).astype(np.int32)
    crowd_mask = ok & crowd[lab]
    return owner, (crowd_mask if crowd_mask.any() else None)


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
    fully supervised targets (spec §2.3). ``scale`` maps the target grid to a coarser level
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
