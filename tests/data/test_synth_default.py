"""The default synthetic dataset (200 + 50, 128 px, seed 0), as demos and the study use it."""

from __future__ import annotations

import pytest

from pointly.data.synth import ensure_dataset
from pointly.data.synth_stats import dataset_statistics


@pytest.mark.slow
def test_default_dataset_is_valid_and_varied(tmp_path):
    root = ensure_dataset(tmp_path)
    stats = dataset_statistics(root)  # reads every PNG through PanopticDataset(check=True)
    train, val = stats["splits"]["train"], stats["splits"]["val"]
    assert train["images"] == 200 and val["images"] == 50
    for s in (train, val):
        assert s["image_sizes"] == ["128x128"]
        assert 2.5 <= s["things_per_image"]["mean"] <= 4.5
        assert s["stuff_per_image"]["min"] >= 1 and s["stuff_per_image"]["max"] <= 3
        # hard for points: many instances touch or are occluded, and sizes vary widely
        assert 0.25 <= s["touching_share"] <= 0.75
        assert 0.1 <= s["occluded_share"] <= 0.5
        assert s["thing_area_px"]["p90"] >= 5 * s["thing_area_px"]["p10"]
    assert min(train["class_counts"].values()) >= 80
    sol = train["thing_solidity"]
    assert min(sol[k] for k in ("disc", "rectangle", "triangle")) > 0.85
    assert max(sol[k] for k in ("ring", "star", "cshape")) < 0.75
