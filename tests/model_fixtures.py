"""Fixtures for the model tests: a tiny synthetic panoptic dataset and configs that train fast."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointly.data.synth import ensure_dataset
from pointly.model.engine.config import Config, load_config

TINY = {"train": 8, "val": 2, "size": 128, "seed": 5}


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory) -> Path:
    """8 + 2 synthetic images of 128 px (generated once per session)."""
    return ensure_dataset(tmp_path_factory.mktemp("model-synth"), **TINY)


def tiny_config(root: Path, *extra: str) -> Config:
    """synthetic_small on ``root``'s train split, no workers, with overrides."""
    return load_config(
        "synthetic_small",
        [
            f"data.train_json={root}/train/panoptic.json",
            f"data.train_panoptic_dir={root}/train/panoptic",
            f"data.train_image_dir={root}/train/images",
            "data.num_workers=0",
            *extra,
        ],
    )
