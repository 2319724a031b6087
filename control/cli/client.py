"""The platform's HTTP API as Python calls, for the CLI and for scripts.

The configuration comes from the endpoints file that `python -m control up --endpoints-file` writes,
or from the environment (`MLCP_API_URL`, `MLCP_API_TOKEN`). With a token the client sends it as a
bearer token (the embedded platform); without one it signs every request with SigV4 for
`execute-api` (API Gateway's IAM auth in AWS). Everything the CLI shows comes through the API,
run timelines and training progress included: one credential, the API's.

Every failure leaves as `ClientError` with a message that says what to do and the exit code
the CLI uses for it.
"""

from __future__ import annotations

import enum
import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import requests.adapters
from urllib3.util.retry import Retry

from control.domain.timeline import Step
from control.domain.training import TrainingProgress

ENDPOINTS_ENV = "MLCP_ENDPOINTS"
API_URL_ENV = "MLCP_API_URL"
API_TOKEN_ENV = "MLCP_API_TOKEN"
PROMETHEUS_URL_ENV = "MLCP_PROMETHEUS_URL"
REGION_ENVS = ("MLCP_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
REQUEST_TIMEOUT_SECONDS = 30.0
THROTTLE_RETRIES = 4  # 429s waited out (Retry-After) before the CLI gives up
EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


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


STATUS_EXIT_CODES = {400: ExitCode.INVALID, 413: ExitCode.INVALID, 422: ExitCode.INVALID, 401: ExitCode.UNAUTHORIZED}
STATUS_EXIT_CODES |= {403: ExitCode.UNAUTHORIZED, 404: ExitCode.NOT_FOUND, 409: ExitCode.CONFLICT}
STATUS_EXIT_CODES |= {429: ExitCode.UNAVAILABLE}  # still throttled after THROTTLE_RETRIES waits


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


@dataclass(frozen=True)
class ClientConfig:
    """Where the platform is and how to authenticate; `source` says where these came from."""

    api_url: str
    api_token: str = ""
    region: str = ""
    aws_endpoint_url: str = ""  # the embedded AWS (read from the endpoints file; the CLI calls only the API)
    prometheus_url: str = ""  # likewise: for people and scripts; progress comes through the API
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_local(self) -> bool:
        host = urlsplit(self.api_url).hostname or ""
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False


def load_client_config(
    endpoints_file: Path | str | None = None, environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """The endpoints file (argument or MLCP_ENDPOINTS) wins; otherwise MLCP_API_URL and friends."""
    env = os.environ if environ is None else environ
    path = endpoints_file or env.get(ENDPOINTS_ENV)
    if path:
        return _from_endpoints_file(Path(path), env)
    api_url = env.get(API_URL_ENV, "").strip()
    if not api_url:
        raise ClientError(
            "no API configured",
            ExitCode.INVALID,
            hint=(
                "pass --endpoints endpoints.json (written by `python -m control up --endpoints-file endpoints.json`), "
                f"set {ENDPOINTS_ENV}, or set {API_URL_ENV} (and {API_TOKEN_ENV} for the embedded platform)"
            ),
            error="NotConfigured",
        )
    return ClientConfig(
        api_url=api_url.rstrip("/"),
        api_token=env.get(API_TOKEN_ENV, ""),
        region=_region(env, api_url),
        prometheus_url=env.get(PROMETHEUS_URL_ENV, ""),
        source=f"${API_URL_ENV}",
    )


def _from_endpoints_file(path: Path, env: Mapping[str, str]) -> ClientConfig:
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ClientError(
            f"endpoints file {path} does not exist",
            ExitCode.INVALID,
            hint=f"start the platform with `python -m control up --endpoints-file {path}`",
            error="NotConfigured",
        ) from error
    except (OSError, json.JSONDecodeError) as error:
        raise ClientError(
            f"cannot read endpoints file {path}: {error}", ExitCode.INVALID, error="NotConfigured"
        ) from error
    if not isinstance(raw, dict) or not isinstance(raw.get("api_url"), str):
        raise ClientError(
            f"endpoints file {path} has no api_url",
            ExitCode.INVALID,
            hint="use the file `python -m control up --endpoints-file` writes",
            error="NotConfigured",
        )
    return ClientConfig(
        api_url=raw["api_url"].rstrip("/"),
        api_token=str(raw.get("api_token") or ""),
        region=str(raw.get("region") or _region(env, raw["api_url"])),
        aws_endpoint_url=str(raw.get("aws_endpoint_url") or ""),
        prometheus_url=str(raw.get("prometheus_url") or env.get(PROMETHEUS_URL_ENV, "")),
        source=str(path),
        extra=raw,
    )


def _region(env: Mapping[str, str], api_url: str) -> str:
    for name in REGION_ENVS:
        if env.get(name):
            return env[name]
    match = EXECUTE_API_HOST.search(urlsplit(api_url).hostname or "")
    return match.group(1) if match else ""


class SigV4Auth(requests.auth.AuthBase):
    """Signs each request for API Gateway's IAM auth with botocore's credential chain."""

    def __init__(self, region: str) -> None:
        import botocore.session

        session = botocore.session.Session()
        self._credentials = session.get_credentials()
        self._region = region or session.get_config_variable("region") or ""
        if self._credentials is None:
            raise ClientError(
                "no AWS credentials found to sign requests to the API (IAM auth)",
                ExitCode.UNAUTHORIZED,
                hint=f"configure AWS credentials (aws configure, AWS_PROFILE, ...) or set {API_TOKEN_ENV}",
                error="NoCredentials",
            )
        if not self._region:
            raise ClientError(
                "no AWS region to sign requests with",
                ExitCode.INVALID,
                hint="set AWS_REGION (or MLCP_REGION)",
                error="NotConfigured",
            )

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        from botocore.auth import SigV4Auth as BotocoreSigV4
        from botocore.awsrequest import AWSRequest

        signed = AWSRequest(
            method=request.method,
            url=request.url,
            data=request.body or b"",
            headers={k: v for k, v in request.headers.items() if k.lower() == "content-type"},
        )
        BotocoreSigV4(self._credentials.get_frozen_credentials(), "execute-api", self._region).add_auth(signed)
        request.headers.update(dict(signed.headers.items()))
        return request


class BearerAuth(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request


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

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
    ) -> Any:
        url = self.settings.api_url + path
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        try:
            response = self._session.request(
                method,
                url,
                data=data,
                params=params,
                headers=headers,
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
