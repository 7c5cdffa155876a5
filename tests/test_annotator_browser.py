"""Browser tests of the annotator in real Chromium (Debian ``chromium``, headless, Playwright).

Clicks at known pixels (checked against the journal within the display-scale tolerance),
keyboard shortcuts, refresh, SIGKILL of the server mid-session, two annotators at once.
"""
from __future__ import annotations

import json
import math
import os
import time

import pytest

from annotator_fixtures import CHROMIUM, CHROMIUM_ARGS, USERS, Server, journal_clicks, make_images, write_users

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
            f" const a = JSON.parse(t.value); return {js_condition}; }}", timeout=timeout)
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
        page.wait_for_function("() => { const i = document.querySelector('#pointly-canvas img');"
                               " return !!i && i.complete && i.naturalWidth > 0; }")
        L, T, W, H, nw, nh = page.locator("#pointly-canvas img").first.evaluate(
            "e => { const r = e.getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height, e.naturalWidth, e.naturalHeight]; }")
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
    for k, (x, y) in enumerate(targets):
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
    page.wait_for_function("() => { const o = [...document.querySelectorAll("
                           "\"li[data-testid='dropdown-option']\")]; "
                           "return o.length === 1 && o[0].innerText.includes('star'); }")
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
    return [json.loads(line) for line in (project / "journal" / f"{user}.jsonl").read_text().splitlines()
            if line.strip()]


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
        page.wait_for_function("() => { const o = [...document.querySelectorAll("
                               "\"li[data-testid='dropdown-option']\")]; "
                               "return o.length === 1 && o[0].innerText.includes('star'); }")
        slow_next()
        page.keyboard.press("Enter")  # star, late; then a click at once
        canvas.click(450, 250)
        wait_events(13)
        time.sleep(0.3)  # nothing else arrives
        events = journal_events(tmp_path / "project")[n0:]
        assert [e["type"] for e in events] == ["new", "click", "click", "category", "click", "new", "click",
                                               "undo", "click", "delete", "click", "category", "click"], events
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
    ctx_a, ctx_b = browser.new_context(viewport={"width": 1400, "height": 950}), \
        browser.new_context(viewport={"width": 1400, "height": 950})
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
        alice = journal_clicks(srv.project, "alice")[before["alice"]:]
        bob = journal_clicks(srv.project, "bob")[before["bob"]:]
        assert len(alice) == len(bob) == 8
        assert {e["image"] for e in alice} == {sa["image"]} and {e["image"] for e in bob} == {sb["image"]}
        assert all(abs(e["y"] - 60) <= ca.tolerance for e in alice)
        assert all(abs(e["y"] - 400) <= cb.tolerance for e in bob)
    finally:
        ctx_a.close()
        ctx_b.close()
