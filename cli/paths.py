"""Click parameter types for outputs: checked while the options are read, before any work.

``OUTPUT_FILE`` and ``OUTPUT_FOLDER`` run :func:`pointly.pointgen.base.files.check_output` on the
value, so a command whose output cannot be written fails with one line before it reads a single
input (and before it prints anything).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from pointly.pointgen.base.files import check_output


class OutputPath(click.ParamType):
    """A path the command will write: a file, or a folder (created when missing)."""

    def __init__(self, *, folder: bool) -> None:
        self.folder = folder
        self.name = "folder" if folder else "file"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Path:
        if isinstance(value, Path):
            path = value
        else:
            path = Path(str(value))
        option = (
            None
            if param is None
            else (param.opts[0] if param.opts and param.opts[0].startswith("-") else param.human_readable_name)
        )
        return check_output(path, folder=self.folder, option=option)


OUTPUT_FILE = OutputPath(folder=False)
OUTPUT_FOLDER = OutputPath(folder=True)
