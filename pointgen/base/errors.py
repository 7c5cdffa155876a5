"""The one exception type for user mistakes.

Every user-facing mistake (a missing file, a malformed record, an option out of range) raises
:class:`PointlyError`. The CLI prints it as a single line and exits with code 2, so a user never
sees a traceback for their own mistake. The message says *where* (file, record), *what* is wrong
and *what to do*.
"""

from __future__ import annotations

from pathlib import Path


class PointlyError(Exception):
    """A user mistake, reported as one line: ``file: record: problem (fix)``."""

    def __init__(
        self, problem: str, *, file: str | Path | None = None, record: str | None = None, fix: str | None = None
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.record = record
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        """The message as printed by the CLI: ``FILE: RECORD: PROBLEM (FIX)``."""
        parts = [p for p in (self.file, self.record, self.problem) if p]
        line = ": ".join(parts)
        if self.fix:
            line += f" ({self.fix})"
        return line.replace("\n", " ")
