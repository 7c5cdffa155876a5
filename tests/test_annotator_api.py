"""API tests of the annotator through gradio_client against a real server subprocess.

The API endpoints are twins of the UI events: both call ``AnnotatorApp.act`` (see app.py).
"""
from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
import urllib.error
import urllib.request

import pytest

from annotator_fixtures import USERS, Server, journal_clicks, make_images, write_users
from pointly.annotator.samples import default_project_dir, samples_dir
from pointly.cli.main import main
from pointly.pointgen.formats import load_points

gradio_client = pytest.importorskip("gradio_client")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("annot_api")
    images = make_images(root / "images", broken=True)
    srv = Server(images, root / "project", users_file=write_users(root / "users.txt")).start()
    yield srv
    srv.stop()


def client(srv, user):
    return gradio_client.Client(srv.url, auth=(user, USERS[user]), verbose=False)


def test_login_required_and_clicks_attributed_concurrently(server):
    with pytest.raises(Exception):
        gradio_client.Client(server.url, verbose=False).predict(api_name="/state")
    # every route that runs an event refuses a request without the login cookie
    for route, body in [("gradio_api/run/predict", {"fn_index": 0, "data": [], "session_hash": "x"}),
                        ("gradio_api/queue/join", {"fn_index": 0, "data": [], "session_hash": "x"}),
                        ("gradio_api/call/click", {"data": [5, 5]})]:
        req = urllib.request.Request(server.url + route, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
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
    threads = [threading.Thread(target=clicks, args=(ca, 15, 100)),
               threading.Thread(target=clicks, args=(cb, 15, 300))]
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
    exported = ca.predict(api_name="/export")
    doc = load_points(exported["points"])
    by_user = {a["annotators"][0]: a for a in doc["annotations"]}
    assert len(by_user["alice"]["point_coords"]) == 15 and by_user["bob"]["category_id"] == 7
    sup = json.loads(open(exported["pointsup"]).read())
    assert [a["category_id"] for a in sup["annotations"]] == [1]


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

    import pointly.annotator.app as app_module

    monkeypatch.setattr(app_module, "launch", lambda *args, **kwargs: None)
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
    assert main(["annotate", str(images), "--categories", str(tmp_path / "cats.json"),
                 "--project", str(tmp_path / "p")]) == 2
    assert "cats.json" in capsys.readouterr().err
    assert main(["annotate", str(images), "--users", str(tmp_path / "nousers.txt"),
                 "--project", str(tmp_path / "p")]) == 2
    assert "users file not found" in capsys.readouterr().err
    with socket.socket() as busy:  # a port in use is a one-line error, not a traceback
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert main(["annotate", str(images), "--categories", "synthetic", "--project",
                     str(tmp_path / "p"), "--port", str(busy.getsockname()[1])]) == 2
        assert "is in use" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()  # every refusal above came before the project folder
    assert main(["annotate", str(images), "--categories", "synthetic", "--project",
                 str(tmp_path / "p"), "--rebuild"]) == 2  # nothing to rebuild
    assert "no annotation project here" in capsys.readouterr().err
    assert main(["annotate", str(images), "--project", str(tmp_path / "p"),
                 "--preview-dilation", "banana"]) == 2
    assert "--preview-dilation" in capsys.readouterr().err
    assert not (tmp_path / "p").exists()
