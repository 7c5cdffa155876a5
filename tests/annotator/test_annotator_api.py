"""API tests of the annotator through gradio_client against a real server subprocess.

The API endpoints are twins of the UI events: both call ``AnnotatorApp.act`` (see app.py).
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from annotator_fixtures import USERS, Server, journal_clicks, make_images, write_users

from pointly.annotator.samples import default_project_dir, samples_dir
from pointly.cli.main import main
from pointly.pointgen.base.points_format import load_points, validate_points

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.slow


#: the COCO ids of the test images in the server's --images-json file: (id, file_name, width, height)
COCO_IMAGES = [
    (101, "a_scene.png", 640, 480),
    (7, "b_scene.png", 640, 480),
    (33, "c_truncated.png", 640, 480),
    (2024, "d_notanimage.jpg", 100, 100),
    (5, "e_grey.png", 640, 480),
    (6, "f_rgba.png", 640, 480),
    (900, "g_exif.jpg", 240, 320),
]  # upright size: EXIF orientation applied


def write_coco(path: Path, images) -> Path:
    path.write_text(
        json.dumps(
            {
                "images": [{"id": i, "file_name": n, "width": w, "height": h} for i, n, w, h in images],
                "categories": [{"id": 1, "name": "disc"}],
                "annotations": [],
            }
        )
    )
    return path


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("annot_api")
    images = make_images(root / "images", broken=True)
    coco = write_coco(root / "coco.json", COCO_IMAGES)
    srv = Server(
        images, root / "project", users_file=write_users(root / "users.txt"), extra=["--images-json", str(coco)]
    ).start()
    yield srv
    srv.stop()


def client(srv, user):
    return gradio_client.Client(srv.url, auth=(user, USERS[user]), verbose=False)


def test_login_required_and_clicks_attributed_concurrently(server):
    with pytest.raises(Exception):
        gradio_client.Client(server.url, verbose=False).predict(api_name="/state")
    # every route that runs an event refuses a request without the login cookie
    for route, body in [
        ("gradio_api/run/predict", {"fn_index": 0, "data": [], "session_hash": "x"}),
        ("gradio_api/queue/join", {"fn_index": 0, "data": [], "session_hash": "x"}),
        ("gradio_api/call/click", {"data": [5, 5]}),
    ]:
        req = urllib.request.Request(
            server.url + route, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code == 401
    assert not (server.project / "journal").exists() or not journal_clicks(server.project)
    ca, cb = client(server, "alice"), client(server, "bob")
    sa, sb = ca.predict(api_name="/state"), cb.predict(api_name="/state")
    assert sa["user"] == "alice" and sb["user"] == "bob" and sa["image"] != sb["image"]
    # bob cannot take alice's image
    refused = cb.predict(sa["image"], api_name="/open_image")
    assert any("being annotated by alice" in m for m in refused["messages"])
    ca.predict("disc", api_name="/pick_category")
    cb.predict("sky", api_name="/pick_category")
    errors = []

    def clicks(c, n, x0):
        try:
            for k in range(n):
                r = c.predict(x0 + k, 10 + k, api_name="/click")
                assert r["messages"] == [], r["messages"]
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=clicks, args=(ca, 15, 100)), threading.Thread(target=clicks, args=(cb, 15, 300))]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    a_clicks, b_clicks = journal_clicks(server.project, "alice"), journal_clicks(server.project, "bob")
    assert [(e["x"], e["y"]) for e in a_clicks] == [(100 + k, 10 + k) for k in range(15)]
    assert [(e["x"], e["y"]) for e in b_clicks] == [(300 + k, 10 + k) for k in range(15)]
    assert {e["image"] for e in a_clicks} == {sa["image"]} and {e["image"] for e in b_clicks} == {sb["image"]}
    # stuff: all sky clicks of bob are one region
    state_b = cb.predict(api_name="/state")
    assert [(s["category"], len(s["points"])) for s in state_b["segments"]] == [("sky", 15)]
    doc = ca.predict(api_name="/export")  # the document itself, as points.json holds it
    validate_points(doc)
    by_user = {a["annotators"][0]: a for a in doc["annotations"]}
    assert len(by_user["alice"]["point_coords"]) == 15 and by_user["bob"]["category_id"] == 7
    assert by_user["alice"]["point_coords"] == [[100 + k, 10 + k] for k in range(15)]
    coco_ids = {n: i for i, n, _, _ in COCO_IMAGES}
    assert {im["file_name"]: im["id"] for im in doc["images"]} == {
        sa["image"]: coco_ids[sa["image"]],
        sb["image"]: coco_ids[sb["image"]],
    }
    assert load_points(server.project / "points.json")["annotations"] == doc["annotations"]
    sup = ca.predict(api_name="/export_pointsup")
    assert [a["category_id"] for a in sup["annotations"]] == [1]  # things only
    assert sup == json.loads((server.project / "pointsup.json").read_text())


def test_image_and_category_lists(server):
    c = client(server, "alice")
    images = c.predict(api_name="/images")
    assert [(im["id"], im["coco_id"], im["file_name"]) for im in images] == [(i, i, n) for i, n, _, _ in COCO_IMAGES]
    assert [(im["width"], im["height"]) for im in images if im["readable"]] == [
        (w, h) for _, n, w, h in COCO_IMAGES if n != "d_notanimage.jpg"
    ]
    [unreadable] = [im for im in images if not im["readable"]]
    assert unreadable["file_name"] == "d_notanimage.jpg" and "unreadable image" in unreadable["problem"]
    cats = c.predict(api_name="/categories")  # the synthetic categories: 6 things, then 4 stuff
    assert [c_["id"] for c_ in cats] == list(range(1, 11))
    assert [c_["name"] for c_ in cats[:2]] + [cats[6]["name"]] == ["disc", "rectangle", "sky"]
    assert [c_["isthing"] for c_ in cats] == [1] * 6 + [0] * 4
    assert [c_["key"] for c_ in cats] == ["1", "2", "3", "4", "5", "6", "7", "8", "9", "0"]


def test_negative_points_and_a_box_through_the_api(server):
    c = client(server, "alice")
    image = c.predict(api_name="/state")["image"]
    c.predict("rectangle", api_name="/pick_category")
    c.predict(api_name="/new_instance")
    refused = c.predict(30, 40, 0, api_name="/click")  # a point NOT in an instance with no point yet
    assert any("needs a point in it first" in m for m in refused["messages"])
    c.predict(400, 200, api_name="/click")
    st = c.predict(30, 40, 0, api_name="/click")
    [rect] = [s for s in st["segments"] if s["id"] == st["current_segment"]]
    assert rect["points"] == [[400, 200], [30, 40]] and rect["labels"] == [1, 0] and rect["negatives"] == 1
    st = c.predict(380, 140, 550, 340, api_name="/set_box")
    assert st["messages"] == [] and st["segments"][-1]["bbox"] == [380, 140, 171, 201]
    c.predict(api_name="/toggle_box_mode")  # the twin of the B key: two clicks are the corners
    assert c.predict(560, 350, api_name="/click")["corner"] == [560, 350]
    st = c.predict(370, 130, api_name="/click")
    assert not st["box_mode"] and st["segments"][-1]["bbox"] == [370, 130, 191, 221]
    doc = c.predict(api_name="/export")
    image_id = {n: i for i, n, _, _ in COCO_IMAGES}[image]
    [ann] = [a for a in doc["annotations"] if a["image_id"] == image_id and a["category_id"] == 2]
    assert ann["point_labels"] == [1, 0] and ann["bbox"] == [370.0, 130.0, 191.0, 221.0]
    sup = c.predict(api_name="/export_pointsup")
    [box] = [a["bbox"] for a in sup["annotations"] if a["image_id"] == image_id and a["category_id"] == 2]
    assert box == [370.0, 130.0, 191.0, 221.0]
    st = c.predict(api_name="/remove_box")
    assert st["segments"][-1]["bbox"] is None
    c.predict("sky", api_name="/pick_category")
    refused = c.predict(api_name="/toggle_box_mode")
    assert any("thing category" in m for m in refused["messages"]) and not refused["box_mode"]


def test_float_and_string_arguments_are_refused(server):
    c = client(server, "alice")
    c.predict("disc", api_name="/pick_category")
    before = len(journal_clicks(server.project, "alice"))
    for args, api_name, words in [
        ((1.5, 2), "/click", "x must be an integer"),
        ((2, "12"), "/click", "y must be an integer"),
        ((2.0, 3), "/click", "x must be an integer"),
        ((True, 3), "/click", "x must be an integer"),
        ((5, 5, 2), "/click", "label must be 0 or 1"),
        ((5, 5, 0.0), "/click", "label must be an integer"),
        ((1, 2, 3.5, 4), "/set_box", "x1 must be an integer"),
        ((1.0,), "/navigate", "step must be an integer"),
        ((2,), "/navigate", "step must be 1 or -1"),
        ((3,), "/open_image", "image must be a string"),
        ((1.0,), "/pick_category", "category must be a string"),
    ]:
        with pytest.raises(Exception) as exc:
            c.predict(*args, api_name=api_name)
        assert words in str(exc.value), (api_name, args, exc.value)
    assert len(journal_clicks(server.project, "alice")) == before  # nothing stored
    assert c.predict(5, 5, api_name="/click")["messages"] == []  # integers are fine
    assert c.predict(1, api_name="/pick_category")["category"] == "disc"  # an id is an integer


def test_no_path_traversal_through_any_parameter(server):
    c = client(server, "alice")
    for bad in ["../../../../etc/passwd", "/etc/passwd", "..%2F..%2Fetc%2Fpasswd", "a_scene.png/../../x"]:
        r = c.predict(bad, api_name="/open_image")
        assert any("no image named" in m for m in r["messages"]), r["messages"]
    r = c.predict("../../etc/passwd", api_name="/select_segment")
    assert r["messages"]
    r = c.predict("../../etc/passwd", api_name="/pick_category")
    assert any("unknown category" in m for m in r["messages"])
    # Gradio's file route serves neither system files nor the images folder itself
    cookies = c.cookies if hasattr(c, "cookies") else {}
    for path in ["/etc/passwd", str(server.images / "a_scene.png"), "../../etc/passwd"]:
        url = server.url + "gradio_api/file=" + path
        req = urllib.request.Request(url, headers={"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())})
        with pytest.raises(urllib.error.HTTPError) as exc:
            urllib.request.urlopen(req, timeout=10)
        assert exc.value.code in (401, 403, 404)


def test_broken_images_are_skipped_with_a_message(server):
    c = client(server, "bob")
    seen, messages = [], []
    for _ in range(8):
        r = c.predict(1, api_name="/navigate")
        seen.append(r["image"])
        messages += r["messages"]
    text = " ".join(messages)
    assert "c_truncated.png" in text and "d_notanimage.jpg" in text
    assert "c_truncated.png" not in seen and "d_notanimage.jpg" not in seen
    assert {"e_grey.png", "f_rgba.png", "g_exif.jpg"} <= set(seen)
    r = c.predict("g_exif.jpg", api_name="/open_image")
    assert (r["width"], r["height"]) == (240, 320)  # EXIF orientation applied


def test_no_argument_mode_uses_the_bundled_samples(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    # --rebuild needs an existing project: refused, naming the sample project's folder
    assert main(["annotate", "--rebuild"]) == 2
    assert "sample-project-" in capsys.readouterr().err
    assert not (tmp_path / "xdg").exists()
    # the real command up to the server, which is replaced by a no-op
    import socket

    import pointly.annotator.layout as layout_module

    monkeypatch.setattr(layout_module, "launch", lambda *args, **kwargs: None)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert main(["annotate", "--port", str(port)]) == 0
    assert main(["annotate", "--rebuild"]) == 0
    project = default_project_dir()
    assert project.parent == tmp_path / "xdg" / "pointly" and project.name.startswith("sample-project-")
    meta = json.loads((project / "project.json").read_text())
    assert Path(meta["images_dir"]) == samples_dir().resolve()
    assert [c["name"] for c in meta["categories"]][:2] == ["disc", "rectangle"]  # synthetic
    assert len(meta["images"]) == 4 and all(im["width"] == 384 for im in meta["images"])
    assert sum(f.stat().st_size for f in samples_dir().iterdir()) < 300_000


def test_sample_project_per_samples_location(tmp_path, monkeypatch):
    """Another checkout's samples get another project folder (a project refuses a second images
    folder), and the same folder always the same one, however it is spelled."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert default_project_dir(tmp_path / "a") != default_project_dir(tmp_path / "b")
    assert default_project_dir(tmp_path / "a") == default_project_dir(tmp_path / "b" / ".." / "a")
    assert default_project_dir() == default_project_dir(samples_dir())


