"""Image-aware targets (``shape="watershed"``): regions grown from the points over colour edges,
uncertain pixels ignored. Hand-made images whose true partition is known."""

from __future__ import annotations

import numpy as np
import pytest

from pointly.cli.main import main
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.targets.build import build_targets
from pointly.pointgen.targets.options import TargetOptions
from pointly.pointgen.targets.pixel_transform import PixelTransform
from pointly.pointgen.targets.regions import RegionOptions, grow_regions

CATS = [{"id": 1, "name": "thing", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}]


def two_colours(width: int = 100, height: int = 60, split: int = 40) -> np.ndarray:
    """Red left of column ``split``, blue from it on: the one edge lies between columns split-1 and split."""
    rgb = np.zeros((height, width, 3), np.uint8)
    rgb[:, :split] = (200, 30, 30)
    rgb[:, split:] = (30, 30, 200)
    return rgb


def test_regions_stop_at_the_colour_edge_and_ignore_its_neighbourhood():
    rgb = two_colours()
    # points far from the edge, the blue ones nearer to it than the red ones
    red = np.array([[5, 10], [8, 50]])
    blue = np.array([[45, 30], [90, 5]])
    opts = RegionOptions(border_margin=0.05, reach=1.0)  # margin 5 px of the 100 px side
    labels, known = grow_regions(rgb, [red, blue], options=opts)
    truth = np.where(np.arange(100) < 40, 1, 2)[None, :].repeat(60, 0)
    assert (labels == truth).all()  # the edge, not the distance to the points, decides
    cols = np.arange(100)
    # known: at least 5 px from the border pixels (columns 39 and 40, the inner side of each region)
    want_known = (np.abs(cols - 39) >= 5) & (np.abs(cols - 40) >= 5)
    assert (known == want_known[None, :]).all()


def test_far_pixels_and_shared_seeds_are_unknown():
    rgb = np.full((50, 200, 3), 128, np.uint8)  # no edge at all
    a = np.array([[10, 25]])
    b = np.array([[10, 25], [150, 25]])  # shares a's pixel: that pixel seeds nobody
    labels, known = grow_regions(rgb, [a, b], options=RegionOptions(border_margin=0, reach=0.2))
    assert (labels == 2).all()  # only b's own point seeds
    xs, ys = np.meshgrid(np.arange(200), np.arange(50))
    dist = np.sqrt((xs - 150) ** 2 + (ys - 25) ** 2)  # to the nearest seed (b's second point)
    assert (known == (dist <= 40)).all()  # reach 0.2 of the 200 px side


def test_build_targets_with_regions_points_crowd_and_stride():
    rgb = two_colours(width=80, height=40, split=40)
    anns = [
        {"id": 1, "image_id": 1, "category_id": 1, "point_coords": [[5, 5], [30, 30]]},
        {"id": 2, "image_id": 1, "category_id": 2, "point_coords": [[60, 20], [75, 35]]},
    ]
    opts = TargetOptions(shape="watershed")
    t = build_targets(anns, CATS, (80, 40), options=opts, image=rgb)
    # expected, by hand: red left of column 39, blue right of 40 (columns 39 and 40 are the border
    # pixels, inside the default margin of 0.01 x 80 = 0.8 px), and only within the default reach
    # of 0.25 x 80 = 20 px of some point
    xs, ys = np.meshgrid(np.arange(80), np.arange(40))
    seeds = [(5, 5), (30, 30), (60, 20), (75, 35)]
    near = np.min([np.hypot(xs - x, ys - y) for x, y in seeds], axis=0) <= 20
    want = np.where(xs < 39, 1, np.where(xs > 40, 2, 0)) * near
    want[[5, 30, 20, 35], [5, 30, 60, 75]] = [1, 1, 2, 2]  # points are hard labels
    assert (t.owner == want).all()
    on = np.nonzero(want == 1)
    assert t.segments[0].bbox == (
        float(on[1].min()),
        float(on[0].min()),
        float(on[1].max() - on[1].min() + 1),
        float(on[0].max() - on[0].min() + 1),
    )  # the box of what it owns
    # stride 2: each output pixel takes the region under its centre (input pixel 2j+1, 2i+1)
    t2 = build_targets(
        anns, CATS, (80, 40), options=opts, image=rgb, transform=PixelTransform.identity(80, 40).downsample(2)
    )
    sampled = (np.where(xs < 39, 1, np.where(xs > 40, 2, 0)) * near)[1::2, 1::2]
    assert (t2.owner == sampled).all()
    # a crowd annotation's region is ignored, not given to anyone
    crowd = anns + [{"id": 3, "image_id": 1, "category_id": 1, "iscrowd": 1, "point_coords": [[20, 20]]}]
    t3 = build_targets(crowd, CATS, (80, 40), options=opts, image=rgb)
    assert len(t3.segments) == 2
    assert (t3.owner[18:23, 18:23] == 0).all()  # around the crowd's point: its region, ignored
    assert (t3.owner[:, 41:] == t.owner[:, 41:]).all()  # the blue region is not touched


