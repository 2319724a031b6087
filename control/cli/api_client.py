"""The platform's HTTP API as Python calls: one client for the CLI, the demo, the DR drill and the tests.

With a token it sends it as a bearer token (the embedded platform); without one it signs every
request with SigV4 (API Gateway's IAM auth). Everything the CLI shows comes through the API, run
timelines and training progress included: one credential, the API's. Every failure leaves as
`ClientError` with a message that says what to do and the exit code the CLI uses for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
import requests.adapters
from urllib3.util.retry import Retry

from control.cli.config import API_TOKEN_ENV, API_URL_ENV, ClientConfig
from control.cli.errors import ClientError, ExitCode
from control.cli.signing import BearerAuth, SigV4Auth
from control.domain.timeline import Step
from control.domain.training import TrainingProgress

REQUEST_TIMEOUT_SECONDS = 30.0
THROTTLE_RETRIES = 4  # 429s waited out (Retry-After) before the CLI gives up
STATUS_EXIT_CODES = {400: ExitCode.INVALID, 413: ExitCode.INVALID, 422: ExitCode.INVALID, 401: ExitCode.UNAUTHORIZED}
STATUS_EXIT_CODES |= {403: ExitCode.UNAUTHORIZED, 404: ExitCode.NOT_FOUND, 409: ExitCode.CONFLICT}
STATUS_EXIT_CODES |= {429: ExitCode.UNAVAILABLE}  # still throttled after THROTTLE_RETRIES waits


def _segment(value: str | int) -> str:
    return quote(str(value), safe="")


def throttle_retrying_session() -> requests.Session:
    """A session that waits and retries when the API throttles (429 + Retry-After), for every
    method: a throttled request never reached a handler, so trying it again is safe."""
    retry = Retry(
        total=THROTTLE_RETRIES,
        connect=0,
        read=0,
        status_forcelist=(429,),
        allowed_methods=None,
        backoff_factor=0.5,
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount("https://", requests.adapters.HTTPAdapter(max_retries=retry))
    session.mount("http://", requests.adapters.HTTPAdapter(max_retries=retry))
    return session


class ApiClient:
    """One method per API route; each returns the API's JSON."""

    def __init__(self, settings: ClientConfig, *, session: requests.Session | None = None) -> None:
        self.settings = settings
        self._session = session or throttle_retrying_session()
        self._auth: requests.auth.AuthBase | None = None

    @property
    def auth(self) -> requests.auth.AuthBase:
        if self._auth is None:  # built on first call: SigV4 needs credentials, --help does not
            token = self.settings.api_token
            self._auth = BearerAuth(token) if token else SigV4Auth(self.settings.region)
        return self._auth

    # -- training runs ------------------------------------------------------------------------

    def start_training_run(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/training-runs", body=body)

    def list_training_runs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/training-runs")["runs"])

    def get_training_run(self, run_id: str) -> dict[str, Any]:
        return self._call("GET", f"/training-runs/{_segment(run_id)}")

    def run_timeline(self, run_id: str) -> list[Step]:
        """The run's pipeline execution as steps, oldest first."""
        steps = self._call("GET", f"/training-runs/{_segment(run_id)}/timeline")["steps"]
        return [Step(datetime.fromisoformat(s["at"]), s["state"], s["event"], s["detail"]) for s in steps]

    def training_progress(self, run_id: str) -> TrainingProgress | None:
        """The running job's own metrics; None when the platform cannot read them."""
        answer = self._call("GET", f"/training-runs/{_segment(run_id)}/progress")
        return TrainingProgress.from_dict(answer["progress"]) if answer.get("available") else None

    def apply_retention(self, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", "/retention", body=body)

    # -- registry -----------------------------------------------------------------------------

    def list_models(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/models")["models"])

    def list_versions(self, model: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/models/{_segment(model)}/versions")["versions"])

    def get_version(self, model: str, version: int) -> dict[str, Any]:
        return self._call("GET", f"/models/{_segment(model)}/versions/{_segment(version)}")

    def decide(self, model: str, version: int, decision: str, reason: str) -> dict[str, Any]:
        path = f"/models/{_segment(model)}/versions/{_segment(version)}/{_segment(decision)}"
        return self._call("POST", path, body={"reason": reason} if reason else {})

    def history(self, model: str, at: str | None = None) -> dict[str, Any]:
        return self._call("GET", f"/models/{_segment(model)}/history", params={"at": at} if at else None)

    # -- deployments --------------------------------------------------------------------------

    def list_deployments(self) -> list[Any]:
        return list(self._call("GET", "/deployments")["deployments"])

    def get_deployment(self, name: str) -> dict[str, Any]:
        return self._call("GET", f"/deployments/{_segment(name)}")

    def start_rollout(self, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._call("POST", f"/deployments/{_segment(name)}/rollouts", body=body)

    def promote(self, name: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/deployments/{_segment(name)}/promote", body={"reason": reason})

    def rollback(self, name: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/deployments/{_segment(name)}/rollback", body={"reason": reason})

    def abort(self, name: str, reason: str) -> dict[str, Any]:
        return self._call("POST", f"/deployments/{_segment(name)}/abort", body={"reason": reason})

    def set_strategy(self, name: str, strategy: Any) -> dict[str, Any]:
        return self._call("PUT", f"/deployments/{_segment(name)}/strategy", body={"strategy": strategy})

    # -- plumbing -----------------------------------------------------------------------------

    def send(
        self,
        method: str,
        path: str,
        *,
        data: bytes | str | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """One request as it is sent, authenticated, and its answer whatever its status (the calls
        above, and tests that assert on status codes); ClientError only when the API cannot be reached."""
        try:
            return self._session.request(
                method,
                self.settings.api_url + path,
                data=data,
                params=params,
                headers=dict(headers or {}),
                auth=self.auth,
                timeout=REQUEST_TIMEOUT_SECONDS,
            )
        except requests.ConnectionError as error:
            raise self._unreachable(error) from error
        except requests.Timeout as error:
            raise ClientError(
                f"the API at {self.settings.api_url} did not answer within {REQUEST_TIMEOUT_SECONDS:.0f} s",
                ExitCode.UNAVAILABLE,
                hint="try again; if it persists, check the platform's logs",
                error="Timeout",
            ) from error

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        response = self.send(method, path, data=data, params=params, headers=headers)
        if response.status_code >= 400:
            raise api_error(response)
        try:
            return response.json()
        except ValueError as error:
            raise ClientError(
                f"the API answered {method} {path} with something that is not JSON (HTTP {response.status_code})",
                ExitCode.UNAVAILABLE,
                hint=f"is {self.settings.api_url} the platform's API?",
                error="BadResponse",
            ) from error

    def _unreachable(self, error: Exception) -> ClientError:
        url = self.settings.api_url
        if self.settings.is_local:
            hint = "is `python -m control up` running?"
            if self.settings.source and not self.settings.source.startswith("$"):
                hint += f" (or is {self.settings.source} from an earlier one?)"
        else:
            hint = f"check the API URL ({self.settings.source or API_URL_ENV}) and your network"
        return ClientError(f"cannot reach the API at {url}", ExitCode.UNAVAILABLE, hint=hint, error="Unreachable")


HINTS = {
    ExitCode.UNAUTHORIZED: "the token or credentials are missing or wrong: use the endpoints file of the running "
    f"platform, or check {API_TOKEN_ENV} / your AWS credentials",
    ExitCode.UNAVAILABLE: "the platform or one of its dependencies failed; try again, then check its logs",
}


def api_error(response: requests.Response) -> ClientError:
    """The API's JSON error ({error, message, field}) with the exit code for its HTTP status."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        body = {}
    message = str(body.get("message") or body.get("Message") or "")
    if not message:
        snippet = " ".join(response.text.split())[:200]
        message = f"the API answered HTTP {status} {response.reason or ''}".rstrip() + (
            f": {snippet}" if snippet else ""
        )
    code = STATUS_EXIT_CODES.get(status, ExitCode.UNAVAILABLE if status >= 500 else ExitCode.FAILED)
    field_name = body.get("field")
    return ClientError(
        message,
        code,
        hint=HINTS.get(code, ""),
        error=str(body.get("error") or f"HTTP{status}"),
        field=str(field_name) if field_name else None,
        status=status,
    )
