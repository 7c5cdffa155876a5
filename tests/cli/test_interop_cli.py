"""``pointly export`` / ``pointly import``: options, one-line mistakes without output, warnings;
and points files from other tools (no ``isthing``, ``licenses``) through load and save."""

from __future__ import annotations

import json

import pytest

from pointly.cli.main import main as cli
from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.errors import PointlyError


def small_doc(**extra_ann):
    images = [{"id": 5, "file_name": "a.jpg", "width": 16, "height": 12, "license": 1, "coco_url": "http://x/a.jpg"}]
    cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 40, "name": "sky", "isthing": 0}]
    anns = [
        {
            "id": 1,
            "image_id": 5,
            "category_id": 1,
            "point_coords": [[2, 3], [5, 7]],
            "point_labels": [1, 1],
            **extra_ann,
        },
        {"id": 2, "image_id": 5, "category_id": 40, "point_coords": [[15, 11]], "point_labels": [1]},
    ]
    return formats.make_document(
        images, cats, anns, {"made_by": "test"}, licenses=[{"id": 1, "name": "CC BY", "url": "https://example.org"}]
    )


@pytest.fixture
def points(tmp_path):
    path = tmp_path / "points.json"
    formats.save_points(path, small_doc())
    return path


def run(capsys, argv):
    code = cli(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_help_lists_both_commands(capsys):
    code, out, _ = run(capsys, ["--help"])
    assert code == 0 and "export" in out and "import" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--to", "cvat", "--include-stuff"], "--include-stuff does not apply to --to cvat"),
        (["--to", "labelstudio", "--drop-times"], "--drop-times does not apply to --to labelstudio"),
        (["--to", "pointsup", "--image-prefix", "x/"], "--image-prefix does not apply to --to pointsup"),
        (["--to", "cvat", "--seed", "0"], "--seed does not apply to --to cvat"),
        (["--to", "pointsup", "--points", "0"], "Invalid value for '-n' / '--points'"),
        (["--to", "tiff"], "Invalid value for '--to'"),
    ],
)
def test_export_option_mistakes(points, tmp_path, capsys, argv, words):
    out = tmp_path / "new" / "out.file"
    code, stdout, err = run(capsys, ["export", str(points), "-o", str(out)] + argv)
    assert code == 2 and words in err and err.count("\n") == 1 and stdout == ""
    assert not out.exists() and not (tmp_path / "new").exists()


@pytest.mark.parametrize(
    "fmt, doc, words",
    [
        ("cvat", small_doc(iscrowd=1), "a crowd region (iscrowd 1) cannot be marked in CVAT"),
        ("labelstudio", small_doc(iscrowd=1), "cannot be marked in Label Studio"),
        ("cvat", small_doc(point_times=[1.0, 2.0]), "CVAT cannot hold point_times"),
        ("pointsup", small_doc(point_times=[1.0, 2.0]), "PointSup cannot hold point_times"),
    ],
)
def test_what_a_format_cannot_hold_is_refused(tmp_path, capsys, fmt, doc, words):
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    out = tmp_path / "out"
    code, _, err = run(capsys, ["export", str(path), "--to", fmt, "-o", str(out)])
    assert code == 2 and words in err and "annotation id 1" in err and err.count("\n") == 1
    assert str(path) in err and not out.exists()
    if "point_times" in words:
        assert run(capsys, ["export", str(path), "--to", fmt, "-o", str(out), "--drop-times"])[0] == 0
        assert "point_times" not in out.read_text()


def test_duplicate_category_names_cannot_be_labels(tmp_path, capsys):
    doc = small_doc()
    doc["categories"][1]["name"] = "person"
    path = tmp_path / "p.json"
    formats.save_points(path, doc)
    for fmt in ("cvat", "labelstudio"):
        code, _, err = run(capsys, ["export", str(path), "--to", fmt, "-o", str(tmp_path / "o")])
        assert code == 2 and "categories 1 and 40 are both named 'person'" in err


@pytest.mark.parametrize(
    "fmt, content, words",
    [
        ("pointsup", "{\"images\": [], \"categories\": []", "not valid JSON"),
        (
            "pointsup",
            json.dumps({"images": [], "categories": [], "annotations": [{"id": 1}]}),
            "not a PointSup annotation",
        ),
        ("labelstudio", json.dumps({"data": {}}), "not a list of tasks"),
        ("labelstudio", json.dumps([{"data": {"image": "a.jpg"}, "annotations": []}]), "size of the image is unknown"),
        (
            "cvat",
            "<annotations><version>1.1</version><image id='0' name='a' width='0' height='4'/></annotations>",
            "width=0 is below 1",
        ),
        ("cvat", b"\xff\xfe garbage", "not valid XML"),
    ],
)
def test_import_mistakes_are_one_line_without_output(tmp_path, capsys, fmt, content, words):
    src = tmp_path / "in.file"
    if isinstance(content, bytes):
        src.write_bytes(content)
    else:
        src.write_text(content)
    out = tmp_path / "out.json"
    code, stdout, err = run(capsys, ["import", str(src), "--from", fmt, "-o", str(out)])
    assert code == 2 and words in err and err.count("\n") == 1 and str(src) in err and stdout == ""
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["in.file"]


