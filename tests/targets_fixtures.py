"""Fixtures for the targets/study tests: a tiny independent point sampler and category lists."""

from __future__ import annotations

import numpy as np

CATS = [
    {"id": 1, "name": "thing", "isthing": 1},
    {"id": 2, "name": "stuff", "isthing": 0},
    {"id": 3, "name": "thing2", "isthing": 1},
]


def ann(aid: int, coords, category_id: int = 1, image_id: int = 1, **extra) -> dict:
    """A points-JSON annotation with all labels 1."""
    coords = [[int(x), int(y)] for x, y in coords]
    return {
        "id": aid,
        "image_id": image_id,
        "category_id": category_id,
        "iscrowd": 0,
        "point_coords": coords,
        "point_labels": [1] * len(coords),
        **extra,
    }


def sample_points(segments, n: int, rng: np.random.Generator, image_id: int = 1) -> list[dict]:
    """Up to ``n`` distinct uniform interior points per non-crowd segment (independent of pointgen.simulate)."""
    out = []
    for k, seg in enumerate(segments):
        if seg.iscrowd:
            continue
        ys, xs = np.nonzero(seg.mask)
        pick = rng.choice(xs.size, size=min(n, xs.size), replace=False)
        out.append(
            ann(k + 1, np.stack([xs[pick], ys[pick]], 1), seg.category_id, image_id, source_segment_id=seg.segment_id)
        )
    return out


def simple_simulate(dataset, *, points: int, boundary_share: float = 0.0, seed: int = 0) -> dict:
    """A points document with ``points`` uniform interior points per non-crowd segment (test helper,
    independent of pointgen.simulate; ``boundary_share`` is ignored)."""
    from pointly.pointgen.base.points_format import make_document

    rng = np.random.default_rng(seed)
    anns = []
    for im in dataset.images:
        for a in sample_points(dataset.segments(im.id), points, rng, image_id=im.id):
            a["id"] = len(anns) + 1
            anns.append(a)
    return make_document(
        [im.to_json() for im in dataset.images],
        [c.to_json() for c in dataset.categories.values()],
        anns,
        {"made_by": "test"},
    )
