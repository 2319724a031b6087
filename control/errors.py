"""One error taxonomy for the whole control plane.

Every error says whether retrying can help. Each boundary translates it once:
HTTP status in the API, retryable/fatal in Step Functions, redelivery for queues.
"""

from __future__ import annotations


class ControlError(Exception):
    """Base of every error the control plane raises on purpose."""

    http_status = 500
    retryable = False

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field

    @property
    def code(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, str]:
        body = {"error": self.code, "message": self.message}
        if self.field:
            body["field"] = self.field
        return body


class InvalidInput(ControlError):
    """The caller sent something malformed; retrying the same input cannot help."""

    http_status = 400


class PayloadTooLarge(InvalidInput):
    http_status = 413


class Unauthorized(ControlError):
    http_status = 401


class NotFound(ControlError):
    http_status = 404


class Conflict(ControlError):
    """The request contradicts the current state (e.g. a rollout already in progress)."""

    http_status = 409


class AlreadyServing(Conflict):
    """The deployment already serves the version asked for: nothing to roll out (a pipeline skips it)."""

    @property
    def code(self) -> str:
        return "Conflict"  # the API's answer is the Conflict it always was


class PreconditionFailed(Conflict):
    """A conditional write lost a race; the caller may re-read and try again."""

    retryable = True


class TooManyRequests(ControlError):
    """The caller went over the API's request rate; retry after the Retry-After seconds."""

    http_status = 429
    retryable = True


class TransientError(ControlError):
    """A dependency is throttling, unavailable or slow; retry after `retry_after` seconds."""

    http_status = 503
    retryable = True

    def __init__(self, message: str, *, retry_after: float = 1.0, field: str | None = None) -> None:
        super().__init__(message, field=field)
        self.retry_after = retry_after


class DependencyError(ControlError):
    """A dependency refused the request for good (missing CRD, access denied, bad config)."""

    http_status = 502


class TrainingFailed(ControlError):
    """The training job ended without a usable model."""

    http_status = 422


class StagingFailed(ControlError):
    """The dataset could not be staged on the checkpoint file system (changed source, file system
    full or unwritable, a copy that does not verify); nothing half staged is ever reused."""

    http_status = 422


# The fixed vocabulary that Step Functions sees (ASL ErrorEquals names these classes).
class RetryableTaskError(Exception):
    """Raised by a task Lambda when the state machine should retry the state."""


class FatalTaskError(Exception):
    """Raised by a task Lambda when retrying cannot help; the state machine records and fails."""


TASK_ERROR_NAMES = (RetryableTaskError.__name__, FatalTaskError.__name__)


def as_task_error(error: ControlError) -> Exception:
    """Translate a control-plane error into the Step Functions vocabulary, keeping the cause."""
    message = f"{error.code}: {error.message}"
    task_error: Exception = RetryableTaskError(message) if error.retryable else FatalTaskError(message)
    task_error.__cause__ = error
    return task_error
