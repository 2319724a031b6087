"""Shared fixtures: the embedded platform (moto's server, the functions in-process, the API)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from tests.support.api import RawApi, api_client

REPO = Path(__file__).resolve().parents[1]

# Every skip listed with its reason; under CI a skip not in tests/allowed_skips.txt fails the run.
pytest_plugins = ["tests.skip_policy"]


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded runtime (control.local.runtime.EmbeddedRuntime: moto's server, the functions,
    the API, the local clusters) per test session; tests use their own model names."""
    from control.local.runtime import EmbeddedRuntime

    runtime = EmbeddedRuntime(tmp_path_factory.mktemp("embedded")).start()
    yield runtime
    runtime.stop()


@pytest.fixture(scope="session")
def endpoints(embedded: Any) -> dict[str, Any]:
    return dict(embedded.endpoints())


@pytest.fixture(scope="session")
def aws(endpoints: dict[str, Any]) -> Callable[[str], Any]:
    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])

    return make


@pytest.fixture(scope="session")
def api(endpoints: dict[str, Any]) -> RawApi:
    """The API's answers as they come (status codes included), through the one API client."""
    return RawApi(api_client(endpoints))
