"""The dataset folder layouts ``pointly train --coco-root`` and the trained study read
(``model.engine.data.coco_split_paths``): COCO's own, a sample folder, and a folder per split (what
``pointly data synth`` writes); a missing part is one error naming it."""

from __future__ import annotations

import pytest

from pointly.model.engine.data import coco_split_paths
from pointly.model.study.trained_cell import DataPaths, coco_paths
from pointly.pointgen.base.errors import PointlyError


def _touch(root, *names):
    for name in names:
        path = root / name
        if name.endswith(".json"):
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
        else:
            path.mkdir(parents=True, exist_ok=True)


def test_coco_layout(tmp_path):
    _touch(tmp_path, "annotations/panoptic_val2017.json", "annotations/panoptic_val2017", "val2017")
    assert coco_split_paths(tmp_path, "val2017") == (
        tmp_path / "annotations" / "panoptic_val2017.json",
        tmp_path / "annotations" / "panoptic_val2017",
        tmp_path / "val2017",
    )
    _touch(tmp_path, "annotations/panoptic_train2017.json", "annotations/panoptic_train2017", "train2017")
    paths = coco_paths(tmp_path)
    assert paths["train_json"] == str(tmp_path / "annotations" / "panoptic_train2017.json")
    assert paths["val_panoptic_dir"] == str(tmp_path / "annotations" / "panoptic_val2017")
    assert paths["val_image_dir"] == str(tmp_path / "val2017") and len(paths) == 6


def test_sample_layout(tmp_path):
    _touch(tmp_path, "panoptic_val2017.json", "panoptic", "images")
    assert coco_split_paths(tmp_path, "val2017") == (
        tmp_path / "panoptic_val2017.json",
        tmp_path / "panoptic",
        tmp_path / "images",
    )


def test_a_folder_per_split_as_pointly_data_synth_writes(tmp_path):
    for split in ("train", "val"):
        _touch(tmp_path, f"{split}/panoptic.json", f"{split}/panoptic", f"{split}/images")
    d = DataPaths.of_folder(tmp_path)
    assert (d.train_json, d.train_png, d.train_images) == (
        tmp_path / "train" / "panoptic.json",
        tmp_path / "train" / "panoptic",
        tmp_path / "train" / "images",
    )
    assert d.val_images == tmp_path / "val" / "images"
    (tmp_path / "val" / "images").rmdir()
    with pytest.raises(PointlyError, match="images/ not found") as err:
        coco_split_paths(tmp_path, "val")
    assert "panoptic.json, panoptic/ and images/" in err.value.fix


def test_a_missing_split_is_named(tmp_path):
    with pytest.raises(PointlyError, match="no panoptic_val2017.json"):
        coco_split_paths(tmp_path, "val2017")
    with pytest.raises(PointlyError, match="COCO folder not found"):
        coco_split_paths(tmp_path / "nothing", "val2017")
