"""Shared helpers of the annotator tests: test images, a store, and a real server subprocess.

Imported explicitly by tests/test_annotator_*.py (not a conftest).
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
    "--disable-extensions",
]
USERS = {"alice": "wonderland", "bob": "builder"}


def make_scene(width: int = 640, height: int = 480, seed: int = 0) -> Image.Image:
    """A simple RGB scene: sky, grass, a disc and a rectangle (deterministic)."""
    rng = np.random.default_rng(seed)
    im = Image.new("RGB", (width, height), (120, 170, 230))
    d = ImageDraw.Draw(im)
    d.rectangle([0, height * 0.6, width, height], fill=(60, 150, 60))
    cx, cy, r = int(width * 0.3), int(height * 0.5), int(min(width, height) * 0.15)
    d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=tuple(int(v) for v in rng.integers(150, 255, 3)))
    d.rectangle([int(width * 0.6), int(height * 0.3), int(width * 0.85), int(height * 0.7)], fill=(200, 60, 60))
    return im


def make_images(folder: Path, *, broken: bool = False) -> Path:
    """A folder of test images: ``a_scene.png`` (640×480) and ``b_scene.png``; with ``broken``
    also a truncated PNG, a non-image, a grey and an RGBA image and an EXIF-rotated JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    make_scene().save(folder / "a_scene.png")
    make_scene(seed=1).save(folder / "b_scene.png")
    if broken:
        buf = io.BytesIO()
        make_scene(seed=2).save(buf, "PNG")
        (folder / "c_truncated.png").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
        (folder / "d_notanimage.jpg").write_bytes(b"this is not an image")
        make_scene(seed=3).convert("L").save(folder / "e_grey.png")
        rgba = make_scene(seed=4).convert("RGBA")
        rgba.putalpha(128)
        rgba.save(folder / "f_rgba.png")
        exif = Image.Exif()
        exif[0x0112] = 6  # rotate 90° clockwise for display
        make_scene(320, 240, seed=5).save(folder / "g_exif.jpg", exif=exif)
    return folder


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``pointly annotate`` in a subprocess on a free localhost port (or ``port``: a restart on
    the port of a killed server). ``gradio_tmp`` is the server's ``GRADIO_TEMP_DIR`` (Gradio's
    upload folder and cache), a fresh folder next to the project unless given."""

    def __init__(
        self,
        images: Path,
        project: Path,
        *,
        users_file: Path | None = None,
        extra: list[str] | None = None,
        log: Path | None = None,
        port: int | None = None,
        gradio_tmp: Path | None = None,
    ) -> None:
        self.images, self.project, self.users_file = images, project, users_file
        self.extra = extra or []
        self.port = port or free_port()
        self.gradio_tmp = gradio_tmp or project.parent / f"gradio-tmp-{self.port}"
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log or project.parent / f"server-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> Server:
        cmd = [
            sys.executable,
            "-m",
            "pointly.cli.main",
            "annotate",
            str(self.images),
            "--categories",
            "synthetic",
            "--project",
            str(self.project),
            "--port",
            str(self.port),
            *self.extra,
        ]
        if self.users_file:
            cmd += ["--users", str(self.users_file)]
        env = dict(
            os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1", GRADIO_TEMP_DIR=str(self.gradio_tmp)
        )
        self._fh = open(self.log, "ab")
        self.proc = subprocess.Popen(cmd, stdout=self._fh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(self.url + "config", timeout=2) as r:
                    if r.status == 200:
                        return self
            except urllib.error.HTTPError as e:
                if e.code in (401, 403):  # login required: the server is up
                    return self
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL: no cleanup, no final flush."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if getattr(self, "_fh", None):
            self._fh.close()


def write_users(path: Path) -> Path:
    path.write_text("".join(f"{u}:{p}\n" for u, p in USERS.items()))
    return path


def wait_clicks(project: Path, n: int, user: str | None = None, timeout: float = 20.0) -> list[dict]:
    """The click events of the journals once there are ``n`` (AssertionError after ``timeout``)."""
    deadline = time.monotonic() + timeout
    while True:
        clicks = journal_clicks(project, user)
        if len(clicks) >= n:
            return clicks
        assert time.monotonic() < deadline, f"waited for {n} clicks, journals hold {len(clicks)}: {clicks}"
        time.sleep(0.05)


def journal_clicks(project: Path, user: str | None = None) -> list[dict]:
    """Click events of the journals (one user, or all)."""
    import json

    out = []
    for p in sorted((project / "journal").glob("*.jsonl")):
        if user and p.stem != user:
            continue
        for line in p.read_text().splitlines():
            if line.strip():
                ev = json.loads(line)
                if ev["type"] == "click":
                    out.append(ev)
    return out
