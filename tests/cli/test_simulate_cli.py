"""``pointly simulate`` on bad input: exit code 2, one line naming the problem, no output file.

Broken datasets are modified copies (in tmp_path) of hand-made ones or of ../shared/data.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from simulate_fixtures import CATEGORIES, INSTANCE_SETS, PANOPTIC_SETS, encode_ids_rgb, write_panoptic

from pointly.cli.main import main as cli


@pytest.fixture
def small_panoptic(tmp_path):
    """A hand-made 2-image panoptic dataset: a person and a car on sky, with VOID."""
    a = np.zeros((12, 16), np.int64)
    a[:, :] = 300  # sky (an id above 255, so G is used)
    a[2:7, 3:8] = 1
    a[5:11, 9:15] = 70000  # an id above 65535, so B is used
    a[0, 0] = 0
    b = np.full((10, 10), 5, np.int64)
    b[3:6, 3:6] = 6
    meta = {
        1: {300: {"category_id": 3}, 1: {"category_id": 1}, 70000: {"category_id": 2}},
        2: {5: {"category_id": 3}, 6: {"category_id": 1, "iscrowd": 1}},
    }
    js, png = write_panoptic(tmp_path / "ds", {1: a, 2: b}, CATEGORIES, meta)
    return js, png


def run_bad(args, out, capsys, *expect):
    """Run the CLI expecting exit 2, one stderr line containing ``expect``, and no output file."""
    rc = cli(["simulate", *args, "-o", str(out), "--no-progress"])
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert rc == 2, err
    assert len(lines) == 1 and lines[0].startswith("pointly: error: "), err
    for e in expect:
        assert e in lines[0], (e, lines[0])
    assert not out.exists()
    assert not list(out.parent.glob(f".{out.name}.*")), "temporary file left behind"
    return lines[0]


def test_small_dataset_runs(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    out = tmp_path / "ok.json"
    assert (
        cli(
            [
                "simulate",
                "--panoptic-json",
                str(js),
                "--panoptic-dir",
                str(png),
                "-o",
                str(out),
                "-n",
                "4",
                "--boundary-share",
                "0.5",
                "--no-progress",
            ]
        )
        == 0
    )
    doc = json.loads(out.read_text())
    # 4 segments (crowd skipped), ids in image order then JSON order (sorted segment ids)
    assert [(a["id"], a["image_id"], a["source_segment_id"]) for a in doc["annotations"]] == [
        (1, 1, 1),
        (2, 1, 300),
        (3, 1, 70000),
        (4, 2, 5),
    ]
    for a in doc["annotations"]:
        assert a["point_kinds"].count("boundary") == 2 and len(a["point_coords"]) == 4
    assert "skipped crowd segments: 1" in capsys.readouterr().out


def test_bad_options(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    src = ["--panoptic-json", str(js), "--panoptic-dir", str(png)]
    out = tmp_path / "out.json"
    run_bad(src + ["-n", "0"], out, capsys, "-n/--points", "got 0")
    run_bad(src + ["-n", "-3"], out, capsys, "-n/--points")
    run_bad(src + ["--boundary-share", "1.5"], out, capsys, "--boundary-share", "[0, 1]")
    run_bad(src + ["--boundary-share", "-0.1"], out, capsys, "--boundary-share")
    run_bad(src + ["--boundary-share", "nan"], out, capsys, "--boundary-share")
    run_bad(src + ["--seed", "-1"], out, capsys, "--seed")
    run_bad(src + ["--workers", "0"], out, capsys, "--workers")
    run_bad(src + ["--things-only", "--stuff-only"], out, capsys, "exclude each other")
    run_bad([], out, capsys, "no dataset given")
    run_bad(src + ["--instances-json", str(js)], out, capsys, "not both")


def test_missing_files(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    out = tmp_path / "out.json"
    run_bad(
        ["--panoptic-json", str(tmp_path / "nope.json"), "--panoptic-dir", str(png)],
        out,
        capsys,
        "nope.json",
        "not found",
    )
    run_bad(["--panoptic-json", str(js), "--panoptic-dir", str(tmp_path / "nodir")], out, capsys, "nodir", "not found")
    run_bad(["--instances-json", str(tmp_path / "none.json")], out, capsys, "none.json", "not found")
    (png / "000000000002.png").unlink()
    run_bad(["--panoptic-json", str(js), "--panoptic-dir", str(png)], out, capsys, "000000000002.png", "not found")


def test_png_ids_disagree(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    out = tmp_path / "out.json"
    path = png / "000000000001.png"
    rgb = np.asarray(Image.open(path)).astype(np.int64)
    ids = rgb[..., 0] + 256 * rgb[..., 1] + 65536 * rgb[..., 2]
    ids[0:2, 0:2] = 4242  # an id that segments_info does not list
    Image.fromarray(encode_ids_rgb(ids)).save(path)
    run_bad(
        ["--panoptic-json", str(js), "--panoptic-dir", str(png)],
        out,
        capsys,
        "000000000001.png",
        "image_id 1",
        "[4242]",
        "in the PNG but not in segments_info",
    )
    ids[ids == 4242] = 300
    ids[ids == 1] = 300  # segment 1 disappears from the PNG
    Image.fromarray(encode_ids_rgb(ids)).save(path)
    run_bad(
        ["--panoptic-json", str(js), "--panoptic-dir", str(png)],
        out,
        capsys,
        "[1] are in segments_info but not in the PNG",
    )


def test_area_and_bbox_disagree(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    out = tmp_path / "out.json"
    doc = json.loads(js.read_text())
    good = json.dumps(doc)
    doc["annotations"][0]["segments_info"][0]["area"] += 3
    js.write_text(json.dumps(doc))
    run_bad(["--panoptic-json", str(js), "--panoptic-dir", str(png)], out, capsys, "area", "image_id 1")
    doc = json.loads(good)
    doc["annotations"][0]["segments_info"][0]["bbox"][2] += 4
    js.write_text(json.dumps(doc))
    run_bad(["--panoptic-json", str(js), "--panoptic-dir", str(png)], out, capsys, "bbox", "image_id 1")


def test_unknown_category(small_panoptic, tmp_path, capsys, shared_data):
    js, png = small_panoptic
    out = tmp_path / "out.json"
    doc = json.loads(js.read_text())
    doc["annotations"][1]["segments_info"][0]["category_id"] = 999
    js.write_text(json.dumps(doc))
    run_bad(
        ["--panoptic-json", str(js), "--panoptic-dir", str(png)], out, capsys, "unknown category_id 999", "image_id 2"
    )
    inst = json.loads((shared_data / INSTANCE_SETS["tiny_coco_val"]).read_text())
    inst["annotations"][5]["category_id"] = 4321
    bad = tmp_path / "inst.json"
    bad.write_text(json.dumps(inst))
    run_bad(
        ["--instances-json", str(bad)], out, capsys, "unknown category_id 4321", f"id {inst['annotations'][5]['id']}"
    )


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_unreadable_png(shared_data, tmp_path, capsys, damage):
    js, png = PANOPTIC_SETS["coco_panoptic_val2017"]
    copy = tmp_path / "panoptic"
    shutil.copytree(shared_data / png, copy)
    victim = copy / "000000439180.png"
    data = victim.read_bytes()
    victim.write_bytes({"truncated": data[: len(data) // 2], "garbage": b"not a png at all" * 10, "empty": b""}[damage])
    out = tmp_path / "out.json"
    run_bad(
        ["--panoptic-json", str(shared_data / js), "--panoptic-dir", str(copy)],
        out,
        capsys,
        "000000439180.png",
        "unreadable PNG",
    )


def test_bad_instance_segmentation(shared_data, tmp_path, capsys):
    inst = json.loads((shared_data / INSTANCE_SETS["tiny_coco_val"]).read_text())
    crowd = next(a for a in inst["annotations"] if a["iscrowd"])
    crowd["segmentation"]["counts"] = crowd["segmentation"]["counts"][:-3]  # runs no longer fill the image
    bad = tmp_path / "inst.json"
    bad.write_text(json.dumps(inst))
    out = tmp_path / "out.json"
    # crowd is skipped by default, so the broken record only matters with --include-crowd
    assert cli(["simulate", "--instances-json", str(bad), "-o", str(out), "--no-progress"]) == 0
    out.unlink()
    capsys.readouterr()
    run_bad(
        ["--instances-json", str(bad), "--include-crowd"],
        out,
        capsys,
        f"annotation id {crowd['id']}",
        "bad segmentation",
    )


def test_output_is_a_folder(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    folder = tmp_path / "outdir"
    folder.mkdir()
    rc = cli(["simulate", "--panoptic-json", str(js), "--panoptic-dir", str(png), "-o", str(folder), "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "is a folder, but a file is expected" in err and len(err.strip().splitlines()) == 1


def test_error_with_progress_bar_still_one_error_line(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    (png / "000000000002.png").write_bytes(b"junk")
    out = tmp_path / "out.json"
    rc = cli(["simulate", "--panoptic-json", str(js), "--panoptic-dir", str(png), "-o", str(out)])
    err = capsys.readouterr().err
    assert rc == 2 and not out.exists()
    assert [ln for ln in err.splitlines() if "error" in ln][-1].startswith("pointly: error: ")


def test_error_in_a_worker_process_is_one_line(small_panoptic, tmp_path, capsys):
    js, png = small_panoptic
    (png / "000000000002.png").write_bytes(b"junk")
    out = tmp_path / "out.json"
    line = run_bad(
        ["--panoptic-json", str(js), "--panoptic-dir", str(png), "--workers", "2"],
        out,
        capsys,
        "000000000002.png",
        "unreadable PNG",
    )
    assert "Traceback" not in line


def test_image_without_segments_is_still_checked(tmp_path, capsys):
    # an image whose segments_info is empty must have an all-VOID PNG
    ids = np.zeros((5, 6), np.int64)
    js, png = write_panoptic(tmp_path / "ds", {3: ids}, CATEGORIES)
    out = tmp_path / "out.json"
    assert (
        cli(["simulate", "--panoptic-json", str(js), "--panoptic-dir", str(png), "-o", str(out), "--no-progress"]) == 0
    )
    doc = json.loads(out.read_text())
    assert doc["annotations"] == [] and [im["id"] for im in doc["images"]] == [3]
    out.unlink()
    ids[1, 1] = 77
    Image.fromarray(encode_ids_rgb(ids)).save(png / "000000000003.png")
    run_bad(["--panoptic-json", str(js), "--panoptic-dir", str(png)], out, capsys, "[77] are in the PNG")
