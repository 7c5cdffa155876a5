"""pointly -> PointSup / CVAT / Label Studio -> pointly, pixel-exact, on every real data set.

Every points file is simulated here from the COCO data in ../shared/data (skipped when absent).
The comparison is made on a canonical form built only from the documents (per image file name:
its size, and its segments in order as category name, isthing and the list of (x, y, label));
ids are compared where the format or the reference file can carry them.
"""

from __future__ import annotations

import json
import math

import pytest
from simulate_fixtures import INSTANCE_SETS, PANOPTIC_SETS

from pointly.cli.main import main as cli
from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.coco import PanopticDataset
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.interop.convert import export_document, import_document
from pointly.pointgen.points.cost import measured_seconds
from pointly.pointgen.points.simulate import SimulationOptions, simulate

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

SETS = sorted(PANOPTIC_SETS) + sorted(INSTANCE_SETS)
FORMATS = ("pointsup", "cvat", "labelstudio")
SUFFIX = {"pointsup": ".json", "cvat": ".xml", "labelstudio": ".json"}


def source_json(shared_data, name):
    return shared_data / (PANOPTIC_SETS[name][0] if name in PANOPTIC_SETS else INSTANCE_SETS[name])


@pytest.fixture(scope="module")
def simulated(shared_data, tmp_path_factory):
    """name -> path of a points file simulated from that data set (12 points, a third boundary)."""
    root = tmp_path_factory.mktemp("sim")
    out = {}
    for name in SETS:
        if name in PANOPTIC_SETS:
            js, png = PANOPTIC_SETS[name]
            ds = PanopticDataset(shared_data / js, shared_data / png)
        else:
            ds = InstancesDataset(shared_data / INSTANCE_SETS[name])
        doc = simulate(ds, SimulationOptions(points=12, boundary_share=0.34, seed=3)).document
        path = root / f"{name}.json"
        formats.save_points(path, doc)
        out[name] = path
    return out


def canonical(doc, *, things_only=False):
    """file_name -> (width, height, [(category name, isthing, ((x, y, label), ...)), ...])."""
    cats = {c["id"]: c for c in doc["categories"]}
    out = {im["file_name"]: (im["width"], im["height"], []) for im in doc["images"]}
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    for a in doc["annotations"]:
        c = cats[a["category_id"]]
        if things_only and not c["isthing"]:
            continue
        pts = tuple((x, y, lab) for (x, y), lab in zip(a["point_coords"], a["point_labels"]))
        out[names[a["image_id"]]][2].append((c["name"], c["isthing"], pts))
    return out


def write(content, path):
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", SETS)
def test_round_trip_with_the_source_json_is_exact(simulated, shared_data, tmp_path, name, fmt):
    src = formats.load_points(simulated[name])
    assert sum(len(a["point_coords"]) for a in src["annotations"]) > 0
    opts = {"include_stuff": True} if fmt == "pointsup" else {}
    content, _ = export_document(src, fmt, file=simulated[name], **opts)
    back, _ = import_document(
        write(content, tmp_path / f"x{SUFFIX[fmt]}"), fmt, images_json=source_json(shared_data, name)
    )
    assert canonical(back) == canonical(src)
    # ids and categories through the reference file (or the file itself for PointSup)
    assert sorted(im["id"] for im in back["images"]) == sorted(im["id"] for im in src["images"])
    assert {(c["id"], c["name"], c["isthing"]) for c in back["categories"]} == {
        (c["id"], c["name"], c["isthing"]) for c in src["categories"]
    }
    by_id = {im["id"]: im["file_name"] for im in src["images"]}
    assert sorted(
        (by_id[a["image_id"]], a["category_id"], str(a["point_coords"])) for a in back["annotations"]
    ) == sorted((by_id[a["image_id"]], a["category_id"], str(a["point_coords"])) for a in src["annotations"])
    if fmt == "pointsup":  # PointSup holds the annotation ids, boxes and areas too
        assert [(a["id"], a["bbox"], a["area"]) for a in back["annotations"]] == [
            (a["id"], a["bbox"], a["area"]) for a in src["annotations"]
        ]


@pytest.mark.parametrize("fmt", ("cvat", "labelstudio"))
@pytest.mark.parametrize("name", SETS)
def test_round_trip_without_a_reference_keeps_names_sizes_and_image_ids(simulated, tmp_path, name, fmt):
    src = formats.load_points(simulated[name])
    content, _ = export_document(src, fmt, file=simulated[name])
    back, _ = import_document(write(content, tmp_path / f"x{SUFFIX[fmt]}"), fmt)
    assert canonical(back) == canonical(src)
    assert sorted(im["id"] for im in back["images"]) == sorted(im["id"] for im in src["images"])


@pytest.mark.parametrize("name", SETS)
def test_pointsup_things_only_round_trip(simulated, tmp_path, name):
    src = formats.load_points(simulated[name])
    content, warnings = export_document(src, "pointsup", file=simulated[name])
    n_stuff = sum(
        1
        for a in src["annotations"]
        if not next(c for c in src["categories"] if c["id"] == a["category_id"])["isthing"]
    )
    assert any(f"left out {n_stuff} stuff" in w for w in warnings) == (n_stuff > 0)
    back, _ = import_document(write(content, tmp_path / "ps.json"), "pointsup")
    assert canonical(back) == canonical(src, things_only=True)


