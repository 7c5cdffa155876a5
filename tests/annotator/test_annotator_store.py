"""Handler-level tests of the annotator: journal, store semantics, replay, export, locks, cost."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
from annotator_fixtures import make_images

from pointly.annotator.app import AnnotatorApp
from pointly.annotator.images import ImageCatalog
from pointly.annotator.journal import Journal, read_events
from pointly.annotator.state import ActionRefused, TabView
from pointly.annotator.store import ProjectStore
from pointly.annotator.users import load_users, make_auth
from pointly.pointgen.base.categories import load_categories
from pointly.pointgen.base.errors import PointlyError
from pointly.pointgen.base.points_format import load_points, validate_points

CATS = load_categories("synthetic")  # 1 disc … 6 cshape (things), 7 sky … 10 wall (stuff)


class Clock:
    """A settable clock so point times are exact."""

    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def tick(self, dt: float) -> None:
        self.t += dt


@pytest.fixture()
def images(tmp_path):
    return make_images(tmp_path / "images")


def new_store(images, project, clock=None, **kw) -> ProjectStore:
    return ProjectStore(project, ImageCatalog(images), CATS, clock=clock or Clock(), **kw)


def test_journal_append_is_durable_and_torn_tail_is_dropped(tmp_path):
    j = Journal(tmp_path / "u.jsonl")
    j.append({"type": "click", "x": 1})
    j.append({"type": "click", "x": 2})
    j.close()
    with open(tmp_path / "u.jsonl", "ab") as fh:  # a kill -9 in the middle of a write
        fh.write(b'{"seq":3,"type":"cli')
    events, good = read_events(tmp_path / "u.jsonl")
    assert [e["x"] for e in events] == [1, 2]
    j2 = Journal(tmp_path / "u.jsonl")  # truncates the torn tail, continues the sequence
    j2.append({"type": "click", "x": 3})
    j2.close()
    lines = (tmp_path / "u.jsonl").read_text().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3]


def test_journal_edited_in_the_middle_is_a_user_error(tmp_path):
    (tmp_path / "u.jsonl").write_text('{"seq":1}\nnot json\n{"seq":3}\n')
    with pytest.raises(PointlyError, match="line 2"):
        read_events(tmp_path / "u.jsonl")


def test_things_stuff_undo_delete_and_points_json(images, tmp_path):
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock)
    assert st.ensure_open("ann") == "a_scene.png"
    with pytest.raises(ActionRefused, match="pick a category"):
        st.click("ann", 5, 5)
    st.pick_category("ann", 1)  # disc (thing)
    for x, y in [(10, 20), (30, 40)]:
        clock.tick(2.0)
        st.click("ann", x, y)
    st.new_instance("ann")
    clock.tick(1.5)
    st.click("ann", 100, 100)  # a second disc
    st.pick_category("ann", 7)  # sky (stuff)
    clock.tick(1.0)
    st.click("ann", 600, 10)
    st.pick_category("ann", 1)
    st.new_instance("ann")
    st.pick_category("ann", 7)  # picking sky again continues the one sky region
    clock.tick(1.0)
    st.click("ann", 610, 12)
    segs = st.snapshot("a_scene.png")
    assert [(s.category_id, [(p.x, p.y) for p in s.points]) for s in segs] == [
        (1, [(10, 20), (30, 40)]),
        (1, [(100, 100)]),
        (7, [(600, 10), (610, 12)]),
    ]
    # undo removes the last point placed on the image; delete removes the current segment
    assert st.undo("ann")
    assert [len(s.points) for s in st.snapshot("a_scene.png")] == [2, 1, 1]
    st.select_segment("ann", segs[1].sid)
    assert st.delete_segment("ann")
    assert [s.category_id for s in st.snapshot("a_scene.png")] == [1, 7]
    st.flush()
    doc = load_points(tmp_path / "p" / "points.json")  # validates against the schema
    assert [im["file_name"] for im in doc["images"]] == ["a_scene.png"]
    a0, a1 = doc["annotations"]
    assert a0["point_coords"] == [[10, 20], [30, 40]] and a0["point_kinds"] == ["click", "click"]
    assert a0["point_times"] == [2.0, 4.0]  # seconds since the image was opened (server clock)
    assert a1["category_id"] == 7 and a1["point_times"] == [6.5]
    assert a0["bbox"] == [10.0, 20.0, 21.0, 21.0]
    sup = json.loads((tmp_path / "p" / "pointsup.json").read_text())
    assert [a["category_id"] for a in sup["annotations"]] == [1]  # things only
    assert sup["annotations"][0]["point_labels"] == [1, 1]
    # `pointly cost` reads the project's points JSON and measures from point_times
    from pointly.cli.main import main

    assert main(["cost", str(tmp_path / "p" / "points.json")]) == 0


def test_replay_rebuilds_the_same_state_and_position(images, tmp_path):
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock)
    st.ensure_open("ann")
    st.pick_category("ann", 2)
    for k in range(5):
        clock.tick(0.5)
        st.click("ann", 10 + k, 20)
    st.undo("ann")
    st.navigate("ann", +1)
    st.pick_category("ann", 8)
    st.click("ann", 3, 400)
    doc1 = st.to_document()
    # no close(): simulate a crash; the journal alone must rebuild everything
    st2 = new_store(images, tmp_path / "p", clock)
    assert st2.to_document()["annotations"] == doc1["annotations"]
    u = st2.user_state("ann")
    assert u.image == "b_scene.png" and u.category_id == 8
    assert st2.ensure_open("ann") == "b_scene.png"  # resumes where the annotator was
    # the points file written at start-up equals the state
    assert json.loads((tmp_path / "p" / "points.json").read_text())["annotations"] == doc1["annotations"]


def test_two_annotators_never_share_an_image(images, tmp_path):
    st = new_store(images, tmp_path / "p")
    assert st.ensure_open("alice") == "a_scene.png"
    assert st.ensure_open("bob") == "b_scene.png"  # the first free one
    with pytest.raises(ActionRefused, match="alice"):
        st.open("bob", "a_scene.png")
    notes = st.navigate("bob", -1)
    assert any("being annotated by alice" in n for n in notes)
    st.pick_category("alice", 1)
    st.click("alice", 1, 1)
    st.pick_category("bob", 1)
    st.click("bob", 2, 2)
    doc = st.to_document()
    assert [a["annotators"] for a in doc["annotations"]] == [["alice"], ["bob"]]
    # a restart resumes both where they were, each holding their image
    st2 = new_store(images, tmp_path / "p")
    assert st2.ensure_open("alice") == "a_scene.png" and st2.ensure_open("bob") == "b_scene.png"
    assert st2.holder == {"a_scene.png": "alice", "b_scene.png": "bob"}


def test_lock_expires_after_timeout(images, tmp_path):
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock, lock_timeout=60)
    st.ensure_open("alice")
    clock.tick(61)
    st.open("bob", "a_scene.png")  # alice idle for longer than the timeout
    with pytest.raises(ActionRefused):
        st.pick_category("alice", 1) or st.click("alice", 1, 1)


def test_concurrent_clicks_of_two_users_are_all_kept(images, tmp_path):
    st = new_store(images, tmp_path / "p", clock=__import__("time").time)
    for user in ("alice", "bob"):
        st.ensure_open(user)
        st.pick_category(user, 1)

    def work(user):
        for k in range(40):
            st.click(user, k, k)

    threads = [threading.Thread(target=work, args=(u,)) for u in ("alice", "bob")]
    [t.start() for t in threads]
    [t.join() for t in threads]
    doc = new_store(images, tmp_path / "p").to_document()  # replayed from disk
    assert sorted(len(a["point_coords"]) for a in doc["annotations"]) == [40, 40]
    validate_points(doc)


def test_click_outside_and_bad_names_are_refused(images, tmp_path):
    st = new_store(images, tmp_path / "p")
    st.ensure_open("ann")
    st.pick_category("ann", 1)
    with pytest.raises(ActionRefused, match="outside"):
        st.click("ann", 640, 10)
    with pytest.raises(ActionRefused, match="no image named"):
        st.open("ann", "../../etc/passwd")
    with pytest.raises(PointlyError, match="invalid user name"):
        st.ensure_open("../evil")


def test_measured_cost_excludes_idle_gaps(images, tmp_path):
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock, idle_cutoff=60)
    st.ensure_open("ann")
    st.pick_category("ann", 1)
    for dt in (3.0, 1.0, 100.0, 2.0):  # the 100 s gap is a break
        clock.tick(dt)
        st.click("ann", 5, 5)
    m, per_seg = st.image_timing("a_scene.png")
    assert m.seconds == pytest.approx(6.0) and m.points == 4
    assert list(per_seg.values()) == [pytest.approx(6.0)]
    assert st.user_timing("ann") == (pytest.approx(6.0), 4)


def test_project_with_other_images_or_categories_is_refused(images, tmp_path):
    new_store(images, tmp_path / "p")
    other = make_images(tmp_path / "other")
    with pytest.raises(PointlyError, match="annotates"):
        ProjectStore(tmp_path / "p", ImageCatalog(other), CATS)
    with pytest.raises(PointlyError, match="other categories"):
        ProjectStore(tmp_path / "p", ImageCatalog(images), load_categories("coco"))


def test_app_handlers_map_display_clicks_and_render(images, tmp_path):
    st = new_store(images, tmp_path / "p")
    app = AnnotatorApp(st)
    assert app.act("ann", "digit", 0) == []  # key 1 -> first category
    assert app.act("ann", "click_display", 100, 50) == []
    assert app.act("ann", "digit", 12) == ["no category on key 3"]
    st_ = app.state("ann")
    assert st_["segments"][0]["points"] == [[100, 50]]  # 640×480 is displayed at scale 1
    assert app.act("ann", "category", "sky") == []
    assert app.act("ann", "click", 5, 400) == []
    path = app.canvas("ann", app.state("ann"))
    rgb = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(path).convert("RGB"))
    assert rgb.shape == (480, 640, 3)
    base = app.display("a_scene.png").rgb
    diff = np.abs(rgb.astype(int) - base.astype(int)).max(axis=2)  # JPEG: small noise everywhere
    assert diff[50, 100] > 60  # the point is drawn where it was clicked
    assert diff[200:300, 400:600].max() < 25  # far from the points: only JPEG noise
    app.act("ann", "preview")
    with_preview = np.asarray(
        __import__("PIL.Image", fromlist=["Image"]).open(app.canvas("ann", app.state("ann"))).convert("RGB")
    )
    assert (with_preview != rgb).any()
    assert app.act("ann", "category", "no such thing") == ["unknown category 'no such thing'"]
    assert app.act("ann", "click", "abc", 3)[0].startswith("bad argument for click")
    assert app.act("ann", "navigate", None)[0].startswith("bad argument for navigate")


def test_users_file_and_auth(tmp_path):
    p = tmp_path / "users.txt"
    p.write_text("# annotators\nalice:secret\nbob:sha256:" + __import__("hashlib").sha256(b"pw").hexdigest() + "\n")
    users = load_users(p)
    auth = make_auth(users)
    assert auth("alice", "secret") and not auth("alice", "wrong") and auth("bob", "pw")
    assert not auth("eve", "secret")
    p.write_text("alice\n")
    with pytest.raises(PointlyError, match="line 1"):
        load_users(p)
    p.write_text("../x:pw\n")
    with pytest.raises(PointlyError, match="invalid user name"):
        load_users(p)


def test_a_click_with_its_tabs_view_goes_where_that_tab_shows(images, tmp_path):
    """Two tabs of one annotator: the server state follows the last tab that acted, but a click
    that carries its tab's view uses that tab's image, category and segment."""
    st = new_store(images, tmp_path / "p")
    st.ensure_open("ann")
    st.pick_category("ann", 7)  # tab B picked sky; tab A still shows disc and no segment
    ev = st.click("ann", 100, 100, TabView("a_scene.png", 1, None))
    assert (ev["category_id"], ev["segment"]) == (1, "ann-1")
    st.pick_category("ann", 7)
    assert st.click("ann", 600, 10)["category_id"] == 7  # tab B (no view: the server state)
    ev = st.click("ann", 110, 100, TabView("a_scene.png", 1, "ann-1"))  # tab A continues its disc
    assert (ev["category_id"], ev["segment"]) == (1, "ann-1")
    st.navigate("ann", +1)  # tab B moves on; tab A still shows a_scene
    ev = st.click("ann", 120, 100, TabView("a_scene.png", 1, "ann-1"))
    assert (ev["image"], ev["segment"]) == ("a_scene.png", "ann-1")
    assert st.user_state("ann").image == "a_scene.png"  # the clicking tab's image is open again
    st.ensure_open("other")  # another annotator takes b_scene; a tab showing it is refused
    with pytest.raises(ActionRefused, match="being annotated by other"):
        st.click("ann", 5, 5, TabView("b_scene.png", 1, None))
    with pytest.raises(ActionRefused, match="pick a category"):
        st.click("ann", 5, 5, TabView("a_scene.png", None, None))
    with pytest.raises(ActionRefused, match="unknown category"):
        st.click("ann", 5, 5, TabView("a_scene.png", 999, None))
    assert [len(s.points) for s in st.snapshot("a_scene.png")] == [3, 1]


def test_points_count_for_who_clicked_them_also_after_replay(images, tmp_path):
    """Bob's points in the sky region Alice started are Bob's: points and seconds per clicker."""
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock)
    st.ensure_open("alice")  # opened at t = 1000
    st.pick_category("alice", 7)
    for dt in (2.0, 3.0):
        clock.tick(dt)
        st.click("alice", 10, 10)
    st.navigate("alice", +1)  # a_scene is free again
    clock.tick(4.0)
    assert st.ensure_open("bob") == "a_scene.png"
    st.pick_category("bob", 7)  # the existing sky region
    for dt in (1.0, 1.5, 100.0, 0.5):  # the 100 s gap is a break (idle cut-off 60 s)
        clock.tick(dt)
        st.click("bob", 20, 20)
    [sky] = st.snapshot("a_scene.png")
    assert [p.user for p in sky.points] == ["alice"] * 2 + ["bob"] * 4
    # alice: 2 + 3 s; bob: (4 + 1) + 1.5 + 0.5 s (his first point waited since alice's last one)
    expected = {"alice": (pytest.approx(5.0), 2), "bob": (pytest.approx(7.0), 4)}
    assert {u: st.user_timing(u) for u in expected} == expected
    m, per_segment = st.image_timing("a_scene.png")
    assert m.seconds == pytest.approx(12.0) and per_segment == {sky.sid: pytest.approx(12.0)}
    assert st.to_document()["annotations"][0]["annotators"] == ["alice", "bob"]
    st2 = new_store(images, tmp_path / "p", clock)  # the same credit from the journals alone
    assert {u: st2.user_timing(u) for u in expected} == expected


# ---------------------------------------------------------------------- negative points and boxes
def journal_of(project, user: str = "ann") -> list[dict]:
    return [json.loads(line) for line in (project / "journal" / f"{user}.jsonl").read_text().splitlines()]


def test_negative_points_are_labelled_0_in_the_journal_and_points_json(images, tmp_path):
    clock = Clock()
    st = new_store(images, tmp_path / "p", clock)
    st.ensure_open("ann")
    st.pick_category("ann", 1)  # disc (thing)
    with pytest.raises(ActionRefused, match="needs a point in it first"):
        st.click("ann", 5, 5, label=0)  # nothing in the segment yet
    with pytest.raises(ActionRefused, match="label"):
        st.click("ann", 5, 5, label=2)
    clock.tick(1.0)
    st.click("ann", 190, 240)
    clock.tick(1.0)
    st.click("ann", 20, 30, label=0)
    st.pick_category("ann", 7)  # sky (stuff): its region takes negatives too, once it has a point
    clock.tick(1.0)
    st.click("ann", 600, 10)
    clock.tick(1.0)
    st.click("ann", 300, 400, label=0)
    clicks = [e for e in journal_of(tmp_path / "p") if e["type"] == "click"]
    assert [(e["x"], e["y"], e["label"]) for e in clicks] == [(190, 240, 1), (20, 30, 0), (600, 10, 1), (300, 400, 0)]
    st.flush()
    doc = load_points(tmp_path / "p" / "points.json")
    disc, sky = doc["annotations"]
    assert disc["point_coords"] == [[190, 240], [20, 30]] and disc["point_labels"] == [1, 0]
    assert sky["point_labels"] == [1, 0]
    assert disc["bbox"] == [20.0, 30.0, 171.0, 211.0]  # no drawn box: the box of all its clicks
    sup = json.loads((tmp_path / "p" / "pointsup.json").read_text())
    assert sup["annotations"][0]["point_labels"] == [1, 0]
    # the goal and the annotator's numbers count every click; the list names the negatives
    assert st.user_timing("ann") == (pytest.approx(4.0), 4)
    app = AnnotatorApp(st)
    state = app.state("ann")
    assert [(s["labels"], s["negatives"]) for s in state["segments"]] == [([1, 0], 1), ([1, 0], 1)]
    assert [c[0].split(" · ")[1] for c in app.segment_choices(state)] == ["2/20 pts (1 not in)"] * 2
    # a replay gives the same labels
    assert new_store(images, tmp_path / "p", clock).to_document()["annotations"] == doc["annotations"]


def test_a_segment_without_a_point_in_it_is_not_written_out(images, tmp_path):
    """Undo takes the last point first, so a negative point never outlives the points before it;
    a segment has no point in it when only its box is drawn, or in a journal edited by hand."""
    project = tmp_path / "p"
    new_store(images, project).close()
    (project / "journal" / "ann.jsonl").write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in [
                {"seq": 1, "t": 10.0, "user": "ann", "type": "open", "image": "a_scene.png"},
                {
                    "seq": 2,
                    "t": 12.0,
                    "user": "ann",
                    "type": "click",
                    "image": "a_scene.png",
                    "segment": "ann-1",
                    "category_id": 1,
                    "x": 120,
                    "y": 100,
                    "label": 0,
                },
            ]
        )
    )
    st = new_store(images, project)
    app = AnnotatorApp(st, preview_dilation="4px")
    st.ensure_open("ann")
    st.pick_category("ann", 2)
    st.set_box("ann", 300, 100, 400, 200)  # a new rectangle instance: a box, no point yet
    disc, rect = st.snapshot("a_scene.png")
    assert [(p.x, p.y, p.label) for p in disc.points] == [(120, 100, 0)] and rect.points == []
    assert st.to_document()["annotations"] == [] and st.progress()[0] == 0
    state = app.state("ann")
    assert [s["exported"] for s in state["segments"]] == [False, False]
    assert all("· needs a point in it ·" in c[0] for c in app.segment_choices(state))
    app.act("ann", "preview")  # the preview leaves them out instead of failing
    assert app.canvas("ann", app.state("ann")) is not None
    st.click("ann", 350, 150)
    [ann] = st.to_document()["annotations"]
    assert ann["category_id"] == 2 and ann["bbox"] == [300.0, 100.0, 101.0, 101.0]


def test_old_journals_without_labels_load_as_points_in_the_segment(images, tmp_path):
    project = tmp_path / "p"
    new_store(images, project).close()
    (project / "journal" / "old.jsonl").write_text(
        "".join(
            json.dumps(e) + "\n"
            for e in [
                {"seq": 1, "t": 10.0, "user": "old", "type": "open", "image": "a_scene.png"},
                {"seq": 2, "t": 11.0, "user": "old", "type": "category", "category_id": 2, "segment": None},
                {
                    "seq": 3,
                    "t": 12.0,
                    "user": "old",
                    "type": "click",
                    "image": "a_scene.png",
                    "segment": "old-1",
                    "category_id": 2,
                    "x": 400,
                    "y": 200,
                },
                {
                    "seq": 4,
                    "t": 13.0,
                    "user": "old",
                    "type": "click",
                    "image": "a_scene.png",
                    "segment": "old-1",
                    "category_id": 2,
                    "x": 410,
                    "y": 210,
                },
            ]
        )
    )
    doc = new_store(images, project).to_document()
    [ann] = doc["annotations"]
    assert ann["point_coords"] == [[400, 200], [410, 210]] and ann["point_labels"] == [1, 1]
    assert ann["bbox"] == [400.0, 200.0, 11.0, 11.0]


def test_a_box_drawn_with_two_corners_is_the_instances_bbox(images, tmp_path):
    st = new_store(images, tmp_path / "p")
    app = AnnotatorApp(st)
    st.ensure_open("ann")
    with pytest.raises(ActionRefused, match="thing category"):
        st.set_box_mode("ann", True)  # no category yet
    st.pick_category("ann", 7)
    with pytest.raises(ActionRefused, match="thing category"):
        st.set_box_mode("ann", True)  # sky is stuff
    st.pick_category("ann", 1)
    st.click("ann", 190, 240)
    st.set_box_mode("ann", True)
    assert st.click("ann", 240, 300)["type"] == "corner"  # the corners, in any order
    assert app.state("ann")["corner"] == [240, 300]
    ev = st.click("ann", 100, 170)
    assert ev["type"] == "box" and ev["bbox"] == [100, 170, 141, 131]
    u = st.user_state("ann")
    assert not u.box_mode and u.corner is None  # one box per B
    st.click("ann", 200, 250)  # a point again
    doc = st.to_document()
    [disc] = doc["annotations"]
    assert disc["point_coords"] == [[190, 240], [200, 250]]
    assert disc["bbox"] == [100.0, 170.0, 141.0, 131.0]
    st.flush()
    sup = json.loads((tmp_path / "p" / "pointsup.json").read_text())
    assert sup["annotations"][0]["bbox"] == [100.0, 170.0, 141.0, 131.0]
    assert sup["annotations"][0]["area"] == 141.0 * 131.0
    # drawn again: replaced; removed: the box of the clicks again
    st.set_box("ann", 90, 160, 290, 320)
    assert st.to_document()["annotations"][0]["bbox"] == [90.0, 160.0, 201.0, 161.0]
    assert st.remove_box("ann") and not st.remove_box("ann")
    assert st.to_document()["annotations"][0]["bbox"] == [190.0, 240.0, 11.0, 11.0]
    # a box first makes a new instance, written out once it has a point in it
    st.new_instance("ann")
    st.set_box("ann", 380, 140, 550, 340)
    assert len(st.snapshot("a_scene.png")) == 2 and len(st.to_document()["annotations"]) == 1
    st.click("ann", 450, 250)
    second = st.to_document()["annotations"][1]
    assert second["bbox"] == [380.0, 140.0, 171.0, 201.0] and second["point_coords"] == [[450, 250]]
    with pytest.raises(ActionRefused, match="outside"):
        st.set_box("ann", 0, 0, 640, 10)
    st.pick_category("ann", 8)  # grass is stuff: no box
    with pytest.raises(ActionRefused, match="grass is stuff"):
        st.set_box("ann", 0, 300, 100, 400)
    # a corner is given up by any other action (here: a new instance)
    st.pick_category("ann", 2)
    st.set_box_mode("ann", True)
    st.click("ann", 10, 10)
    st.new_instance("ann")
    assert st.user_state("ann").corner is None
    # a replay gives the same boxes
    assert new_store(images, tmp_path / "p").to_document()["annotations"] == st.to_document()["annotations"]


def test_a_tab_in_box_mode_draws_a_box_another_tab_clicks_points(images, tmp_path):
    st = new_store(images, tmp_path / "p")
    st.ensure_open("ann")
    st.pick_category("ann", 1)
    st.click("ann", 190, 240)
    sid = st.user_state("ann").segment
    boxing, pointing = TabView("a_scene.png", 1, sid, True), TabView("a_scene.png", 1, sid)
    assert st.click("ann", 100, 170, boxing)["type"] == "corner"
    assert st.click("ann", 200, 200, pointing, label=0)["type"] == "click"
    assert st.click("ann", 240, 300, boxing)["bbox"] == [100, 170, 141, 131]
    [disc] = st.to_document()["annotations"]
    assert disc["point_labels"] == [1, 0] and disc["bbox"] == [100.0, 170.0, 141.0, 131.0]
    with pytest.raises(ActionRefused, match="sky is stuff"):
        st.click("ann", 5, 5, TabView("a_scene.png", 7, None, True))


def test_the_canvas_draws_negatives_hollow_and_boxes(images, tmp_path):
    from PIL import Image

    st = new_store(images, tmp_path / "p")
    app = AnnotatorApp(st)
    st.ensure_open("ann")
    st.pick_category("ann", 1)
    st.click("ann", 100, 60)
    st.click("ann", 300, 60, label=0)
    st.set_box("ann", 400, 100, 499, 199)
    st.new_instance("ann")  # no current segment: plain markers
    rgb = np.asarray(Image.open(app.canvas("ann", app.state("ann"))).convert("RGB")).astype(int)
    base = app.display("a_scene.png").rgb.astype(int)
    diff = np.abs(rgb - base).max(axis=2)
    assert diff[60, 100] > 60  # a point in the segment: a filled dot
    assert diff[60, 300] < 25  # a point not in it: hollow, the image shows through...
    ring = diff[55:66, 290:311]
    assert ring.max() > 60 and (ring > 60).sum() >= 20  # ...inside a ring
    assert diff[100, 450] > 60 and diff[199, 450] > 60 and diff[150, 400] > 60 and diff[150, 499] > 60
    assert diff[150, 450] < 25  # inside the box: the image


def write_coco(path, images: list[tuple[int, str, int, int]]):
    """A COCO JSON listing ``(id, file_name, width, height)`` images."""
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


def test_images_json_gives_the_project_its_coco_ids(images, tmp_path):
    from pointly.annotator.images import coco_image_ids

    catalog = ImageCatalog(images)
    coco = write_coco(tmp_path / "coco.json", [(9001, "b_scene.png", 640, 480), (42, "val/a_scene.png", 640, 480)])
    ids = coco_image_ids(catalog, coco)  # by name, or by a unique base name
    assert ids == {"a_scene.png": 42, "b_scene.png": 9001}
    st = new_store(images, tmp_path / "p", coco_ids=ids, coco_file=coco)
    st.ensure_open("ann")
    st.pick_category("ann", 1)
    st.click("ann", 10, 10)
    doc = st.to_document()
    assert [im["id"] for im in doc["images"]] == [42] and doc["annotations"][0]["image_id"] == 42
    assert doc["info"]["pointly"]["images_json"] == "coco.json"
    app = AnnotatorApp(st)
    assert [(im["id"], im["coco_id"], im["file_name"]) for im in app.image_list()] == [
        (42, 42, "a_scene.png"),
        (9001, 9001, "b_scene.png"),
    ]
    st.close()
    # the ids stay with the project: a restart without the file keeps them...
    assert [im["id"] for im in new_store(images, tmp_path / "p").to_document()["images"]] == [42]
    # ...and a file with other ids is refused
    other = write_coco(tmp_path / "other.json", [(1, "a_scene.png", 640, 480), (2, "b_scene.png", 640, 480)])
    with pytest.raises(PointlyError, match="has id 42 in this project but 1 in other.json"):
        new_store(images, tmp_path / "p", coco_ids=coco_image_ids(catalog, other), coco_file=other)
    # an image the file lacks, a size that disagrees, two images on one record: one line each
    with pytest.raises(PointlyError, match="'b_scene.png' is not in"):
        coco_image_ids(catalog, write_coco(tmp_path / "c1.json", [(1, "a_scene.png", 640, 480)]))
    with pytest.raises(PointlyError, match="is 640x480 here but 480x640"):
        coco_image_ids(
            catalog, write_coco(tmp_path / "c2.json", [(1, "a_scene.png", 480, 640), (2, "b_scene.png", 640, 480)])
        )
    (images / "sub").mkdir()
    (images / "sub" / "a_scene.png").write_bytes((images / "a_scene.png").read_bytes())
    with pytest.raises(PointlyError, match="both match image id 42"):
        coco_image_ids(
            ImageCatalog(images),
            write_coco(tmp_path / "c3.json", [(42, "x/a_scene.png", 640, 480), (9001, "b_scene.png", 640, 480)]),
        )
