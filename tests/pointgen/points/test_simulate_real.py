"""The simulator on every real dataset in ../shared/data, through the public API and the CLI.

Each point is checked against the mask that the COCO reader (a separate code path: full
pycocotools decode / full PNG decode) gives for its ``source_segment_id``, and each boundary
point against the pixel-by-pixel boundary reference.
"""

from __future__ import annotations

import json

import pytest
from simulate_fixtures import INSTANCE_SETS, PANOPTIC_SETS, boundary_reference

from pointly.cli.main import main as cli
from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.points.simulate import SimulationOptions, simulate

# pycocotools 2.0 calls np.array(copy=False) inside decode; harmless with numpy 2
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def open_set(shared_data, name):
    if name in PANOPTIC_SETS:
        js, png = PANOPTIC_SETS[name]
        return PanopticDataset(shared_data / js, shared_data / png)
    return InstancesDataset(shared_data / INSTANCE_SETS[name])


@pytest.mark.parametrize("name", sorted(PANOPTIC_SETS) + sorted(INSTANCE_SETS))
def test_every_point_inside_its_segment(shared_data, name):
    ds = open_set(shared_data, name)
    res = simulate(ds, SimulationOptions(points=12, boundary_share=0.5, seed=7, include_crowd=True))
    doc = res.document
    formats.validate_points(doc)
    by_image = formats.annotations_by_image(doc)
    n_segments = 0
    boundary_checked = 0
    for image in ds.images:
        segs = {s.segment_id: s for s in ds.segments(image.id)}
        anns = by_image[image.id]
        assert len({a["source_segment_id"] for a in anns}) == len(anns)
        for a in anns:
            seg = segs[a["source_segment_id"]]
            mask = seg.mask
            assert a["category_id"] == seg.category_id and a["iscrowd"] == int(seg.iscrowd)
            assert a["bbox"] == [float(v) for v in seg.bbox] and a["area"] == pytest.approx(seg.area)
            assert a["point_labels"] == [1] * len(a["point_coords"])
            pts = [tuple(p) for p in a["point_coords"]]
            assert len(set(pts)) == len(pts)
            assert len(pts) == min(12, int(mask.sum()))
            assert all(mask[y, x] for x, y in pts)
            # boundary kinds by the definition; only within the box region, to keep it fast
            x0, y0 = max(int(seg.bbox[0]) - 2, 0), max(int(seg.bbox[1]) - 2, 0)
            x1, y1 = int(seg.bbox[0] + seg.bbox[2]) + 3, int(seg.bbox[1] + seg.bbox[3]) + 3
            crop = mask[y0:y1, x0:x1]
            if crop.sum() == mask.sum() and crop.size < 40000:
                ref = boundary_reference(crop)
                for (x, y), kind in zip(pts, a["point_kinds"]):
                    assert kind == ("boundary" if ref[y - y0, x - x0] else "random")
                boundary_checked += 1
            n_segments += 1
    assert n_segments == res.summary.segments > 0
    assert boundary_checked > 0


def test_counts_and_crowd_on_coco_panoptic(shared_data):
    # README: 56 segments, 48 thing, 8 stuff, 3 crowd
    ds = open_set(shared_data, "coco_panoptic_val2017")
    res = simulate(ds, SimulationOptions(points=20, boundary_share=0.25))
    assert res.summary.segments == 53 and res.summary.skipped_crowd == 3
    assert res.summary.points == 53 * 20 and res.summary.boundary_points == 53 * 5
    for a in res.document["annotations"]:
        assert a["point_kinds"].count("boundary") == 5 and a["iscrowd"] == 0
    things = simulate(ds, SimulationOptions(things_only=True, include_crowd=True)).summary
    stuff = simulate(ds, SimulationOptions(stuff_only=True, include_crowd=True)).summary
    assert (things.segments, stuff.segments) == (48, 8)
    crowd = simulate(ds, SimulationOptions(include_crowd=True)).document
    assert sum(a["iscrowd"] for a in crowd["annotations"]) == 3


def test_tiny_coco_counts_and_provenance(shared_data):
    # README: 852 instances over both files, 10 crowd (uncompressed RLE), things only
    total = crowd = 0
    for name in INSTANCE_SETS:
        ds = open_set(shared_data, name)
        res = simulate(ds, SimulationOptions(points=5, seed=3, include_crowd=True))
        total += res.summary.segments + res.summary.empty_segments
        crowd += sum(a["iscrowd"] for a in res.document["annotations"])
        info = res.document["info"]["pointly"]
        assert info["made_by"] == "simulator" and info["points"] == 5 and info["seed"] == 3
        assert info["boundary_share"] == 0.0 and info["source"] == ds.json_path.name
        assert info["source_digest"] == formats.file_digest(ds.json_path)
        assert info["source_kind"] == "instances"
        assert [a["id"] for a in res.document["annotations"]] == list(range(1, len(res.document["annotations"]) + 1))
        assert len(res.document["images"]) == 50
    assert total == 852 and crowd == 10


