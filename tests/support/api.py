"""The platform's API for tests: the CLI's client (control.cli.api_client) on an embedded platform's
endpoints, and a thin wrapper over it for tests that assert on the HTTP answer itself."""

from __future__ import annotations

import json as json_module
from collections.abc import Mapping
from typing import Any

import requests

from control.cli.api_client import ApiClient
from control.cli.config import config_from_endpoints


def api_client(endpoints: Mapping[str, Any]) -> ApiClient:
    """The client every user of the API has (the CLI, the demo), with the platform's own token."""
    return ApiClient(config_from_endpoints(endpoints))


class RawApi:
    """Requests through the API client, answered as they come (status code, headers, body), unraised."""

    def __init__(self, client: ApiClient) -> None:
        self.client = client

    def get(self, path: str, *, params: Mapping[str, str] | None = None) -> requests.Response:
        return self.client.send("GET", path, params=params)

    def post(
        self,
        path: str,
        *,
        json: Any = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        if json is not None:
            data, headers = json_module.dumps(json).encode(), {"Content-Type": "application/json", **(headers or {})}
        return self.client.send("POST", path, data=data, headers=headers)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        data: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return self.client.send(method, path, params=params, data=data, headers=headers)
