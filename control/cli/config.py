"""Where the platform's API is and how to authenticate: the endpoints file that
`python -m control up --endpoints-file` writes, or the environment (`MLCP_API_URL`, `MLCP_API_TOKEN`)."""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from control.cli.errors import ClientError, ExitCode

ENDPOINTS_ENV = "MLCP_ENDPOINTS"
API_URL_ENV = "MLCP_API_URL"
API_TOKEN_ENV = "MLCP_API_TOKEN"
PROMETHEUS_URL_ENV = "MLCP_PROMETHEUS_URL"
REGION_ENVS = ("MLCP_REGION", "AWS_REGION", "AWS_DEFAULT_REGION")
EXECUTE_API_HOST = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")


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
    return config_from_endpoints(raw, source=str(path), environ=env)


def config_from_endpoints(
    endpoints: Mapping[str, Any], *, source: str = "", environ: Mapping[str, str] | None = None
) -> ClientConfig:
    """The configuration in an endpoints mapping: the file's JSON, or a running embedded platform's
    `endpoints()` (the demo and the tests reach its API so)."""
    env = os.environ if environ is None else environ
    return ClientConfig(
        api_url=str(endpoints["api_url"]).rstrip("/"),
        api_token=str(endpoints.get("api_token") or ""),
        region=str(endpoints.get("region") or _region(env, str(endpoints["api_url"]))),
        aws_endpoint_url=str(endpoints.get("aws_endpoint_url") or ""),
        prometheus_url=str(endpoints.get("prometheus_url") or env.get(PROMETHEUS_URL_ENV, "")),
        source=source,
        extra=dict(endpoints),
    )


def _region(env: Mapping[str, str], api_url: str) -> str:
    for name in REGION_ENVS:
        if env.get(name):
            return env[name]
    match = EXECUTE_API_HOST.search(urlsplit(api_url).hostname or "")
    return match.group(1) if match else ""
