"""The checking API server as pytest fixtures, for the test modules that talk to it.

A test module imports them (`from tests.support.kube_apiserver.fixtures import identities_fixture,
server_fixture`) and asks for `identities` (the server's STS: the callers it knows) and `server` (the
server, running for one test); the functions' own names differ so a test's parameters shadow no import.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.kube_apiserver import Identities, KubeApiServer, running


@pytest.fixture(name="identities")
def identities_fixture() -> Identities:
    return Identities()


@pytest.fixture(name="server")
def server_fixture(identities: Identities) -> Iterator[KubeApiServer]:
    with running(identities) as api_server:
        yield api_server
