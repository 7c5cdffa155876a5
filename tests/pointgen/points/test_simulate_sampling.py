"""Property and hand-made tests of the point-sampling primitives (pointgen/points/sampling.py).

Expectations come from the documented rules, checked against a pixel-by-pixel second
implementation of the boundary definition (simulate_fixtures.boundary_reference) and against
pycocotools for RLE decoding.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils
from simulate_fixtures import boundary_reference, check_segment, true_box

from pointly.pointgen.points import sampling

# pycocotools 2.0 calls np.array(copy=False) inside decode; harmless with numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label_maps = st.tuples(st.integers(1, 14), st.integers(1, 14)).flatmap(
    lambda hw: arrays(np.int64, hw, elements=st.integers(0, 4))
)
masks = st.tuples(st.integers(1, 16), st.integers(1, 16)).flatmap(
    lambda hw: arrays(np.bool_, hw, elements=st.booleans())
)
shares = st.floats(0.0, 1.0, allow_nan=False)
counts = st.integers(1, 25)


@SETTINGS
@given(labels=label_maps)
def test_boundary_map_matches_pixelwise_definition(labels):
    got = sampling.boundary_map(labels)
    for sid in np.unique(labels):
        member = labels == sid
        assert np.array_equal(got & member, boundary_reference(member))


@SETTINGS
@given(labels=label_maps)
def test_boundary_map_with_the_image_edge_matches_pixelwise_definition(labels):
    got = sampling.boundary_map(labels, image_edge=True)
    for sid in np.unique(labels):
        member = labels == sid
        assert np.array_equal(got & member, boundary_reference(member, image_edge=True))


@SETTINGS
@given(mask=masks, points=counts, share=shares, seed=st.integers(0, 2**32))
def test_mask_and_rle_sampling_with_the_image_edge(mask, points, share, seed):
    """``image_edge``: the mask path and the RLE path (which decodes only the mask's box, so must
    tell a crop edge from the image edge) both take the frame pixels as boundary, and agree."""
    kw = dict(points=points, boundary_share=share, image_edge=True)
    sp = sampling.sample_segment_points(mask, rng=np.random.default_rng(seed), **kw)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    h, w = mask.shape
    sr = sampling.sample_rle_points(rle, h, w, rng=np.random.default_rng(seed), **kw)
    if mask.any():
        check_segment(sp, mask, points, share, image_edge=True)
        check_segment(sr, mask, points, share, image_edge=True)
        assert np.array_equal(sr.coords, sp.coords) and sr.kinds == sp.kinds


def test_on_image_edge_of_crops_hand_made():
    # a 2 x 3 crop at (row 0, col 4) of a 5 x 7 image: its top row and right column are the frame
    got = sampling.on_image_edge((2, 3), 0, 4, 5, 7)
    assert got.tolist() == [[True, True, True], [False, False, True]]
    # a crop inside the image touches no edge; the whole image is all frame on a 2 x 2
    assert not sampling.on_image_edge((2, 2), 1, 1, 5, 5).any()
    assert sampling.on_image_edge((2, 2), 0, 0, 2, 2).all()


@SETTINGS
@given(
    labels=label_maps,
    points=counts,
    share=shares,
    seed=st.integers(0, 2**32),
    boxes=st.sampled_from(["none", "true", "shifted"]),
)
def test_label_map_sampling_properties(labels, points, share, seed, boxes):
    seg_ids = [int(v) for v in np.unique(labels) if v != 0]
    if boxes == "none":
        given_boxes = None
    elif boxes == "true":
        given_boxes = [true_box(labels == sid) for sid in seg_ids]
    else:  # wrong boxes: pixels outside them must still be found (slow path)
        given_boxes = [
            [b[0] + 3, b[1] + 3, max(b[2] - 4, 1), max(b[3] - 4, 1)]
            for b in (true_box(labels == sid) for sid in seg_ids)
        ]
    pools = sampling.label_map_pools(labels, seg_ids, given_boxes)
    samples = sampling.sample_pools(
        pools, range(len(seg_ids)), points=points, boundary_share=share, rng=np.random.default_rng(seed)
    )
    for sid, p, sp in zip(seg_ids, pools, samples):
        member = labels == sid
        check_segment(sp, member, points, share)
        assert list(p.bbox()) == true_box(member)
    # the interior pool listed on demand equals the reference too
    for sid, p in zip(seg_ids, pools):
        member = labels == sid
        w = labels.shape[1]
        assert p.image_flat(p.interior, w).tolist() == np.flatnonzero(member & ~boundary_reference(member)).tolist()


@SETTINGS
@given(mask=masks, points=counts, share=shares, seed=st.integers(0, 2**32))
def test_mask_and_rle_sampling_properties(mask, points, share, seed):
    sp = sampling.sample_segment_points(mask, points=points, boundary_share=share, rng=np.random.default_rng(seed))
    check_segment(sp, mask, points, share)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    h, w = mask.shape
    sr = sampling.sample_rle_points(rle, h, w, points=points, boundary_share=share, rng=np.random.default_rng(seed))
    if mask.any():
        check_segment(sr, mask, points, share)
        # the strip decoder keeps raster order, so the same generator draws the same pixels
        assert np.array_equal(sr.coords, sp.coords) and sr.kinds == sp.kinds
    else:
        assert sr.pixels == 0 and len(sr.kinds) == 0


@SETTINGS
@given(mask=masks)
def test_rle_counts_and_strip_match_pycocotools(mask):
    h, w = mask.shape
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = sampling.rle_counts(rle)
    assert counts.sum() == h * w
    decoded = mask_utils.decode(rle).astype(bool)
    crop, row0, col0 = sampling.rle_crop(counts, h, w)
    ch, cw = crop.shape
    assert np.array_equal(crop, decoded[row0 : row0 + ch, col0 : col0 + cw])
    assert crop.sum() == decoded.sum()  # nothing of the mask lies outside the crop
    if decoded.any():  # one empty margin row/column on each side, unless at the image edge
        ys, xs = np.nonzero(decoded)
        assert row0 == max(ys.min() - 1, 0) and row0 + ch - 1 == min(ys.max() + 1, h - 1)
        assert col0 == max(xs.min() - 1, 0) and col0 + cw - 1 == min(xs.max() + 1, w - 1)


def test_rle_counts_uncompressed_list_and_large_values():
    # a 300 x 400 mask with one long run, so counts need several 5-bit chunks and negative deltas
    mask = np.zeros((300, 400), np.uint8)
    mask[10:290, 5:395] = 1
    mask[0:3, 0] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    counts = sampling.rle_counts(rle)
    # hand-derived, column-major: column 0 has rows 0..2 set; then rows 3..299 of column 0,
    # columns 1..4 and rows 0..9 of column 5 are zero; then rows 10..289 are one; then the
    # 10 last rows of column 5 and the 10 first rows of column 6 are zero
    assert counts[:2].tolist() == [0, 3]
    assert counts[2] == 297 + 4 * 300 + 10
    assert counts[3:5].tolist() == [280, 20]
    assert counts.size == 2 + 2 * 390 + 1 and counts[-1] == 10 + 5 * 300
    uncompressed = {"size": [300, 400], "counts": counts.tolist()}
    assert np.array_equal(sampling.rle_counts(uncompressed), counts)


def test_bad_rle_is_value_error():
    with pytest.raises(ValueError):
        sampling.rle_counts({"size": [2, 2], "counts": b"1\x7f"})
    with pytest.raises(ValueError):
        sampling.rle_crop(np.array([1, 2]), 2, 2)  # sums to 3, not 4


def test_hand_made_boundary_with_image_edge():
    # a 4 x 5 map: segment 1 fills the left three columns, segment 2 the right two
    ids = np.array([[1, 1, 1, 2, 2]] * 4)
    b = sampling.boundary_map(ids)
    # only the columns that touch the other segment are boundary; the image edge is not
    assert b.tolist() == [[False, False, True, True, False]] * 4
    # a lone segment filling the whole image has no boundary pixel at all
    assert not sampling.boundary_map(np.ones((3, 3), int)).any()
    # unless the image edge counts: then its ring of 8 pixels is, the centre is not
    # docs/formats.md's 4 x 4 example with the image edge: every pixel of both segments
    doc = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 0, 0], [1, 1, 0, 0]])
    assert np.array_equal(sampling.boundary_map(doc, image_edge=True) & (doc > 0), doc > 0)
    framed = sampling.boundary_map(np.ones((3, 3), int), image_edge=True)
    assert framed.sum() == 8 and not framed[1, 1]
    assert sampling.boundary_map(ids, image_edge=True).tolist() == [
        [True] * 5,
        *[[True, False, True, True, True]] * 2,
        [True] * 5,
    ]
    # a 3 x 3 block in a 5 x 5 VOID frame: its ring of 8 pixels is boundary, the centre interior
    ring = np.zeros((5, 5), int)
    ring[1:4, 1:4] = 7
    bb = sampling.boundary_map(ring) & (ring == 7)
    assert bb.sum() == 8 and not bb[2, 2]


def test_pool_fallbacks_hand_made():
    rng = np.random.default_rng(0)
    # boundary pool too small: take all 2 boundary pixels, the rest interior
    c = sampling.choose_from_pools(50, 2, 10, 1.0, rng)
    assert (len(c.interior), len(c.boundary), c.short) == (8, 2, False)
    # interior pool too small: take all 3 interior pixels, the rest boundary
    c = sampling.choose_from_pools(3, 40, 10, 0.0, rng)
    assert (len(c.interior), len(c.boundary)) == (3, 7)
    # fewer pixels than points: all of them, flagged short
    c = sampling.choose_from_pools(2, 3, 10, 0.5, rng)
    assert sorted(c.interior.tolist()) == [0, 1] and sorted(c.boundary.tolist()) == [0, 1, 2] and c.short
    # exactly as many pixels as points: all, not short
    assert not sampling.choose_from_pools(4, 6, 10, 0.5, rng).short
    # Python round: 0.5 * 5 = 2.5 -> 2 (half to even), 0.5 * 7 = 3.5 -> 4
    assert sampling.boundary_count(5, 0.5) == 2 and sampling.boundary_count(7, 0.5) == 4
    assert sampling.boundary_count(20, 0.25) == 5


def test_label_map_mismatches():
    ids = np.array([[0, 5, 5], [9, 9, 0]])
    with pytest.raises(sampling.LabelMapMismatch, match=r"\[9\] are in the PNG"):
        sampling.label_map_pools(ids, [5])
    with pytest.raises(sampling.LabelMapMismatch, match=r"\[6\] are in segments_info"):
        sampling.label_map_pools(ids, [5, 6, 9])
    with pytest.raises(sampling.LabelMapMismatch, match="twice"):
        sampling.label_map_pools(ids, [5, 5, 9])
    with pytest.raises(sampling.LabelMapMismatch, match="VOID"):
        sampling.label_map_pools(ids, [0, 5, 9])


def test_many_segments_and_hand_made_pools():
    ids = np.arange(1, 301).reshape(15, 20)  # 300 one-pixel segments
    pools = sampling.label_map_pools(ids, list(range(1, 301)))
    for i in (0, 150, 299):
        p = pools[i]
        assert p.interior.size == 0 and p.image_flat(p.boundary, 20).tolist() == [i]
    # 4 x 4: segment 1 = left half, 2 = top right quarter, VOID bottom right
    ids = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [1, 1, 0, 0], [1, 1, 0, 0]])
    p1, p2 = sampling.label_map_pools(ids, [1, 2], [[0, 0, 2, 4], [2, 0, 2, 2]])
    # segment 1: column 1 touches 2 and VOID -> boundary; column 0 is the image edge -> interior
    assert p1.image_flat(p1.boundary, 4).tolist() == [1, 5, 9, 13]
    assert p1.image_flat(p1.interior, 4).tolist() == [0, 4, 8, 12]
    # segment 2: its left column touches 1, its bottom row touches VOID; (0, 3) is interior
    assert p2.image_flat(p2.interior, 4).tolist() == [3]
    assert p2.image_flat(p2.boundary, 4).tolist() == [2, 6, 7]
    assert p1.bbox() == (0.0, 0.0, 2.0, 4.0) and p2.bbox() == (2.0, 0.0, 2.0, 2.0)


def test_bad_options_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sampling.choose_from_pools(5, 5, 0, 0.0, rng)
    with pytest.raises(ValueError):
        sampling.choose_from_pools(5, 5, 3, 1.5, rng)


@SETTINGS
@given(
    labels=label_maps,
    palette=st.lists(st.integers(1, 2**24 - 1), min_size=4, max_size=4, unique=True),
    drop=st.booleans(),
)
def test_uint32_id_maps_pool_exactly(labels, palette, drop):
    # large 24-bit ids in uint32, as the simulator decodes panoptic PNGs
    lut = np.array([0] + palette, dtype=np.uint32)
    ids = lut[labels]
    present = [int(v) for v in np.unique(ids) if v != 0]
    if drop and present:
        with pytest.raises(sampling.LabelMapMismatch, match=f"\\[{present[0]}\\] are in the PNG"):
            sampling.label_map_pools(ids, present[1:])
        return
    listed = present[::-1]
    pools = sampling.label_map_pools(ids, listed, [true_box(ids == sid) for sid in listed])
    w = ids.shape[1]
    for sid, p in zip(listed, pools):
        member = ids == sid
        ref_b = boundary_reference(member)
        assert p.image_flat(p.interior, w).tolist() == np.flatnonzero(member & ~ref_b).tolist()
        assert p.image_flat(p.boundary, w).tolist() == np.flatnonzero(ref_b).tolist()


def test_choose_distinct_is_uniform_over_subsets():
    # 2 of 6 by the i.i.d.-then-dedupe path (4k <= n does not hold for 2 of 6, so use 2 of 9)
    rng = np.random.default_rng(123)
    n, k, trials = 9, 2, 36000
    freq = np.zeros((n, n), int)
    for _ in range(trials):
        a, b = sampling.choose_distinct(n, k, rng)
        assert a != b
        freq[a, b] += 1
    # every ordered pair equally likely: expected trials / 72 = 500 each, sd about 22
    off = freq[~np.eye(n, dtype=bool)]
    assert off.min() > 400 and off.max() < 600
    assert np.trace(freq) == 0
    # the permutation path (4k > n) and the limits
    assert sorted(sampling.choose_distinct(5, 5, rng).tolist()) == [0, 1, 2, 3, 4]
    assert sampling.choose_distinct(5, 0, rng).size == 0
    with pytest.raises(ValueError):
        sampling.choose_distinct(3, 4, rng)


def test_boundary_map_agrees_with_skimage_away_from_the_image_edge():
    # a second library's definition (inner boundaries, 4-connectivity) on blocky random maps
    from skimage.segmentation import find_boundaries

    rng = np.random.default_rng(0)
    for _ in range(50):
        ids = np.kron(rng.integers(0, 4, (6, 6)), np.ones((3, 3), int))
        ids[rng.random(ids.shape) < 0.05] = rng.integers(0, 4)
        ours = sampling.boundary_map(ids) & (ids != 0)
        ref = find_boundaries(ids, connectivity=1, mode="inner") & (ids != 0)
        assert np.array_equal(ours[1:-1, 1:-1], ref[1:-1, 1:-1])


def test_interior_rejection_sampling_is_uniform():
    # a 12 x 12 block in a 14 x 14 VOID frame: 100 interior pixels fill over an eighth of the
    # crop, so draw_interior samples by rejection; every interior pixel must be equally likely
    ids = np.zeros((14, 14), int)
    ids[1:13, 1:13] = 4
    (p,) = sampling.label_map_pools(ids, [4], [[1, 1, 12, 12]])
    assert p.n_interior == 100 and 8 * p.n_interior >= p.member.size
    interior = set(p.interior.tolist())
    rng = np.random.default_rng(9)
    hits = np.zeros(p.member.size, int)
    for _ in range(5000):
        got = p.draw_interior(4, rng)
        assert len(set(got.tolist())) == 4 and set(got.tolist()) <= interior
        hits[got] += 1
    counts = hits[sorted(interior)]  # expected 5000 * 4 / 100 = 200 each, sd about 14
    assert counts.min() > 140 and counts.max() < 260 and hits.sum() == counts.sum()


@SETTINGS
@given(mask=masks)
def test_mask_boundary_opencv_equals_definition(mask):
    assert np.array_equal(sampling.mask_boundary(mask), boundary_reference(mask))
    assert np.array_equal(sampling.mask_boundary(mask), sampling.boundary_map(mask) & mask)


@SETTINGS
@given(masks_=st.lists(masks, min_size=0, max_size=6), as_list=st.lists(st.booleans(), min_size=6, max_size=6))
def test_rle_counts_many_equals_one_by_one(masks_, as_list):
    """The batched decoder of an image's RLEs gives each RLE's run lengths exactly (compressed
    strings, uncompressed lists and empty masks mixed), as pycocotools encodes them."""
    rles = []
    for m, listed in zip(masks_, as_list):
        rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
        if listed:
            rle = {"size": rle["size"], "counts": sampling.rle_counts(rle).tolist()}
        rles.append(rle)
    many = sampling.rle_counts_many(rles)
    assert len(many) == len(rles)
    for got, rle, m in zip(many, rles, masks_):
        assert np.array_equal(got, sampling.rle_counts(rle))
        assert int(got.sum()) == m.size and int(got[1::2].sum()) == int(m.sum())


def test_rle_counts_many_names_the_bad_string():
    good = mask_utils.encode(np.asfortranarray(np.eye(4, dtype=np.uint8)))
    with pytest.raises(ValueError, match="outside the COCO alphabet"):
        sampling.rle_counts_many([good, {"counts": b"0~~"}])
    with pytest.raises(ValueError, match="ends inside a number"):
        sampling.rle_counts_many([{"counts": b"1P"}, good])
