"""How the CLI fails: an exit code a script can branch on, and an error with a message that says what
to do (and the API's error name, field and HTTP status when the API refused)."""

from __future__ import annotations

import enum
from typing import Any


class ExitCode(enum.IntEnum):
    """What a script can branch on. Click's own usage errors are 2 as well."""

    OK = 0
    FAILED = 1  # what was followed ended badly: a run failed, a rollout rolled back
    INVALID = 2  # usage or invalid input: fix the command
    NOT_FOUND = 3
    CONFLICT = 4  # the request contradicts the current state
    UNAVAILABLE = 5  # the API or a dependency cannot be reached or failed; retry later
    UNAUTHORIZED = 6  # no or wrong credentials
    TIMED_OUT = 7  # still going when --timeout ran out


class ClientError(Exception):
    """Something the user must act on: a message, an optional hint, the exit code."""

    def __init__(
        self,
        message: str,
        exit_code: ExitCode,
        *,
        hint: str = "",
        error: str = "",
        field: str | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.hint = hint
        self.error = error or exit_code.name.lower()
        self.field = field
        self.status = status

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"error": self.error, "message": self.message, "exit_code": int(self.exit_code)}
        if self.field:
            body["field"] = self.field
        if self.status is not None:
            body["status"] = self.status
        if self.hint:
            body["hint"] = self.hint
        return body
