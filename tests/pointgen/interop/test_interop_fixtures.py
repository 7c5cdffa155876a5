"""Files written by the tools' own conventions import correctly (hand-written fixtures).

Each fixture follows the layout the tool documents, not pointly's writer: CVAT's "CVAT for
images 1.1" annotation example (meta with task, labels without attributes, other shapes mixed
in, ``group_id``), Label Studio's task export (``annotations[].result[]`` keypoints in percent,
``parentID`` nesting, ``is_positive``, a cancelled annotation, predictions, ``lead_time``) and
its pre-1.0 ``completions`` layout, and detectron2 PointSup's point file (a COCO instances JSON
without ``isthing``, N integer points per instance with 0/1 labels, crowd included). Every
expected pixel is worked out by hand in the comments: floor(coordinate), percent × size / 100.
"""

from __future__ import annotations

import json

import pytest

from pointly.cli.main import main as cli
from pointly.pointgen.base import points_format as formats
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.interop.convert import import_document
from pointly.pointgen.points.cost import cost_table, measured_seconds

CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <meta>
    <task>
      <id>12</id>
      <name>street points</name>
      <size>2</size>
      <mode>annotation</mode>
      <overlap>0</overlap>
      <bugtracker></bugtracker>
      <flipped>False</flipped>
      <created>2024-03-01 10:00:00.000000+00:00</created>
      <updated>2024-03-01 11:00:00.000000+00:00</updated>
      <labels>
        <label>
          <name>car</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>road</name>
          <attributes>
          </attributes>
        </label>
        <label>
          <name>wheel</name>
          <attributes>
          </attributes>
        </label>
      </labels>
      <segments>
        <segment>
          <id>30</id>
          <start>0</start>
          <stop>1</stop>
          <url>http://localhost:8080/?id=30</url>
        </segment>
      </segments>
      <owner>
        <username>admin</username>
        <email></email>
      </owner>
    </task>
    <dumped>2024-03-01 11:05:00.000000+00:00</dumped>
  </meta>
  <image id="0" name="frame_a.jpg" width="1600" height="1200">
    <box label="car" xtl="700.10" ytl="770.20" xbr="905.30" ybr="880.40" occluded="0" z_order="4">
    </box>
    <points label="wheel" points="512.30,640.80;1003.75,611.05;987.40,402.60;530.10,415.95" occluded="0" z_order="5">
    </points>
    <points label="car" source="manual" occluded="0" points="700.00,800.99" z_order="0" group_id="3">
    </points>
    <tag label="good_frame" source="manual">
    </tag>
    <points label="car" source="manual" occluded="0" points="1599.99,0.01;1600.00,1200.00" z_order="0" group_id="3">
    </points>
  </image>
  <image id="1" name="frame_b.jpg" width="640" height="480">
    <points label="road" points="0.00,479.50" occluded="0" z_order="0">
    </points>
    <points label="road" points="320.5,240.49999" occluded="1" z_order="0">
    </points>
  </image>