def test_missing_input_and_reference(tmp_path, capsys, points):
    code, _, err = run(capsys, ["import", str(tmp_path / "none.xml"), "--from", "cvat", "-o", str(tmp_path / "o.json")])
    assert code == 2 and "none.xml: file not found" in err
    code, _, err = run(
        capsys,
        [
            "export",
            str(points),
            "--to",
            "pointsup",
            "--images-json",
            str(tmp_path / "r.json"),
            "-o",
            str(tmp_path / "o.json"),
        ],
    )
    assert code == 2 and "r.json: file not found" in err
    bad_ref = tmp_path / "ref.json"
    bad_ref.write_text(json.dumps({"images": [{"id": 1}], "categories": []}))
    code, _, err = run(
        capsys,
        ["export", str(points), "--to", "pointsup", "--images-json", str(bad_ref), "-o", str(tmp_path / "o.json")],
    )
    assert code == 2 and "ref.json: images[0]: an image needs" in err


def test_warnings_are_lines_on_stderr_after_the_output(points, tmp_path, capsys):
    out = tmp_path / "ps.json"
    code, stdout, err = run(capsys, ["export", str(points), "--to", "pointsup", "-o", str(out)])
    assert code == 0 and stdout == f"wrote {out}\n"
    assert err.splitlines() == [
        "pointly: warning: left out 1 stuff segments: they are not PointSup instances (--include-stuff keeps them)",
        "pointly: warning: 1 of 1 instances have only the box of their points, not the object's "
        "(pass --images-json with the COCO file the points were made from)",
    ]
    back = tmp_path / "back.json"
    code, stdout, _ = run(capsys, ["import", str(out), "--from", "pointsup", "-o", str(back)])
    assert code == 0 and stdout == f"wrote {back}: 1 images, 1 segments, 2 points\n"


def test_label_studio_image_prefix(points, tmp_path, capsys):
    out = tmp_path / "ls.json"
    assert (
        run(
            capsys,
            [
                "export",
                str(points),
                "--to",
                "labelstudio",
                "--image-prefix",
                "/data/local-files/?d=coco/",
                "-o",
                str(out),
            ],
        )[0]
        == 0
    )
    task = json.loads(out.read_text())[0]
    assert task["data"]["image"] == "/data/local-files/?d=coco/a.jpg"
    # the first point (2, 3) of a 16 x 12 image: centre (2.5, 3.5) -> 15.625 %, 29.1666... %
    first = task["annotations"][0]["result"][0]
    assert first["value"]["x"] == 15.625 and first["value"]["y"] == pytest.approx(3.5 / 12 * 100, abs=1e-12)
    assert task["annotations"][0]["result"][2]["parentID"] == first["id"]


def test_cvat_writes_pixel_centres_and_groups(points, tmp_path, capsys):
    out = tmp_path / "a.xml"
    assert run(capsys, ["export", str(points), "--to", "cvat", "-o", str(out)])[0] == 0
    text = out.read_text()
    assert 'points="2.50,3.50;5.50,7.50"' in text and 'group_id="1"' in text
    assert 'points="15.50,11.50"' in text and 'group_id="2"' in text
    assert '<attribute name="isthing">false</attribute>' in text  # the sky


# --------------------------------------------------------------------------------------------
# files from other tools through load_points / save_points


def test_categories_without_isthing_are_things_unless_a_category_file_says(tmp_path):
    doc = small_doc()
    for c in doc["categories"]:
        del c["isthing"]
    path = tmp_path / "other.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(PointlyError, match="'isthing' is a required property"):
        formats.validate_points(json.loads(path.read_text()))  # the canonical document has it
    assert [c["isthing"] for c in formats.load_points(path)["categories"]] == [1, 1]
    category_file = [{"id": 40, "name": "sky", "isthing": 0}]
    assert [c["isthing"] for c in formats.load_points(path, categories=category_file)["categories"]] == [1, 0]


def test_licenses_and_image_license_ids_survive_load_save_and_pointsup(tmp_path, points, capsys):
    back = formats.load_points(points)
    assert back["licenses"] == [{"id": 1, "name": "CC BY", "url": "https://example.org"}]
    assert back["images"][0]["license"] == 1 and back["images"][0]["coco_url"] == "http://x/a.jpg"
    again = tmp_path / "again.json"
    formats.save_points(again, back)
    assert again.read_bytes() == points.read_bytes()
    from pointly.pointgen.interop.pointsup import export_pointsup

    assert export_pointsup(back, file=points)[0]["licenses"] == back["licenses"]
    ps, imported = tmp_path / "ps.json", tmp_path / "imported.json"
    assert run(capsys, ["export", str(points), "--to", "pointsup", "--include-stuff", "-o", str(ps)])[0] == 0
    assert run(capsys, ["import", str(ps), "--from", "pointsup", "-o", str(imported)])[0] == 0
    doc = formats.load_points(imported)
    assert doc["licenses"] == back["licenses"] and doc["images"] == back["images"]


