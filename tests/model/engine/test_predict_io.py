"""Writing predictions as COCO panoptic folders: PNG/JSON agree (checked by pointgen's reader and
by PQ), overlays, image reading and the model → folder loop (driven by an oracle that returns
the ground truth, so the whole path must give PQ = 1)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pointly.model.engine.evaluation import pq_compute
from pointly.model.engine.panoptic_io import (
    PanopticWriter,
    list_images,
    overlay,
    predict_to_folder,
    read_rgb,
    segment_records,
)
from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png
from pointly.pointgen.base.errors import PointlyError

CATS = [
    {"id": 1, "name": "person", "isthing": 1, "color": [220, 20, 60]},
    {"id": 7, "name": "car", "isthing": 1, "color": [0, 0, 142]},
    {"id": 50, "name": "sky", "isthing": 0, "color": [70, 130, 180]},
]


def toy_prediction():
    lm = np.zeros((40, 60), np.int64)
    lm[:20, :] = 3  # sky, top half
    lm[25:35, 5:15] = 10  # person
    lm[22:38, 30:55] = 70000  # car with an id above 65535 (uses the blue channel)
    segs = [
        {"id": 3, "category_id": 50, "score": 0.8},
        {"id": 10, "category_id": 1, "score": 0.9},
        {"id": 70000, "category_id": 7, "score": 0.55},
        {"id": 99, "category_id": 7, "score": 0.3},
    ]
    return lm, segs


def test_writer_round_trip(tmp_path):
    lm, segs = toy_prediction()
    rgb = np.full((40, 60, 3), 100, np.uint8)
    with PanopticWriter(tmp_path, CATS) as w:
        ann = w.add(5, "photos/a.jpg", lm, segs, image=rgb)
    doc = json.loads((tmp_path / "predictions.json").read_text())
    assert doc["annotations"] == [ann] and doc["images"] == [{"id": 5, "file_name": "a.jpg", "width": 60, "height": 40}]
    assert [c["id"] for c in doc["categories"]] == [1, 7, 50]
    assert np.array_equal(decode_panoptic_png(tmp_path / "panoptic" / "a.png"), lm)
    info = {s["id"]: s for s in ann["segments_info"]}
    assert set(info) == {3, 10, 70000}  # segment 99 has no pixels: dropped
    assert info[10] == {
        "id": 10,
        "category_id": 1,
        "isthing": 1,
        "iscrowd": 0,
        "area": 100,
        "bbox": [5, 25, 10, 10],
        "score": 0.9,
    }
    assert info[70000]["bbox"] == [30, 22, 25, 16] and info[70000]["area"] == 16 * 25
    assert info[3]["isthing"] == 0 and info[3]["area"] == 20 * 60
    # pointgen's reader re-checks ids, areas and boxes against the PNG
    ds = PanopticDataset(tmp_path / "predictions.json", tmp_path / "panoptic")
    assert sorted(s.segment_id for s in ds.segments(5)) == [3, 10, 70000]
    # evaluating the folder against itself is perfect (PQ's own PNG/JSON checks pass)
    doc["annotations"][0]["segments_info"] = [dict(s, iscrowd=0) for s in ann["segments_info"]]
    assert (
        pq_compute(
            tmp_path / "predictions.json", tmp_path / "panoptic", tmp_path / "predictions.json", tmp_path / "panoptic"
        )["All"]["pq"]
        == 1.0
    )
    pic = np.asarray(Image.open(tmp_path / "overlays" / "a.jpg"))
    assert pic.shape == (40, 60, 3)


def test_writer_rejects_inconsistent_predictions(tmp_path):
    lm, segs = toy_prediction()
    w = PanopticWriter(tmp_path, CATS, overlays=False)
    with pytest.raises(PointlyError, match=r"ids \[70000\] are in the label map but not in segments"):
        w.add(1, "a.jpg", lm, segs[:2])
    with pytest.raises(PointlyError, match="category_id 8 is not a known category"):
        w.add(1, "a.jpg", lm, segs[:2] + [{"id": 70000, "category_id": 8}])
    # same stem twice: the second PNG gets a suffix instead of overwriting the first
    w.add(1, "x/a.jpg", lm, segs)
    w.add(2, "y/a.jpg", lm, segs)
    assert sorted(p.name for p in (tmp_path / "panoptic").iterdir()) == ["a.png", "a_2.png"]
    assert not (tmp_path / "predictions.json").exists()  # written on close only
    w.close()
    assert [a["file_name"] for a in json.loads((tmp_path / "predictions.json").read_text())["annotations"]] == [
        "a.png",
        "a_2.png",
    ]


def test_overlay_colours():
    lm, segs = toy_prediction()
    cats = {c["id"]: c for c in CATS}
    records = segment_records(lm, segs, cats)
    rgb = np.zeros((40, 60, 3), np.uint8)
    pic = overlay(rgb, lm, records, cats, alpha=0.5, names=False)
    assert np.array_equal(pic[21, 20], [0, 0, 0])  # VOID, away from outlines: the image unchanged
    assert np.array_equal(pic[5, 5], np.round(0.5 * np.array([70, 130, 180]) + 1e-9).astype(np.uint8))  # stuff colour
    assert np.array_equal(pic[19, 10], [255, 255, 255])  # outline between sky and VOID
    thing = pic[30, 10].astype(int)  # person: its category colour jittered by at most 40 per channel
    assert np.all(np.abs(thing - 0.5 * np.array([220, 20, 60])) <= 0.5 * 40 + 1)
    named = overlay(rgb, lm, records, cats, names=True)
    assert (named != pic).any()  # names add pixels


def test_read_rgb_and_list_images(tmp_path):
    arr = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.png")
    Image.fromarray(arr[..., 0]).save(tmp_path / "gray.png")
    (tmp_path / "notes.txt").write_text("x")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    assert np.array_equal(read_rgb(tmp_path / "a.png"), arr)
    assert read_rgb(tmp_path / "gray.png").shape == (20, 30, 3)
    with pytest.raises(PointlyError, match="unreadable image"):
        read_rgb(tmp_path / "broken.jpg")
    # EXIF orientation 6 (rotate 90° clockwise) is applied, unless exif=False
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(tmp_path / "rot.jpg", exif=exif.tobytes())
    assert read_rgb(tmp_path / "rot.jpg").shape == (30, 20, 3)
    assert read_rgb(tmp_path / "rot.jpg", exif=False).shape == (20, 30, 3)
    assert [p.name for p in list_images([tmp_path])] == ["a.png", "broken.jpg", "gray.png", "rot.jpg"]
    with pytest.raises(PointlyError, match="no such file or folder"):
        list_images([tmp_path / "missing"])


class OracleModel:
    """Answers with the ground truth of the image it is shown (looked up by pixel content), with
    fresh segment ids; crowd regions are predicted as ordinary segments."""

    def __init__(self, dataset: PanopticDataset, image_dir):
        self.by_digest = {}
        for im in dataset.images:
            rgb = read_rgb(image_dir / im.file_name)
            self.by_digest[rgb.tobytes()] = im.id
        self.dataset = dataset

    def predict(self, images):
        out = []
        for rgb in images:
            image_id = self.by_digest[rgb.tobytes()]
            gt = self.dataset.label_map(image_id)
            lm = np.zeros_like(gt)
            segs = []
            for k, s in enumerate(self.dataset.segments_info(image_id)):
                lm[gt == s["id"]] = 1000 + k
                segs.append({"id": 1000 + k, "category_id": s["category_id"], "score": 0.5})
            out.append((lm, segs))
        return out


def test_predict_to_folder_with_an_oracle_gives_pq_1(shared_data, tmp_path):
    root = shared_data / "coco_panoptic_val2017"
    ds = PanopticDataset(root / "panoptic_val2017.json", root / "panoptic")
    model = OracleModel(ds, root / "images")
    items = [(im.id, root / "images" / im.file_name) for im in ds.images]
    bad = tmp_path / "unreadable.jpg"
    bad.write_bytes(b"nope")
    cats = list(json.loads((root / "panoptic_val2017.json").read_text())["categories"])
    pred_json, written, skipped = predict_to_folder(
        model,
        items + [(999, bad)],
        tmp_path / "out",
        cats,
        progress=False,
        sizes={im.id: (im.height, im.width) for im in ds.images},
    )
    assert written == 3 and [p.name for p, _ in skipped] == ["unreadable.jpg"]
    assert len(list((tmp_path / "out" / "overlays").iterdir())) == 3
    r = pq_compute(root / "panoptic_val2017.json", root / "panoptic", pred_json, tmp_path / "out" / "panoptic")
    assert r["All"]["pq"] == 1.0 and r["All"]["n"] == 12
    # a size disagreement between image and annotation is an error, not a silent mis-evaluation
    with pytest.raises(PointlyError, match="do not belong together"):
        predict_to_folder(model, items[:1], tmp_path / "out2", cats, progress=False, sizes={items[0][0]: (10, 10)})


def test_model_categories_order_names_and_fallbacks():
    from pointly.model.engine.config import load_config
    from pointly.model.engine.panoptic_io import model_categories

    cfg = load_config("synthetic_small")
    cats = model_categories(cfg)
    assert [c["id"] for c in cats] == list(cfg.thing_ids) + list(cfg.stuff_ids)
    assert [c["isthing"] for c in cats] == [1] * len(cfg.thing_ids) + [0] * len(cfg.stuff_ids)
    assert all(not c["name"].startswith("class ") for c in cats)
    user = [dict(c, name=f"my-{c['name']}") for c in cats]
    assert model_categories(cfg, user)[0]["name"].startswith("my-")
    # a study or demo run trains synthetic_small on COCO-format files (data.kind coco_panoptic): it
    # still predicts with the synthetic names it stores, never COCO's for the same ids
    cfg.data.kind = "coco_panoptic"
    assert [c["name"] for c in model_categories(cfg)] == [c["name"] for c in cats]
    assert "boat" not in {c["name"] for c in model_categories(cfg)}
    cfg.thing_ids, cfg.stuff_ids = [1001], [1002]  # ids the stored categories do not name: refused
    with pytest.raises(PointlyError, match="does not name its categories"):
        model_categories(cfg)
    cfg.categories = []  # a checkpoint saved before checkpoints stored categories: refused, not guessed
    cfg.thing_ids, cfg.stuff_ids = [1], [7]
    with pytest.raises(PointlyError, match="--categories"):
        model_categories(cfg)
    assert model_categories(cfg, [{"id": 1, "name": "a", "isthing": 1}, {"id": 7, "name": "b", "isthing": 0}])
    cfg.thing_ids, cfg.stuff_ids = [], []
    with pytest.raises(PointlyError, match="names no categories"):
        model_categories(cfg)


def test_training_data_names_the_classes():
    """category_indices fills cfg.categories from the dataset the model trains on."""
    from pointly.model.engine.config import load_config
    from pointly.model.engine.data import category_indices
    from pointly.pointgen.base.coco import Category

    cfg = load_config("coco_r50_1x", ["model.thing.num_classes=2", "model.stuff.num_classes=2"])
    assert cfg.categories == [] and cfg.thing_ids == []
    data = {3: Category(3, "cat", True), 1: Category(1, "dog", True), 9: Category(9, "sky", False, "", (1, 2, 3))}
    things, stuff = category_indices(cfg, data)
    assert things == {1: 0, 3: 1} and stuff == {9: 1}
    assert [(c["id"], c["name"], c["isthing"]) for c in cfg.categories] == [(1, "dog", 1), (3, "cat", 1), (9, "sky", 0)]
    assert cfg.categories[2]["color"] == [1, 2, 3]
