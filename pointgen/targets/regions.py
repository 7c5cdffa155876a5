"""Targets that follow the image: every segment's points seed a region, and the regions grow over
the image until they meet at its colour edges (marker watershed).

A hull knows only where the points are; the image shows where a segment ends. Every segment of an
image has points, so the points of all segments together are markers for a complete partition of
the image: :func:`grow_regions` floods the colour-gradient image (CIE Lab, Gaussian-smoothed, Sobel
magnitude summed over the channels) from the markers with scikit-image's watershed, so a region
stops where it meets another at the strongest edge between their points.

The partition is complete, but not every pixel of it is known: a pixel is **ignored** (label 0)
where the assignment is uncertain instead of guessed —

* on a border between two regions (within ``border_margin`` of the longer image side; the default
  ignores the border pixels themselves), where a one-pixel shift of the edge changes the owner;
* where a coarse flood disagrees (``coarse_agreement``): the same markers flood a copy of the image
  shrunk to about ``coarse_side`` pixels and smoothed more; where the two partitions give a pixel
  different owners, the edge that decided it is weak or thin (a contested border, a leak through a
  gap), and the pixel is ignored. Where an edge is sharp both floods stop at it, so the ignored
  band is as wide as the border is uncertain;
* unlike its region's colour (``colour_limit``): every region gets a Gaussian colour model (CIE Lab)
  fitted on small patches around its own points; a pixel whose squared Mahalanobis distance to its
  region's model exceeds the limit is ignored (a region that flooded into something of another
  colour);
* far from every point (beyond ``reach`` of the longer side), where the flood only followed weak
  edges a long way from any evidence;
* behind an edge from every point: pixels that no point reaches without crossing an edge of at
  least ``barrier`` times the typical strength of the borders the regions met at. A part of the
  image that has no points (an object nobody clicked) is flooded by a neighbour across its outline;
  this rule gives it to nobody instead.

A pixel that two segments' points share seeds nobody. Points stay hard labels for their own
segment in :func:`pointly.pointgen.targets.build.build_targets`, which uses this module for
``shape="watershed"``. No network weights: OpenCV, scikit-image and SciPy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RegionOptions:
    """How regions grow and which pixels count as known.

    * ``smoothing``: Gaussian sigma (input pixels) before the gradient, so that texture and JPEG
      noise do not stop a region.
    * ``compactness``: scikit-image's compact watershed (0 = the classic flood); larger values
      favour regions of even size over the edges.
    * ``border_margin``: pixels closer than this (fraction of the longer side) to a border
      between two regions are ignored; any value below 1 px ignores the border pixels only.
    * ``coarse_agreement``: Gaussian sigma (fraction of the longer side) of a second flood from the
      same markers on the image shrunk by ``max(1, longer side // coarse_side)``; pixels it gives
      to another region than the full-size flood are ignored. 0 turns the rule off. On images whose
      longer side is under ``2 × coarse_side`` the coarse flood is not shrunk, only smoothed more
      (by the default, as much as the full-size one at 128 px: the rule then ignores nothing).
    * ``colour_limit``: pixels whose squared Mahalanobis distance (CIE Lab) to their region's colour
      model exceeds this are ignored (9: three standard deviations); the model is the mean and
      covariance (plus ``colour_floor`` on the diagonal, in Lab units²) of the pixels within
      ``colour_patch`` pixels (a square) of the region's points. 0 turns the rule off.
    * ``reach``: pixels farther than this (fraction of the longer side) from every point are
      ignored.
    * ``barrier``: pixels cut off from every point by edges stronger than this fraction of the
      median edge strength on the borders between regions are ignored; 0 (the default until the
      target study has measured what the rule does to target PQ) turns the rule off.
      docs/targets.md has what 0.3 and 0.5 do to coverage, label accuracy and unclicked objects.

    The defaults of ``border_margin``, ``coarse_agreement`` and ``colour_limit`` are what measured
    best on the COCO sample without losing on COCONut, the nuclei image or the synthetic set
    (docs/targets.md, "Which pixels to trust"); the former default (margin 0.01, no coarse flood,
    no colour rule) is ``RegionOptions(border_margin=0.01, coarse_agreement=0, colour_limit=0)``.
    """

    smoothing: float = 1.0
    compactness: float = 0.0
    border_margin: float = 0.001
    coarse_agreement: float = 5 / 640
    coarse_side: int = 160
    colour_limit: float = 9.0
    colour_patch: int = 3
    colour_floor: float = 4.0
    reach: float = 0.25
    barrier: float = 0.0


def reached_below(gradient: np.ndarray, markers: np.ndarray, level: float) -> np.ndarray:
    """Pixels connected (8-neighbourhood) to a marker through pixels whose gradient is below
    ``level``: the flood of the gradient image up to that level. One connected-components pass
    (OpenCV) instead of a grey-level reconstruction, which costs about 30 times more at 640×480 and
    gives the flood level of every pixel where only one level is needed."""
    import cv2

    low = (gradient < level) | (markers > 0)
    n, comp = cv2.connectedComponents(low.astype(np.uint8), connectivity=8, ltype=cv2.CV_32S)
    seeded = np.zeros(n, dtype=bool)
    seeded[np.unique(comp[markers > 0])] = True
    seeded[0] = False  # OpenCV's label 0 is the background (pixels at or above the level)
    return seeded[comp]


def colour_gradient(rgb: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """Edge strength of an ``H × W × 3`` uint8 RGB image: Sobel magnitude of the smoothed CIE Lab
    channels, summed (Lab, so that a change of hue weighs like a change of lightness).

    OpenCV rather than scikit-image for the three steps: at 640×480 on one core they take about
    6 ms against 40 ms (benchmarks/README.md, image-aware targets); the Lab values agree within 0.4.
    """
    return lab_gradient(_lab(rgb), smoothing)


def _lab(rgb: np.ndarray) -> np.ndarray:
    """CIE Lab (float32; L in 0..100) of an ``H × W × 3`` uint8 RGB image (OpenCV)."""
    import cv2

    return cv2.cvtColor(np.asarray(rgb, dtype=np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def lab_gradient(lab: np.ndarray, smoothing: float = 1.0) -> np.ndarray:
    """:func:`colour_gradient` of an image already in CIE Lab."""
    import cv2

    if smoothing > 0:
        lab = cv2.GaussianBlur(lab, (0, 0), smoothing)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy).sum(axis=2)


def coarse_labels(
    lab: np.ndarray, markers: np.ndarray, labels: np.ndarray, sigma: float, coarse_side: int, compactness: float = 0.0
) -> np.ndarray:
    """The marker watershed of ``lab`` shrunk by ``f = max(1, longer side // coarse_side)``
    (area average), its gradient smoothed by ``sigma`` input pixels, read back at full size
    (nearest). A marker seeds the shrunk image only where its ``f × f`` block lies wholly in its
    own region of the full-size partition ``labels``: a point next to an edge falls in a block
    that mixes both sides, and would start its segment's flood on the other side."""
    import cv2
    from skimage.segmentation import watershed

    h, w = markers.shape
    f = max(1, max(h, w) // coarse_side)
    sh, sw = max(1, h // f), max(1, w // f)
    if f == 1:
        small, coarse = lab, markers
    else:
        small = cv2.resize(lab, (sw, sh), interpolation=cv2.INTER_AREA)
        blocks = labels[: sh * f, : sw * f].reshape(sh, f, sw, f)
        lo, hi = blocks.min(axis=(1, 3)), blocks.max(axis=(1, 3))
        ys, xs = np.nonzero(markers[: sh * f, : sw * f])
        ks = markers[ys, xs]
        ys, xs = ys // f, xs // f
        pure = (lo[ys, xs] == ks) & (hi[ys, xs] == ks)
        coarse = np.zeros((sh, sw), dtype=np.int32)
        coarse[ys[pure], xs[pure]] = ks[pure]
    out = watershed(lab_gradient(small, sigma / f), coarse, compactness=compactness).astype(np.int32)
    if f == 1:
        return out
    return cv2.resize(out, (w, h), interpolation=cv2.INTER_NEAREST)


def colour_distance(
    lab: np.ndarray, labels: np.ndarray, seeds: Sequence[np.ndarray], patch: int = 3, floor: float = 4.0
) -> np.ndarray:
    """Squared Mahalanobis distance (CIE Lab) of every pixel to the colour model of its region:
    mean and covariance (+ ``floor`` × identity) of the pixels within ``patch`` pixels (square
    window, clipped at the image edge) of the region's points ``seeds[k - 1]``. 0 where the
    region has no points or the pixel no region."""
    patch = int(patch)
    n = len(seeds) + 1
    mean = np.zeros((n, 3), dtype=np.float32)
    inv = np.zeros((n, 3, 3), dtype=np.float32)
    for k, pts in enumerate(seeds, start=1):
        pts = np.asarray(pts, dtype=np.int64).reshape(-1, 2)
        if not pts.size:
            continue
        sample = np.concatenate(
            [lab[max(0, y - patch) : y + patch + 1, max(0, x - patch) : x + patch + 1].reshape(-1, 3) for x, y in pts]
        ).astype(np.float64)
        mean[k] = sample.mean(axis=0)
        cov = np.cov(sample.T) if len(sample) > 1 else np.zeros((3, 3))
        inv[k] = np.linalg.inv(cov + floor * np.eye(3))
    # one gather of the mean and the six distinct coefficients of the inverse covariance per pixel
    coef = np.concatenate([mean, inv[:, [0, 1, 2], [0, 1, 2]], 2 * inv[:, [0, 0, 1], [1, 2, 2]]], axis=1).astype(
        np.float32
    )
    c = coef[labels]
    d = lab - c[..., :3]
    d0, d1, d2 = d[..., 0], d[..., 1], d[..., 2]
    out = c[..., 3] * d0 * d0 + c[..., 4] * d1 * d1 + c[..., 5] * d2 * d2
    out += c[..., 6] * d0 * d1 + c[..., 7] * d0 * d2 + c[..., 8] * d1 * d2
    return out


def seed_markers(seeds: Sequence, h: int, w: int) -> np.ndarray:
    """The watershed markers of ``seeds`` (per segment, integer (x, y) pixels) on an ``h × w``
    image: segment k (1-based, in order) at its points, 0 elsewhere and at a pixel that points of
    two segments share (it seeds nobody)."""
    markers = np.zeros((h, w), dtype=np.int32)
    shared = np.zeros((h, w), dtype=bool)
    for k, pts in enumerate(seeds, start=1):
        pts = np.asarray(pts, dtype=np.int64).reshape(-1, 2)
        if not pts.size:
            continue
        xs, ys = pts[:, 0], pts[:, 1]
        taken = (markers[ys, xs] != 0) & (markers[ys, xs] != k)
        shared[ys[taken], xs[taken]] = True
        markers[ys, xs] = k
    markers[shared] = 0
    return markers


def grow_regions(
    rgb: np.ndarray, seeds: Sequence[np.ndarray], *, options: RegionOptions | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Regions of the segments whose points are ``seeds[k]`` (integer ``(x, y)`` pixel indices of
    segment ``k + 1``) on the image ``rgb``.

    Returns ``(labels, known)``: ``labels`` (``H × W`` int32) the complete partition, segment ids
    ``1..K`` (0 only where no segment has a point); ``known`` (bool) the pixels whose label is
    trusted (see the module docstring).
    """
    from skimage.segmentation import watershed

    opts = options or RegionOptions()
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 RGB image, got shape {rgb.shape}")
    h, w = rgb.shape[:2]
    markers = seed_markers(seeds, h, w)
    if not markers.any():
        return np.zeros((h, w), dtype=np.int32), np.zeros((h, w), dtype=bool)
    lab = _lab(rgb)
    gradient = lab_gradient(lab, opts.smoothing)
    labels = watershed(gradient, markers, compactness=opts.compactness)
    labels = labels.astype(np.int32)
    side = max(h, w)
    known = np.ones((h, w), dtype=bool)
    if opts.border_margin > 0 or opts.barrier > 0:
        border = inner_boundaries(labels)
        if opts.border_margin * side > 1 and border.any():
            known &= distance_to_zero(~border) >= opts.border_margin * side
        elif opts.border_margin > 0:
            known &= ~border  # a margin under one pixel: the border pixels themselves
        if opts.barrier > 0 and border.any():
            known &= reached_below(gradient, markers, opts.barrier * float(np.median(gradient[border])))
    if opts.coarse_agreement > 0:
        coarse = coarse_labels(lab, markers, labels, opts.coarse_agreement * side, opts.coarse_side, opts.compactness)
        known &= coarse == labels
    if opts.colour_limit > 0:
        known &= colour_distance(lab, labels, seeds, opts.colour_patch, opts.colour_floor) <= opts.colour_limit
    if opts.reach > 0:
        known &= distance_to_zero(markers == 0) <= opts.reach * side
    return labels, known


def inner_boundaries(labels: np.ndarray) -> np.ndarray:
    """Labelled pixels with a 4-neighbour of another label: scikit-image's
    ``find_boundaries(labels, mode="inner")`` (its default connectivity; the image edge is no
    boundary), as four shifted comparisons, about 4× faster at 640×480 (benchmarks/README.md)."""
    out = np.zeros(labels.shape, dtype=bool)
    dv = labels[1:] != labels[:-1]
    out[1:] |= dv
    out[:-1] |= dv
    dh = labels[:, 1:] != labels[:, :-1]
    out[:, 1:] |= dh
    out[:, :-1] |= dh
    out &= labels != 0
    return out


def distance_to_zero(mask: np.ndarray) -> np.ndarray:
    """Euclidean distance (pixels) from every pixel to the nearest ``False`` pixel of ``mask``: the
    exact transform, as SciPy's ``distance_transform_edt(mask)``, through OpenCV's
    ``DIST_MASK_PRECISE`` (float32), about 3–4× faster at 640×480 (benchmarks/README.md).
    ``mask`` must hold a ``False`` pixel."""
    import cv2

    return cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


@dataclass(frozen=True)
class Regions:
    """The regions of one image's annotations, in their order: ``labels`` (annotation index + 1
    per pixel, at the image's resolution), ``known`` (the trusted pixels) and ``boxes`` (per
    annotation, the input pixel-corner box ``(x0, y0, x1, y1)`` of its known pixels, or None).
    Computed once per image and reused by every augmentation of it."""

    labels: np.ndarray
    known: np.ndarray
    boxes: tuple

    @classmethod
    def grow(cls, rgb: np.ndarray, seeds: Sequence[np.ndarray], options: RegionOptions | None = None) -> Regions:
        """:func:`grow_regions` of ``seeds`` (one array of points per annotation) on ``rgb``."""
        labels, known = grow_regions(rgb, seeds, options=options)
        return cls._with_boxes(labels, known, len(seeds))

    @classmethod
    def _with_boxes(cls, labels: np.ndarray, known: np.ndarray, n: int) -> Regions:
        from scipy.ndimage import find_objects

        found = find_objects(np.where(known, labels, 0), max_label=n) if n else []
        boxes = tuple(
            None if sl is None else (float(sl[1].start), float(sl[0].start), float(sl[1].stop), float(sl[0].stop))
            for sl in found
        )
        return cls(labels, known, boxes)

    def subset(self, keep: Sequence[int]) -> Regions:
        """The regions of the annotations ``keep`` (0-based indices, in the new order); the others'
        pixels belong to nobody."""
        lut = np.zeros(len(self.boxes) + 1, dtype=np.int32)
        lut[np.asarray(keep, dtype=np.int64) + 1] = np.arange(1, len(keep) + 1, dtype=np.int32)
        return Regions(lut[self.labels], self.known, tuple(self.boxes[i] for i in keep))
