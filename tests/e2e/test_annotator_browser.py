"""Browser tests of the annotator in real Chromium (Debian ``chromium``, headless, Playwright).

Clicks at known pixels (checked against the journal within the display-scale tolerance),
keyboard shortcuts, refresh, SIGKILL of the server mid-session, two annotators at once; the
guards: uploads refused, renders private, per-tab state, per-clicker credit, visible refusal of
clicks made while the page is not synchronised.
"""

from __future__ import annotations

import json
import math
import os
import re
import time
import urllib.parse

import pytest
from annotator_fixtures import (
    CHROMIUM,
    CHROMIUM_ARGS,
    USERS,
    Server,
    journal_clicks,
    make_images,
    wait_clicks,
    write_users,
)

pytestmark = [pytest.mark.slow, pytest.mark.browser]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


def ack(page) -> dict:
    """The state the server acknowledged last (hidden #pointly-ack textbox)."""
    return json.loads(page.locator("#pointly-ack textarea").input_value() or "{}")


def wait_ack(page, js_condition: str, timeout: float = 10000) -> dict:
    try:
        page.wait_for_function(
            "() => { const t = document.querySelector('#pointly-ack textarea'); if (!t || !t.value) return false;"
            f" const a = JSON.parse(t.value); return {js_condition}; }}",
            timeout=timeout,
        )
    except sync_api.TimeoutError:
        raise AssertionError(f"waited for {js_condition}; last acknowledged state {ack(page)}") from None
    return ack(page)


def open_app(page, url: str, user: str | None = None) -> dict:
    page.goto(url)
    if user:
        page.locator("input[data-testid='textbox']").fill(user)
        page.locator("input[data-testid='password']").fill(USERS[user])
        page.get_by_role("button", name="Login").click()
    page.wait_for_selector("#pointly-canvas img", timeout=30000)
    return wait_ack(page, "a.image !== null")


