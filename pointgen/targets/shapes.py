"""The shape of a segment from its points: convex or concave hull, disc or capsule when degenerate.

Shapes are shapely polygons in the *input image's pixel-corner coordinates*: a point at integer
pixel ``(x, y)`` is placed at its centre ``(x + 0.5, y + 0.5)``. Hulls are computed once per
annotation in these coordinates and then mapped by the (affine) augmentation transform, so a
shape at stride 4 is the same polygon as at full size, only drawn on a coarser grid.

Cases (docs/targets.md, "What a target is"):

* duplicate points are merged first (they add nothing to a hull);
* **1 distinct point** → a disc of radius ``point_radius`` around it;
* **2 distinct points, or all collinear** → a capsule: the segment between the extreme points
  buffered by ``point_radius`` (round caps);
* otherwise ``convex`` → ``shapely.convex_hull``; ``concave`` → ``shapely.concave_hull(ratio,
  allow_holes=False)`` (``ratio = 1`` is the convex hull, smaller is tighter). shapely returns a
  LineString for collinear input in both cases, which becomes the capsule above.

shapely computes both hulls, so one code path serves convex and concave and keeps the shapes
comparable (``cv2.convexHull`` has no concave counterpart).
"""

from __future__ import annotations

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from pointly.pointgen.targets.sorted_arrays import sorted_unique

SHAPES = ("convex", "concave")
#: how a segment's shape meets the other segments of its image (``TargetOptions.parts``):
#: ``delaunay`` = the parts of the segment that the Delaunay triangulation of *all* the image's
#: points gives it (never a foreign point inside, one part per cluster of its points);
#: ``hull`` = one hull of the segment's points alone, whatever lies inside it (a study baseline)
PARTS = ("delaunay", "hull")
#: polygon segments per quarter circle for discs, capsules and dilation buffers
QUAD_SEGS = 8


