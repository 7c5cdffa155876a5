"""The synthetic dataset: COCO panoptic validity, invariants, geometry, appearance, determinism."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from PIL import Image
from shapely import affinity
from shapely.geometry import Point, Polygon, box
from skimage.morphology import convex_hull_image
from synth_fixtures import small_synth  # noqa: F401  (fixture)

from pointly.data.shapes import CONVEX, Shape
from pointly.data.synth import generate, generate_image, image_rng
from pointly.pointgen.base.categories import load_categories
from pointly.pointgen.base.coco import PanopticDataset, decode_panoptic_png
from pointly.pointgen.base.coco_instances import InstancesDataset


def _open(root, split):
    return PanopticDataset(root / split / "panoptic.json", root / split / "panoptic")


def test_reads_as_coco_panoptic_with_checks(small_synth):
    # PanopticDataset(check=True) verifies PNG ids == segments_info, areas and boxes
    for split, n in (("train", 12), ("val", 4)):
        ds = _open(small_synth, split)
        assert len(ds) == n
        for im in ds:
            assert (im.width, im.height) == (128, 128)
            segs = ds.segments(im.id)
            assert segs, "every image has segments"
            ids = ds.label_map(im.id)
            assert (ids != 0).all(), "no VOID: every pixel belongs to a segment"
            rgb = np.asarray(Image.open(small_synth / split / "images" / im.file_name))
            assert rgb.shape == (128, 128, 3) and rgb.dtype == np.uint8


def test_segments_invariants(small_synth):
    cats = {c["id"]: c for c in load_categories("synthetic")}
    assert json.loads((small_synth / "categories.json").read_text()) == list(cats.values())
    for split in ("train", "val"):
        ds = _open(small_synth, split)
        for im in ds:
            segs = ds.segments(im.id)
            stuff_cats = [s.category_id for s in segs if not s.isthing]
            assert len(stuff_cats) == len(set(stuff_cats)), "one stuff segment per class per image"
            assert 1 <= len(stuff_cats) <= 3
            for s in segs:
                assert s.category_id in cats
                assert s.isthing == bool(cats[s.category_id]["isthing"])
                assert s.mask.sum() == s.area >= 30, "no empty or tiny segment"
                assert not s.iscrowd


def test_instances_json_matches_panoptic(small_synth):
    inst = InstancesDataset(small_synth / "val" / "instances.json")
    pan = _open(small_synth, "val")
    for im in pan:
        things = {s.segment_id: s for s in pan.segments(im.id) if s.isthing}
        got = inst.segments(im.id)
        assert len(got) == len(things)
        for ann, seg in zip(inst.annotations(im.id), got):
            ref = things[ann["panoptic_segment_id"]]
            assert seg.category_id == ref.category_id
            assert np.array_equal(seg.mask, ref.mask)


def _shapely(t: dict):
    """An independent geometric model of a generated shape (shapely), from shapes.json."""
    s = t["shape"]
    k, cx, cy, r, a, p = s["kind"], s["cx"], s["cy"], s["size"], s["angle"], s["params"]
    disc = Point(cx, cy).buffer(r, 256)
    if k == "disc":
        return disc
    if k == "rectangle":
        hw = r / math.sqrt(1 + p["aspect"] ** 2)
        rect = box(cx - hw, cy - hw * p["aspect"], cx + hw, cy + hw * p["aspect"])
        return affinity.rotate(rect, a, origin=(cx, cy), use_radians=True)
    if k in ("ring", "cshape"):
        ring = disc.difference(Point(cx, cy).buffer(r * p["inner"], 256))
        if k == "ring":
            return ring
        g = p["gap"] / 2  # remove the wedge of half-angle g around direction a
        far = 3 * r
        wedge = Polygon(
            [(cx, cy)] + [(cx + far * math.cos(a + t), cy + far * math.sin(a + t)) for t in np.linspace(-g, g, 64)]
        )
        return ring.difference(wedge)
    if k == "triangle":
        ang = a + np.arange(3) * 2 * np.pi / 3 + np.asarray(p["jitter"])
        rad = r * np.asarray(p["radii"])
    else:  # star
        n = p["points"]
        ang = a + np.arange(2 * n) * np.pi / n
        rad = r * np.where(np.arange(2 * n) % 2 == 0, 1.0, p["inner"])
    return Polygon(np.stack([cx + rad * np.cos(ang), cy + rad * np.sin(ang)], 1))


def test_thing_geometry_matches_an_independent_model(small_synth):
    checked = {}
    for split in ("train", "val"):
        doc = json.loads((small_synth / split / "shapes.json").read_text())
        for im in doc["images"]:
            ids = decode_panoptic_png(small_synth / split / "panoptic" / f"{im['image_id']:06d}.png")
            for t in im["things"]:
                mask = ids == t["segment_id"]
                s = t["shape"]
                full = Shape(s["kind"], s["cx"], s["cy"], s["size"], s["angle"], s["params"]).mask(128, 128)
                assert not (mask & ~full).any(), "visible part lies inside the shape"
                assert mask.sum() == t["visible_area"]
                if t["occluded"] or t["cropped"]:
                    continue
                assert mask.sum() == full.sum()
                geom = _shapely(t)
                # pixel count vs exact area: the error is a boundary term, < 0.6 px per unit of perimeter
                assert abs(mask.sum() - geom.area) <= 0.6 * geom.length + 4, (s["kind"], mask.sum(), geom.area)
                if s["kind"] == "disc":
                    assert mask.sum() == pytest.approx(math.pi * s["size"] ** 2, rel=0.08)
                # convex shapes fill their hull, the others do not (what convex-vs-concave needs)
                solidity = mask.sum() / convex_hull_image(mask).sum()
                expected = geom.area / geom.convex_hull.area
                assert abs(solidity - expected) < 0.12, (s["kind"], solidity, expected)
                if s["kind"] in CONVEX:
                    assert solidity > 0.8
                else:
                    assert expected < 0.82
                checked[s["kind"]] = checked.get(s["kind"], 0) + 1
    assert len(checked) >= 5, f"too few unoccluded shapes of each kind checked: {checked}"


def test_class_identity_is_learnable_from_colour(small_synth):
    """A nearest-centroid classifier on a segment's mean colour, fitted on train, labels val."""

    def features(split):
        ds = _open(small_synth, split)
        X, y = [], []
        for im in ds:
            rgb = np.asarray(Image.open(small_synth / split / "images" / im.file_name), float)
            for s in ds.segments(im.id):
                X.append(np.concatenate([rgb[s.mask].mean(0), rgb[s.mask].std(0)]))
                y.append(s.category_id)
        return np.array(X), np.array(y)

    Xt, yt = features("train")
    Xv, yv = features("val")
    classes = np.unique(yt)
    centroids = np.stack([Xt[yt == c].mean(0) for c in classes])
    pred = classes[np.argmin(((Xv[:, None] - centroids[None]) ** 2).sum(-1), axis=1)]
    assert (pred == yv).mean() >= 0.85


def test_same_seed_same_bytes_and_split_size_independence(tmp_path):
    a = generate(tmp_path / "a", train=3, val=2, seed=11, progress=False)
    b = generate(tmp_path / "b", train=3, val=2, seed=11, progress=False)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3 * 2 + 2 * 2 + 3 * 2 + 2
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    c = generate(tmp_path / "c", train=1, val=0, seed=11, progress=False)
    for sub in ("images", "panoptic"):
        assert (c / "train" / sub / "000001.png").read_bytes() == (a / "train" / sub / "000001.png").read_bytes()
    d = generate(tmp_path / "d", train=1, val=0, seed=12, progress=False)
    assert (d / "train" / "images" / "000001.png").read_bytes() != (a / "train" / "images" / "000001.png").read_bytes()


def test_other_image_sizes_scale():
    im = generate_image(image_rng(5, "train", 0), size=96)
    assert im.rgb.shape == (96, 96, 3) and im.ids.shape == (96, 96)
    assert {s["id"] for s in im.segments} == set(np.unique(im.ids).tolist())
