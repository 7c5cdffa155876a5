"""pointly cost: the paper's Table 1 rows, hand-computed measured times, sources, CLI errors."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pointly.cli.main import main
from pointly.pointgen.base.coco import PanopticDataset, encode_panoptic_png
from pointly.pointgen.base.coco_instances import InstancesDataset
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import make_document, save_points
from pointly.pointgen.points.cost import (
    CostModel,
    cost_table,
    measured_seconds,
    modelled_seconds,
    source_segment_counts,
    to_markdown,
)

CATS = [
    {"id": 1, "name": "thing", "isthing": 1, "supercategory": ""},
    {"id": 2, "name": "stuff", "isthing": 0, "supercategory": ""},
]


def _doc(annotations, n_images=1):
    images = [{"id": i + 1, "file_name": f"{i + 1}.png", "width": 10, "height": 10} for i in range(n_images)]
    anns = []
    for k, a in enumerate(annotations):
        rec = {
            "id": k + 1,
            "image_id": a.get("image_id", 1),
            "category_id": a["cat"],
            "point_coords": [[k % 10, 0]] * a["n"],
            "point_labels": [1] * a["n"],
        }
        if "times" in a:
            rec["point_times"] = a["times"]
        if "sid" in a:
            rec["source_segment_id"] = a["sid"]
        anns.append(rec)
    return make_document(images, CATS, anns, {"made_by": "test"})


def _paper_doc(points):
    # COCO train in Table 1: 850 K thing and 475 K stuff segments; here 850 and 475
    return _doc([{"cat": 1, "n": points}] * 850 + [{"cat": 2, "n": points}] * 475)


@pytest.mark.parametrize("points, seconds", [(10, 9.0), (20, 18.0)])
def test_paper_p10_p20_rows(points, seconds):
    df = cost_table(_paper_doc(points))
    assert list(df.index) == ["thing", "stuff", "all"]
    assert df.at["all", "segments"] == 1325 and df.at["all", "points"] == 1325 * points
    for row in ("thing", "stuff", "all"):
        assert df.at[row, "points_per_segment"] == points
        assert df.at[row, "seconds_per_segment"] == pytest.approx(seconds)
    # the paper's full-mask rows: 79 s per thing, 45 s per stuff, 67 s per segment overall
    assert df.at["thing", "full_mask_seconds_per_segment"] == 79
    assert df.at["stuff", "full_mask_seconds_per_segment"] == 45
    assert round(df.at["all", "full_mask_seconds_per_segment"]) == 67
    full = 850 * 79 + 475 * 45
    assert df.at["all", "full_mask_seconds"] == pytest.approx(full)
    assert df.at["all", "total_seconds"] == pytest.approx(1325 * seconds)
    assert df.at["all", "saving_x"] == pytest.approx(full / (1325 * seconds))
    assert df.at["all", "saving_pct"] == pytest.approx(100 * (1 - 1325 * seconds / full))
    assert modelled_seconds(_paper_doc(points)) == pytest.approx(1325 * seconds)
    assert "measured_seconds" not in df.columns
    md = to_markdown(df)
    assert f"| all | 1325 | {1325 * points} | {points:.1f} | {seconds:.1f} |" in md
    assert "0.9 s per point" in md


def test_overridden_cost_model():
    doc = _doc([{"cat": 1, "n": 4}, {"cat": 1, "n": 6}, {"cat": 2, "n": 5}])
    df = cost_table(doc, CostModel(seconds_per_point=2.0, seconds_per_thing_mask=100, seconds_per_stuff_mask=10))
    assert df.at["thing", "total_seconds"] == 20.0 and df.at["thing", "seconds_per_segment"] == 10.0
    assert df.at["stuff", "total_seconds"] == 10.0 and df.at["stuff", "full_mask_seconds"] == 10.0
    assert df.at["stuff", "saving_x"] == 1.0 and df.at["stuff", "saving_pct"] == 0.0
    assert df.at["all", "full_mask_seconds"] == 210.0 and df.at["all", "saving_x"] == pytest.approx(7.0)
    assert df.at["all", "points_per_segment"] == 5.0
    for bad in ({"seconds_per_point": -1}, {"seconds_per_thing_mask": float("nan")}):
        with pytest.raises(PointlyError, match="must be a finite number"):
            CostModel(**bad)


def test_stuff_free_file_has_undefined_ratios():
    df = cost_table(_doc([{"cat": 1, "n": 3}]))
    assert df.at["stuff", "segments"] == 0 and math.isnan(df.at["stuff", "points_per_segment"])
    assert math.isnan(df.at["stuff", "saving_x"])
    assert "| stuff | 0 | 0 | – | – |" in to_markdown(df)


# measured time, computed by hand:
# image 1: a1 (thing) at 2, 5; a2 (stuff) at 3, 100, 104 -> sorted 2(a1) 3(a2) 5(a1) 100(a2) 104(a2)
#          gaps 2, 1, 2, 95 (idle at cut-off 60), 4 -> active 9; a1 = 2 + 2 = 4; a2 = 1 + 4 = 5
# image 2: a3 (thing) at 70, 71 -> gaps 70 (idle), 1 -> active 1; a3 = 1
# a4 (stuff, image 2) has no times -> not measured
def _timed_doc():
    return _doc(
        [
            {"cat": 1, "n": 2, "times": [5, 2]},
            {"cat": 2, "n": 3, "times": [3, 104, 100]},
            {"cat": 1, "n": 2, "times": [70, 71], "image_id": 2},
            {"cat": 2, "n": 4, "image_id": 2},
        ],
        n_images=2,
    )


def test_measured_seconds_hand_computed():
    m = measured_seconds(_timed_doc(), idle_cutoff=60)
    assert m["per_image"] == {1: 9.0, 2: 1.0}
    assert m["per_annotation"] == {1: 4.0, 2: 5.0, 3: 1.0}
    assert m["active_seconds"] == 10.0 and m["images"] == 2 and m["segments"] == 3 and m["points"] == 7
    assert m["idle_gaps"] == 2 and m["idle_seconds"] == 95 + 70
    assert m["seconds_per_image"] == 5.0
    assert m["seconds_per_segment"] == pytest.approx(10 / 3)
    assert m["seconds_per_point"] == pytest.approx(10 / 7)
    assert m["thing"] == {"segments": 2, "points": 4, "active_seconds": 5.0}
    assert m["stuff"] == {"segments": 1, "points": 3, "active_seconds": 5.0}


def test_measured_seconds_cutoff_edges():
    # every gap counts: an image's active time is its last point time
    m = measured_seconds(_timed_doc(), idle_cutoff=math.inf)
    assert m["per_image"] == {1: 104.0, 2: 71.0} and m["idle_gaps"] == 0
    # a gap equal to the cut-off counts; longer ones do not
    m = measured_seconds(_timed_doc(), idle_cutoff=2)
    assert m["per_image"] == {1: 5.0, 2: 1.0}
    # equal times: a zero gap
    m = measured_seconds(_doc([{"cat": 1, "n": 2, "times": [3, 3]}]))
    assert m["per_image"] == {1: 3.0} and m["seconds_per_point"] == 1.5
    assert measured_seconds(_doc([{"cat": 1, "n": 2}])) is None
    with pytest.raises(PointlyError, match="idle cut-off"):
        measured_seconds(_timed_doc(), idle_cutoff=-1)


def test_cost_table_shows_measured_beside_modelled():
    df = cost_table(_timed_doc(), idle_cutoff=60)
    assert df.at["thing", "measured_seconds"] == 5.0 and df.at["thing", "measured_segments"] == 2
    assert df.at["stuff", "measured_seconds_per_point"] == pytest.approx(5 / 3)
    assert df.at["all", "measured_seconds_per_image"] == 5.0
    assert math.isnan(df.at["thing", "measured_seconds_per_image"])
    assert df.at["all", "total_seconds"] == pytest.approx(11 * 0.9)
    md = to_markdown(df)
    assert "measured s / point" in md and "gaps over 60 s left out (2 gaps, 165 s)" in md


def _source(tmp_path):
    """A panoptic source: image 1 with things 11, 12, a crowd thing 13 and stuff 20."""
    ids = np.zeros((10, 10), np.int64)
    ids[0:2, 0:2], ids[0:2, 5:7], ids[5:7, 5:7], ids[8:, :] = 11, 12, 13, 20
    (tmp_path / "png").mkdir()
    Image.fromarray(encode_panoptic_png(ids)).save(tmp_path / "png" / "1.png")
    segs = [
        {"id": 11, "category_id": 1},
        {"id": 12, "category_id": 1},
        {"id": 13, "category_id": 1, "iscrowd": 1},
        {"id": 20, "category_id": 2},
    ]
    doc = {
        "images": [{"id": 1, "file_name": "1.png", "width": 10, "height": 10}],
        "annotations": [{"image_id": 1, "file_name": "1.png", "segments_info": segs}],
        "categories": CATS,
    }
    (tmp_path / "pan.json").write_text(json.dumps(doc))
    inst = {
        "images": doc["images"],
        "categories": CATS,
        "annotations": [
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0, "segmentation": [[0, 0, 2, 0, 2, 2]]},
            {"id": 13, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": [[5, 5, 7, 5, 7, 7]]},
        ],
    }
    (tmp_path / "inst.json").write_text(json.dumps(inst))
    return tmp_path / "pan.json", tmp_path / "png", tmp_path / "inst.json"


def test_full_mask_baseline_from_the_source(tmp_path):
    pan_json, png, inst_json = _source(tmp_path)
    points = _doc([{"cat": 1, "n": 10, "sid": 11}])
    counts = source_segment_counts(PanopticDataset(pan_json, png, check=False), [1], points)
    assert counts == {"thing": 2, "stuff": 1, "without_points": 2}
    df = cost_table(points, full_mask_segments=counts)
    assert df.at["all", "segments"] == 1 and df.at["all", "full_mask_segments"] == 3
    assert df.at["all", "full_mask_seconds"] == 2 * 79 + 45
    assert "2 non-crowd segments in these images without points" in to_markdown(df)
    counts = source_segment_counts(InstancesDataset(inst_json), [1], points)
    assert counts == {"thing": 1, "stuff": 0, "without_points": 0}
    with pytest.raises(PointlyError, match="source_segment_id 99 is not a segment of image 1"):
        source_segment_counts(PanopticDataset(pan_json, png, check=False), [1], _doc([{"cat": 1, "n": 1, "sid": 99}]))
    with pytest.raises(PointlyError, match="image id 2 of the points file is not in the source"):
        source_segment_counts(PanopticDataset(pan_json, png, check=False), [1, 2])


def test_cli_prints_and_saves(tmp_path, capsys):
    pan_json, png, _ = _source(tmp_path)
    pts = tmp_path / "points.json"
    save_points(pts, _doc([{"cat": 1, "n": 10, "sid": 11}, {"cat": 2, "n": 20, "sid": 20, "times": [1.0] * 20}]))
    out = tmp_path / "table.csv"
    assert (
        main(
            [
                "cost",
                str(pts),
                "--panoptic-json",
                str(pan_json),
                "--panoptic-dir",
                str(png),
                "--seconds-per-point",
                "1.0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "| thing | 1 | 10 | 10.0 | 10.0 |" in printed and "1 s per point" in printed
    csv = pd.read_csv(out, index_col=0)
    assert list(csv.index) == ["thing", "stuff", "all"]
    assert csv.at["all", "full_mask_seconds"] == 2 * 79 + 45
    assert csv.at["stuff", "measured_seconds"] == 1.0  # first gap 1 s, then 19 zero gaps
    md = tmp_path / "table.md"
    assert main(["cost", str(pts), "-o", str(md)]) == 0
    assert md.read_text().startswith("| | segments |")


@pytest.mark.parametrize(
    "args, word",
    [
        (["--seconds-per-point", "-1"], "seconds_per_point must be"),
        (["--idle-cutoff", "-5"], "idle cut-off"),
        (["-o", "OUT.txt"], "unknown table format"),
        (["--panoptic-json", "PAN"], "no dataset given"),
    ],
)
def test_cli_bad_options_exit_2(tmp_path, capsys, args, word):
    pts = tmp_path / "points.json"
    save_points(pts, _doc([{"cat": 1, "n": 2}]))
    args = [a.replace("OUT", str(tmp_path / "out")).replace("PAN", str(tmp_path / "p.json")) for a in args]
    assert main(["cost", str(pts), *args]) == 2
    err = capsys.readouterr().err
    assert word in err and err.count("\n") == 1
    assert not (tmp_path / "out.txt").exists()


def test_cli_bad_points_file(tmp_path, capsys):
    assert main(["cost", str(tmp_path / "missing.json")]) == 2
    assert "file not found" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"images": [], "categories": [], "annotations": [{"id": 1}]}')
    assert main(["cost", str(bad)]) == 2
    assert "annotations[0]" in capsys.readouterr().err
