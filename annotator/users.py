"""Annotator accounts: the ``--users`` file and the login check used by Gradio's auth.

The file holds one ``name:password`` per line (``#`` starts a comment) or a JSON object
``{"name": "password"}``. A password may be stored as ``sha256:<hex digest>`` instead of clear
text. Names become journal file names, so they are restricted to a safe alphabet.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

from pointly.annotator.journal import check_user_name
from pointly.pointgen.base.errors import PointlyError


def load_users(path: str | Path) -> dict[str, str]:
    """Read a users file: one ``name:password`` per line (``#`` comments), or a JSON object.

    A password may be given as ``sha256:<hex>`` of the password instead of the clear text.
    """
    path = Path(path)
    if not path.is_file():
        raise PointlyError("users file not found", file=path, fix="write one name:password per line")
    text = path.read_text(encoding="utf-8")
    users: dict[str, str] = {}
    if text.lstrip().startswith("{"):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PointlyError(
                f"not valid JSON: {exc.msg}", file=path, fix='use {"name": "password", ...} or name:password lines'
            ) from None
        if not isinstance(obj, dict):
            raise PointlyError(
                "not a JSON object of name -> password",
                file=path,
                fix='use {"name": "password", ...} or name:password lines',
            )
        items = list(obj.items())
    else:
        items = []
        for i, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if ":" not in line:
                raise PointlyError(
                    "expected name:password", file=path, record=f"line {i}", fix="write one name:password per line"
                )
            name, pw = line.split(":", 1)
            items.append((name.strip(), pw))
    for name, pw in items:
        if not isinstance(pw, str) or not pw:
            raise PointlyError(f"user {name!r} has no password", file=path, fix="give every user a password")
        try:
            check_user_name(name)
        except PointlyError as exc:
            raise PointlyError(exc.problem, file=path, record=f"user {name!r}", fix=exc.fix) from None
        users[name] = pw
    if not users:
        raise PointlyError("no users", file=path, fix="write one name:password per line")
    return users


def make_auth(users: dict[str, str]):
    """A Gradio auth callable checking ``users`` in constant time."""

    def auth(name: str, password: str) -> bool:
        stored = users.get(name)
        if stored is None:
            return False
        if stored.startswith("sha256:"):
            given = "sha256:" + hashlib.sha256(password.encode()).hexdigest()
            return hmac.compare_digest(given, stored)
        return hmac.compare_digest(password.encode(), stored.encode())

    return auth