</annotations>
"""

#: frame_a (1600 x 1200): the wheel's four points floor to (512, 640), (1003, 611), (987, 402),
#: (530, 415); the two car shapes share group_id 3, so they are one segment: (700, 800),
#: (1599, 0), and (1600.00, 1200.00) on the far corner, which is the last pixel (1599, 1199).
#: frame_b (640 x 480): two road shapes without group_id are two segments: (0, 479), (320, 240).
CVAT_EXPECTED = [
    ("frame_a.jpg", "wheel", [[512, 640], [1003, 611], [987, 402], [530, 415]]),
    ("frame_a.jpg", "car", [[700, 800], [1599, 0], [1599, 1199]]),
    ("frame_b.jpg", "road", [[0, 479]]),
    ("frame_b.jpg", "road", [[320, 240]]),
]

REF_COCO = {
    "info": {"description": "a hand-made reference"},
    "licenses": [{"id": 2, "name": "CC BY", "url": "https://creativecommons.org/licenses/by/2.0/"}],
    "images": [
        {"id": 501, "file_name": "frame_a.jpg", "width": 1600, "height": 1200, "license": 2},
        {"id": 502, "file_name": "frame_b.jpg", "width": 640, "height": 480, "license": 2},
        {"id": 90, "file_name": "street.jpg", "width": 1920, "height": 1280},
        {"id": 91, "file_name": "photos/park.png", "width": 800, "height": 501},
        {"id": 92, "file_name": "spacexmoon-800x501.jpg", "width": 800, "height": 501},
    ],
    "categories": [
        {"id": 3, "name": "car", "isthing": 1},
        {"id": 7, "name": "wheel"},
        {"id": 21, "name": "road", "isthing": 0},
        {"id": 4, "name": "Car", "isthing": 1},
        {"id": 9, "name": "Road", "isthing": 0},
        {"id": 33, "name": "Hello"},
    ],
}


def rows(doc):
    names = {im["id"]: im["file_name"] for im in doc["images"]}
    cats = {c["id"]: c["name"] for c in doc["categories"]}
    return [(names[a["image_id"]], cats[a["category_id"]], a["point_coords"]) for a in doc["annotations"]]


@pytest.fixture
def cvat_file(tmp_path):
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_XML)
    return path


@pytest.fixture
def ref_file(tmp_path):
    path = tmp_path / "ref.json"
    path.write_text(json.dumps(REF_COCO))
    return path


def test_cvat_documented_layout_imports(cvat_file):
    doc, warnings = import_document(cvat_file, "cvat")
    assert rows(doc) == CVAT_EXPECTED
    assert [a["point_labels"] for a in doc["annotations"]] == [[1] * 4, [1] * 3, [1], [1]]
    assert [(im["id"], im["width"], im["height"]) for im in doc["images"]] == [(0, 1600, 1200), (1, 640, 480)]
    # labels in meta order, ids 1, 2, 3; no thing/stuff mark and no category file: things
    assert [(c["id"], c["name"], c["isthing"]) for c in doc["categories"]] == [
        (1, "car", 1),
        (2, "road", 1),
        (3, "wheel", 1),
    ]
    assert warnings == ["skipped shapes that are not points: 1 <box>, 1 <tag>"]


def test_cvat_with_a_reference_takes_its_ids_stuff_and_licenses(cvat_file, ref_file):
    doc, _ = import_document(cvat_file, "cvat", images_json=ref_file)
    assert rows(doc) == CVAT_EXPECTED
    assert [(im["id"], im.get("license")) for im in doc["images"]] == [(501, 2), (502, 2)]
    assert doc["licenses"] == REF_COCO["licenses"]
    cats = {c["name"]: (c["id"], c["isthing"]) for c in doc["categories"]}
    assert cats["car"] == (3, 1) and cats["wheel"] == (7, 1) and cats["road"] == (21, 0)


def test_cvat_isthing_attribute_is_read_and_checked(tmp_path, ref_file):
    marked = CVAT_XML.replace(
        '<points label="road" points="0.00,479.50" occluded="0" z_order="0">',
        '<points label="road" points="0.00,479.50" occluded="0" z_order="0">'
        '<attribute name="isthing">false</attribute>',
    )
    path = tmp_path / "marked.xml"
    path.write_text(marked)
    doc, _ = import_document(path, "cvat")
    assert {c["name"]: c["isthing"] for c in doc["categories"]} == {"car": 1, "road": 0, "wheel": 1}
    wrong = marked.replace('<points label="wheel" points', '<points label="wheel" points').replace(
        '<points label="car" source="manual" occluded="0" points="700.00,800.99" z_order="0" group_id="3">',
        '<points label="car" source="manual" occluded="0" points="700.00,800.99" z_order="0" group_id="3">'
        '<attribute name="isthing">false</attribute>',
    )
    path.write_text(wrong)
    with pytest.raises(PointlyError, match=r"label 'car' is marked stuff here but has isthing 1 in ref\.json"):
        import_document(path, "cvat", images_json=ref_file)


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda s: s.replace("<version>1.1</version>", "<version>1.0</version>"), "CVAT XML version 1.0"),
        (lambda s: s.replace('points="0.00,479.50"', 'points="640.01,3"'), "lies outside the 640x480 image"),
        (lambda s: s.replace('points="0.00,479.50"', 'points="12;4"'), "is not 'x,y'"),
        (lambda s: s.replace("</annotations>", '<track id="0" label="car"></track></annotations>'), "video tracks"),
        (
            lambda s: s.replace(
                'group_id="3">\n    </points>\n    <tag', 'group_id="3">\n    </points>\n    <tag'
            ).replace(
                '<points label="car" source="manual" occluded="0" points="1599.99',
                '<points label="wheel" source="manual" occluded="0" points="1599.99',
            ),
            "group_id 3 holds labels",
        ),
        (lambda s: s[:200], "not valid XML"),
        (
            lambda s: s.replace(
                '<?xml version="1.0" encoding="utf-8"?>', '<?xml version="1.0"?><!DOCTYPE a [<!ENTITY e "x">]>'
            ),
            "DTD or entities",
        ),
    ],
)
def test_cvat_mistakes_are_one_line(tmp_path, edit, words):
    path = tmp_path / "bad.xml"
    path.write_text(edit(CVAT_XML))
    with pytest.raises(PointlyError) as err:
        import_document(path, "cvat")
    line = err.value.one_line()
    assert words in line and line.startswith(str(path)) and "\n" not in line


LS_TASKS = [
    {
        "id": 1,
        "created_at": "2024-03-09T21:52:49.513742Z",
        "updated_at": "2024-03-09T22:16:08.746926Z",
        "project": 83,
        "data": {"image": "/data/upload/83/5c1e2f9a-street.jpg"},
        "annotations": [
            {
                "id": 1001,
                "completed_by": 10,
                "was_cancelled": False,
                "ground_truth": False,
                "created_at": "2024-03-09T22:16:08.728353Z",
                "updated_at": "2024-03-09T22:16:08.728378Z",
                "lead_time": 12.5,
                "result_count": 0,
                "task": 1,
                "result": [
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 3.1, "y": 8.2, "width": 2, "keypointlabels": ["Car"]},
                        "id": "kp1",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                        "origin": "manual",
                    },
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 50.0, "y": 25.0, "width": 2, "keypointlabels": ["Car"]},
                        "id": "kp2",
                        "parentID": "kp1",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                        "origin": "manual",
                    },
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 99.99, "y": 100, "width": 2, "keypointlabels": ["Road"]},
                        "id": "kp3",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                        "origin": "manual",
                        "is_positive": True,
                    },
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 10.0, "y": 90.0, "width": 2, "keypointlabels": ["Car"]},
                        "id": "kp4",
                        "parentID": "kp1",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                        "origin": "manual",
                        "is_positive": False,
                    },
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {
                            "x": 12.4,
                            "y": 5.8,
                            "width": 12.4,
                            "height": 10.4,
                            "rotation": 0,
                            "rectanglelabels": ["Car"],
                        },
                        "id": "box1",
                        "from_name": "box",
                        "to_name": "img-1",
                        "type": "rectanglelabels",
                    },
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 99.99, "y": 100, "width": 2, "choices": ["stuff"]},
                        "id": "kp3",
                        "from_name": "kind",
                        "to_name": "img-1",
                        "type": "choices",
                        "origin": "manual",
                    },
                ],
            },
            {
                "id": 1002,
                "was_cancelled": True,
                "lead_time": 3.0,
                "result": [
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "image_rotation": 0,
                        "value": {"x": 1.0, "y": 1.0, "width": 2, "keypointlabels": ["Car"]},
                        "id": "zz",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                    }
                ],
            },
        ],
        "predictions": [
            {
                "model_version": "m1",
                "result": [
                    {
                        "original_width": 1920,
                        "original_height": 1280,
                        "value": {"x": 70.0, "y": 70.0, "width": 2, "keypointlabels": ["Car"]},
                        "id": "p1",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                    }
                ],
            }
        ],
    },
    {
        "id": 2,
        "data": {"image": "/data/local-files/?d=photos%2Fpark.png"},
        "annotations": [
            {
                "id": 1003,
                "was_cancelled": False,
                "lead_time": None,
                "result": [
                    {
                        "original_width": 800,
                        "original_height": 501,
                        "image_rotation": 0,
                        "value": {
                            "x": 49.6,
                            "y": 52.340425531914896,
                            "width": 0.6666666666666666,
                            "keypointlabels": ["Car"],
                        },
                        "id": "Rz9oHDXIwG",
                        "from_name": "kp-1",
                        "to_name": "img-1",
                        "type": "keypointlabels",
                    }
                ],
            }
        ],
    },
]

#: street.jpg (1920 x 1280): kp1 3.1 % x 1920 = 59.52 -> 59, 8.2 % x 1280 = 104.96 -> 104; kp2
#: 50 % -> 960, 25 % -> 320 (a pixel edge, floored to the pixel right of it); kp4 (negative,
#: nested under kp1) 10 % -> 192, 90 % -> 1152. kp3 stands alone: 99.99 % -> 1919.808 -> 1919,
#: 100 % -> 1280 = the far edge -> 1279, marked stuff. park.png (800 x 501): 49.6 % -> 396.8 ->
#: 396, 52.3404... % -> 262.2255... -> 262.
LS_EXPECTED = [
    ("street.jpg", "Car", [[59, 104], [960, 320], [192, 1152]]),
    ("street.jpg", "Road", [[1919, 1279]]),
    ("photos/park.png", "Car", [[396, 262]]),
]


@pytest.fixture
def ls_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(LS_TASKS))
    return path


def test_labelstudio_documented_layout_imports(ls_file):
    doc, warnings = import_document(ls_file, "labelstudio")
    assert rows(doc) == LS_EXPECTED
    assert [a["point_labels"] for a in doc["annotations"]] == [[1, 1, 0], [1], [1]]
    assert [(im["id"], im["width"], im["height"]) for im in doc["images"]] == [(1, 1920, 1280), (2, 800, 501)]
    assert [(c["name"], c["isthing"]) for c in doc["categories"]] == [("Car", 1), ("Road", 0)]
    assert warnings == ["skipped results that are not keypoints: 1 rectanglelabels"]
    # lead_time 12.5 s over the 4 points of task 1, evenly: 3.125 s apart; task 2 has none
    assert doc["annotations"][0]["point_times"] == pytest.approx([3.125, 6.25, 9.375])
    assert doc["annotations"][1]["point_times"] == pytest.approx([12.5])
    assert "point_times" not in doc["annotations"][2]
    assert measured_seconds(doc)["per_image"] == {1: pytest.approx(12.5)}


def test_labelstudio_with_a_reference(ls_file, ref_file):
    doc, _ = import_document(ls_file, "labelstudio", images_json=ref_file)
    assert rows(doc) == LS_EXPECTED
    assert [im["id"] for im in doc["images"]] == [90, 91]
    cats = {c["name"]: (c["id"], c["isthing"]) for c in doc["categories"]}
    assert cats["Car"] == (4, 1) and cats["Road"] == (9, 0) and len(cats) == len(REF_COCO["categories"])


def test_labelstudio_pre_1_0_completions_take_the_size_from_the_reference(tmp_path, ref_file):
    # Label Studio 0.x: "completions" instead of "annotations", results without original sizes
    old = {
        "completions": [
            {
                "result": [
                    {
                        "id": "hqudA4A3U4",
                        "from_name": "tag",
                        "to_name": "img",
                        "source": "$image",
                        "type": "keypointlabels",
                        "value": {
                            "x": 49.6,
                            "y": 52.340425531914896,
                            "width": 0.6666666666666666,
                            "keypointlabels": ["Hello"],
                        },
                    },
                    {
                        "id": "Rz9oHDXIwG",
                        "from_name": "tag",
                        "to_name": "img",
                        "source": "$image",
                        "type": "keypointlabels",
                        "value": {
                            "x": 47.733333333333334,
                            "y": 52.765957446808514,
                            "width": 0.6666666666666666,
                            "keypointlabels": ["Hello"],
                        },
                    },
                ]
            }
        ],
        "data": {"image": "https://example.com/files/spacexmoon-800x501.jpg"},
        "id": 0,
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps([old]))
    with pytest.raises(PointlyError, match="size of the image is unknown"):
        import_document(path, "labelstudio")
    doc, _ = import_document(path, "labelstudio", images_json=ref_file)
    # 800 x 501: 49.6 % -> 396.8 -> 396, 52.34 % -> 262.2 -> 262; 47.7333 % -> 381.87 -> 381,
    # 52.7660 % -> 264.36 -> 264; no parentID: two segments
    assert rows(doc) == [
        ("spacexmoon-800x501.jpg", "Hello", [[396, 262]]),
        ("spacexmoon-800x501.jpg", "Hello", [[381, 264]]),
    ]
    assert doc["images"][0]["id"] == 92


@pytest.mark.parametrize(
    "edit, words",
    [
        (lambda t: t[0]["annotations"][0]["result"][1].update(parentID="nope"), "which is no keypoint"),
        (lambda t: t[0]["annotations"][0]["result"][0].update(parentID="kp2"), "form a loop"),
        (
            lambda t: t[0]["annotations"][0]["result"][1]["value"].update(keypointlabels=["Road"]),
            "but its segment 'Car'",
        ),
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(keypointlabels=[]), "not one label"),
        (lambda t: t[0]["annotations"][0]["result"][0].update(image_rotation=90), "image_rotation 90"),
        (lambda t: t[0]["annotations"][0]["result"][0]["value"].update(x=100.5), "lies outside the image"),
        (lambda t: t[0]["annotations"][0]["result"][0].update(original_width=1000), "several image sizes"),
        (lambda t: t[0]["annotations"][0].update(lead_time=-1), "lead_time -1"),
        (lambda t: t[1]["annotations"][0]["result"][0].update(is_positive="no"), "is_positive is 'no'"),
    ],
)
def test_labelstudio_mistakes_are_one_line(tmp_path, edit, words):
    tasks = json.loads(json.dumps(LS_TASKS))
    edit(tasks)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(tasks))
    with pytest.raises(PointlyError) as err:
        import_document(path, "labelstudio")
    line = err.value.one_line()
    assert words in line and line.startswith(str(path)) and "tasks[" in line and "\n" not in line


def test_labelstudio_several_submitted_annotations_use_the_last(tmp_path):
    tasks = json.loads(json.dumps(LS_TASKS[1:]))
    second = json.loads(json.dumps(tasks[0]["annotations"][0]))
    second["result"][0]["value"].update(x=0.0, y=0.0)
    tasks[0]["annotations"].append(second)
    path = tmp_path / "two.json"
    path.write_text(json.dumps(tasks))
    doc, warnings = import_document(path, "labelstudio")
    assert rows(doc) == [("photos/park.png", "Car", [[0, 0]])]
    assert warnings == ["tasks[0] (id 2) has 2 submitted annotations; the last one is used"]


# detectron2 PointSup's point file: tools/prepare_coco_point_annotations_without_masks.py copies
# the COCO instances JSON, drops "segmentation" and adds N points per instance, sampled in the
# box and floored to integer pixel indices, labelled by the mask (1 inside, 0 outside); crowd
# annotations stay. N = 5 here.
POINTSUP = {
    "info": {"description": "COCO 2017 Dataset", "version": "1.0", "year": 2017},
    "licenses": [
        {
            "url": "http://creativecommons.org/licenses/by-nc-sa/2.0/",
            "id": 1,
            "name": "Attribution-NonCommercial-ShareAlike License",
        }
    ],
    "images": [
        {
            "license": 1,
            "file_name": "000000000042.jpg",
            "coco_url": "http://x/000000000042.jpg",
            "height": 6,
            "width": 8,
            "date_captured": "2013-11-14 17:02:52",
            "id": 42,
        }
    ],
    "categories": [
        {"supercategory": "animal", "id": 18, "name": "dog"},
        {"supercategory": "vehicle", "id": 3, "name": "car"},
    ],
    "annotations": [
        {
            "area": 12.0,
            "iscrowd": 0,
            "image_id": 42,
            "bbox": [1.0, 1.0, 4.0, 3.0],
            "category_id": 18,
            "id": 1001,
            "point_coords": [[1, 1], [4, 3], [2, 2], [3, 1], [1, 3]],
            "point_labels": [1, 0, 1, 1, 0],
        },
        {
            "area": 6.0,
            "iscrowd": 1,
            "image_id": 42,
            "bbox": [5.0, 0.0, 3.0, 2.0],
            "category_id": 3,
            "id": 1002,
            "point_coords": [[5, 0], [7, 1], [6, 0], [5, 1], [7, 0]],
            "point_labels": [1, 1, 0, 1, 1],
        },
    ],
}


@pytest.fixture
def pointsup_file(tmp_path):
    path = tmp_path / "instances_train2017_n5_v1_without_masks.json"
    path.write_text(json.dumps(POINTSUP))
    return path


def test_pointsup_file_imports_with_everything_kept(pointsup_file):
    doc, warnings = import_document(pointsup_file, "pointsup")
    assert warnings == []
    assert [(a["id"], a["category_id"], a["iscrowd"], a["bbox"], a["area"]) for a in doc["annotations"]] == [
        (1001, 18, 0, [1.0, 1.0, 4.0, 3.0], 12.0),
        (1002, 3, 1, [5.0, 0.0, 3.0, 2.0], 6.0),
    ]
    assert doc["annotations"][0]["point_coords"] == POINTSUP["annotations"][0]["point_coords"]
    assert doc["annotations"][0]["point_labels"] == [1, 0, 1, 1, 0]
    assert [(c["id"], c["isthing"]) for c in doc["categories"]] == [(18, 1), (3, 1)]
    assert doc["images"] == POINTSUP["images"] and doc["licenses"] == POINTSUP["licenses"]
    assert doc["info"]["description"] == "COCO 2017 Dataset"
    assert doc["info"]["pointly"]["made_by"] == "import"


def test_pointsup_file_categories_follow_a_category_file(pointsup_file, tmp_path):
    cats = tmp_path / "cats.json"
    cats.write_text(
        json.dumps(
            {
                "images": [],
                "categories": [{"id": 18, "name": "dog", "isthing": 1}, {"id": 3, "name": "car", "isthing": 0}],
            }
        )
    )
    doc, _ = import_document(pointsup_file, "pointsup", images_json=cats)
    assert [(c["id"], c["isthing"]) for c in doc["categories"]] == [(18, 1), (3, 0)]


def test_pointsup_fractional_points_are_refused(pointsup_file):
    bad = json.loads(json.dumps(POINTSUP))
    bad["annotations"][1]["point_coords"][2] = [6.5, 0]
    pointsup_file.write_text(json.dumps(bad))
    with pytest.raises(PointlyError, match=r"annotations\[1\] \(id 1002\): point 2 \[6.5, 0\] is not on integer"):
        import_document(pointsup_file, "pointsup")


def test_cost_reads_pointsup_files_directly(pointsup_file, capsys):
    doc = formats.load_points(pointsup_file)  # no isthing: both categories are things
    assert [c["isthing"] for c in doc["categories"]] == [1, 1]
    table = cost_table(doc)
    assert table.loc["thing", "segments"] == 2 and table.loc["thing", "points"] == 10
    assert cli(["cost", str(pointsup_file)]) == 0
    # 2 things x 5 points x 0.9 s = 9 s against 2 x 79 = 158 s: 17.6x, 94.3 %
    assert "| thing | 2 | 10 | 5.0 | 4.5 | 9 | 2 | 79.0 | 158 | 17.6× | 94.3% |" in capsys.readouterr().out


def test_cost_uses_label_studio_lead_time_as_measured_seconds(ls_file, tmp_path, capsys):
    out = tmp_path / "imported.json"
    assert cli(["import", str(ls_file), "--from", "labelstudio", "-o", str(out)]) == 0
    capsys.readouterr()
    assert cli(["cost", str(out), "-o", str(tmp_path / "cost.csv")]) == 0
    table = capsys.readouterr().out
    assert "| all | 3 | 5 |" in table and "measured s" in table
    import csv

    with open(tmp_path / "cost.csv") as fh:
        row = {r["segments of"]: r for r in csv.DictReader(fh)}["all"]
    # 12.5 s measured on street.jpg, park.png had no lead_time; 4 timed points
    assert float(row["measured_seconds"]) == pytest.approx(12.5)
    assert int(row["measured_points"]) == 4 and int(row["measured_segments"]) == 2
