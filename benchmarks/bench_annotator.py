"""Benchmark: click -> updated canvas in real Chromium, and the share of clicks kept.

Starts ``pointly annotate`` on one 640×480 image in a subprocess, opens it in headless Chromium
(Playwright), clicks 200 times at 5 clicks/s at known pixels and measures, in the page, the time
from each click (``performance.now()`` of its trusted mousedown, where the click starts) to the ``load`` of the first
canvas image whose acknowledged state contains that click. Then a burst of clicks at 20/s. The
kept share is the number of clicks in the server's journal over the clicks sent.

Baseline (same process): the server-side work of one click (journal append with fsync, state,
render, JPEG encode) timed by calling ``AnnotatorApp`` directly; the ratio click→canvas /
server work says how much Gradio's round trip and the browser add.

    python benchmarks/bench_annotator.py [--clicks 200] [--rate 5] [--out benchmarks/results_annotator.md]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# The browser and its launch flags are the annotator tests' (one definition for both).
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from annotator_fixtures import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402

PAGE_PROBE = """() => {
  window._clicks = []; window._loads = [];
  const canvas = document.querySelector('#pointly-canvas');
  document.addEventListener('mousedown', e => {
    if (e.isTrusted && e.target.closest && e.target.closest('#pointly-canvas')) window._clicks.push(performance.now());
  }, true);
  document.addEventListener('load', e => {
    if (e.target.tagName === 'IMG' && canvas.contains(e.target)) {
      const t = document.querySelector('#pointly-ack textarea');
      window._loads.push([performance.now(), JSON.parse(t.value).points]);
    }
  }, true);
}"""


def scene(path: Path) -> None:
    im = Image.new("RGB", (640, 480), (120, 170, 230))
    d = ImageDraw.Draw(im)
    d.rectangle([0, 290, 640, 480], fill=(60, 150, 60))
    d.ellipse([120, 170, 260, 310], fill=(240, 200, 40))
    im.save(path)


def server_baseline(images: Path, project: Path, n: int = 200) -> list[float]:
    """Server-side seconds per click (journal+fsync, state, render, JPEG) in this process."""
    from pointly.annotator.app import AnnotatorApp
    from pointly.annotator.images import ImageCatalog
    from pointly.annotator.store import ProjectStore
    from pointly.pointgen.base.categories import load_categories

    store = ProjectStore(project, ImageCatalog(images), load_categories("synthetic"))
    app = AnnotatorApp(store)
    app.act("bench", "digit", 0)
    times = []
    for k in range(n):
        t = time.perf_counter()
        app.act("bench", "click_display", 20 + (k * 37) % 600, 20 + (k * 53) % 440)
        st = app.state("bench")
        app.canvas("bench", st)
        times.append(time.perf_counter() - t)
    store.close()
    return times


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_browser(url: str, project: Path, clicks: int, rate: float, burst: int, burst_rate: float) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1400, "height": 950})
        page.goto(url)
        page.wait_for_selector("#pointly-canvas img", timeout=60000)
        page.keyboard.press("1")
        page.wait_for_function(
            "() => JSON.parse(document.querySelector('#pointly-ack textarea').value).category === 'disc'"
        )
        page.wait_for_function(
            "() => { const i = document.querySelector('#pointly-canvas img'); return i.complete && i.naturalWidth > 0; }"
        )
        L, T, W, H, nw, nh = page.locator("#pointly-canvas img").first.evaluate(
            "e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height, e.naturalWidth, e.naturalHeight]; }"
        )
        r = min(W / nw, H / nh, 1.0)
        ox, oy = L + (W - nw * r) / 2, T + (H - nh * r) / 2
        page.evaluate(PAGE_PROBE)

        def click(k: int) -> None:
            x, y = 20 + (k * 37) % 600, 20 + (k * 53) % 440
            page.mouse.click(ox + (x + 0.5) * r, oy + (y + 0.5) * r)

        def paced(n: int, hz: float, start: int) -> None:
            t0 = time.perf_counter()
            for k in range(n):
                delay = t0 + k / hz - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                click(start + k)

        paced(clicks, rate, 0)
        page.wait_for_function(
            f"() => JSON.parse(document.querySelector('#pointly-ack textarea').value).points >= {clicks}", timeout=60000
        )
        time.sleep(0.5)
        click_times = page.evaluate("() => window._clicks")
        loads = page.evaluate("() => window._loads")
        held = page.evaluate("() => window.pointlyHeldClicks")
        lat = []
        for k, tc in enumerate(click_times[:clicks]):
            done = next((tl for tl, n in loads if n >= k + 1 and tl >= tc), None)
            if done is not None:
                lat.append((done - tc) / 1000.0)
        kept_paced = sum(
            1
            for line in (project / "journal" / "local.jsonl").read_text().splitlines()
            if json.loads(line)["type"] == "click"
        )
        paced(burst, burst_rate, clicks)
        page.wait_for_function(
            f"() => JSON.parse(document.querySelector('#pointly-ack textarea').value).points >= {clicks + burst}",
            timeout=60000,
        )
        held_burst = page.evaluate("() => window.pointlyHeldClicks") - held
        time.sleep(0.5)
        click_times = page.evaluate("() => window._clicks")
        loads = page.evaluate("() => window._loads")
        lat_burst = []
        for k in range(clicks, min(clicks + burst, len(click_times))):
            tc = click_times[k]
            done = next((tl for tl, n in loads if n >= k + 1 and tl >= tc), None)
            if done is not None:
                lat_burst.append((done - tc) / 1000.0)
        b.close()
    kept_total = sum(
        1
        for line in (project / "journal" / "local.jsonl").read_text().splitlines()
        if json.loads(line)["type"] == "click"
    )
    return {
        "latency": lat,
        "kept_paced": kept_paced,
        "kept_burst": kept_total - kept_paced,
        "held": held,
        "held_burst": held_burst,
        "latency_burst": lat_burst,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=200)
    ap.add_argument("--rate", type=float, default=5.0)
    ap.add_argument("--burst", type=int, default=50)
    ap.add_argument("--burst-rate", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=Path(__file__).with_name("results_annotator.md"))
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "images").mkdir()
        scene(tmp / "images" / "scene.png")
        base = server_baseline(tmp / "images", tmp / "baseline")
        port = free_port()
        log = open(tmp / "server.log", "wb")
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pointly.cli.main",
                "annotate",
                str(tmp / "images"),
                "--categories",
                "synthetic",
                "--project",
                str(tmp / "project"),
                "--port",
                str(port),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            for _ in range(400):
                try:
                    urllib.request.urlopen(url + "config", timeout=2)
                    break
                except Exception:
                    time.sleep(0.25)
            res = run_browser(url, tmp / "project", args.clicks, args.rate, args.burst, args.burst_rate)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            log.close()
    lat = res["latency"]
    p50, p95 = pct(lat, 50), pct(lat, 95)
    b50 = statistics.median(base)
    rows = [
        ("click → updated canvas, p50", f"{p50 * 1000:.0f} ms", f"{p50 / b50:.1f}×"),
        ("click → updated canvas, p95", f"{p95 * 1000:.0f} ms", f"{p95 / b50:.1f}×"),
        ("click → updated canvas, max", f"{max(lat) * 1000:.0f} ms", f"{max(lat) / b50:.1f}×"),
        (
            f"click → updated canvas in the {args.burst_rate:g} clicks/s burst, p50 / p95 (queued clicks wait)",
            f"{pct(res['latency_burst'], 50) * 1000:.0f} / {pct(res['latency_burst'], 95) * 1000:.0f} ms",
            "",
        ),
        (
            "baseline: server work per click (journal fsync + state + render + JPEG), p50",
            f"{b50 * 1000:.1f} ms",
            "1.0×",
        ),
        (
            f"clicks kept at {args.rate:g} clicks/s",
            f"{res['kept_paced']} / {args.clicks} ({100 * res['kept_paced'] / args.clicks:.0f} %)",
            "",
        ),
        (
            f"clicks kept in a burst at {args.burst_rate:g} clicks/s",
            f"{res['kept_burst']} / {args.burst} ({100 * res['kept_burst'] / args.burst:.0f} %)",
            "",
        ),
        (
            "clicks the page script held back (previous action unacknowledged or canvas reloading; paced / burst)",
            f"{res['held']} / {res['held_burst']}",
            "",
        ),
    ]
    load = os.getloadavg()[0]
    text = [
        "# Annotator benchmark: click → updated canvas in Chromium",
        "",
        f"Command: `python benchmarks/bench_annotator.py --clicks {args.clicks} --rate {args.rate:g}`  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, load average at the end {load:.1f} "
        "(other jobs were running); headless Debian Chromium, server on 127.0.0.1.  ",
        f"Image 640×480 (displayed at its natural size), {len(lat)} latencies measured in the page "
        "from the trusted mousedown of the click to the `load` of the first canvas image that contains the click.",
        "",
        "| measure | value | ratio to baseline |",
        "|---|---|---|",
    ]
    text += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    text += ["", "Goal: p95 ≤ 100 ms and 100 % of clicks kept at 5 clicks/s.", ""]
    args.out.write_text("\n".join(text))
    print("\n".join(text))


if __name__ == "__main__":
    main()
