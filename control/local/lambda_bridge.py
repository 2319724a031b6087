"""Runs moto's Lambda invocations in-process, as the Chalice app's handlers.

moto runs Lambda code only in Docker. Everything that invokes a function in the embedded AWS
(S3 notifications, SNS subscriptions, Step Functions tasks, `lambda invoke`) goes through
`LambdaFunction._invoke_lambda`; routing that one call to `app.handler_map[name]` makes them
run the real handlers. Errors are reported the way Lambda reports them (`errorType` is the
exception class name), so ASL `Retry`/`Catch` see the same names as in AWS.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from moto.awslambda.models import LambdaFunction

log = logging.getLogger(__name__)
Handler = Callable[[Any, Any], Any]


class _Context:
    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:000000000000:function:{function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "local"
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def invoke(handlers: Mapping[str, Handler], function_name: str, event: Any) -> tuple[str, bool, str]:
    """(payload JSON, errored, logs) for one invocation, as moto expects from a container."""
    handler = handlers.get(function_name.rsplit("-", 1)[-1])  # mlcp-<stage>-<name>
    if handler is None:
        body: dict[str, Any] = {
            "errorType": "ResourceNotFoundException",
            "errorMessage": f"no handler for {function_name}",
        }
        return json.dumps(body), True, ""
    if isinstance(event, str):
        event = json.loads(event) if event else {}
    try:
        result = handler(event, _Context(function_name))
    except Exception as error:  # reported to the caller, exactly like Lambda does
        log.info("%s raised %s: %s", function_name, type(error).__name__, error)
        body = {
            "errorType": type(error).__name__,
            "errorMessage": str(error),
            "stackTrace": traceback.format_exception(error)[-5:],
        }
        return json.dumps(body), True, ""
    return json.dumps(result, default=str), False, ""


def install(handlers: Mapping[str, Handler]) -> None:
    """Route every moto Lambda invocation in this process to `handlers` (by function name)."""

    def _invoke_lambda(self: LambdaFunction, event: str | None = None) -> tuple[str, bool, str]:
        return invoke(handlers, self.function_name, event)

    LambdaFunction._invoke_lambda = _invoke_lambda  # type: ignore[method-assign]
