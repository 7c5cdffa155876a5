"""The HTTP guard of the annotator: no uploads, small request bodies, canvas renders kept private.

:class:`Guard` is an ASGI middleware on the FastAPI app that Gradio builds (``launch`` passes it
in ``app_kwargs``), so it sees every request before Gradio's routes do:

* **Uploads are refused** (403). The annotator takes no file from the browser, but Gradio's
  ``/gradio_api/upload`` route stores any file it is sent, of any size, for anybody who may use
  the app. The upload routes and every multipart request are refused before a byte is stored,
  except the login form (Gradio posts it as multipart; its body is bounded like any other).
* **Request bodies are bounded** (413 above :data:`MAX_BODY_BYTES`). The app's requests are small
  JSON documents; a body is read into memory up to the limit (whether or not it declares its
  length) before the app sees it.
* **Renders are served only to their owner.** The file routes (``/gradio_api/file=...``) serve
  nothing but canvas renders, each only to the user whose folder
  (``<render dir>/<user>/<random name>.jpg``) holds it; everything else is "not found" (404).
  The user is the one Gradio's login cookie names (``default_user`` without ``--users``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import PlainTextResponse

#: the largest request body accepted (the app's own requests are well under 10 kB)
MAX_BODY_BYTES = 1 << 20
API_PREFIX = "/gradio_api"
#: Gradio routes that store files sent by the browser
UPLOAD_ROUTES = frozenset(f"{API_PREFIX}/{r}" for r in ("upload", "process_recording"))
FILE_ROUTE = f"{API_PREFIX}/file"  # /file=<path> and the older /file/<path>
LOGIN_ROUTE = "/login"  # Gradio's login form, posted as multipart/form-data

Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]


def request_user(scope: dict, default_user: str) -> str | None:
    """The logged-in user of a request (Gradio's login cookie); ``default_user`` when the app
    has no login, None when it has one and the request is not logged in."""
    app = scope.get("app")
    if getattr(app, "auth", None) is None and getattr(app, "auth_dependency", None) is None:
        return default_user
    cookies = Request(scope).cookies
    cookie_id = getattr(app, "cookie_id", "")
    token = cookies.get(f"access-token-{cookie_id}") or cookies.get(f"access-token-unsecure-{cookie_id}")
    return getattr(app, "tokens", {}).get(token)


class Guard:
    """ASGI middleware: refuses uploads and large bodies, serves renders only to their owner."""

    def __init__(self, app: Any, *, renders: Path, default_user: str, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.renders = Path(os.path.realpath(renders))
        self.default_user = default_user
        self.max_body = max_body

    async def __call__(self, scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = Headers(scope=scope)
        multipart = headers.get("content-type", "").lower().startswith("multipart/")
        if path.rstrip("/") in UPLOAD_ROUTES or (multipart and path.rstrip("/") != LOGIN_ROUTE):
            await _answer(scope, receive, send, 403, "uploads are disabled: the annotator takes no files")
            return
        if path.startswith(FILE_ROUTE) and not self.own_render(scope, path):
            await _answer(scope, receive, send, 404, "not found")
            return
        if scope["method"] not in ("GET", "HEAD", "OPTIONS"):
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self.max_body:
                await _answer(scope, receive, send, 413, "request body too large")
                return
            messages = await _read_body(receive, self.max_body)
            if messages is None:
                await _answer(scope, receive, send, 413, "request body too large")
                return
            receive = _replay(messages, receive)
        await self.app(scope, receive, send)

    def own_render(self, scope: dict, path: str) -> bool:
        """True when ``path`` (a file route) names a render in the requesting user's folder."""
        rest = path[len(FILE_ROUTE) :]
        user = request_user(scope, self.default_user)
        if rest[:1] not in ("=", "/") or user is None:
            return False
        target = Path(os.path.realpath(rest[1:]))  # resolved as Gradio does: relative to the cwd
        return target.parent == self.renders / user and target.suffix == ".jpg"


async def _read_body(receive: Receive, limit: int) -> list[dict] | None:
    """The request's body messages, or None as soon as the body exceeds ``limit`` bytes."""
    messages, size = [], 0
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":  # the client went away
            return messages
        size += len(message.get("body", b""))
        if size > limit:
            return None
        if not message.get("more_body", False):
            return messages


def _replay(messages: list[dict], receive: Receive) -> Receive:
    """A ``receive`` that hands out the already read ``messages`` first, then the live ones."""
    pending = list(messages)

    async def replayed() -> dict:
        return pending.pop(0) if pending else await receive()

    return replayed


async def _answer(scope: dict, receive: Receive, send: Send, status: int, text: str) -> None:
    await PlainTextResponse(text, status_code=status)(scope, receive, send)
