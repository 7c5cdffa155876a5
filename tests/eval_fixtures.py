"""Helpers shared by the eval tests: 1 × N strip label maps, segments_info records, and writing
a COCO panoptic folder (PNG + JSON) from label maps."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pointly.pointgen.base.coco import encode_panoptic_png

CATS = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 2, "name": "car", "isthing": 1},
    {"id": 3, "name": "sky", "isthing": 0},
    {"id": 4, "name": "grass", "isthing": 0},
    {"id": 9, "name": "never-seen", "isthing": 1},
]


def strip(*runs: tuple[int, int]) -> np.ndarray:
    """A 1 × N label map from (segment id, length) runs."""
    return np.concatenate([np.full(n, i, dtype=np.int64) for i, n in runs])[None, :]


def seg(i: int, cat: int, crowd: int = 0, **kw) -> dict:
    return {"id": i, "category_id": cat, "iscrowd": crowd, **kw}


def write_set(root, name: str, maps: dict[int, np.ndarray], infos: dict[int, list[dict]], cats=CATS) -> tuple:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    anns, images = [], []
    for image_id, m in maps.items():
        fn = f"{image_id:04d}.png"
        Image.fromarray(encode_panoptic_png(m)).save(folder / fn)
        images.append({"id": image_id, "file_name": f"{image_id:04d}.jpg", "width": m.shape[1], "height": m.shape[0]})
        anns.append({"image_id": image_id, "file_name": fn, "segments_info": infos[image_id]})
    doc = {"images": images, "annotations": anns, "categories": cats}
    path = root / f"{name}.json"
    path.write_text(json.dumps(doc))
    return path, folder