class Canvas:
    """Maps original-image pixels to page coordinates the way Gradio's Image select does."""

    def __init__(self, page, width: int) -> None:
        page.wait_for_function(
            "() => { const i = document.querySelector('#pointly-canvas img');"
            " return !!i && i.complete && i.naturalWidth > 0; }"
        )
        L, T, W, H, nw, nh = page.locator("#pointly-canvas img").first.evaluate(
            "e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height, e.naturalWidth, e.naturalHeight]; }"
        )
        self.r = min(W / nw, H / nh, 1.0)  # Gradio never scales above natural size
        self.ox, self.oy = L + (W - nw * self.r) / 2, T + (H - nh * self.r) / 2
        self.s = nw / width  # server display scale (original -> rendered PNG)
        self.page = page

    @property
    def tolerance(self) -> int:
        """One screen pixel covers 1 / (r · s) original pixels."""
        return max(1, math.ceil(1.0 / (self.r * self.s)))

    def click(self, x: int, y: int) -> None:
        xd, yd = (x + 0.5) * self.s, (y + 0.5) * self.s  # centre of the pixel in display units
        self.page.mouse.click(self.ox + xd * self.r, self.oy + yd * self.r)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One server with login (alice, bob) for the click/keyboard and the two-annotator tests."""
    root = tmp_path_factory.mktemp("annot_browser")
    images = make_images(root / "images")
    srv = Server(images, root / "project", users_file=write_users(root / "users.txt")).start()
    yield srv
    srv.stop()


def test_clicks_at_known_pixels_keyboard_and_refresh(browser, shared):
    solo = shared
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    a = open_app(page, solo.url, "alice")
    assert a["image"] == "a_scene.png"
    page.keyboard.press("1")  # first category: disc
    wait_ack(page, "a.category === 'disc'")
    canvas = Canvas(page, 640)
    targets = [(100, 50), (321, 240), (5, 470), (633, 7), (400, 333)]
    for _k, (x, y) in enumerate(targets):
        canvas.click(x, y)
        time.sleep(0.2)  # 5 clicks per second
    disc = wait_ack(page, f"a.points === {len(targets)}")["segment"]
    got = [(e["x"], e["y"]) for e in journal_clicks(solo.project, "alice")]
    assert len(got) == len(targets)
    for (x, y), (gx, gy) in zip(targets, got):
        assert abs(gx - x) <= canvas.tolerance and abs(gy - y) <= canvas.tolerance, (targets, got)

    page.keyboard.press("n")  # new instance, and a click right after it: applied in this order
    canvas.click(300, 300)
    a = wait_ack(page, "a.points === 6")
    assert a["segment"] not in (None, disc)
    assert page.locator("#pointly-segments label").count() == 2
    page.keyboard.press("z")
    wait_ack(page, "a.points === 5")
    page.keyboard.press("Control+z")
    wait_ack(page, "a.points === 4")
    page.keyboard.press("Delete")  # deletes the current (disc) segment
    wait_ack(page, "a.points === 0")
    page.keyboard.press("7")  # sky (stuff)
    wait_ack(page, "a.category === 'sky'")
    canvas.click(600, 20)
    canvas.click(620, 30)
    wait_ack(page, "a.points === 2")
    page.keyboard.press("t")
    wait_ack(page, "a.preview === true")
    # the category search box picks any category
    page.locator("#pointly-category input").click()
    page.keyboard.press("Control+a")  # the box shows the current category; replace it
    page.keyboard.type("star")
    page.wait_for_function(
        "() => { const o = [...document.querySelectorAll("
        "\"li[data-testid='dropdown-option']\")]; "
        "return o.length === 1 && o[0].innerText.includes('star'); }"
    )
    page.keyboard.press("Enter")
    wait_ack(page, "a.category === 'star'")
    page.mouse.click(5, 5)  # leave the search box so keys are shortcuts again
    page.keyboard.press("ArrowRight")
    wait_ack(page, "a.image === 'b_scene.png'")
    page.keyboard.press("ArrowLeft")
    before = wait_ack(page, "a.image === 'a_scene.png' && a.points === 2")
    # refresh: the same image, points, category and preview come back from the server
    page.reload()
    page.wait_for_selector("#pointly-canvas img", timeout=30000)
    after = wait_ack(page, "a.image !== null")
    assert after == before
    labels = page.locator("#pointly-segments label").all_inner_texts()
    assert len(labels) == 1 and "sky" in labels[0] and "2/20 pts" in labels[0]
    page.close()


# Installed before the page's scripts: delays the NEXT action request (POST .../run/predict) by
# window.__pointlyTestDelay ms before it leaves the browser, like a slow network path. Without
# the page's ordered queue, a click made after that action is sent at once and overtakes it.
SLOW_NEXT_REQUEST = """(() => {
  window.__pointlyTestDelay = 0;
  const f = window.fetch.bind(window);
  window.fetch = function (input, init) {
    const url = typeof input === "string" ? input : (input.url || input.href || "");
    if (window.__pointlyTestDelay > 0 && /\\/run\\/predict/.test(url)) {
      const ms = window.__pointlyTestDelay;
      window.__pointlyTestDelay = 0;
      return new Promise(r => setTimeout(r, ms)).then(() => f(input, init));
    }
    return f(input, init);
  };
})();"""


def journal_events(project, user: str = "local") -> list[dict]:
    return [
        json.loads(line) for line in (project / "journal" / f"{user}.jsonl").read_text().splitlines() if line.strip()
    ]


def test_slow_action_request_is_not_overtaken_by_the_next_click(browser, tmp_path):
    """A key or button action whose request is slow, then an immediate click: the server must
    apply them in the order the user made them (N then click = the point is in the NEW instance)."""
    images = make_images(tmp_path / "images")
    srv = Server(images, tmp_path / "project").start()
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    page.add_init_script(SLOW_NEXT_REQUEST)
    try:
        open_app(page, srv.url)
        page.keyboard.press("1")  # disc
        wait_ack(page, "a.category === 'disc'")
        canvas = Canvas(page, 640)
        canvas.click(100, 100)
        first = wait_ack(page, "a.points === 1")["segment"]
        n0 = len(journal_events(tmp_path / "project"))

        def slow_next(ms: int = 700) -> None:
            page.evaluate(f"() => {{ window.__pointlyTestDelay = {ms}; }}")

        def wait_events(n: int) -> None:  # the journal has n more events (each action applied)
            deadline = time.monotonic() + 20
            while len(journal_events(tmp_path / "project")) < n0 + n:
                assert time.monotonic() < deadline, journal_events(tmp_path / "project")[n0:]
                time.sleep(0.05)

        slow_next()
        page.keyboard.press("n")  # its request is 700 ms late; the clicks come right after it
        canvas.click(200, 200)
        canvas.click(210, 210)
        wait_events(3)
        slow_next()
        page.keyboard.press("2")  # rectangle, then a click at once
        canvas.click(400, 200)
        wait_events(5)
        slow_next()
        page.click("#pointly-new")  # the button with the mouse, then a click at once
        canvas.click(420, 220)
        wait_events(7)
        slow_next()
        page.keyboard.press("z")  # undo, then a click: the undo removes the point before it
        canvas.click(430, 230)
        wait_events(9)
        slow_next()
        page.keyboard.press("Delete")  # delete the current segment, then a click: a new segment
        canvas.click(440, 240)
        wait_events(11)
        page.locator("#pointly-category input").click()  # the search box: Gradio's own request
        page.keyboard.press("Control+a")
        page.keyboard.type("star")
        page.wait_for_function(
            "() => { const o = [...document.querySelectorAll("
            "\"li[data-testid='dropdown-option']\")]; "
            "return o.length === 1 && o[0].innerText.includes('star'); }"
        )
        slow_next()
        page.keyboard.press("Enter")  # star, late; then a click at once
        canvas.click(450, 250)
        wait_events(13)
        time.sleep(0.3)  # nothing else arrives
        events = journal_events(tmp_path / "project")[n0:]
        assert [e["type"] for e in events] == [
            "new",
            "click",
            "click",
            "category",
            "click",
            "new",
            "click",
            "undo",
            "click",
            "delete",
            "click",
            "category",
            "click",
        ], events
        clicks = [e for e in events if e["type"] == "click"]
        assert clicks[0]["segment"] == clicks[1]["segment"] != first  # N applied before both clicks
        assert clicks[2]["segment"] not in (first, clicks[0]["segment"])  # rectangle: a new segment
        assert clicks[2]["category_id"] != clicks[0]["category_id"]
        assert clicks[3]["segment"] != clicks[2]["segment"]  # the New-instance button came first
        assert events[7]["segment"] == clicks[3]["segment"]  # undo took the point before it...
        assert events[9]["segment"] == clicks[4]["segment"]  # ...and Del the segment before it
        assert clicks[5]["segment"] != clicks[4]["segment"]
        assert clicks[6]["category_id"] == events[11]["category_id"] != clicks[5]["category_id"]
        wait_ack(page, f"a.points === 6 && a.category === 'star' && a.segment === '{clicks[6]['segment']}'")
        assert page.evaluate("() => window.pointlyDropped") == 0
    finally:
        page.close()
        srv.stop()


def test_sigkill_mid_session_loses_no_acknowledged_click(browser, tmp_path):
    images = make_images(tmp_path / "images")
    srv = Server(images, tmp_path / "project").start()
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    try:
        open_app(page, srv.url)
        page.keyboard.press("5")  # star
        wait_ack(page, "a.category === 'star'")
        canvas = Canvas(page, 640)
        for k in range(12):
            canvas.click(50 + 40 * k, 100 + 10 * k)
            time.sleep(0.2)
        acked = wait_ack(page, "a.points >= 12")["points"]
        srv.kill9()
    finally:
        srv.stop()
    srv2 = Server(images, tmp_path / "project").start()
    try:
        page.goto(srv2.url)
        page.wait_for_selector("#pointly-canvas img", timeout=30000)
        a = wait_ack(page, "a.image !== null")
        assert a["image"] == "a_scene.png" and a["category"] == "star"
        assert a["points"] == acked == 12
        assert len(journal_clicks(tmp_path / "project")) == 12
    finally:
        page.close()
        srv2.stop()


def test_two_annotators_in_two_browser_contexts(browser, shared):
    srv = shared
    before = {u: len(journal_clicks(srv.project, u)) for u in USERS}
    ctx_a, ctx_b = (
        browser.new_context(viewport={"width": 1400, "height": 950}),
        browser.new_context(viewport={"width": 1400, "height": 950}),
    )
    try:
        pa, pb = ctx_a.new_page(), ctx_b.new_page()
        sa, sb = open_app(pa, srv.url, "alice"), open_app(pb, srv.url, "bob")
        assert sa["image"] != sb["image"]  # never the same image
        pa.keyboard.press("2")
        pb.keyboard.press("8")
        wait_ack(pa, "a.category === 'rectangle'")
        wait_ack(pb, "a.category === 'grass'")
        ca, cb = Canvas(pa, 640), Canvas(pb, 640)
        na = wait_ack(pa, "a.category === 'rectangle'")["points"]
        pb_points = ack(pb)["points"]
        for k in range(8):  # interleaved bursts (~15 clicks/s each), without waiting for acks
            ca.click(30 + 20 * k, 60)
            cb.click(30 + 20 * k, 400)
            time.sleep(0.03)
        wait_ack(pa, f"a.points === {na + 8}")
        wait_ack(pb, f"a.points === {pb_points + 8}")
        alice = journal_clicks(srv.project, "alice")[before["alice"] :]
        bob = journal_clicks(srv.project, "bob")[before["bob"] :]
        assert len(alice) == len(bob) == 8
        assert {e["image"] for e in alice} == {sa["image"]} and {e["image"] for e in bob} == {sb["image"]}
        assert all(abs(e["y"] - 60) <= ca.tolerance for e in alice)
        assert all(abs(e["y"] - 400) <= cb.tolerance for e in bob)
    finally:
        ctx_a.close()
        ctx_b.close()


# ---------------------------------------------------------------------- the guards of the annotator
@pytest.fixture(scope="module")
def solo(tmp_path_factory):
    """One server without login (user ``local``), for the upload and the two-tab tests."""
    root = tmp_path_factory.mktemp("annot_solo")
    srv = Server(make_images(root / "images"), root / "project").start()
    yield srv
    srv.stop()


def log_in(browser, srv, user: str | None):
    """A fresh browser context and page with the annotator open (as ``user``, or without login)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    page = ctx.new_page()
    return ctx, page, open_app(page, srv.url, user)


