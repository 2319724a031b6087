"""The model server's errors, and the one table that maps them to HTTP status.

Every layer raises these; only the HTTP layer turns them into a status code, through
`http_status`. An error the table does not know is a bug: 500, logged with its traceback.
"""

from __future__ import annotations

from sagemaker_inference.errors import UnsupportedFormatError


class InferenceServerError(Exception):
    """Base of the server's own errors. `reason` is a short machine-readable word."""

    reason = "internal_error"


# --- Request errors (the caller can fix them) ---------------------------------------------------


class UnsupportedContentType(InferenceServerError):
    reason = "unsupported_content_type"


class NotAcceptable(InferenceServerError):
    reason = "not_acceptable"


class BadRequestBody(InferenceServerError):
    reason = "bad_request"


class PayloadTooLarge(InferenceServerError):
    reason = "payload_too_large"


class RouteNotFound(InferenceServerError):
    reason = "not_found"


class MethodNotAllowed(InferenceServerError):
    reason = "method_not_allowed"


class TooManyRequests(InferenceServerError):
    """More invocations in flight than MLCP_MAX_CONCURRENT_INVOCATIONS: back off and retry."""

    reason = "too_many_requests"


# --- Server state ------------------------------------------------------------------------------


class ModelNotReady(InferenceServerError):
    reason = "model_not_ready"


class ShuttingDown(InferenceServerError):
    reason = "shutting_down"


class InjectedFault(InferenceServerError):
    """A failure asked for through the fault-injection admin endpoint (tests and demos)."""

    reason = "injected_fault"


class PredictionFailed(InferenceServerError):
    reason = "prediction_failed"


# --- Model repository (loading never answers a request: these keep /ping at 503) ---------------


class ArtifactError(InferenceServerError):
    """The artifact cannot be served. `retryable` says whether trying again may help."""

    reason = "artifact_error"
    retryable = False


class ArtifactUnavailable(ArtifactError):
    """Storage did not answer, or answered with a transient error."""

    reason = "artifact_unavailable"
    retryable = True


class ArtifactNotFound(ArtifactError):
    reason = "artifact_not_found"


class ArtifactIntegrityError(ArtifactError):
    """The bytes are not the ones the registry recorded (sha256 mismatch)."""

    reason = "artifact_integrity"


class ArtifactInvalid(ArtifactError):
    """The bytes are the recorded ones but do not make a usable model (corrupt, wrong shape)."""

    reason = "artifact_invalid"


class ConfigurationError(InferenceServerError):
    reason = "configuration_error"


HTTP_STATUS: dict[type[Exception], int] = {
    BadRequestBody: 400,
    RouteNotFound: 404,
    MethodNotAllowed: 405,
    NotAcceptable: 406,
    PayloadTooLarge: 413,
    UnsupportedContentType: 415,
    # What sagemaker_inference's decoder/encoder raise for a type they do not know.
    UnsupportedFormatError: 415,
    TooManyRequests: 429,
    InjectedFault: 500,
    PredictionFailed: 500,
    ModelNotReady: 503,
    ShuttingDown: 503,
}


def http_status(error: BaseException) -> int:
    """The status for an error: the nearest class in the table along the error's MRO, else 500."""
    for cls in type(error).__mro__:
        status = HTTP_STATUS.get(cls)
        if status is not None:
            return status
    return 500