def test_padding_marker_that_lies_is_refused(tmp_path):
    doc = small_doc()
    doc["annotations"][0].update(point_coords=[[2, 3], [5, 7], [5, 7]], point_labels=[1, 1, 1], pointly_padding=1)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(
        PointlyError,
        match=r"annotations\[0\] \(id 1, image_id 5\): the last 1 points do not "
        r"repeat the first 2",
    ):
        formats.load_points(path)
    doc["annotations"][0].update(point_coords=[[2, 3], [5, 7], [2, 3]])
    path.write_text(json.dumps(doc))
    assert formats.load_points(path)["annotations"][0]["point_coords"] == [[2, 3], [5, 7]]


def _variants(points_path, tmp_path):
    """Malformed inputs for every format: name -> (format, file)."""
    doc = json.loads(points_path.read_text())
    ps = tmp_path / "good-ps.json"
    cli(["export", str(points_path), "--to", "pointsup", "--include-stuff", "-o", str(ps)])
    ls = tmp_path / "good-ls.json"
    cli(["export", str(points_path), "--to", "labelstudio", "-o", str(ls)])
    xml = tmp_path / "good.xml"
    cli(["export", str(points_path), "--to", "cvat", "-o", str(xml)])
    huge_ps = json.loads(ps.read_text())
    huge_ps["images"][0].update(width=200000, height=200000)
    huge_ls = json.loads(ls.read_text())
    for r in huge_ls[0]["annotations"][0]["result"]:
        r.update(original_width=200000, original_height=200000)
    huge_ls[0]["data"]["pointly"].update(width=200000, height=200000)
    dup_ps = json.loads(ps.read_text())
    dup_ps["images"].append(dup_ps["images"][0])
    x = xml.read_text()
    out = {}
    for fmt, good in (("pointsup", ps), ("labelstudio", ls), ("cvat", xml)):
        text = good.read_text()
        out[f"{fmt}-empty"] = (fmt, "")
        out[f"{fmt}-truncated"] = (fmt, text[: len(text) // 2])
        out[f"{fmt}-not-utf8"] = (fmt, b"\xff\xfe\x00garbage")
        out[f"{fmt}-number"] = (fmt, "7")
    out.update(
        {
            "pointsup-huge-image": ("pointsup", json.dumps(huge_ps)),
            "pointsup-duplicate-images": ("pointsup", json.dumps(dup_ps)),
            "pointsup-images-not-list": ("pointsup", json.dumps({**doc, "images": 5})),
            "labelstudio-huge-image": ("labelstudio", json.dumps(huge_ls)),
            "labelstudio-task-not-object": ("labelstudio", json.dumps([5])),
            "cvat-huge-image": ("cvat", x.replace('width="16" height="12"', 'width="200000" height="200000"')),
            "cvat-duplicate-images": (
                "cvat",
                x.replace("</annotations>", '<image id="5" name="b.jpg" width="4" height="4" /></annotations>'),
            ),
            "cvat-wrong-root": ("cvat", "<root><version>1.1</version></root>"),
        }
    )
    return out


def test_malformed_inputs_of_every_format_end_in_one_line(points, tmp_path, capsys):
    cases = _variants(points, tmp_path)
    capsys.readouterr()
    for name, (fmt, content) in cases.items():
        src = tmp_path / "cases" / name
        src.parent.mkdir(exist_ok=True)
        if isinstance(content, bytes):
            src.write_bytes(content)
        else:
            src.write_text(content)
        out = tmp_path / "out" / "points.json"
        code, stdout, err = run(capsys, ["import", str(src), "--from", fmt, "-o", str(out)])
        assert code == 2, name
        assert err.count("\n") == 1 and err.startswith("pointly: error: ") and str(src) in err, (name, err)
        assert stdout == "" and "Traceback" not in err and not (tmp_path / "out").exists(), name
    for name, content in (
        ("empty", ""),
        ("list", "[]"),
        (
            "bad-isthing",
            json.dumps({"images": [], "annotations": [], "categories": [{"id": 1, "name": "a", "isthing": 3}]}),
        ),
    ):
        src = tmp_path / "cases" / f"points-{name}.json"
        src.write_text(content)
        for fmt in ("pointsup", "cvat", "labelstudio"):
            code, stdout, err = run(capsys, ["export", str(src), "--to", fmt, "-o", str(tmp_path / "out" / "x")])
            assert code == 2 and err.count("\n") == 1 and str(src) in err and stdout == "", (name, fmt, err)
            assert not (tmp_path / "out").exists()