# A multipart upload from the page itself (its cookies, its origin), as Gradio's upload would send it.
UPLOAD = """async ([size, name]) => {
  const form = new FormData();
  form.append("files", new Blob([new Uint8Array(size).fill(65)]), name);
  const r = await fetch("gradio_api/upload", { method: "POST", body: form });
  return [r.status, await r.text()];
}"""
# A plain (not multipart) POST with a large body to the route of every UI event.
BIG_POST = """async (size) => {
  const r = await fetch("gradio_api/run/predict", { method: "POST",
    headers: { "Content-Type": "application/json" }, body: " ".repeat(size) });
  return r.status;
}"""


def test_uploads_are_refused_with_and_without_login(browser, shared, solo):
    for srv, user in [(solo, None), (shared, "alice")]:
        ctx, page, shown = log_in(browser, srv, user)
        try:
            for size in (1024, 4 << 20):
                name = f"probe-{user}-{size}.bin"
                status, text = page.evaluate(UPLOAD, [size, name])
                assert status in (403, 413), (srv.users_file, size, status, text)
                stored = [
                    p for p in srv.gradio_tmp.rglob("*") if p.is_file() and (p.name == name or p.stat().st_size == size)
                ]
                assert stored == [], stored
            # not multipart: the upload route is refused all the same, and large bodies anywhere
            raw = page.evaluate(
                "async () => (await fetch('gradio_api/upload', {method: 'POST', "
                "headers: {'Content-Type': 'application/octet-stream'}, body: 'x'})).status"
            )
            assert raw == 403
            assert page.evaluate(BIG_POST, 4 << 20) == 413
            # the app itself still works: a key action is answered
            page.keyboard.press("t")
            wait_ack(page, f"a.preview === {json.dumps(not shown['preview'])}")
        finally:
            ctx.close()