def point_centres(coords: np.ndarray) -> np.ndarray:
    """Distinct pixel centres ``(x + 0.5, y + 0.5)`` of integer pixel coordinates, ``(N, 2)`` float."""
    arr = np.asarray(coords, dtype=np.int64).reshape(-1, 2)
    if arr.shape[0] > 1:  # 1-D unique on a packed key (np.unique(axis=0) is much slower)
        key = np.unique(arr[:, 1] * (1 << 31) + arr[:, 0])
        arr = np.stack([key % (1 << 31), key // (1 << 31)], axis=1)
    return arr.astype(np.float64) + 0.5


def point_centres_each(coords: list[np.ndarray]) -> list[np.ndarray]:
    """:func:`point_centres` of each entry (the same arrays), with one sort for all of them instead
    of one ``np.unique`` per entry (a third of the hulls' time before, line-profiled on the COCO
    sample)."""
    arrs = [np.asarray(c, dtype=np.int64).reshape(-1, 2) for c in coords]
    if not arrs:
        return []
    sizes = np.array([a.shape[0] for a in arrs])
    allc = np.concatenate(arrs)
    key = allc[:, 1] * (1 << 31) + allc[:, 0]
    entry = np.repeat(np.arange(sizes.size), sizes)
    order = np.lexsort((key, entry))  # by entry, then key: each entry's keys sorted, as np.unique
    key, entry = key[order], entry[order]
    first = np.ones(key.size, bool)
    first[1:] = (key[1:] != key[:-1]) | (entry[1:] != entry[:-1])
    key, entry = key[first], entry[first]
    xy = np.stack([key % (1 << 31), key // (1 << 31)], axis=1).astype(np.float64) + 0.5
    ends = np.cumsum(np.bincount(entry, minlength=sizes.size))
    out = np.split(xy, ends[:-1])
    for i in np.flatnonzero(sizes == 1):  # one point is kept as given, as point_centres does
        out[i] = arrs[i].astype(np.float64) + 0.5
    return out


def hull_shape(
    coords: np.ndarray, *, shape: str = "concave", concave_ratio: float = 0.3, point_radius: float = 6.0
) -> BaseGeometry:
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


def hull_shapes(
    coords: list[np.ndarray],
    *,
    shape: str = "concave",
    concave_ratio: float = 0.3,
    point_radius: float = 6.0,
    centres: list[np.ndarray] | None = None,
) -> list[BaseGeometry]:
    """:func:`hull_shape` of each entry of ``coords``, the same geometries, with one shapely call for
    all the hulls and one sort for all the point centres: 0.68 instead of 1.02 ms for 17 segments,
    1.20 instead of 1.87 for 30 (measured, COCO sample). The degenerate cases (one point,
    collinear points, no point) go through :func:`hull_shape`. ``centres``: the caller's
    :func:`point_centres_each` of ``coords``, when it has them."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}, got {shape!r}")
    if centres is None:
        centres = point_centres_each(coords)
    many = [i for i, c in enumerate(centres) if c.shape[0] > 1]
    out: list = [None] * len(coords)
    if many:
        sizes = np.array([centres[i].shape[0] for i in many])
        multi = shapely.multipoints(
            np.concatenate([centres[i] for i in many]), indices=np.repeat(np.arange(sizes.size), sizes)
        )
        if shape == "convex":
            hulls = shapely.convex_hull(multi)
        else:
            hulls = shapely.concave_hull(multi, ratio=float(concave_ratio), allow_holes=False)
        polygon = (shapely.get_type_id(hulls) == 3) & (shapely.area(hulls) > 0.0)
        for i, hull, ok in zip(many, hulls, polygon):
            out[i] = hull if ok else None
    for i, g in enumerate(out):
        if g is None:  # one point, collinear points, or no point (hull_shape raises)
            out[i] = hull_shape(coords[i], shape=shape, concave_ratio=concave_ratio, point_radius=point_radius)
    return out


def dilate_all(geometries: list[BaseGeometry], radius: float) -> list[BaseGeometry]:
    """:func:`dilate` of each geometry, in one shapely call (the same buffers; 0.28 instead of
    0.50 ms for 17 segments, measured)."""
    if radius <= 0:
        return list(geometries)
    return list(shapely.buffer(np.asarray(geometries, dtype=object), radius, quad_segs=QUAD_SEGS))


def dilate(geometry: BaseGeometry, radius: float) -> BaseGeometry:
    """The shape grown by a Euclidean ``radius`` (shapely buffer, round joins)."""
    if radius <= 0:
        return geometry
    return geometry.buffer(radius, quad_segs=QUAD_SEGS)


def shape_rings(geometry: BaseGeometry) -> list:
    """The polygons of a (Multi)Polygon as ring items of :func:`pointly.pointgen.targets.raster.ring_groups`:
    a ``(V, 2)`` array (first vertex not repeated) per polygon without holes, a tuple ``(exterior,
    hole, ...)`` per polygon with holes. Non-polygon parts are skipped."""
    parts = list(geometry.geoms) if hasattr(geometry, "geoms") else [geometry]
    out: list = []
    for g in parts:
        if g.geom_type == "Polygon" and not g.is_empty:
            exterior = shapely.get_coordinates(shapely.get_exterior_ring(g))[:-1]
            holes = [shapely.get_coordinates(r)[:-1] for r in g.interiors]
            out.append((exterior, *holes) if holes else exterior)
    return out


def map_rings(items: list, fn) -> list:
    """Apply ``fn`` (``(V, 2)`` array → array) to every ring of :func:`shape_rings` items."""
    return [tuple(fn(r) for r in item) if isinstance(item, tuple) else fn(item) for item in items]


def mapped_shape_rings(geometries: list[BaseGeometry | None], fn) -> list[list]:
    """``map_rings(shape_rings(g), fn)`` of each geometry (``None``: no rings), the same arrays,
    with shapely's array functions over all polygons at once and one call of ``fn`` (which must map
    each row on its own, as :meth:`PixelTransform.apply` does) over all exteriors: 0.04 instead of
    0.15 ms for 17 shapes, 0.06 instead of 0.27 for 30 (measured, COCO sample)."""
    out: list[list] = [[] for _ in geometries]
    present = [i for i, g in enumerate(geometries) if g is not None]
    if not present:
        return out
    parts, owner = shapely.get_parts(np.asarray([geometries[i] for i in present], dtype=object), return_index=True)
    keep = (shapely.get_type_id(parts) == 3) & ~shapely.is_empty(parts)
    parts, owner = parts[keep], owner[keep]
    if not parts.size:
        return out
    coords, ring = shapely.get_coordinates(shapely.get_exterior_ring(parts), return_index=True)
    mapped = fn(coords)
    ends = np.cumsum(np.bincount(ring, minlength=parts.size))
    holes = shapely.get_num_interior_rings(parts)
    start = 0
    for j, (part, end) in enumerate(zip(parts, ends)):
        exterior = mapped[start : end - 1]  # the ring without its repeated first vertex
        start = end
        if holes[j]:
            item = (exterior, *(fn(shapely.get_coordinates(r)[:-1]) for r in part.interiors))
        else:
            item = exterior
        out[present[owner[j]]].append(item)
    return out


def _polygons_only(geometry: BaseGeometry) -> BaseGeometry:
    """The polygonal part of a geometry (an intersection may add lines and points)."""
    parts = [g for g in shapely.get_parts(geometry) if g.geom_type == "Polygon" and not g.is_empty]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def _collinear_chain(pts: np.ndarray) -> np.ndarray:
    """Edges ``(E, 2)`` between consecutive points along their line (the Delaunay "triangulation"
    of collinear points, which Qhull refuses)."""
    if len(pts) < 2:
        return np.zeros((0, 2), dtype=np.int64)
    d = pts - pts.mean(axis=0)
    axis = np.linalg.svd(d, full_matrices=False)[2][0]
    order = np.argsort(d @ axis, kind="stable")
    return np.stack([order[:-1], order[1:]], axis=1)


def _nearest_segment_distances(a: np.ndarray, b: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``(E,)`` distance from each segment ``a[e]–b[e]`` (E, 2) to the nearest of the points ``q``
    (Q, 2): the square root of the smallest squared distance, the same value as the smallest of
    ``np.linalg.norm``'s distances (``sqrt(dx² + dy²)``; the square root is monotone and
    correctly rounded) without a square root per pair (1.3x, measured)."""
    ab = (b - a)[:, None, :]
    aq = q[None, :, :] - a[:, None, :]
    t = np.clip((aq * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    d = aq - t[..., None] * ab
    d *= d
    return np.sqrt((d[..., 0] + d[..., 1]).min(axis=1))


def _sorted_isin(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """``np.isin(values, sorted_set)`` for a sorted ``sorted_set``, by one binary search: 5x faster
    than ``np.isin`` on the ~400 edge keys of an image (measured; NumPy 2's ``np.isin`` builds a
    lookup table spanning the keys' range)."""
    if not sorted_set.size:
        return np.zeros(values.shape, bool)
    at = np.minimum(np.searchsorted(sorted_set, values), sorted_set.size - 1)
    return sorted_set[at] == values


def image_shapes(
    positives: list[np.ndarray],
    negatives: list[np.ndarray] | None = None,
    *,
    shape: str = "concave",
    concave_ratio: float = 0.3,
    point_radius: float = 6.0,
    parts: str = "delaunay",
    centres: list[np.ndarray] | None = None,
) -> list[BaseGeometry]:
    """The shapes of all segments of one image, one per entry of ``positives`` (integer pixel
    indices ``(x, y)`` of each segment's positive points; ``negatives``: its label-0 points).

    ``parts = "hull"``: :func:`hull_shape` of each segment alone. ``parts = "delaunay"``: the same
    hull where it holds no other segment's point (nor a negative point); otherwise the image's
    points are triangulated together (Delaunay) and the segment gets

    * the union of the triangles whose three corners are its own points (intersected with its
      concave hull when ``shape = "concave"``). No Delaunay triangle contains a point that is not
      one of its corners, so no shape contains another segment's point, and points that fall in
      several clusters give several parts, never a bridge over the segments between them;
    * a capsule along each Delaunay edge between two of its points that no own triangle holds
      and that leads to a point no own triangle holds (an edge between two triangle parts would
      bridge them), and a disc around each of its points that neither holds (a lone point), of
      radius ``point_radius`` but at most half the distance to the nearest foreign point, so
      these never reach another segment's point either.

    A location holding points of two segments (or a negative point) belongs to nobody: no shape
    uses it as a corner (a segment all of whose points are shared gets an empty polygon). Shapes
    are in input pixel-corner coordinates (point ``(x, y)`` at ``(x + 0.5, y + 0.5)``); they may
    have holes (a foreign point inside a ring of own points). ``centres``: the caller's
    :func:`point_centres_each` of ``positives``, when it has them.
    """
    if parts not in PARTS:
        raise ValueError(f"parts must be one of {PARTS}, got {parts!r}")
    hulls = hull_shapes(
        list(positives), shape=shape, concave_ratio=concave_ratio, point_radius=point_radius, centres=centres
    )
    if parts == "hull":
        return hulls
    from scipy.spatial import Delaunay, QhullError  # lazy: importing scipy.spatial takes ~0.7 s

    negatives = negatives if negatives is not None else []
    sets = [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in positives]
    sets += [np.asarray(p, dtype=np.int64).reshape(-1, 2) for p in negatives]
    n_seg = len(positives)
    coords = np.concatenate(sets) if sets else np.zeros((0, 2), np.int64)
    labels = np.append(np.arange(n_seg, dtype=np.int64), np.full(len(sets) - n_seg, -1, np.int64))
    who = np.repeat(labels, [len(p) for p in sets])  # the segment of each point (-1: a negative)
    key, inv = np.unique(coords[:, 1] * (1 << 31) + coords[:, 0], return_inverse=True)
    lo = np.full(key.size, n_seg, np.int64)
    hi = np.full(key.size, -2, np.int64)
    np.minimum.at(lo, inv, who)
    np.maximum.at(hi, inv, who)
    owner = np.where(lo == hi, lo, -1)  # -1: shared by two segments, or a negative point
    pts = np.stack([key % (1 << 31), key // (1 << 31)], axis=1).astype(np.float64) + 0.5
    # a location is foreign to a segment unless the segment has a positive point there
    mine_at = np.zeros((n_seg, key.size), bool)
    pos_rows = inv[: sum(len(p) for p in sets[:n_seg])]
    mine_at[who[: pos_rows.size], pos_rows] = True
    # every hull against every location in one call (the same tests as hull by hull against its
    # foreign locations, without a shapely call and two index copies per segment), on prepared
    # hulls (an exact predicate either way; 0.05 instead of 0.10 ms for 6 hulls and 130 points,
    # preparing included, measured)
    hull_array = np.asarray(hulls, dtype=object)
    shapely.prepare(hull_array)
    inside = shapely.intersects_xy(hull_array[:, None], pts[None, :, 0], pts[None, :, 1])
    clean = (~(inside & ~mine_at).any(axis=1)).tolist()
    if all(clean):
        return hulls

    simplices = np.zeros((0, 3), np.int64)
    if len(pts) >= 3:
        try:
            simplices = Delaunay(pts).simplices.astype(np.int64)
        except QhullError:  # all points collinear
            simplices = np.zeros((0, 3), np.int64)
    if len(simplices):
        edges = simplices[:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2)
    else:
        edges = _collinear_chain(pts)
    span = len(pts) + 1
    edges = np.sort(edges, axis=1)
    key_e = sorted_unique(edges[:, 0] * span + edges[:, 1])  # 1-D unique of a packed key (axis=0 is much slower)
    edges = np.stack([key_e // span, key_e % span], axis=1)
    tri_owner = owner[simplices]
    tri_own = np.where((tri_owner[:, 0] == tri_owner[:, 1]) & (tri_owner[:, 1] == tri_owner[:, 2]), tri_owner[:, 0], -1)
    edge_owner = np.where(owner[edges[:, 0]] == owner[edges[:, 1]], owner[edges[:, 0]], -1)
    in_tri_edge = np.zeros(len(edges), bool)
    if len(simplices):
        own_edges = np.sort(simplices[tri_own >= 0][:, [[0, 1], [1, 2], [2, 0]]].reshape(-1, 2), axis=1)
        in_tri_edge = _sorted_isin(key_e, np.sort(own_edges[:, 0] * span + own_edges[:, 1]))

    out = []
    for k in range(n_seg):
        if clean[k]:
            out.append(hulls[k])
            continue
        mine = owner == k
        foreign = pts[~mine]
        pieces = []
        tris = simplices[tri_own == k]
        used = np.zeros(len(pts), bool)
        if len(tris):
            used[tris.ravel()] = True
            body = shapely.coverage_union_all(shapely.polygons(pts[tris]))
            if shape == "concave":
                body = _polygons_only(shapely.intersection(body, hulls[k]))
            pieces.append(body)
        lone = edges[(edge_owner == k) & ~in_tri_edge]
        lone = lone[~(used[lone[:, 0]] & used[lone[:, 1]])]  # an edge between two triangle parts is no part
        if len(lone):
            used[lone.ravel()] = True
            a, b = pts[lone[:, 0]], pts[lone[:, 1]]
            r = np.full(len(lone), float(point_radius))
            if len(foreign):
                r = np.minimum(r, 0.5 * _nearest_segment_distances(a, b, foreign))
            pieces.extend(shapely.buffer(shapely.linestrings(np.stack([a, b], axis=1)), r, quad_segs=QUAD_SEGS))
        single = np.flatnonzero(mine & ~used)
        if len(single):
            p = pts[single]
            r = np.full(len(single), float(point_radius))
            if len(foreign):
                r = np.minimum(r, 0.5 * np.linalg.norm(p[:, None] - foreign[None], axis=-1).min(axis=1))
            pieces.extend(shapely.buffer(shapely.points(p), r, quad_segs=QUAD_SEGS))
        if not pieces:  # every point of the segment is shared with another segment: no shape
            out.append(shapely.Polygon())
            continue
        out.append(pieces[0] if len(pieces) == 1 else _polygons_only(shapely.union_all(pieces)))
    return out