def hand_doc():
    """Negatives, stuff, a one-point segment, crowd-free, with annotator times."""
    images = [
        {"id": 7, "file_name": "a.jpg", "width": 9, "height": 5, "license": 3},
        {"id": 8, "file_name": "sub/b.png", "width": 426, "height": 426},
    ]
    cats = [
        {"id": 1, "name": "person", "isthing": 1},
        {"id": 2, "name": "sky", "isthing": 0},
        {"id": 3, "name": "unused", "isthing": 1},
    ]
    anns = [
        {
            "id": 10,
            "image_id": 7,
            "category_id": 1,
            "point_coords": [[0, 0], [8, 4], [3, 2]],
            "point_labels": [1, 0, 1],
            "point_times": [2.0, 5.0, 6.0],
        },
        {
            "id": 11,
            "image_id": 7,
            "category_id": 2,
            "point_coords": [[4, 1], [5, 1]],
            "point_labels": [1, 1],
            "point_times": [3.0, 100.0],
        },
        {
            "id": 12,
            "image_id": 8,
            "category_id": 1,
            "point_coords": [[5, 5], [425, 0]],
            "point_labels": [1, 1],
            "point_times": [1.0, 2.5],
        },
    ]
    return formats.make_document(images, cats, anns, {"made_by": "test"}, licenses=[{"id": 3, "name": "L"}])


@pytest.mark.parametrize("fmt", FORMATS)
def test_hand_made_negatives_stuff_and_edges_survive(tmp_path, fmt):
    src = hand_doc()
    path = tmp_path / "p.json"
    formats.save_points(path, src)
    opts = (
        {"include_stuff": True, "drop_times": True}
        if fmt == "pointsup"
        else {"drop_times": True}
        if fmt == "cvat"
        else {}
    )
    content, _ = export_document(src, fmt, file=path, **opts)
    back, _ = import_document(write(content, tmp_path / f"x{SUFFIX[fmt]}"), fmt, images_json=path)
    assert canonical(back) == canonical(src)
    assert back["licenses"] == [{"id": 3, "name": "L"}] and back["images"][0]["license"] == 3


def test_lead_time_round_trip_keeps_measured_seconds(tmp_path):
    src = hand_doc()
    path = tmp_path / "p.json"
    formats.save_points(path, src)
    tasks, _ = export_document(src, "labelstudio", file=path)
    # image 7: sorted times 2, 3, 5, 6, 100 -> gaps 2, 1, 2, 1, 94; the 94 s gap is idle: 6 s
    # image 8: 1.0 and 2.5 -> 2.5 s
    assert [t["annotations"][0]["lead_time"] for t in tasks] == [6.0, 2.5]
    back, _ = import_document(write(tasks, tmp_path / "ls.json"), "labelstudio")
    m = measured_seconds(back)
    assert m["per_image"] == {7: pytest.approx(6.0), 8: pytest.approx(2.5)}
    # five points on image 7 share its 6 s evenly: 1.2 s each, 3 of them the person's
    first = back["annotations"][0]
    assert first["point_times"] == pytest.approx([1.2, 2.4, 3.6])
    assert m["per_annotation"][first["id"]] == pytest.approx(3.6)
    assert "spread evenly" in back["info"]["pointly"]["point_times"]


def test_the_worked_example_of_the_guide(tmp_path):
    # docs/interop.md: a thing clicked at 2 and 5 s, a stuff region at 3, 100 and 104 s
    doc = formats.make_document(
        [{"id": 1, "file_name": "a.jpg", "width": 20, "height": 20}],
        [{"id": 1, "name": "dog", "isthing": 1}, {"id": 2, "name": "grass", "isthing": 0}],
        [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "point_coords": [[1, 1], [2, 2]],
                "point_labels": [1, 1],
                "point_times": [2.0, 5.0],
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "point_coords": [[9, 9], [10, 9], [11, 9]],
                "point_labels": [1, 1, 1],
                "point_times": [3.0, 100.0, 104.0],
            },
        ],
        {"made_by": "annotator"},
    )
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    tasks, _ = export_document(doc, "labelstudio", file=path)
    assert tasks[0]["annotations"][0]["lead_time"] == 9.0
    back, _ = import_document(write(tasks, tmp_path / "ls.json"), "labelstudio")
    assert [a["point_times"] for a in back["annotations"]] == [
        pytest.approx([1.8, 3.6]),
        pytest.approx([5.4, 7.2, 9.0]),
    ]
    m = measured_seconds(back)
    assert m["per_image"][1] == pytest.approx(9.0) and m["thing"]["active_seconds"] == pytest.approx(3.6)


def test_pixel_centres_survive_percentages_where_pixel_edges_do_not():
    # image 139 of COCO is 426 pixels high: row 5 written as 5 / 426 * 100 percent comes back as
    # 4.999999999999999 and floors to row 4; its centre 5.5 comes back as 5.5 and floors to 5
    h, y = 426, 5
    assert math.floor((y / h * 100) * h / 100) == 4
    assert math.floor(((y + 0.5) / h * 100) * h / 100) == 5


def test_cli_round_trip_and_cost_on_every_format(simulated, shared_data, tmp_path, capsys):
    name = "coco_panoptic_val2017"
    pts = simulated[name]
    for fmt in FORMATS:
        out = tmp_path / f"out{SUFFIX[fmt]}"
        back = tmp_path / f"back-{fmt}.json"
        extra = ["--include-stuff"] if fmt == "pointsup" else []
        assert cli(["export", str(pts), "--to", fmt, "-o", str(out)] + extra) == 0
        assert (
            cli(
                [
                    "import",
                    str(out),
                    "--from",
                    fmt,
                    "--images-json",
                    str(source_json(shared_data, name)),
                    "-o",
                    str(back),
                ]
            )
            == 0
        )
        assert canonical(formats.load_points(back)) == canonical(formats.load_points(pts))
        capsys.readouterr()
        assert cli(["cost", str(back)]) == 0
        table = capsys.readouterr().out
        # 53 segments (45 things, 8 stuff) of 12 points: 636 points, 572.4 s at 0.9 s a point
        assert "| all | 53 | 636 |" in table and "| thing | 45 | 540 |" in table
