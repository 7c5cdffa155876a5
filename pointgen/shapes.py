"""The shape of a segment from its points: convex or concave hull, disc or capsule when degenerate.

Shapes are shapely polygons in the *input image's pixel-corner coordinates*: a point at integer
pixel ``(x, y)`` is placed at its centre ``(x + 0.5, y + 0.5)``. Hulls are computed once per
annotation in these coordinates and then mapped by the (affine) augmentation transform, so a
shape at stride 4 is the same polygon as at full size, only drawn on a coarser grid.

Cases (docs/targets.md, "Shapes"):

* duplicate points are merged first (they add nothing to a hull);
* **1 distinct point** → a disc of radius ``point_radius`` around it;
* **2 distinct points, or all collinear** → a capsule: the segment between the extreme points
  buffered by ``point_radius`` (round caps);
* otherwise ``convex`` → ``shapely.convex_hull``; ``concave`` → ``shapely.concave_hull(ratio,
  allow_holes=False)`` (``ratio = 1`` is the convex hull, smaller is tighter). shapely returns a
  LineString for collinear input in both cases, which becomes the capsule above.

shapely is used for hulls because it never raised and was always valid and covering in the
libraries.md measurements (the ``concave_hull`` package segfaults on < 2 distinct points and
alphashape is 30–50× slower); ``cv2.convexHull`` is faster for convex hulls alone but has no
concave counterpart, and one code path for both keeps the shapes comparable.
"""
from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

SHAPES = ("convex", "concave")
#: polygon segments per quarter circle for discs, capsules and dilation buffers
QUAD_SEGS = 8


def point_centres(coords: np.ndarray) -> np.ndarray:
    """Distinct pixel centres ``(x + 0.5, y + 0.5)`` of integer pixel coordinates, ``(N, 2)`` float."""
    arr = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    if arr.shape[0] > 1:  # 1-D unique on a packed key (np.unique(axis=0) is ~10x slower)
        key = np.unique(arr[:, 1] * (1 << 31) + arr[:, 0])
        arr = np.stack([key % (1 << 31), key // (1 << 31)], axis=1)
    return arr.astype(np.float64) + 0.5


def hull_shape(coords: np.ndarray, *, shape: str = "concave", concave_ratio: float = 0.3,
               point_radius: float = 6.0) -> BaseGeometry:
    """The shape polygon of one segment's points (integer pixel indices ``(x, y)``), in input
    pixel-corner coordinates. See the module docstring for the degenerate cases."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    centres = point_centres(coords)
    if centres.shape[0] == 0:
        raise ValueError("no points")
    if centres.shape[0] == 1:
        return shapely.Point(centres[0]).buffer(point_radius, quad_segs=QUAD_SEGS)
    multi = shapely.MultiPoint(centres)
    if shape == "convex":
        hull = shapely.convex_hull(multi)
    else:
        hull = shapely.concave_hull(multi, ratio=float(concave_ratio), allow_holes=False)
    if hull.geom_type != "Polygon" or hull.area <= 0.0:
        # collinear (or two) points: the segment between the extreme points, with round caps
        line = shapely.convex_hull(multi)
        if line.geom_type == "Point":  # cannot happen with >= 2 distinct points; kept for safety
            return line.buffer(point_radius, quad_segs=QUAD_SEGS)
        if line.geom_type == "Polygon":  # concave hull collapsed but points span an area
            return line
        return line.buffer(point_radius, quad_segs=QUAD_SEGS)
    return hull


def dilate(geometry: BaseGeometry, radius: float) -> BaseGeometry:
    """The shape grown by a Euclidean ``radius`` (shapely buffer, round joins)."""
    if radius <= 0:
        return geometry
    return geometry.buffer(radius, quad_segs=QUAD_SEGS)


def shape_rings(geometry: BaseGeometry) -> list[np.ndarray]:
    """Exterior rings of a (Multi)Polygon as ``(V, 2)`` arrays (first vertex not repeated)."""
    parts = list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]
    out = []
    for g in parts:
        if g.geom_type == "Polygon" and not g.is_empty:
            out.append(shapely.get_coordinates(shapely.get_exterior_ring(g))[:-1])
    return out
