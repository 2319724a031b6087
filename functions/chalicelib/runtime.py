"""What every handler shares: the platform (built once per process), logging, error translation."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics, single_metric
from aws_lambda_powertools.metrics import MetricUnit
from chalice import Response

from control.composition import build_platform
from control.errors import ControlError, FatalTaskError, InvalidInput, PayloadTooLarge, Unauthorized, as_task_error
from control.ports import Platform
from control.settings import Settings

# The service is the environment's name prefix (mlcp-<stage>, POWERTOOLS_SERVICE_NAME set by Terraform),
# so the dashboards select one stage of the CloudWatch metrics by their `service` dimension.
SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "mlcp-local")
METRICS_NAMESPACE = "MLPlatform"
logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)
# Typed as chalice.Response takes headers (dict is invariant in its value type).
JSON_HEADERS: dict[str, str | list[str]] = {"Content-Type": "application/json"}
# The API's JSON bodies are a few hundred bytes; API Gateway would accept 10 MB. The alert webhook
# reads its raw body with its own limit (control.domain.alert_payload.MAX_PAYLOAD_BYTES).
MAX_REQUEST_BYTES = 64 * 1024


_platform: Platform | None = None


def current_platform() -> Platform:
    """The platform given by `use_platform`, else built from the environment on first use (in Lambda)."""
    global _platform
    if _platform is None:
        _platform = build_platform()
    return _platform


def use_platform(platform: Platform | None) -> None:
    """Hand the handlers their platform (the embedded runtime does, with its local clusters); None:
    build it again from the environment at the next call."""
    global _platform
    _platform = platform


def count(metric: str, **dimensions: str) -> None:
    """One CloudWatch count (EMF on stdout, flushed at once) with its own dimensions beside the service:
    dashboards/cloudwatch_exporter.yml asks CloudWatch for exactly these (name, dimensions)."""
    with single_metric(name=metric, unit=MetricUnit.Count, value=1, namespace=METRICS_NAMESPACE) as single:
        single.add_dimension(name="service", value=SERVICE)
        for name, value in dimensions.items():
            single.add_dimension(name=name, value=value)


def count_rollbacks(handled: dict[str, Any]) -> None:
    """A `Rollback` count for each rollback an alert delivery recorded (duplicates record none)."""
    for acted in handled["rollbacks"]:
        if "ignored" not in acted:
            count("Rollback", deployment=acted["deployment"])


def error_response(error: ControlError) -> Response:
    return Response(body=json.dumps(error.to_dict()), status_code=error.http_status, headers=JSON_HEADERS)


def json_route(handler: Callable[..., Any]) -> Callable[..., Response]:
    """Run a route handler; control-plane errors become their HTTP status with a JSON body."""

    @functools.wraps(handler)
    def wrapper(*args: Any, **kwargs: Any) -> Response:
        try:
            status, body = handler(*args, **kwargs)
        except ControlError as error:
            if error.http_status >= 500:
                logger.warning("dependency error", extra={"error": error.code, "reason": error.message})
            return error_response(error)
        except Exception:
            logger.exception("unhandled error in route")
            body = {"error": "InternalError", "message": "the control plane failed; see its logs"}
            return Response(body=json.dumps(body), status_code=500, headers=JSON_HEADERS)
        return Response(body=json.dumps(body, default=str), status_code=status, headers=JSON_HEADERS)

    return wrapper


def authorize(request: Any, settings: Settings) -> str:
    """Who is calling (the actor recorded in the history), or Unauthorized.

    `iam` (AWS): API Gateway verified the SigV4 signature and passes the caller's identity in the
    request context; a request without one did not come through an AWS_IAM method (a misconfigured
    gateway) and is refused. `token` (the embedded platform): the bearer token, which must be set."""
    if settings.api_auth == "iam":
        identity = ((request.context or {}).get("identity") or {}) if request is not None else {}
        caller = identity.get("userArn") or ""
        if not caller:
            raise Unauthorized("this API takes requests signed with SigV4 (IAM auth); no caller identity came with it")
        return str(caller)
    check_token(request.headers, settings.api_token, required=True)
    return "api"


def check_token(headers: Any, expected: str, *, required: bool = False) -> None:
    """The bearer token in the Authorization header, compared in constant time.

    `required`: refuse every call when no token is configured (else an unset token lets all in)."""
    if not expected:
        if required:
            raise Unauthorized("this route needs a bearer token and none is configured")
        return
    import hmac

    presented = (headers or {}).get("authorization", "")
    if not hmac.compare_digest(presented.encode(), f"Bearer {expected}".encode()):
        raise Unauthorized("missing or wrong bearer token in the Authorization header")


def request_json(request: Any) -> Any:
    """The JSON body, or None when there is none; InvalidInput when it is not JSON."""
    if not request.raw_body:
        return None
    if len(request.raw_body) > MAX_REQUEST_BYTES:
        raise PayloadTooLarge(
            f"the request body is {len(request.raw_body)} bytes; at most {MAX_REQUEST_BYTES}", field="body"
        )
    try:
        return json.loads(request.raw_body)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InvalidInput("the request body is not valid JSON", field="body") from error


def task(handler: Callable[[Platform, dict[str, Any], str], Any]) -> Callable[[dict[str, Any], Any], Any]:
    """A Step Functions task: state in, result out; errors leave as the ASL vocabulary."""

    @functools.wraps(handler)
    def wrapper(event: dict[str, Any], context: Any) -> Any:
        state = event.get("state", event)
        execution_arn = str(event.get("execution_arn", ""))
        logger.set_correlation_id(state.get("run_id") or execution_arn.rsplit(":", 1)[-1])
        try:
            return handler(current_platform(), state, execution_arn)
        except ControlError as error:
            logger.warning("task failed", extra={"error": error.code, "reason": error.message})
            raise as_task_error(error) from error
        except Exception as error:
            logger.exception("task failed unexpectedly")
            raise FatalTaskError(f"{type(error).__name__}: {error}") from error

    return wrapper
