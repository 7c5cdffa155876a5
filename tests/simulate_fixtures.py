"""Helpers shared by the simulate/formats/coco/batched-pools tests (imported explicitly, not a conftest).

``boundary_reference`` is a deliberately naive second implementation of the documented boundary
definition (a pixel of the segment with a 4-neighbour *inside the image* outside the segment),
written pixel by pixel so that it shares no code with ``pointly.pointgen.points.sampling``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    from pointly.pointgen.points.sampling import SampledPoints

PANOPTIC_SETS = {  # name -> (json relative path, png folder relative path)
    "coco_panoptic_val2017": ("coco_panoptic_val2017/panoptic_val2017.json", "coco_panoptic_val2017/panoptic"),
    "coconut_val2017_139": ("coconut_val2017_139/panoptic.json", "coconut_val2017_139/panoptic"),
    "dsb2018_nuclei": ("dsb2018_nuclei/panoptic.json", "dsb2018_nuclei/panoptic"),
}
INSTANCE_SETS = {
    "tiny_coco_val": "tiny_coco/annotations/instances_val2017.json",
    "tiny_coco_train": "tiny_coco/annotations/instances_train2017.json",
}


def boundary_reference(member: np.ndarray, image_edge: bool = False) -> np.ndarray:
    """Boundary pixels of a boolean mask by the documented definition, one pixel at a time; with
    ``image_edge`` a neighbour outside the image counts as not a member."""
    h, w = member.shape
    out = np.zeros((h, w), dtype=bool)
    for y in range(h):
        for x in range(w):
            if not member[y, x]:
                continue
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                yy, xx = y + dy, x + dx
                inside = 0 <= yy < h and 0 <= xx < w
                if (inside and not member[yy, xx]) or (not inside and image_edge):
                    out[y, x] = True
                    break
    return out


def encode_ids_rgb(ids: np.ndarray) -> np.ndarray:
    """Ids → RGB bytes by hand (R = id mod 256, G = (id // 256) mod 256, B = id // 65536)."""
    ids = np.asarray(ids, dtype=np.int64)
    rgb = np.zeros(ids.shape + (3,), dtype=np.uint8)
    rgb[..., 0] = ids % 256
    rgb[..., 1] = (ids // 256) % 256
    rgb[..., 2] = ids // 65536
    return rgb


def write_panoptic(
    root: Path,
    label_maps: dict[int, np.ndarray],
    categories: list[dict],
    seg_meta: dict[int, dict[int, dict]] | None = None,
) -> tuple[Path, Path]:
    """Write a small COCO panoptic dataset (JSON + PNG folder) from id maps.

    ``categories`` are COCO panoptic category records; ``seg_meta[image_id][segment_id]`` gives
    ``category_id`` (default: the first category) and ``iscrowd``. Areas and boxes are computed
    from the maps here, independently of pointly.
    """
    seg_meta = seg_meta or {}
    png_dir = root / "panoptic"
    png_dir.mkdir(parents=True, exist_ok=True)
    images, anns = [], []
    for image_id, ids in label_maps.items():
        h, w = ids.shape
        name = f"{image_id:012d}.png"
        Image.fromarray(encode_ids_rgb(ids), "RGB").save(png_dir / name)
        infos = []
        for sid in sorted(int(v) for v in np.unique(ids) if v != 0):
            ys, xs = np.nonzero(ids == sid)
            meta = seg_meta.get(image_id, {}).get(sid, {})
            infos.append(
                {
                    "id": sid,
                    "category_id": meta.get("category_id", categories[0]["id"]),
                    "iscrowd": meta.get("iscrowd", 0),
                    "area": int(xs.size),
                    "bbox": [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)],
                }
            )
        images.append({"id": image_id, "file_name": f"{image_id:012d}.jpg", "width": w, "height": h})
        anns.append({"image_id": image_id, "file_name": name, "segments_info": infos})
    js = root / "panoptic.json"
    js.write_text(json.dumps({"images": images, "annotations": anns, "categories": categories}))
    return js, png_dir


CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1, "supercategory": "person", "color": [220, 20, 60]},
    {"id": 2, "name": "car", "isthing": 1, "supercategory": "vehicle", "color": [0, 0, 142]},
    {"id": 3, "name": "sky", "isthing": 0, "supercategory": "sky", "color": [70, 130, 180]},
]


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


def check_segment(sp: SampledPoints, member: np.ndarray, points: int, share: float, image_edge: bool = False) -> None:
    ref_b = boundary_reference(member, image_edge)
    coords = [tuple(c) for c in sp.coords.tolist()]
    assert len(coords) == len(set(coords)), "duplicate point"
    for (x, y), kind in zip(coords, sp.kinds):
        assert member[y, x], "point outside its segment"
        assert kind == ("boundary" if ref_b[y, x] else "random")
    ki, kb = expected_kind_counts(int(member.sum()), int(ref_b.sum()), points, share)
    assert sp.kinds.count("random") == ki and sp.kinds.count("boundary") == kb
    assert sp.pixels == int(member.sum())
    assert sp.short == (member.sum() < points)


def true_box(member: np.ndarray) -> list[int]:
    ys, xs = np.nonzero(member)
    return [int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)]
