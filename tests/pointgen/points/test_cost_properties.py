"""Properties of the measured active time on random point_times (hypothesis)."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pointly.pointgen.base.points_format import make_document
from pointly.pointgen.points.cost import measured_seconds

times = st.lists(st.floats(min_value=0, max_value=600, allow_nan=False), min_size=1, max_size=8)


def _doc(per_image):
    images, anns = [], []
    for i, segs in enumerate(per_image):
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 4, "height": 4})
        for k, ts in enumerate(segs):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": i + 1,
                    "category_id": 1 + k % 2,
                    "point_coords": [[0, 0]] * len(ts),
                    "point_labels": [1] * len(ts),
                    "point_times": ts,
                }
            )
    cats = [{"id": 1, "name": "a", "isthing": 1}, {"id": 2, "name": "b", "isthing": 0}]
    return make_document(images, cats, anns, {"made_by": "test"})


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(times, min_size=1, max_size=4), min_size=1, max_size=3), st.floats(min_value=0, max_value=120))
def test_measured_time_invariants(per_image, cutoff):
    doc = _doc(per_image)
    full = measured_seconds(doc, math.inf)
    m = measured_seconds(doc, cutoff)
    for i, segs in enumerate(per_image):
        last = max(t for ts in segs for t in ts)
        # with no cut-off, the gaps telescope to the last point time
        assert math.isclose(full["per_image"][i + 1], last, abs_tol=1e-9)
        # a cut-off only removes time, and never more than the idle seconds it reports
        assert m["per_image"][i + 1] <= full["per_image"][i + 1] + 1e-9
    assert math.isclose(m["active_seconds"] + m["idle_seconds"], full["active_seconds"], abs_tol=1e-6)
    # segment times add up to image times, and thing + stuff to the total
    assert math.isclose(sum(m["per_annotation"].values()), m["active_seconds"], abs_tol=1e-6)
    assert math.isclose(m["thing"]["active_seconds"] + m["stuff"]["active_seconds"], m["active_seconds"], abs_tol=1e-6)
    # every counted gap is at most the cut-off: an image has at most n_points × cutoff
    for i, segs in enumerate(per_image):
        assert m["per_image"][i + 1] <= cutoff * sum(len(ts) for ts in segs) + 1e-9
