"""The per-segment shape claims of one image, resolved into its owner map.

The owner map is the output grid's ``H × W`` int32 map of the segment each pixel is positive for
(0 = ignored; ``k`` = the ``k``-th non-crowd segment). Every segment's shape, mapped through the
:class:`~pointly.pointgen.targets.pixel_transform.PixelTransform`, claims pixels; the claims of all
segments are rasterised together (:func:`pointly.pointgen.targets.packed_claims.pack_claims`: per
layer — things, stuff, and their dilations — how many shapes claim a pixel, the sum of their
segment ids and of the squared ids) in one batched scanline pass over the union box of all shapes,
never by drawing a full-size mask per shape, and a pixel claimed more than once is given by the
overlap rule (:mod:`pointly.pointgen.targets.overlaps`). With ``shape="watershed"`` the image's
regions take the place of the claims (:func:`region_owner`).

:func:`pointly.pointgen.targets.build.build_targets` strings these steps together: the segment
records, the owner of the shapes, the points as hard labels, then the dilations into free pixels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pointly.pointgen.targets.overlaps import contested_owners
from pointly.pointgen.targets.packed_claims import PackedClaims, claim_maps, pack_claims
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.shapes import dilate_all, mapped_shape_rings


@dataclass
class ShapeClaims:
    """The claims of an image's shapes that the dilation step reads again: the packed claim maps
    (layers: things, stuff and, with dilation, dilated things, dilated stuff), the segment records
    of each kind (things, stuff), the segment ids of each layer's shapes, the claim counts of the
    two shape layers over the claims' box (one byte a pixel unless a layer has 256 shapes or
    more) and the scratch array of the box that the fields are decoded through."""

    packed: PackedClaims
    kinds: list[list[dict]]
    layer_ids: list[list[int]]
    count_t: np.ndarray
    count_s: np.ndarray
    scratch: np.ndarray


def segment_records(
    parsed: Sequence[tuple[Mapping, np.ndarray, np.ndarray]],
    shapes: Sequence[Any],
    isthing: Mapping[int, bool],
    transform: PixelTransform,
    regions: bool,
) -> tuple[list[dict], list, np.ndarray, np.ndarray]:
    """The non-crowd segments of one image, in annotation order, as records on the output grid.

    ``parsed`` holds ``(annotation, coords, labels)`` per annotation, ``shapes`` its geometry (input
    coordinates; ``None`` each with ``regions``). A record holds the annotation, the segment's
    number ``k`` (1, 2, …), its positive and negative point pixels, its centre, its kind and its
    shape's rings on the output grid. Returns ``(records, crowd_rings, region_segment,
    region_crowd)``: the rings of the crowd annotations' shapes and, for regions, per annotation
    index + 1 the segment ``k`` it became (0: crowd) and whether it is crowd.
    """
    # shapes (input coordinates) of every annotation, mapped to the output grid
    segs: list[dict] = []  # non-crowd segments, in annotation order
    crowd_rings = []
    region_segment = np.zeros(len(parsed) + 1, dtype=np.int32)  # regions: annotation index + 1 -> segment k
    region_crowd = np.zeros(len(parsed) + 1, dtype=bool)  # regions: annotation index + 1 -> crowd
    all_rings = [None] * len(parsed) if regions else mapped_shape_rings(list(shapes), transform.apply)
    # every annotation's points through the transform at once (elementwise: the same values as
    # annotation by annotation, without three transform calls per segment)
    sizes = [len(coords) for _, coords, _ in parsed]
    flat = np.concatenate([coords for _, coords, _ in parsed]) if parsed else np.zeros((0, 2))
    out_xy = transform.point_centres(flat)
    out_col, out_row, out_in = transform.point_pixels(flat)
    ends = np.cumsum(sizes)
    for index, ((ann, coords, labels), geom, rings) in enumerate(zip(parsed, shapes, all_rings), start=1):
        pos = coords[labels == 1]
        if ann.get("iscrowd", 0):
            if regions:
                region_crowd[index] = True
            else:
                crowd_rings.append(rings)
            continue
        region_segment[index] = len(segs) + 1
        at = slice(ends[index - 1] - sizes[index - 1], ends[index - 1])
        is_pos, is_neg = labels == 1, labels != 1
        pc, pr, pin = out_col[at][is_pos], out_row[at][is_pos], out_in[at][is_pos]
        nc, nr, nin = out_col[at][is_neg], out_row[at][is_neg], out_in[at][is_neg]
        centres = out_xy[at][is_pos]
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
    return segs, crowd_rings, region_segment, region_crowd


def shape_owner(
    segs: list[dict],
    crowd_rings: list,
    radius_in: float,
    dilated: bool,
    nearest: bool,
    transform: PixelTransform,
) -> tuple[np.ndarray, np.ndarray | None, ShapeClaims]:
    """The owner map of the segments' shapes, the crowd shapes' mask (None without crowd) and the
    claims the dilation step reads again.

    Sets each record's ``box`` (its shape's covered pixels and its own point pixels, inclusive
    ``x0, y0, x1, y1``) and, with ``dilated``, its ``drings`` (the shape grown by ``radius_in``
    input pixels). ``nearest`` picks the overlap rule (else exclusive).
    """
    H, W = transform.shape
    # things and stuff in separate layers, and with dilation the dilated shapes in two more: per
    # pixel and layer, how many shapes claim it, the sum of their segment ids and (to name the two
    # claimers of a contested pixel) the sum of the squared ids, all in one pass
    kinds = [[s for s in segs if s["thing"]], [s for s in segs if not s["thing"]]]
    layers = [[s["rings"] for s in kind] for kind in kinds]
    layer_ids = [[s["k"] for s in kind] for kind in kinds]
    if dilated:
        grown = mapped_shape_rings(dilate_all([s["geom"] for s in segs], radius_in), transform.apply)
        for s, drings in zip(segs, grown):
            s["drings"] = drings
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

    # owner = the segment a pixel is positive for (0: ignored); see the module docstring. Written
    # straight into the owner's box, each layer's fields decoded once through one scratch array
    owner = np.zeros((H, W), dtype=np.int32)
    box = owner[ys, xs]
    scratch = np.empty(claims.shape, dtype=claims.scratch_dtype())
    count_t, count_s = _count(claims, 0, scratch), _count(claims, 1, scratch)
    if not nearest:  # a pixel claimed by two shapes is nobody's
        _put_idsum(box, claims, 0, scratch, (count_t == 1) & (count_s == 0))
        _put_idsum(box, claims, 1, scratch, (count_s == 1) & (count_t == 0))
    else:  # nearest point among same-kind claimers; a thing's shape beats a stuff shape
        no_thing = count_t == 0
        _put_idsum(box, claims, 1, scratch, (count_s == 1) & no_thing)
        _put_idsum(box, claims, 0, scratch, count_t == 1)
        _put_contested(box, claims, 1, (count_s > 1) & no_thing, layer_ids[1], seg_rings, seg_points)
        _put_contested(box, claims, 0, count_t > 1, layer_ids[0], seg_rings, seg_points)
    clear_outside_image(owner, transform)
    return owner, crowd, ShapeClaims(claims, kinds, layer_ids, count_t, count_s, scratch)


def _count(claims: PackedClaims, layer: int, scratch: np.ndarray) -> np.ndarray:
    """The claim count of ``layer`` over the claims' box, in the narrowest dtype that holds it."""
    return claims.field_into(layer, 0, np.empty(claims.shape, claims.count_dtype(layer)), scratch)


