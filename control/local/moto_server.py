"""moto's server as the embedded AWS, with Step Functions really executing ASL."""

from __future__ import annotations

import copy
import logging
import os
import threading
from dataclasses import dataclass

import requests
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer
from moto.stepfunctions.models import StateMachineInstance

from control.local.cluster import free_port

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}


_dynamodb_lock = threading.Lock()


def _serialize_dynamodb_calls() -> None:
    """moto's DynamoDB backend is not thread-safe: concurrent conditional transactions both pass
    their checks (duplicate versions, lost writes). DynamoDB serializes conditional writes per
    item; the embedded AWS serializes every DynamoDB call, which is stricter and still correct."""
    original = DynamoHandler.call_action
    if getattr(original, "serialized", False):
        return

    def call_action(self: DynamoHandler) -> object:
        with _dynamodb_lock:
            return original(self)

    call_action.serialized = True  # type: ignore[attr-defined]
    DynamoHandler.call_action = call_action  # type: ignore[method-assign]


def _clone_state_machines_without_executions() -> None:
    """moto deep-copies a state machine, with its running executions, on every start; a running
    execution's thread mutates its history meanwhile and the copy fails ("dictionary changed
    size during iteration"), which boto3 then retries for seconds. The copy only needs the
    definition: give it no executions."""
    if "__deepcopy__" in StateMachineInstance.__dict__:
        return

    def __deepcopy__(self: StateMachineInstance, memo: dict[int, object]) -> StateMachineInstance:
        clone = self.__class__.__new__(self.__class__)
        memo[id(self)] = clone
        for name, value in self.__dict__.items():
            setattr(clone, name, [] if name == "executions" else copy.deepcopy(value, memo))
        return clone

    StateMachineInstance.__deepcopy__ = __deepcopy__  # type: ignore[attr-defined]


@dataclass
class EmbeddedAws:
    """A running moto server; `endpoint_url` is what boto3 and the AWS CLI are pointed at."""

    server: ThreadedMotoServer
    port: int
    region: str

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        requests.post(f"{self.endpoint_url}/moto-api/reset", timeout=10).raise_for_status()
        self._configure()

    def _configure(self) -> None:
        requests.post(
            f"{self.endpoint_url}/moto-api/config",
            json={"stepfunctions": {"execute_state_machine": True}},
            timeout=10,
        ).raise_for_status()

    def stop(self) -> None:
        self.server.stop()


def start_embedded_aws(region: str = "us-east-1", port: int | None = None) -> EmbeddedAws:
    """Start moto's server on 127.0.0.1 and point this process's AWS clients at it."""
    port = port or free_port()
    # The ASL interpreter calls back into the server through these; set before it starts.
    os.environ["MOTO_PORT"] = str(port)
    os.environ.setdefault("MOTO_HOST", "http://127.0.0.1")
    for name, value in FAKE_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    os.environ["AWS_DEFAULT_REGION"] = region
    os.environ["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    _serialize_dynamodb_calls()
    _clone_state_machines_without_executions()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Failed executions are logged by moto as exceptions; their history already says why.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = EmbeddedAws(server=server, port=port, region=region)
    aws._configure()
    return aws