def test_canvas_renders_are_served_only_to_their_user(browser, shared):
    (ctx_a, pa, shown), (ctx_b, pb, _) = log_in(browser, shared, "alice"), log_in(browser, shared, "bob")
    anonymous = browser.new_context()
    try:
        src_a = pa.locator("#pointly-canvas img").first.evaluate("e => e.src")
        src_b = pb.locator("#pointly-canvas img").first.evaluate("e => e.src")
        own_a, own_b = ctx_a.request.get(src_a), ctx_b.request.get(src_b)
        assert own_a.status == own_b.status == 200
        assert own_a.body()[:2] == own_b.body()[:2] == b"\xff\xd8"  # JPEG renders
        assert ctx_b.request.get(src_a).status in (403, 404)  # bob cannot fetch alice's render
        assert ctx_a.request.get(src_b).status in (403, 404)
        assert anonymous.request.get(src_a).status in (401, 403, 404)
        # names are random, not the user and a counter; every render gets a new one
        names = [urllib.parse.unquote(s).rsplit("/", 1)[-1] for s in (src_a, src_b)]
        assert all("alice" not in n and "bob" not in n and len(n) >= 32 for n in names), names
        pa.keyboard.press("t")  # a new render of the same image
        wait_ack(pa, f"a.preview === {json.dumps(not shown['preview'])}")
        pa.wait_for_function(f"() => document.querySelector('#pointly-canvas img').src !== {json.dumps(src_a)}")
        assert pa.locator("#pointly-canvas img").first.evaluate("e => e.src") != src_a
    finally:
        for c in (ctx_a, ctx_b, anonymous):
            c.close()