def test_watershed_needs_the_image(tmp_path, capsys):
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "point_coords": [[5, 5]]}]
    with pytest.raises(PointlyError, match="needs the image"):
        build_targets(anns, CATS, (80, 40), options=TargetOptions(shape="watershed"))
    with pytest.raises(PointlyError, match="record says 80x40"):
        build_targets(anns, CATS, (80, 40), options=TargetOptions(shape="watershed"), image=two_colours(60, 40))
    import json

    doc = {
        "images": [{"id": 1, "file_name": "a.png", "width": 80, "height": 40}],
        "categories": CATS,
        "annotations": [dict(anns[0], point_labels=[1])],
    }
    (tmp_path / "p.json").write_text(json.dumps(doc))
    assert (
        main(
            ["targets", "--no-progress", str(tmp_path / "p.json"), "--out", str(tmp_path / "t"), "--shape", "watershed"]
        )
        == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--images" in err[0]
    assert not (tmp_path / "t").exists()


def test_annotator_preview_shows_the_regions():
    """The annotator's preview with --preview-shape watershed: each segment's mask is the colour
    region its points grow to (here: left red, right blue), ignoring the border columns."""
    from types import SimpleNamespace

    from pointly.annotator.preview import preview_masks, preview_options

    opts = preview_options("watershed", "0.02")  # a dilation given for the hulls is not applied
    assert opts.shape == "watershed" and not opts.dilation
    pts = lambda *xy: [SimpleNamespace(x=x, y=y, label=1) for x, y in xy]  # noqa: E731
    segs = [
        SimpleNamespace(category_id=1, points=pts((10, 10), (20, 30))),
        SimpleNamespace(category_id=2, points=pts((60, 20))),
    ]
    cats = {c["id"]: c for c in CATS}
    rgb = two_colours(width=80, height=40, split=40)
    pm = preview_masks(segs, cats, 80, 40, opts, image=rgb)
    left, right = pm.masks
    assert not (left & right).any() and not left[:, 39:].any() and not right[:, :41].any()
    assert left[:, 15:25].all() and right[15:25, 50:70].all()  # within reach (20 px) of the points
    with pytest.raises(PointlyError, match="needs the image"):
        preview_masks(segs, cats, 80, 40, opts)


def test_target_study_has_a_watershed_axis_value(tmp_path, capsys):
    """``--grid shapes=...,watershed`` runs image-aware cells on the synthetic split (its images
    are read) and the report lists the shape beside the hulls."""
    from pointly.data.synth import ensure_dataset

    root = ensure_dataset(tmp_path / "synth", train=0, val=3, size=64, seed=4)
    out = tmp_path / "study"
    assert (
        main(
            [
                "study",
                "--no-progress",
                "--depth",
                "targets",
                "--synthetic-root",
                str(root),
                "--grid",
                "datasets=synthetic;points=5;shapes=concave,watershed;shares=0;dilations=0;seeds=0,1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    text = (out / "report.md").read_text()
    assert "| watershed |" in text and "| concave |" in text
    import pandas as pd

    rows = pd.read_csv(out / "results.csv")
    ws = rows[rows["shape"] == "watershed"]
    assert len(ws) == 2 and (ws["coverage"] > rows[rows["shape"] == "concave"]["coverage"].max()).all()
    assert (
        main(["study", "--no-progress", "--depth", "targets", "--grid", "shapes=blob", "--out", str(tmp_path / "s2")])
        == 2
    )
    assert "watershed" in capsys.readouterr().err


def test_regions_are_deterministic_and_follow_a_textured_region():
    """Same input, same regions (bit for bit); a textured disc on a flat background is one region
    when its points are inside it, and the border is found within 1 px of the disc's edge."""
    rng = np.random.default_rng(0)
    h, w = 80, 120
    ys, xs = np.mgrid[:h, :w]
    disc = (xs - 40) ** 2 + (ys - 40) ** 2 <= 25**2
    rgb = np.full((h, w, 3), (40, 120, 40), np.uint8)
    texture = rng.integers(150, 230, (h, w, 3)).astype(np.uint8)  # a speckled disc
    rgb[disc] = texture[disc]
    seeds = [np.array([[40, 40], [30, 50]]), np.array([[100, 10], [110, 70]])]
    opts = RegionOptions(smoothing=2.0, border_margin=0, reach=1.0)
    a, ka = grow_regions(rgb, seeds, options=opts)
    b, kb = grow_regions(rgb, seeds, options=opts)
    assert np.array_equal(a, b) and np.array_equal(ka, kb)
    from scipy.ndimage import distance_transform_edt

    wrong = (a == 1) != disc
    # every wrongly labelled pixel lies within 1 px of the true border
    edge_dist = np.minimum(distance_transform_edt(disc), distance_transform_edt(~disc))
    assert (edge_dist[wrong] <= 1.0).all()


def test_fast_boundaries_and_distances_equal_scikit_image_and_scipy():
    """The OpenCV / numpy replacements give exactly what scikit-image's ``find_boundaries(mode="inner")``
    and SciPy's ``distance_transform_edt`` give, on random label images with several regions."""
    from scipy.ndimage import distance_transform_edt
    from skimage.segmentation import find_boundaries

    from pointly.pointgen.targets.regions import distance_to_zero, inner_boundaries

    rng = np.random.default_rng(3)
    for _ in range(20):
        h, w = (int(v) for v in rng.integers(5, 90, 2))
        labels = rng.integers(0, 4, (h // 3 + 1, w // 3 + 1)).repeat(3, 0).repeat(3, 1)[:h, :w].astype(np.int32)
        assert np.array_equal(inner_boundaries(labels), find_boundaries(labels, mode="inner"))
        mask = rng.random((h, w)) > 0.02
        mask[rng.integers(h), rng.integers(w)] = False
        assert np.allclose(distance_to_zero(mask), distance_transform_edt(mask), rtol=0, atol=1e-4)