def test_cli_refuses_network_without_login_and_bad_input(tmp_path, capsys):
    images = make_images(tmp_path / "images")
    assert main(["annotate", str(images), "--host", "0.0.0.0", "--project", str(tmp_path / "p")]) == 2
    assert "without login" in capsys.readouterr().err
    assert main(["annotate", str(tmp_path / "missing"), "--project", str(tmp_path / "p")]) == 2
    assert "images folder not found" in capsys.readouterr().err
    (tmp_path / "cats.json").write_text("{not json")
    assert (
        main(["annotate", str(images), "--categories", str(tmp_path / "cats.json"), "--project", str(tmp_path / "p")])
        == 2
    )
    assert "cats.json" in capsys.readouterr().err
    assert (
        main(["annotate", str(images), "--users", str(tmp_path / "nousers.txt"), "--project", str(tmp_path / "p")]) == 2
    )
    assert "users file not found" in capsys.readouterr().err
    with socket.socket() as busy:  # a port in use is a one-line error, not a traceback
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert (
            main(
                [
                    "annotate",
                    str(images),
                    "--categories",
                    "synthetic",
                    "--project",
                    str(tmp_path / "p"),
                    "--port",
                    str(busy.getsockname()[1]),
                ]
            )
            == 2
        )
        assert "is in use" in capsys.readouterr().err
    assert (
        main(
            ["annotate", str(images), "--project", str(tmp_path / "p"), "--images-json", str(tmp_path / "nococo.json")]
        )
        == 2
    )
    assert "nococo.json: file not found" in capsys.readouterr().err
    coco = write_coco(tmp_path / "coco.json", [(1, "a_scene.png", 640, 480)])
    assert main(["annotate", str(images), "--project", str(tmp_path / "p"), "--images-json", str(coco)]) == 2
    assert "image 'b_scene.png' is not in coco.json" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # every refusal above came before the project folder
    assert (
        main(["annotate", str(images), "--categories", "synthetic", "--project", str(tmp_path / "p"), "--rebuild"]) == 2
    )  # nothing to rebuild
    assert "no annotation project here" in capsys.readouterr().err
    assert main(["annotate", str(images), "--project", str(tmp_path / "p"), "--preview-dilation", "banana"]) == 2
    assert "--preview-dilation" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
