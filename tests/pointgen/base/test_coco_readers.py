"""COCO readers (pointgen/base/coco.py, coco_instances.py) on every file of ../shared/data, the README quirks, bad input.

Expectations are computed independently: panoptic PNGs decoded here with PIL and the
R + 256·G + 256²·B formula, instance masks from pycocotools' own ``COCO.annToMask``, uncompressed
RLE expanded by hand.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO
from simulate_fixtures import CATEGORIES, INSTANCE_SETS, PANOPTIC_SETS, encode_ids_rgb, write_panoptic

from pointly.pointgen.base.coco import (
    PanopticDataset,
    decode_panoptic_png,
    encode_panoptic_png,
    mask_bbox,
    open_dataset,
)
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.base.errors import PointlyError

# pycocotools 2.0 calls np.array(copy=False) inside decode; harmless with numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def ids_by_hand(path) -> np.ndarray:
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(np.int64)
    return rgb[..., 0] + 256 * rgb[..., 1] + 256 * 256 * rgb[..., 2]


@pytest.mark.parametrize("name", sorted(PANOPTIC_SETS))
def test_panoptic_png_agrees_with_json(shared_data, name):
    js, png = PANOPTIC_SETS[name]
    doc = json.loads((shared_data / js).read_text())
    ds = PanopticDataset(shared_data / js, shared_data / png)
    assert [im.id for im in ds.images] == [im["id"] for im in doc["images"]]
    cats = {c["id"]: c for c in doc["categories"]}
    for ann in doc["annotations"]:
        ids = ids_by_hand(shared_data / png / ann["file_name"])
        image = ds.image(ann["image_id"])
        assert ids.shape == (image.height, image.width)
        infos = ann["segments_info"]
        assert set(np.unique(ids).tolist()) - {0} == {s["id"] for s in infos}
        assert np.array_equal(ds.label_map(ann["image_id"]), ids)
        segs = ds.segments(ann["image_id"])
        assert [s.segment_id for s in segs] == [s["id"] for s in infos]
        for s, info in zip(segs, infos):
            ys, xs = np.nonzero(ids == info["id"])
            assert info["area"] == xs.size == s.mask.sum()
            box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
            assert [float(v) for v in info["bbox"]] == [float(v) for v in box] == list(s.bbox)
            assert np.array_equal(s.mask, ids == info["id"])
            assert s.isthing == bool(cats[info["category_id"]]["isthing"])
            assert s.iscrowd == bool(info.get("iscrowd", 0))


def test_panoptic_readme_counts(shared_data):
    # README: 56 segments: 48 thing, 8 stuff, 3 crowd; 133 categories (80 thing, 53 stuff)
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    ds = PanopticDataset(shared_data / js, shared_data / png)
    segs = [s for im in ds.images for s in ds.segments(im.id, with_masks=False)]
    assert len(segs) == 56 and sum(s.isthing for s in segs) == 48 and sum(s.iscrowd for s in segs) == 3
    cats = json.loads((shared_data / "coco_panoptic_val2017/panoptic_coco_categories.json").read_text())
    assert len(cats) == 133 and sum(c["isthing"] for c in cats) == 80
    assert {c["id"] for c in cats} == set(ds.categories)
    js, png = PANOPTIC_SETS["dsb2018_nuclei"]
    ds = PanopticDataset(shared_data / js, shared_data / png)
    segs = ds.segments(1)
    assert sum(s.isthing for s in segs) == 125 and sum(not s.isthing for s in segs) == 1
    ids = sorted(s.segment_id for s in segs)
    assert ids != list(range(1, len(ids) + 1))  # README: segment ids are not contiguous


@pytest.mark.parametrize("name", sorted(INSTANCE_SETS))
def test_instances_masks_areas_boxes(shared_data, name):
    path = shared_data / INSTANCE_SETS[name]
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(path))
    ds = InstancesDataset(path)
    n = 0
    for image in ds.images:
        anns = coco.imgToAnns[image.id]
        segs = ds.segments(image.id)
        assert [s.segment_id for s in segs] == [a["id"] for a in anns]
        for s, a in zip(segs, anns):
            ref = coco.annToMask(a).astype(bool)
            assert np.array_equal(s.mask, ref)
            assert s.isthing and s.iscrowd == bool(a["iscrowd"]) and s.category_id == a["category_id"]
            ys, xs = np.nonzero(ref)
            x0, y0, w, h = a["bbox"]
            # the rasterised mask lies inside the JSON box (from the polygon or RLE) grown by 1 px
            assert x0 - 1 <= xs.min() and xs.max() + 1 <= x0 + w + 1
            assert y0 - 1 <= ys.min() and ys.max() + 1 <= y0 + h + 1
            if not a["iscrowd"] and a["area"] >= 2000:  # polygon area vs pixel count
                assert abs(xs.size - a["area"]) / a["area"] < 0.1
            n += 1
    assert n == len(coco.anns)


def test_instances_readme_counts_and_2014_header(shared_data):
    # README: 100 images (50 + 50), 852 annotations, 842 polygons, 10 crowd uncompressed RLE;
    # headers say 2014 but files and ids are 2017
    total = polys = crowd = 0
    for name, split in (("tiny_coco_val", "val2017"), ("tiny_coco_train", "train2017")):
        doc = json.loads((shared_data / INSTANCE_SETS[name]).read_text())
        assert "2014" in doc["info"]["description"]
        assert len(doc["images"]) == 50
        for im in doc["images"]:
            assert (shared_data / "tiny_coco/images" / split / im["file_name"]).is_file()
            assert f"/{split}/" in im["coco_url"]
        for a in doc["annotations"]:
            total += 1
            polys += isinstance(a["segmentation"], list)
            if a["iscrowd"]:
                crowd += 1
                assert isinstance(a["segmentation"]["counts"], list)
        # instances files carry no isthing: every category is read as a thing
        assert all("isthing" not in c for c in doc["categories"])
        assert all(c.isthing for c in InstancesDataset(shared_data / INSTANCE_SETS[name]).categories.values())
    assert (total, polys, crowd) == (852, 842, 10)


def test_uncompressed_rle_crowd_decodes_by_hand(shared_data):
    ds = InstancesDataset(shared_data / INSTANCE_SETS["tiny_coco_val"])
    seen = 0
    for image in ds.images:
        for ann, seg in zip(ds.annotations(image.id), ds.segments(image.id)):
            if not ann["iscrowd"]:
                continue
            counts = ann["segmentation"]["counts"]
            h, w = ann["segmentation"]["size"]
            flat = np.zeros(h * w, bool)
            pos, val = 0, False
            for c in counts:  # runs alternate 0/1, column-major
                flat[pos : pos + c] = val
                pos, val = pos + c, not val
            assert pos == h * w
            assert np.array_equal(seg.mask, flat.reshape(w, h).T)
            seen += 1
    assert seen == 5


def test_rgb_id_decoding_hand_made_png(tmp_path):
    ids = np.array([[0, 1, 255, 256], [257, 65535, 65536, 16777215]], dtype=np.int64)
    rgb = np.zeros((2, 4, 3), np.uint8)
    # written out by hand: (R, G, B) with id = R + 256 G + 65536 B
    rgb[0, 1] = (1, 0, 0)
    rgb[0, 2] = (255, 0, 0)
    rgb[0, 3] = (0, 1, 0)
    rgb[1, 0] = (1, 1, 0)
    rgb[1, 1] = (255, 255, 0)
    rgb[1, 2] = (0, 0, 1)
    rgb[1, 3] = (255, 255, 255)
    Image.fromarray(rgb, "RGB").save(tmp_path / "ids.png")
    assert np.array_equal(decode_panoptic_png(tmp_path / "ids.png"), ids)
    assert np.array_equal(encode_panoptic_png(ids), rgb)
    # an RGBA or palette PNG holding the same colours decodes the same (alpha is ignored)
    Image.fromarray(rgb, "RGB").convert("RGBA").save(tmp_path / "rgba.png")
    assert np.array_equal(decode_panoptic_png(tmp_path / "rgba.png"), ids)


def test_image_39769_is_png(shared_data):
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    ds = PanopticDataset(shared_data / js, shared_data / png)
    names = {im.id: im.file_name for im in ds.images}
    assert names[39769].endswith(".png") and names[142238].endswith(".jpg")
    photo = shared_data / "coco_panoptic_val2017/images" / names[39769]
    with Image.open(photo) as im:
        assert im.format == "PNG" and im.size == (ds.image(39769).width, ds.image(39769).height)
    assert ds.png_path(39769).name == "000000039769.png"
    raw = json.loads((shared_data / js).read_text())
    assert next(im for im in raw["images"] if im["id"] == 39769).get("license") is None  # no licence id


def test_coconut_ids_1_to_29(shared_data):
    js, png = PANOPTIC_SETS["coconut_val2017_139"]
    ds = PanopticDataset(shared_data / js, shared_data / png)
    assert sorted(s.segment_id for s in ds.segments(139, with_masks=False)) == list(range(1, 30))
    rgb = np.asarray(Image.open(ds.png_path(139)).convert("RGB"))
    assert rgb[..., 1].max() == 0 and rgb[..., 2].max() == 0 and rgb[..., 0].max() == 29  # "looks black"
    segs = ds.segments(139)
    assert sum(s.isthing for s in segs) == 18
    for s in segs:  # bbox computed from the PNG: exact
        assert s.bbox == mask_bbox(s.mask)


# ---------------------------------------------------------------------------- bad input


@pytest.fixture
def tiny(tmp_path):
    a = np.full((6, 8), 3, np.int64)
    a[1:4, 2:5] = 9
    a[5, 7] = 0
    js, png = write_panoptic(tmp_path / "ds", {1: a}, CATEGORIES, {1: {3: {"category_id": 3}, 9: {"category_id": 1}}})
    return js, png, a


def edit(js, fn):
    doc = json.loads(js.read_text())
    fn(doc)
    js.write_text(json.dumps(doc))


def raises(match, fn, *args, **kw):
    with pytest.raises(PointlyError, match=match) as err:
        fn(*args, **kw)
    assert "\n" not in err.value.one_line()
    return err.value


def test_bad_panoptic_json(tiny, tmp_path):
    js, png, _ = tiny
    raises("panoptic JSON not found", PanopticDataset, tmp_path / "no.json", png)
    raises("panoptic PNG folder not found", PanopticDataset, js, tmp_path / "nodir")
    broken = tmp_path / "broken.json"
    broken.write_text(js.read_text()[:-10])
    raises("not valid JSON", PanopticDataset, broken, png)
    listy = tmp_path / "list.json"
    listy.write_text("[]")
    raises("not a COCO JSON object", PanopticDataset, listy, png)
    good = js.read_text()
    edit(js, lambda d: d.update(categories=[]))
    raises("no categories", PanopticDataset, js, png)
    js.write_text(good)
    edit(js, lambda d: d["categories"][1].pop("isthing"))
    e = raises("isthing", PanopticDataset, js, png)
    assert e.record == "categories[1]"
    js.write_text(good)
    edit(js, lambda d: d["images"][0].pop("width"))
    assert raises("width", PanopticDataset, js, png).record == "images[0]"
    js.write_text(good)
    edit(js, lambda d: d["annotations"][0].update(image_id=77))
    raises("image_id 77 is not in images", PanopticDataset, js, png)
    js.write_text(good)
    edit(js, lambda d: d["annotations"][0]["segments_info"][0].update(category_id=500))
    e = raises("unknown category_id 500 in segment 3", PanopticDataset, js, png)
    assert "image_id 1" in e.record


def test_bad_panoptic_png(tiny, tmp_path):
    js, png, a = tiny
    good = js.read_text()
    ds = PanopticDataset(js, png)
    assert np.array_equal(ds.label_map(1), a)
    b = a.copy()
    b[0, 0] = 12
    Image.fromarray(encode_ids_rgb(b)).save(png / "000000000001.png")
    e = raises(r"segment ids disagree: in PNG only \[12\]", ds.label_map, 1)
    assert e.file.endswith("000000000001.png") and e.record == "image_id 1"
    Image.fromarray(encode_ids_rgb(a)).save(png / "000000000001.png")
    edit(js, lambda d: d["annotations"][0]["segments_info"][1].update(area=8))
    raises("segment 9: area 8 but the PNG has 9 pixels", PanopticDataset(js, png).label_map, 1)
    js.write_text(good)
    edit(js, lambda d: d["annotations"][0]["segments_info"][1].update(bbox=[2, 1, 6, 3]))
    raises(r"segment 9: bbox \[2, 1, 6, 3\] but the PNG gives", PanopticDataset(js, png).label_map, 1)
    js.write_text(good)
    Image.fromarray(encode_ids_rgb(a[:, :7])).save(png / "000000000001.png")
    raises("PNG is 7x6 but the image record says 8x6", PanopticDataset(js, png).label_map, 1)
    (png / "000000000001.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 30)
    raises("unreadable PNG", PanopticDataset(js, png).label_map, 1)
    (png / "000000000001.png").unlink()
    raises("panoptic PNG not found", PanopticDataset(js, png).label_map, 1)
    # check=False skips the JSON comparison but never the decoding
    Image.fromarray(encode_ids_rgb(a)).save(png / "000000000001.png")
    edit(js, lambda d: d["annotations"][0]["segments_info"][1].update(area=1))
    assert PanopticDataset(js, png, check=False).label_map(1).shape == (6, 8)


def test_bad_instances(shared_data, tmp_path):
    doc = json.loads((shared_data / INSTANCE_SETS["tiny_coco_val"]).read_text())
    path = tmp_path / "inst.json"

    def write(mutate):
        d = json.loads(json.dumps(doc))
        mutate(d)
        path.write_text(json.dumps(d))
        return d

    d = write(lambda d: d["annotations"][0].pop("image_id"))
    assert raises("image_id", InstancesDataset, path).record == "annotations[0]"
    write(lambda d: d["annotations"][0].update(image_id=-5))
    raises("image_id -5 is not in images", InstancesDataset, path)
    d = write(lambda d: d["annotations"][3].update(segmentation=[[1.0, 2.0, 3.0, 4.0]]))
    ds = InstancesDataset(path)
    im = d["annotations"][3]["image_id"]
    e = raises("bad segmentation: no polygon with 3 or more vertices", ds.segments, im)
    assert f"annotation id {d['annotations'][3]['id']}" in e.record
    crowd_i = next(i for i, a in enumerate(doc["annotations"]) if a["iscrowd"])
    d = write(lambda d: d["annotations"][crowd_i]["segmentation"].update(size=[10, 10]))
    raises("RLE size", InstancesDataset(path).segments, d["annotations"][crowd_i]["image_id"])
    d = write(lambda d: d["annotations"][0].update(segmentation=42))
    raises("neither polygons nor RLE", InstancesDataset(path).segments, d["annotations"][0]["image_id"])


def test_open_dataset_choices(shared_data, tmp_path):
    js, png = PANOPTIC_SETS["coconut_val2017_139"]
    assert open_dataset(panoptic_json=shared_data / js, panoptic_dir=shared_data / png).kind == "panoptic"
    assert open_dataset(instances_json=shared_data / INSTANCE_SETS["tiny_coco_val"]).kind == "instances"
    raises("not both", open_dataset, instances_json="a.json", panoptic_json="b.json")
    raises("no dataset given", open_dataset)
    raises("no dataset given", open_dataset, panoptic_json=shared_data / js)


def test_reader_on_a_modified_copy_of_real_data(shared_data, tmp_path):
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    copy = tmp_path / "png"
    shutil.copytree(shared_data / png, copy)
    ids = ids_by_hand(copy / "000000142238.png")
    victim = int(ids[200, 300])
    ids[ids == victim] = 0  # a listed segment vanishes from the PNG
    Image.fromarray(encode_ids_rgb(ids)).save(copy / "000000142238.png")
    ds = PanopticDataset(shared_data / js, copy)
    raises(rf"in JSON only \[{victim}\]", ds.segments, 142238)


@pytest.mark.parametrize(
    "field, value, words",
    [
        ("id", "7", "non-integer id"),
        ("category_id", None, "non-integer category_id"),
        ("area", "big", "area 'big' is not a number"),
        ("bbox", [1, 2, 3], "is not [x, y, w, h]"),
        ("bbox", [1, 2, "3", 4], "is not [x, y, w, h]"),
    ],
)
def test_malformed_segments_info_is_one_clear_error(tiny, field, value, words):
    js, png, _ = tiny
    edit(js, lambda d: d["annotations"][0]["segments_info"][1].update({field: value}))
    e = raises(re.escape(words), PanopticDataset, js, png)
    assert words in e.problem and e.record == "annotations[0] (image_id 1) segments_info[1]"


def test_malformed_instance_box_or_area(shared_data, tmp_path):
    doc = json.loads((shared_data / INSTANCE_SETS["tiny_coco_val"]).read_text())
    path = tmp_path / "inst.json"
    for field, value in (("bbox", [1, 2]), ("bbox", "x"), ("area", None)):
        d = json.loads(json.dumps(doc))
        d["annotations"][2][field] = value
        path.write_text(json.dumps(d))
        e = raises("malformed bbox", InstancesDataset, path)
        assert e.record == f"annotations[2] (id {d['annotations'][2]['id']})"
