"""The HTTP guard of the annotator, called directly as ASGI middleware (no server, no browser).

The browser tests show the guard on the real app; these pin down its rules: which requests are
uploads, the body limit with and without a declared length, and who may fetch which file.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

from pointly.annotator.guard import Guard

LIMIT = 1000


def call(
    guard: Guard,
    method: str,
    path: str,
    *,
    headers: dict[str, str] | None = None,
    chunks: list[bytes] = (),
    app: object = None,
) -> tuple[int, bytes | None]:
    """Send one request through ``guard``; returns the status and the body the app behind it
    read (None when the guard answered itself)."""
    seen: list[bytes] = []

    async def inner(scope, receive, send):
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        seen.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    guard.app = inner
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
        "app": app or SimpleNamespace(auth=None, auth_dependency=None),
    }
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1} for i, c in enumerate(chunks)
    ] or [{"type": "http.request", "body": b"", "more_body": False}]
    sent: list[dict] = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], (seen[0] if seen else None)


def test_uploads_and_multipart_are_refused_except_the_login_form(tmp_path):
    g = Guard(None, renders=tmp_path, default_user="local", max_body=LIMIT)
    form = {"content-type": "multipart/form-data; boundary=x"}
    for path in ("/gradio_api/upload", "/gradio_api/upload/", "/gradio_api/process_recording"):
        assert call(g, "POST", path, chunks=[b"data"]) == (403, None)
    assert call(g, "POST", "/gradio_api/component_server", headers=form, chunks=[b"--x--"]) == (403, None)
    assert call(g, "POST", "/login", headers=form, chunks=[b"--x--"]) == (200, b"--x--")
    big = {**form, "content-length": str(LIMIT + 1)}
    assert call(g, "POST", "/login", headers=big, chunks=[b"x" * (LIMIT + 1)]) == (413, None)


def test_bodies_are_bounded_with_and_without_a_declared_length(tmp_path):
    g = Guard(None, renders=tmp_path, default_user="local", max_body=LIMIT)
    json_ = {"content-type": "application/json"}
    ok = [b"a" * 400, b"b" * 400, b"c" * 200]  # exactly the limit, in three pieces
    assert call(g, "POST", "/gradio_api/run/predict", headers=json_, chunks=ok) == (200, b"".join(ok))
    too_big = ok + [b"d"]  # chunked: no length declared, counted while read
    assert call(g, "POST", "/gradio_api/run/predict", headers=json_, chunks=too_big) == (413, None)
    declared = {**json_, "content-length": str(10**9)}  # refused before anything is read
    assert call(g, "POST", "/gradio_api/run/predict", headers=declared, chunks=[b"{}"]) == (413, None)
    assert call(g, "GET", "/config") == (200, b"")


def test_file_routes_serve_only_the_callers_own_renders(tmp_path):
    renders = tmp_path / "renders"
    for user in ("alice", "bob"):
        (renders / user).mkdir(parents=True)
        (renders / user / "r.jpg").write_bytes(b"\xff\xd8")
    g = Guard(None, renders=renders, default_user="local", max_body=LIMIT)
    app = SimpleNamespace(auth=object(), auth_dependency=None, cookie_id="cid", tokens={"ta": "alice", "tb": "bob"})

    def get(path: str, token: str | None) -> int:
        headers = {"cookie": f"access-token-cid={token}"} if token else {}
        return call(g, "GET", path, headers=headers, app=app)[0]

    alice_render = f"/gradio_api/file={renders}/alice/r.jpg"
    assert get(alice_render, "ta") == 200
    assert get(f"/gradio_api/file/{renders}/alice/r.jpg", "ta") == 200  # the older route spelling
    assert get(alice_render, "tb") == 404  # bob
    assert get(alice_render, None) == 404  # not logged in
    assert get(alice_render, "forged") == 404
    assert get(f"/gradio_api/file={renders}/alice/../bob/r.jpg", "ta") == 404
    assert get(f"/gradio_api/file={renders}/alice/notes.txt", "ta") == 404
    assert get("/gradio_api/file=/etc/passwd", "ta") == 404
    assert get(f"/gradio_api/file={Path('/tmp')}/gradio/x/upload.png", "ta") == 404
    # without login every request is the default user's
    (renders / "local").mkdir()
    assert call(g, "GET", f"/gradio_api/file={renders}/local/r.jpg")[0] == 200
    assert call(g, "GET", alice_render)[0] == 404
