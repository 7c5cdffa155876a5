"""The per-segment shape claims of one image, resolved into its owner map.

The owner map is the output grid's ``H × W`` int32 map of the segment each pixel is positive for
(0 = ignored; ``k`` = the ``k``-th non-crowd segment). Every segment's shape, mapped through the
:class:`~pointly.pointgen.targets.pixel_transform.PixelTransform`, claims pixels; the claims of all
segments are rasterised together (:func:`pointly.pointgen.targets.packed_claims.claim_runs`: per
layer — things, stuff, and their dilations — how many shapes claim a pixel, the sum of their
segment ids and of the squared ids, as runs of pixels along the rows) in one batched scanline
pass, never by drawing a full-size mask per shape; each run's owner follows from its sums, and a
pixel claimed more than once is given by the overlap rule (:mod:`pointly.pointgen.targets.overlaps`).
With ``shape="watershed"`` the image's regions take the place of the claims (:func:`region_owner`).

:func:`pointly.pointgen.targets.build.build_targets` strings these steps together: the segment
records, the owner of the shapes and of their dilations into free pixels, then the points as hard
labels.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from pointly.pointgen.targets.overlaps import contested_owners
from pointly.pointgen.targets.packed_claims import claim_maps, claim_runs
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.shapes import dilate_all, mapped_shape_rings


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
    # annotation by annotation, without three transform calls per segment), split back into
    # annotations: the positive points, and the positive and negative ones on the canvas (one
    # boolean selection of all points each, not nine small ones per segment)
    sizes = [len(coords) for _, coords, _ in parsed]
    flat = np.concatenate([coords for _, coords, _ in parsed]) if parsed else np.zeros((0, 2))
    out_xy = transform.point_centres(flat)
    out_col, out_row, out_in = transform.point_pixels(flat)
    index_of = np.repeat(np.arange(len(parsed)), sizes)
    pos = np.concatenate([labels == 1 for _, _, labels in parsed]) if parsed else np.zeros(0, bool)

    def split(values: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
        return np.split(values[keep], np.cumsum(np.bincount(index_of[keep], minlength=len(parsed)))[:-1])

    pos_in, neg_in = pos & out_in, ~pos & out_in
    pix_rows, pix_cols = split(out_row, pos_in), split(out_col, pos_in)
    neg_rows, neg_cols = split(out_row, neg_in), split(out_col, neg_in)
    pos_xy = split(out_xy, pos)
    for index, ((ann, _, _), geom, rings) in enumerate(zip(parsed, shapes, all_rings), start=1):
        if ann.get("iscrowd", 0):
            if regions:
                region_crowd[index] = True
            else:
                crowd_rings.append(rings)
            continue
        region_segment[index] = len(segs) + 1
        centres = pos_xy[index - 1]
        centre_xy = centres.mean(axis=0) - 0.5
        segs.append(
            dict(
                ann=ann,
                k=len(segs) + 1,
                pix=(pix_rows[index - 1], pix_cols[index - 1]),
                neg=(neg_rows[index - 1], neg_cols[index - 1]),
                centre=(float(centre_xy[0]), float(centre_xy[1])),
                npos=len(centres),
                thing=isthing[int(ann["category_id"])],
                geom=geom,
                rings=rings,
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
) -> tuple[np.ndarray, np.ndarray | None]:
    """The owner map of the segments' shapes and, with ``dilated``, of the shapes grown by
    ``radius_in`` input pixels into the pixels that no shape claims; and the crowd shapes' mask
    (None without crowd).

    ``nearest`` picks the overlap rule (else exclusive): between shapes of one kind the segment
    with the nearest point wins (a tie is nobody's), a thing's shape beats a stuff shape; several
    dilations reaching a pixel follow the same rule. A dilation never reaches a point's pixel: the
    pixels of the records' points that no shape claims are left 0 here, for
    :func:`pointly.pointgen.targets.build.build_targets` to label. Sets each record's ``box`` (its
    shape's covered pixels and its own point pixels, inclusive ``x0, y0, x1, y1``) and, with
    ``dilated``, its ``drings`` (the grown shape's rings) and, where the grown shape covers a
    pixel, its ``dbox``.

    How: per run of pixels with the same claims (:func:`claim_runs`), the owner follows from the
    counts and id sums of the four layers (things, stuff, dilated things, dilated stuff), and the
    map is one ``np.repeat`` of the runs' owners; only the pixels of runs that two or more shapes
    of a kind claim are resolved one by one (:func:`contested_owners`). The same owners as
    decoding box-wide claim maps and masking by them, without a box-sized pass per field
    (benchmarks/results_targets.md).
    """
    H, W = transform.shape
    kinds = [[s for s in segs if s["thing"]], [s for s in segs if not s["thing"]]]
    layers = [[s["rings"] for s in kind] for kind in kinds]
    layer_ids = [[s["k"] for s in kind] for kind in kinds]
    if dilated:
        grown = mapped_shape_rings(dilate_all([s["geom"] for s in segs], radius_in), transform.apply)
        for s, drings in zip(segs, grown):
            s["drings"] = drings
        layers += [[s["drings"] for s in kind] for kind in kinds]
        layer_ids += layer_ids
    runs = claim_runs(layers, H, W, ids=layer_ids)
    crowd = claim_maps(crowd_rings, H, W)[0] > 0 if crowd_rings else None
    for li, kind in enumerate(kinds):
        for s, box in zip(kind, runs.boxes[li]):
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
        if dilated:
            for s, box in zip(kind, runs.boxes[2 + li]):
                if box[2] >= box[0]:
                    s["dbox"] = tuple(int(v) for v in box)

    # each run's owner: the shapes' where a shape claims it, else the dilations'
    count, idsum = runs.count, runs.idsum
    claimed = (count[0] > 0) | (count[1] > 0)
    value, contested = _run_owners(count[0], count[1], idsum[0], idsum[1], nearest)
    if dilated:
        dvalue, dcontested = _run_owners(count[2], count[3], idsum[2], idsum[3], nearest)
        value = np.where(claimed, value, dvalue)
        contested += [c & ~claimed for c in dcontested]
    owner = np.repeat(value.astype(np.int32), runs.length).reshape(H, W)
    rings = [s["rings"] for s in segs]
    drings = [s.get("drings") for s in segs]
    points = [s["points"] for s in segs]
    for layer, runs_of in enumerate(contested):  # things, stuff[, dilated things, dilated stuff]
        if runs_of.any():
            flat, run = runs.pixels(runs_of)
            rows, cols = np.divmod(flat, W)
            owner.reshape(-1)[flat] = contested_owners(
                rows,
                cols,
                runs.count[layer, run],
                runs.idsum[layer, run],
                runs.squares[layer, run],
                layer_ids[layer],
                runs.boxes[layer],
                rings if layer < 2 else drings,
                points,
            )
    if dilated:  # no dilation on a point's pixel: what the shapes leave there (0 if none claims it)
        pix = [s["pix"][0] * W + s["pix"][1] for s in segs] + [s["neg"][0] * W + s["neg"][1] for s in segs]
        flat = np.concatenate(pix)
        if flat.size:
            owner.reshape(-1)[flat[~claimed[runs.run_of(flat)]]] = 0
    clear_outside_image(owner, transform)
    return owner, crowd


def _run_owners(
    count_t: np.ndarray, count_s: np.ndarray, idsum_t: np.ndarray, idsum_s: np.ndarray, nearest: bool
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Per run, from the claims of a things layer and a stuff layer: the owner (0: none, or the
    rule's tie) and the runs whose pixels the nearest-point rule must resolve one by one, for the
    things layer and the stuff layer (none with the exclusive rule).

    Nearest: one claimer of a kind is the owner, a thing's shape beats a stuff shape; two or more
    claimers of a kind are contested (owner 0 until resolved). Exclusive: the owner is the one
    claimer of the two layers together, a pixel claimed twice is nobody's."""
    if not nearest:
        one_t = (count_t == 1) & (count_s == 0)
        one_s = (count_s == 1) & (count_t == 0)
        none = np.zeros(count_t.shape, bool)
        return np.where(one_t, idsum_t, np.where(one_s, idsum_s, 0)), [none, none]
    contested = [count_t > 1, (count_t == 0) & (count_s > 1)]
    value = np.where(count_t == 1, idsum_t, np.where((count_t == 0) & (count_s == 1), idsum_s, 0))
    return value, contested


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
