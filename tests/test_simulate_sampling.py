"""Property and hand-made tests of the point-sampling primitives (pointgen/sampling.py).

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
from simulate_fixtures import boundary_reference

from pointly.pointgen import sampling

# pycocotools 2.0 calls np.array(copy=False) inside decode; harmless with numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label_maps = st.tuples(st.integers(1, 14), st.integers(1, 14)).flatmap(
    lambda hw: arrays(np.int64, hw, elements=st.integers(0, 4)))
masks = st.tuples(st.integers(1, 16), st.integers(1, 16)).flatmap(
    lambda hw: arrays(np.bool_, hw, elements=st.booleans()))
shares = st.floats(0.0, 1.0, allow_nan=False)
counts = st.integers(1, 25)


def expected_kind_counts(pixels: int, boundary: int, points: int, share: float) -> tuple[int, int]:
    """(interior, boundary) point counts by the rule in docs/formats.md, written from the text."""
    interior = pixels - boundary
    if pixels <= points:
        return interior, boundary
    want_b = round(share * points)
    kb = min(want_b, boundary)
    ki = points - kb
    if ki > interior:
        ki = interior
        kb = points - ki
    return ki, kb


def check_segment(sp: sampling.SampledPoints, member: np.ndarray, points: int, share: float) -> None:
    ref_b = boundary_reference(member)
    coords = [tuple(c) for c in sp.coords.tolist()]
    assert len(coords) == len(set(coords)), "duplicate point"
    for (x, y), kind in zip(coords, sp.kinds):
        assert member[y, x], "point outside its segment"
        assert kind == ("boundary" if ref_b[y, x] else "random")
    ki, kb = expected_kind_counts(int(member.sum()), int(ref_b.sum()), points, share)
    assert sp.kinds.count("random") == ki and sp.kinds.count("boundary") == kb
    assert sp.pixels == int(member.sum())
    assert sp.short == (member.sum() < points)


@SETTINGS
@given(labels=label_maps)
def test_boundary_map_matches_pixelwise_definition(labels):
    got = sampling.boundary_map(labels)
    for sid in np.unique(labels):
        member = labels == sid
        assert np.array_equal(got & member, boundary_reference(member))


@SETTINGS
@given(labels=label_maps, points=counts, share=shares, seed=st.integers(0, 2**32))
def test_label_map_sampling_properties(labels, points, share, seed):
    seg_ids = [int(v) for v in np.unique(labels) if v != 0]
    groups = sampling.group_label_map(labels, seg_ids)
    samples = sampling.sample_groups(groups, range(len(seg_ids)), points=points, boundary_share=share,
                                     rng=np.random.default_rng(seed))
    for sid, sp in zip(seg_ids, samples):
        check_segment(sp, labels == sid, points, share)


@SETTINGS
@given(mask=masks, points=counts, share=shares, seed=st.integers(0, 2**32))
def test_mask_and_rle_sampling_properties(mask, points, share, seed):
    sp = sampling.sample_segment_points(mask, points=points, boundary_share=share,
                                        rng=np.random.default_rng(seed))
    check_segment(sp, mask, points, share)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    h, w = mask.shape
    sr = sampling.sample_rle_points(rle, h, w, points=points, boundary_share=share,
                                    rng=np.random.default_rng(seed))
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
    strip, col0 = sampling.rle_strip(counts, h, w)
    assert np.array_equal(strip, decoded[:, col0:col0 + strip.shape[1]])
    outside = np.ones(w, bool)
    outside[col0:col0 + strip.shape[1]] = False
    assert not decoded[:, outside].any()


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
        sampling.rle_strip(np.array([1, 2]), 2, 2)  # sums to 3, not 4


def test_hand_made_boundary_with_image_edge():
    # a 4 x 5 map: segment 1 fills the left three columns, segment 2 the right two
    ids = np.array([[1, 1, 1, 2, 2]] * 4)
    b = sampling.boundary_map(ids)
    # only the columns that touch the other segment are boundary; the image edge is not
    assert b.tolist() == [[False, False, True, True, False]] * 4
    # a lone segment filling the whole image has no boundary pixel at all
    assert not sampling.boundary_map(np.ones((3, 3), int)).any()
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


def test_group_label_map_mismatches():
    ids = np.array([[0, 5, 5], [9, 9, 0]])
    with pytest.raises(sampling.LabelMapMismatch, match=r"\[9\] are in the PNG"):
        sampling.group_label_map(ids, [5])
    with pytest.raises(sampling.LabelMapMismatch, match=r"\[6\] are in segments_info"):
        sampling.group_label_map(ids, [5, 6, 9])
    with pytest.raises(sampling.LabelMapMismatch, match="twice"):
        sampling.group_label_map(ids, [5, 5, 9])


def test_group_label_map_many_segments_uses_wide_keys():
    # 300 segments need more than the 256 uint8 keys
    ids = np.arange(1, 301).reshape(15, 20)
    groups = sampling.group_label_map(ids, list(range(1, 301)))
    for i in (0, 150, 299):
        a, b = groups.pools(i)
        assert np.concatenate([a, b]).tolist() == [i]


def test_segment_bboxes_match_mask_boxes():
    rng = np.random.default_rng(3)
    for _ in range(20):
        ids = rng.integers(0, 5, size=(rng.integers(1, 12), rng.integers(1, 12)))
        seg = [int(v) for v in np.unique(ids) if v]
        groups = sampling.group_label_map(ids, seg)
        boxes = sampling.segment_bboxes(groups, ids)
        for i, sid in enumerate(seg):
            ys, xs = np.nonzero(ids == sid)
            assert boxes[i].tolist() == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]


def test_bad_options_raise():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError):
        sampling.choose_from_pools(5, 5, 0, 0.0, rng)
    with pytest.raises(ValueError):
        sampling.choose_from_pools(5, 5, 3, 1.5, rng)
