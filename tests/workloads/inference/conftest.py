from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.inference_artifact import Artifact, write_artifact
from workloads.inference.app import InferenceServer, create_app
from workloads.inference.settings import ServerSettings


@pytest.fixture
def artifact(tmp_path: Path) -> Artifact:
    return write_artifact(tmp_path / "run")


@pytest.fixture
def make_server(artifact: Artifact) -> Iterator[Callable[..., InferenceServer]]:
    """An in-process server for `artifact`; `load=True` loads the model and waits for it."""
    built: list[InferenceServer] = []

    def make(load: bool = True, **overrides: Any) -> InferenceServer:
        settings = dataclasses.replace(
            ServerSettings(model_uri=str(artifact.folder), model_name="iris", model_version="7", model_load_attempts=1),
            **overrides,
        )
        server = create_app(settings)
        built.append(server)
        if load:
            server.slot.start_loading()
            assert server.slot.wait_settled(30), "the model did not finish loading"
        return server

    yield make
    for server in built:
        server.start_draining()