def _put_idsum(box: np.ndarray, claims: PackedClaims, layer: int, scratch: np.ndarray, where: np.ndarray) -> None:
    """``box[where] = `` the id sum of ``layer`` (its one claimer's id where ``where`` marks pixels
    that one shape of the layer claims), decoded in ``scratch``."""
    if where.any():
        claims.field_into(layer, 1, scratch, scratch)
        np.copyto(box, scratch, where=where, casting="unsafe")


def _put_contested(
    box: np.ndarray,
    claims: PackedClaims,
    layer: int,
    contested: np.ndarray,
    ids: Sequence[int],
    rings: Sequence[list],
    points: Sequence[np.ndarray],
    *,
    only_owned: bool = False,
) -> None:
    """``box[contested] = `` the nearest-point owner of those pixels among ``layer``'s claimers
    (0 on a tie; with ``only_owned`` ties are left as they are), :func:`contested_owners`."""
    flat = np.flatnonzero(contested)  # np.nonzero of a 2-D mask is several times slower
    if not flat.size:
        return
    rows, cols = np.divmod(flat, contested.shape[1])
    own = contested_owners(claims, layer, rows, cols, ids, rings, points)
    if only_owned:
        won = own > 0
        rows, cols, own = rows[won], cols[won], own[won]
    box[rows, cols] = own


def grow_dilations(
    owner: np.ndarray,
    blocked: np.ndarray,
    segs: list[dict],
    shape_claims: ShapeClaims,
    nearest: bool,
    transform: PixelTransform,
) -> None:
    """Grow the shapes into pixels that no shape claimed and no point blocks (``blocked``), in
    place in ``owner``; several dilations reaching a pixel follow the overlap rule (exclusive:
    nobody's). Sets the ``dbox`` of each record whose dilated shape covers a pixel."""
    claims, kinds, layer_ids = shape_claims.packed, shape_claims.kinds, shape_claims.layer_ids
    count_t, count_s, scratch = shape_claims.count_t, shape_claims.count_s, shape_claims.scratch
    ys, xs = claims.box_slices()
    seg_points = [s["points"] for s in segs]
    for li, kind in enumerate(kinds):
        for s, box in zip(kind, claims.boxes[2 + li]):
            if box[2] >= box[0]:
                s["dbox"] = tuple(int(v) for v in box)
    free = count_t == 0
    free &= count_s == 0
    free &= ~blocked[ys, xs]
    dcount_t, dcount_s = _count(claims, 2, scratch), _count(claims, 3, scratch)
    box = owner[ys, xs]
    if not nearest:
        _put_idsum(box, claims, 2, scratch, free & (dcount_t == 1) & (dcount_s == 0))
        _put_idsum(box, claims, 3, scratch, free & (dcount_s == 1) & (dcount_t == 0))
    else:
        drings = [s["drings"] for s in segs]
        free_no_thing = free & (dcount_t == 0)
        _put_idsum(box, claims, 3, scratch, free_no_thing & (dcount_s == 1))
        _put_idsum(box, claims, 2, scratch, free & (dcount_t == 1))
        _put_contested(
            box, claims, 3, free_no_thing & (dcount_s > 1), layer_ids[3], drings, seg_points, only_owned=True
        )
        _put_contested(box, claims, 2, free & (dcount_t > 1), layer_ids[2], drings, seg_points, only_owned=True)
    clear_outside_image(owner, transform)


def region_owner(
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


def clear_outside_image(owner: np.ndarray, transform: PixelTransform) -> None:
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