def test_options_travel_as_one_object(shared_data):
    """An integer boundary share is stored as its float; options are checked where they are used;
    the document holds the options it was made with."""
    assert SimulationOptions(boundary_share=1).boundary_share == 1.0
    assert isinstance(SimulationOptions(boundary_share=0).boundary_share, float)
    ds = open_set(shared_data, "coco_panoptic_val2017")
    opts = SimulationOptions(points=4, boundary_share=0.5, seed=2, stuff_only=True)
    doc = simulate(ds, opts).document
    assert doc["annotations"] and all(len(a["point_coords"]) <= 4 for a in doc["annotations"])
    with pytest.raises(PointlyError, match="workers"):
        simulate(ds, opts, workers=0)
    with pytest.raises(PointlyError, match="exclude each other"):
        simulate(ds, SimulationOptions(things_only=True, stuff_only=True))


@pytest.mark.slow
def test_same_seed_same_bytes_across_workers(shared_data, tmp_path):
    js = shared_data / INSTANCE_SETS["tiny_coco_val"]
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}.json"
        assert (
            cli(
                [
                    "simulate",
                    "--instances-json",
                    str(js),
                    "-o",
                    str(out),
                    "-n",
                    "7",
                    "--boundary-share",
                    "0.3",
                    "--seed",
                    "11",
                    "--workers",
                    str(workers),
                    "--include-crowd",
                    "--no-progress",
                ]
            )
            == 0
        )
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    pan = []
    for workers in (1, 2):
        out = tmp_path / f"p{workers}.json"
        assert (
            cli(
                [
                    "simulate",
                    "--panoptic-json",
                    str(shared_data / js),
                    "--panoptic-dir",
                    str(shared_data / png),
                    "-o",
                    str(out),
                    "--seed",
                    "5",
                    "--workers",
                    str(workers),
                    "--no-progress",
                ]
            )
            == 0
        )
        pan.append(out.read_bytes())
    assert pan[0] == pan[1]
    # a different seed gives different points; the same seed again the same bytes
    again = tmp_path / "again.json"
    assert (
        cli(
            [
                "simulate",
                "--panoptic-json",
                str(shared_data / js),
                "--panoptic-dir",
                str(shared_data / png),
                "-o",
                str(again),
                "--seed",
                "6",
                "--no-progress",
            ]
        )
        == 0
    )
    assert again.read_bytes() != pan[0]
    doc = formats.load_points(tmp_path / "p1.json")
    assert doc["info"]["pointly"]["seed"] == 5


@pytest.mark.slow
def test_cli_summary_output(shared_data, tmp_path, capsys):
    js, png = PANOPTIC_SETS["dsb2018_nuclei"]
    out = tmp_path / "o.json"
    assert (
        cli(
            [
                "simulate",
                "--panoptic-json",
                str(shared_data / js),
                "--panoptic-dir",
                str(shared_data / png),
                "-o",
                str(out),
                "-n",
                "600",
                "--no-progress",
            ]
        )
        == 0
    )
    text = capsys.readouterr().out
    doc = json.loads(out.read_text())
    assert "images: 1" in text and "segments: 126" in text
    # the expected number of short segments, straight from the areas in the source JSON
    src = json.loads((shared_data / js).read_text())
    expected = sum(1 for s in src["annotations"][0]["segments_info"] if s["area"] < 600)
    assert 100 < expected < 126
    short = sum(1 for a in doc["annotations"] if len(a["point_coords"]) < 600)
    assert short == expected
    assert f"short segments (fewer pixels than points, all pixels taken): {expected} WARNING" in text
    assert all(len(a["point_coords"]) == a["area"] for a in doc["annotations"] if a["area"] < 600)


def test_simulated_points_keep_the_sources_licences(shared_data, tmp_path):
    """COCO's attribution travels: top-level licenses and each image's license id and URLs."""
    import json

    from pointly.pointgen.base.coco import open_dataset
    from pointly.pointgen.base.points_format import load_points
    from pointly.pointgen.points.simulate import simulate_to_file

    root = shared_data / "coco_panoptic_val2017"
    src = json.loads((root / "panoptic_val2017.json").read_text())
    out = tmp_path / "p.json"
    simulate_to_file(
        out,
        open_dataset(panoptic_json=root / "panoptic_val2017.json", panoptic_dir=root / "panoptic"),
        SimulationOptions(points=3),
        progress=False,
    )
    doc = load_points(out)
    assert doc["licenses"] == src["licenses"]
    want = {im["id"]: im.get("license") for im in src["images"]}
    assert {im["id"]: im.get("license") for im in doc["images"]} == want
    assert want[39769] is None and want[142238] is not None  # the PNG image has none, as in the source
