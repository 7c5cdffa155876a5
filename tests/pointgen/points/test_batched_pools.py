"""The batched label-map pools and draws (pointgen/points/batched_pools.py) against the documented rule,
the pixel-by-pixel boundary reference and the one-by-one implementation (sampling.label_map_pools).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from simulate_fixtures import boundary_reference, check_segment, true_box

from pointly.pointgen.points import batched_pools, sampling

SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])

label_maps = st.tuples(st.integers(1, 24), st.integers(1, 24)).flatmap(
    lambda hw: arrays(np.int64, hw, elements=st.integers(0, 6))
)


@pytest.fixture(params=[0, 10**9], ids=["one-by-one", "batched"])
def batch_limit(request, monkeypatch):
    """Run a test with every segment one by one, and with every segment in the batch."""
    monkeypatch.setattr(batched_pools, "BATCH_BOX_PIXELS", request.param)
    monkeypatch.setattr(batched_pools, "BATCH_MIN_SEGMENTS", 1)
    return request.param


def _boxes(labels, seg_ids, kind):
    if kind == "none":
        return None
    boxes = [true_box(labels == sid) for sid in seg_ids]
    if kind == "shifted":  # wrong boxes: pixels outside them must still be found (slow path)
        boxes = [[b[0] + 3, b[1] + 3, max(b[2] - 4, 1), max(b[3] - 4, 1)] for b in boxes]
    return boxes


@SETTINGS
@given(
    labels=label_maps,
    points=st.integers(1, 30),
    share=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**32),
    boxes=st.sampled_from(["none", "true", "shifted"]),
    limit=st.sampled_from([0, 16, 10**9]),
)
def test_pools_and_draws_follow_the_rule(labels, points, share, seed, boxes, limit):
    """Pools equal the reference sets; every draw obeys the rule (counts, kinds, inside, distinct),
    whatever share of the segments goes through the batch."""
    old = batched_pools.BATCH_BOX_PIXELS, batched_pools.BATCH_MIN_SEGMENTS
    batched_pools.BATCH_BOX_PIXELS, batched_pools.BATCH_MIN_SEGMENTS = limit, 1
    try:
        seg_ids = [int(v) for v in np.unique(labels) if v != 0]
        pools = batched_pools.pool_label_map(labels, seg_ids, _boxes(labels, seg_ids, boxes))
        samples = pools.sample(
            range(len(seg_ids)), points=points, boundary_share=share, rng=np.random.default_rng(seed)
        )
    finally:
        batched_pools.BATCH_BOX_PIXELS, batched_pools.BATCH_MIN_SEGMENTS = old
    for i, (sid, sp) in enumerate(zip(seg_ids, samples)):
        member = labels == sid
        ref_b = boundary_reference(member)
        inner, bnd = pools.pool_pixels(i)
        assert inner.tolist() == np.flatnonzero(member & ~ref_b).tolist()
        assert bnd.tolist() == np.flatnonzero(ref_b).tolist()
        assert int(pools.pixels[i]) == int(member.sum())
        assert list(pools.bbox(i)) == true_box(member)
        assert pools.bboxes()[i].tolist() == true_box(member)
        check_segment(sp, member, points, share)


def test_mismatches_raise_like_label_map_pools(batch_limit):
    ids = np.zeros((6, 6), np.int64)
    ids[:3] = 5
    ids[3:] = 9
    boxes = [[0, 0, 6, 3], [0, 3, 6, 3]]
    with pytest.raises(sampling.LabelMapMismatch, match="in the PNG but not in segments_info"):
        batched_pools.pool_label_map(ids, [5], boxes[:1])
    with pytest.raises(sampling.LabelMapMismatch, match="not in the PNG"):
        batched_pools.pool_label_map(ids, [5, 6, 9], [boxes[0], [0, 0, 1, 1], boxes[1]])
    with pytest.raises(sampling.LabelMapMismatch, match="listed twice"):
        batched_pools.pool_label_map(ids, [5, 5, 9])
    with pytest.raises(sampling.LabelMapMismatch, match="VOID"):
        batched_pools.pool_label_map(ids, [0, 5, 9])


def test_hand_made_pools_and_bbox(batch_limit):
    """A 4x5 map by hand: segment 1 is the left 2 columns, segment 2 the rest; every pixel of a
    column next to the other segment is a boundary pixel, the image edge makes none."""
    ids = np.array([[1, 1, 2, 2, 2]] * 4)
    pools = batched_pools.pool_label_map(ids, [1, 2], [[0, 0, 2, 4], [2, 0, 3, 4]])
    inner1, bnd1 = pools.pool_pixels(0)
    inner2, bnd2 = pools.pool_pixels(1)
    assert inner1.tolist() == [0, 5, 10, 15] and bnd1.tolist() == [1, 6, 11, 16]
    assert bnd2.tolist() == [2, 7, 12, 17] and inner2.tolist() == [3, 4, 8, 9, 13, 14, 18, 19]
    assert pools.bbox(0) == (0.0, 0.0, 2.0, 4.0) and pools.bbox(1) == (2.0, 0.0, 3.0, 4.0)
    assert pools.pixels.tolist() == [8, 12]


@pytest.mark.parametrize("n,k", [(5, 2), (6, 3), (6, 5), (7, 1)])
def test_floyd_choose_is_uniform_over_subsets(n, k):
    """Every k-subset of range(n) equally likely (chi-square over 40 000 rows, p > 1e-4), values
    distinct and in range."""
    from scipy.stats import chisquare

    rows = 40_000
    rng = np.random.default_rng(1234)
    got = batched_pools.floyd_choose(np.full(rows, n), np.full(rows, k), rng.random((rows, k)))
    assert ((got >= 0) & (got < n)).all()
    s = np.sort(got, axis=1)
    assert (np.diff(s, axis=1) > 0).all()
    key = (s * n ** np.arange(k)).sum(axis=1)
    _, freq = np.unique(key, return_counts=True)
    assert freq.size == math.comb(n, k)
    assert chisquare(freq).pvalue > 1e-4


def test_floyd_choose_ragged_rows():
    """Rows with different n and k: k distinct values, -1 after them; k = n takes everything."""
    n = np.array([1, 3, 10, 10, 0])
    k = np.array([1, 3, 4, 0, 0])
    got = batched_pools.floyd_choose(n, k, np.random.default_rng(0).random((5, 4)))
    assert sorted(got[0, :1].tolist()) == [0] and (got[0, 1:] == -1).all()
    assert sorted(got[1, :3].tolist()) == [0, 1, 2]
    assert len(set(got[2].tolist())) == 4 and got[2].max() < 10
    assert (got[3] == -1).all() and (got[4] == -1).all()


def _floyd_one_row(n: int, k: int, u: np.ndarray) -> list[int]:
    """Textbook Floyd for one row, with a Python set: for j = n−k … n−1, t = ⌊u·(j+1)⌋; t or j."""
    picked: list[int] = []
    seen: set[int] = set()
    for step, j in enumerate(range(n - k, n)):
        t = min(int(u[step] * (j + 1)), j)
        if t in seen:
            t = j
        seen.add(t)
        picked.append(t)
    return picked


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 12)), min_size=1, max_size=30), st.integers(0, 2**32 - 1))
def test_floyd_choose_equals_the_one_row_algorithm(rows, seed):
    """The vectorised draw = the scalar algorithm row by row on the same uniforms (ragged rows,
    finished rows next to running ones, k = n, n = 0)."""
    n = np.array([a for a, _ in rows])
    k = np.minimum(np.array([b for _, b in rows]), n)
    width = max(int(k.max()), 1)
    u = np.random.default_rng(seed).random((len(rows), width))
    got = batched_pools.floyd_choose(n, k, u)
    for r in range(len(rows)):
        expected = _floyd_one_row(int(n[r]), int(k[r]), u[r])
        assert got[r, : k[r]].tolist() == expected
        assert (got[r, k[r] :] == -1).all()


def test_batched_draws_are_uniform_over_a_pool():
    """Each interior pixel of a small segment is drawn with the same frequency over many seeds
    (the per-pixel inclusion probability k/n), in the batch."""
    ids = np.zeros((12, 12), np.int64)
    ids[2:9, 3:10] = 1  # 7x7 = 49 pixels: 25 interior, 24 boundary
    batched_pools_min = batched_pools.BATCH_MIN_SEGMENTS
    batched_pools.BATCH_MIN_SEGMENTS = 1
    try:
        pools = batched_pools.pool_label_map(ids, [1], [[3, 2, 7, 7]])
    finally:
        batched_pools.BATCH_MIN_SEGMENTS = batched_pools_min
    assert pools.small[0]
    counts = np.zeros(144)
    runs = 4000
    for seed in range(runs):
        (sp,) = pools.sample([0], points=5, boundary_share=0.0, rng=np.random.default_rng(seed))
        np.add.at(counts, sp.coords[:, 1] * 12 + sp.coords[:, 0], 1)
    inner = np.flatnonzero((ids == 1) & ~boundary_reference(ids == 1))
    assert counts.sum() == counts[inner].sum() == 5 * runs
    expected = 5 * runs / inner.size
    assert np.abs(counts[inner] - expected).max() < 5 * math.sqrt(expected)


def test_real_nuclei_image_batched_equals_one_by_one(shared_data):
    """On the 126-nucleus image: the batched pools equal the one-by-one pools segment by segment."""
    from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png

    root = shared_data / "dsb2018_nuclei"
    ds = PanopticDataset(root / "panoptic.json", root / "panoptic")
    iid = ds.images[0].id
    ids = decode_panoptic_png(ds.png_path(iid), dtype=np.uint32)
    infos = ds.segments_info(iid)
    sids, boxes = [int(s["id"]) for s in infos], [s["bbox"] for s in infos]
    pools = batched_pools.pool_label_map(ids, sids, boxes)
    assert pools.small.sum() > 100
    ref = sampling.label_map_pools(ids, sids, boxes)
    for i, p in enumerate(ref):
        inner, bnd = pools.pool_pixels(i)
        assert inner.tolist() == p.image_flat(p.interior, ids.shape[1]).tolist()
        assert bnd.tolist() == p.image_flat(p.boundary, ids.shape[1]).tolist()
        assert pools.bbox(i) == p.bbox() and int(pools.pixels[i]) == p.pixels


def _many_nuclei(tmp_path):
    """A 64x64 panoptic image of 25 small square 'nuclei' (batched: >= BATCH_MIN_SEGMENTS)."""
    from simulate_fixtures import write_panoptic

    ids = np.zeros((64, 64), np.int64)
    for r in range(5):
        for c in range(5):
            ids[r * 12 + 2 : r * 12 + 2 + 3 + (r + c) % 5, c * 12 + 3 : c * 12 + 3 + 4 + c] = 1 + r * 5 + c
    cats = [{"id": 1, "name": "nucleus", "isthing": 1}]
    return ids, write_panoptic(tmp_path / "nuclei", {7: ids}, cats)


@pytest.mark.parametrize("field,value,message", [("area", 1, "area"), ("bbox", 5, "bbox")])
def test_simulator_checks_areas_and_boxes_in_the_batch(tmp_path, field, value, message):
    """A wrong stored area or box of one of 25 batched segments is one PointlyError naming it."""
    import json

    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.base.errors import PointlyError
    from pointly.pointgen.points.simulate import SimulationOptions, simulate_image

    ids, (js, png) = _many_nuclei(tmp_path)
    doc = json.loads(js.read_text())
    infos = doc["annotations"][0]["segments_info"]
    assert batched_pools.pool_label_map(
        ids, [s["id"] for s in infos], [s["bbox"] for s in infos]
    ).small.all()  # the batch path
    seg = doc["annotations"][0]["segments_info"][13]
    if field == "area":
        seg["area"] += value
    else:
        seg["bbox"][2] += value
    js.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match=f"segment {seg['id']}: {message}"):
        simulate_image(PanopticDataset(js, png), 7, SimulationOptions(points=5))


def test_simulator_batched_points_follow_the_rule(tmp_path):
    """Through simulate_image (batched path): every segment gets its points inside it, with the
    rule's boundary count, and the same seed gives the same points."""
    from pointly.pointgen.base.coco import PanopticDataset
    from pointly.pointgen.points.simulate import SimulationOptions, simulate_image

    ids, (js, png) = _many_nuclei(tmp_path)
    ds = PanopticDataset(js, png)
    opts = SimulationOptions(points=6, boundary_share=0.5, seed=3)
    anns, _ = simulate_image(ds, 7, opts)
    again, _ = simulate_image(ds, 7, opts)
    assert anns == again and len(anns) == 25
    for a in anns:
        member = ids == a["source_segment_id"]
        sp = sampling.SampledPoints(
            np.array(a["point_coords"]), a["point_kinds"], int(member.sum()), int(member.sum()) < 6
        )
        check_segment(sp, member, 6, 0.5)
