"""Fixtures for the synthetic-dataset tests: one small dataset per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointly.data.synth import ensure_dataset

SMALL = {"train": 12, "val": 4, "size": 128, "seed": 3}


@pytest.fixture(scope="session")
def small_synth(tmp_path_factory) -> Path:
    """A 12 + 4 image synthetic dataset in a temporary cache folder."""
    return ensure_dataset(tmp_path_factory.mktemp("synth-cache"), **SMALL)
