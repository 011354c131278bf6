"""The one exception type for mistakes a user can cause (the CLI prints it as one line, exit code 2)."""

from __future__ import annotations


class LTBenchError(Exception):
    """A user-caused error: ``what`` went wrong and ``fix`` says how to put it right."""

    def __init__(self, what: str, fix: str = ""):
        self.what = what
        self.fix = fix
        super().__init__(f"{what} — {fix}" if fix else what)
