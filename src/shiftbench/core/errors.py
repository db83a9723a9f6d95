"""Errors a user can fix, and warnings. The CLI prints each as one line; an error exits with status 2."""

from __future__ import annotations

import sys

MAX_MESSAGE = 1000  # characters: a message echoes names and values from files a stranger wrote


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    """text with line breaks shown as \\n and cut to `limit` characters."""
    text = text.replace("\r", "\\r").replace("\n", "\\n")
    return text if len(text) <= limit else text[: limit - 25] + f"... ({len(text)} characters)"


class UserError(Exception):
    """Bad input: a file, a field, a name. The message says what is allowed."""

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        parts = [p for p in (source, field) if p]
        prefix = ": ".join(parts)
        super().__init__(one_line(f"{prefix}: {message}" if prefix else message))


class MissingData(UserError):
    """Files a data manifest lists are not on disk; `manifest` names it, for `shiftbench data fetch`."""

    def __init__(self, message: str, *, manifest: str, source: str | None = None, field: str | None = None):
        self.manifest = manifest
        super().__init__(message, source=source, field=field)


def warn(message: str) -> None:
    """One line on stderr: something was repaired or skipped and the run goes on."""
    print(f"shiftbench: warning: {one_line(message)}", file=sys.stderr, flush=True)
