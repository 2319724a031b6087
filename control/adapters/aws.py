"""boto3 clients and the translation of AWS errors into the control plane's taxonomy."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ConnectionError, ReadTimeoutError

from control.errors import ControlError, DependencyError, NotFound, PreconditionFailed, TransientError

# botocore's standard mode: exponential backoff with full jitter on throttling and 5xx.
RETRY_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)

THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestThrottled",
        "SlowDown",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "TransactionInProgressException",
    }
)
NOT_FOUND_CODES = frozenset(
    {"ResourceNotFoundException", "NoSuchKey", "NoSuchBucket", "404", "NotFound", "ExecutionDoesNotExist"}
)


def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    return boto3.session.Session().client(service, region_name=region, endpoint_url=endpoint_url, config=RETRY_CONFIG)


def translate(error: Exception, what: str) -> ControlError:
    """A botocore error as a control-plane error; the caller raises it `from` the original."""
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "ConditionalCheckFailedException":
            return PreconditionFailed(f"{what}: the item changed meanwhile")
        if code in THROTTLING_CODES or status >= 500 or status == 429:
            return TransientError(f"{what}: AWS answered {code or status} ({message})", retry_after=1.0)
        if code in NOT_FOUND_CODES:
            return NotFound(f"{what}: {message}")
        return DependencyError(f"{what}: AWS refused with {code}: {message}")
    if isinstance(error, (ConnectionError, ReadTimeoutError)):
        return TransientError(f"{what}: AWS unreachable ({error})", retry_after=2.0)
    if isinstance(error, BotoCoreError):
        return DependencyError(f"{what}: {error}")
    raise TypeError(f"not an AWS error: {error!r}")


P = ParamSpec("P")
R = TypeVar("R")


def aws_call(what: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorate an adapter method so that AWS errors leave it as control-plane errors."""

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return function(*args, **kwargs)
            except (ClientError, BotoCoreError) as error:
                raise translate(error, what) from error

        return wrapper

    return decorate