def test_each_tab_stores_clicks_with_what_it_shows(browser, solo):
    """One annotator, two tabs: a category picked (or an image opened) in tab B does not change
    where tab A's clicks go; each click is stored with the image, category and segment of its tab."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 950})
    try:
        pa, pb = ctx.new_page(), ctx.new_page()
        assert open_app(pa, solo.url)["image"] == open_app(pb, solo.url)["image"] == "a_scene.png"
        n0 = len(journal_clicks(solo.project))
        pa.keyboard.press("1")  # disc in tab A
        wait_ack(pa, "a.category === 'disc'")
        pb.keyboard.press("7")  # sky in tab B, after A's pick
        wait_ack(pb, "a.category === 'sky'")
        assert ack(pa)["category"] == "disc"  # tab A still shows disc
        ca, cb = Canvas(pa, 640), Canvas(pb, 640)
        ca.click(190, 240)  # inside the disc
        wait_clicks(solo.project, n0 + 1)
        cb.click(600, 20)  # sky
        wait_clicks(solo.project, n0 + 2)
        ca.click(200, 250)  # tab A again: its disc instance
        clicks = wait_clicks(solo.project, n0 + 3)[n0:]
        assert [c["category_id"] for c in clicks] == [1, 7, 1], clicks  # 1 disc, 7 sky
        assert clicks[0]["segment"] == clicks[2]["segment"] != clicks[1]["segment"]
        wait_ack(pa, "a.category === 'disc' && a.points === 3")
        assert ack(pb)["category"] == "sky"
        # tab B moves on to the next image; tab A still shows a_scene, and its click goes there
        pb.keyboard.press("ArrowRight")
        wait_ack(pb, "a.image === 'b_scene.png'")
        ca.click(180, 230)
        last = wait_clicks(solo.project, n0 + 4)[-1]
        assert (last["image"], last["category_id"], last["segment"]) == ("a_scene.png", 1, clicks[0]["segment"])
        wait_ack(pa, "a.image === 'a_scene.png' && a.points === 4")
    finally:
        ctx.close()


def info_seconds(page, user: str, points: int) -> float:
    """The active seconds of the "You (user): N points in S s" line of the progress panel, once
    it shows ``points`` points (AssertionError with the panel's text otherwise)."""
    line = f"You ({user}): {points} points in "
    try:
        page.wait_for_function(
            f"() => document.querySelector('#pointly-info').innerText.includes({json.dumps(line)})", timeout=10000
        )
    except sync_api.TimeoutError:
        raise AssertionError(page.locator("#pointly-info").inner_text()) from None
    text = page.locator("#pointly-info").inner_text()
    return float(re.search(re.escape(line) + r"([\d.]+) s active", text).group(1))


def credited_seconds(project, image: str, idle_cutoff: float = 60.0) -> dict[str, float]:
    """Active seconds per clicker on ``image``, straight from the journals: each point is charged
    the gap since the previous point of the image (or since the image was first opened), gaps
    over the idle cut-off are left out."""
    events = [
        e
        for u in ("alice", "bob")
        if (project / "journal" / f"{u}.jsonl").exists()
        for e in journal_events(project, u)
        if e.get("image") == image
    ]
    prev = min(e["t"] for e in events if e["type"] == "open")
    out: dict[str, float] = {}
    for e in sorted((e for e in events if e["type"] == "click"), key=lambda e: e["t"]):
        gap, prev = e["t"] - prev, e["t"]
        if gap <= idle_cutoff:
            out[e["user"]] = out.get(e["user"], 0.0) + gap
    return out


def test_points_in_a_stuff_region_count_for_who_clicked_them(browser, tmp_path):
    """Bob adds points to the sky region Alice started: they are Bob's points and seconds."""
    images = make_images(tmp_path / "images")
    srv = Server(images, tmp_path / "project", users_file=write_users(tmp_path / "users.txt")).start()
    ctx_a = ctx_b = None
    try:
        ctx_a, pa, sa = log_in(browser, srv, "alice")
        assert sa["image"] == "a_scene.png"
        pa.keyboard.press("7")  # sky (stuff)
        wait_ack(pa, "a.category === 'sky'")
        ca = Canvas(pa, 640)
        for k in range(3):
            ca.click(40 + 60 * k, 30)
            time.sleep(0.3)
        wait_clicks(srv.project, 3, "alice")
        pa.keyboard.press("ArrowRight")  # alice moves on; a_scene is free again
        wait_ack(pa, "a.image === 'b_scene.png'")
        ctx_b, pb, sb = log_in(browser, srv, "bob")
        assert sb["image"] == "a_scene.png"
        pb.keyboard.press("7")  # sky: the region alice started on this image
        wait_ack(pb, "a.category === 'sky'")
        cb = Canvas(pb, 640)
        for k in range(5):
            cb.click(300 + 50 * k, 50)
            time.sleep(0.3)
        bob = wait_clicks(srv.project, 5, "bob")
        alice = journal_clicks(srv.project, "alice")
        assert {e["segment"] for e in alice + bob} == {alice[0]["segment"]}  # one sky region
        wait_ack(pb, "a.points === 8")
        expected = credited_seconds(srv.project, "a_scene.png")
        assert info_seconds(pb, "bob", 5) == pytest.approx(expected["bob"], abs=0.06), expected
        pa.reload()  # alice's panel: only her own 3 points and their seconds
        pa.wait_for_selector("#pointly-canvas img", timeout=30000)
        wait_ack(pa, "a.image === 'b_scene.png'")
        assert info_seconds(pa, "alice", 3) == pytest.approx(expected["alice"], abs=0.06), expected
        segment = pb.locator("#pointly-segments label").all_inner_texts()
        assert len(segment) == 1 and "sky" in segment[0] and "8/20 pts" in segment[0]
    finally:
        for c in (ctx_a, ctx_b):
            if c is not None:
                c.close()
        srv.stop()


def reported_not_stored(console: list[str]) -> int:
    """How many clicks the page reported as not stored (its console lines, across reloads)."""
    n = 0
    for line in console:
        if line.startswith("pointly: Your click was NOT stored"):
            n += 1
        elif m := re.match(r"pointly: (\d+) clicks? made before the page reloaded (?:was|were) NOT stored", line):
            n += int(m.group(1))
    return n


def test_click_while_not_synchronised_is_refused_visibly(browser, tmp_path):
    """Clicks made while the server is down or restarting, before the page has re-synchronised,
    are reported on the page as not stored (never dropped silently); after the resync clicks work."""
    images = make_images(tmp_path / "images")
    project = tmp_path / "project"
    srv = Server(images, project).start()
    srv2 = None
    page = browser.new_page(viewport={"width": 1400, "height": 950})
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    alert = page.locator("#pointly-alert")
    try:
        open_app(page, srv.url)
        page.keyboard.press("1")
        wait_ack(page, "a.category === 'disc'")
        canvas = Canvas(page, 640)
        canvas.click(100, 100)
        wait_ack(page, "a.points === 1")
        page.evaluate("() => { window.__beforeRestart = true; }")  # gone once the page reloaded
        srv.kill9()
        canvas.click(150, 100)  # the server is down
        alert.wait_for(state="visible", timeout=30000)  # generous: a loaded CI machine starves the browser
        assert "NOT stored" in alert.inner_text() and "click again" in alert.inner_text().lower()
        # the server is back, but this page is not re-synchronised yet (Gradio reloads it once it
        # sees the server again; hold that back so the clicks surely fall into the gap)
        page.route("**/gradio_api/app_id*", lambda route: route.abort())
        srv2 = Server(images, project, port=srv.port).start()
        canvas.click(200, 100)
        canvas.click(250, 100)
        page.wait_for_function("() => window.pointlyNotStored >= 3", timeout=30000)
        assert alert.is_visible() and "NOT stored" in alert.inner_text()
        canvas.click(300, 100)  # reported on this page or, if it reloads first, on the new one
        with page.expect_navigation(timeout=30000):  # Gradio reloads the page: re-synchronised
            page.unroute("**/gradio_api/app_id*")
        page.wait_for_selector("#pointly-canvas img", timeout=30000)
        assert page.evaluate("() => window.__beforeRestart") is None
        a = wait_ack(page, "a.image === 'a_scene.png'")
        assert a["points"] == 1 and len(journal_clicks(project)) == 1  # none of the four was stored...
        deadline = time.monotonic() + 10
        while reported_not_stored(console) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert reported_not_stored(console) == 4, console  # ...and each one was reported
        Canvas(page, 640).click(350, 100)  # re-synchronised: clicks are stored again
        wait_clicks(project, 2)
        wait_ack(page, "a.points === 2")
        assert not alert.is_visible()
    finally:
        page.close()
        srv.stop()
        if srv2 is not None:
            srv2.stop()


def test_negative_click_box_and_export_download(browser, tmp_path):
    """Shift+click stores a point NOT in the segment (label 0), B and two clicks draw the instance's
    box, and the Export button downloads the points JSON holding both."""
    images = make_images(tmp_path / "images")
    project = tmp_path / "project"
    srv = Server(images, project).start()
    ctx = browser.new_context(viewport={"width": 1400, "height": 950}, accept_downloads=True)
    page = ctx.new_page()
    try:
        open_app(page, srv.url)
        files = page.locator("#pointly-files").inner_text()
        assert str(project.resolve()) in files and "points.json" in files  # where the files are
        page.keyboard.press("1")  # disc
        wait_ack(page, "a.category === 'disc'")
        canvas = Canvas(page, 640)
        canvas.click(190, 240)  # in the disc
        wait_ack(page, "a.points === 1")
        page.keyboard.down("Shift")
        canvas.click(420, 100)  # NOT in the disc
        page.keyboard.up("Shift")
        wait_ack(page, "a.points === 2")
        page.keyboard.press("b")  # box mode: two opposite corners
        wait_ack(page, "a.box_mode === true")
        canvas.click(96, 144)
        wait_ack(page, "a.corner !== null")
        canvas.click(287, 337)
        wait_ack(page, "a.box_mode === false && a.corner === null && a.points === 2")
        assert "box" in page.locator("#pointly-segments label").all_inner_texts()[0]
        with page.expect_download(timeout=20000) as info:
            page.click("#pointly-export")
        download = info.value
        assert download.suggested_filename == "points.json"
        doc = json.loads(open(download.path(), encoding="utf-8").read())
        [disc] = doc["annotations"]
        assert disc["category_id"] == 1 and disc["point_labels"] == [1, 0]
        tol = canvas.tolerance
        for (x, y), (gx, gy) in zip([(190, 240), (420, 100)], disc["point_coords"]):
            assert abs(gx - x) <= tol and abs(gy - y) <= tol, disc
        bx, by, bw, bh = disc["bbox"]  # the drawn box, both corner pixels inside it
        assert abs(bx - 96) <= tol and abs(by - 144) <= tol, disc["bbox"]
        assert abs(bx + bw - 1 - 287) <= tol and abs(by + bh - 1 - 337) <= tol, disc["bbox"]
        labels = [e.get("label") for e in journal_clicks(project)]
        assert labels == [1, 0]
        from pointly.pointgen.base.points_format import validate_points

        validate_points(doc)
        assert doc["annotations"] == json.loads((project / "points.json").read_text())["annotations"]
    finally:
        ctx.close()
        srv.stop()
