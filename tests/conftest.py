"""Shared fixtures: the embedded platform (moto's server, the functions in-process, the API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

REPO = Path(__file__).resolve().parents[1]

# Every skip listed with its reason; under CI a skip not in tests/allowed_skips.txt fails the run.
pytest_plugins = ["tests.skip_policy"]


@pytest.fixture(scope="session")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded platform per test session; tests use their own model names."""
    from control.local.runtime import EmbeddedRuntime

    embedded = EmbeddedRuntime(tmp_path_factory.mktemp("platform")).start()
    yield embedded
    embedded.stop()


@pytest.fixture(scope="session")
def endpoints(platform: Any) -> dict[str, Any]:
    return dict(platform.endpoints())


@pytest.fixture(scope="session")
def aws(endpoints: dict[str, Any]) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])

    return make


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.get(self.url + path, timeout=30, **kwargs)

    def post(self, path: str, **kwargs: Any) -> requests.Response:
        return self.session.post(self.url + path, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def api(endpoints: dict[str, Any]) -> Api:
    return Api(endpoints["api_url"], endpoints["api_token"])
