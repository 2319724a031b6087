"""moto's server as the embedded AWS, with Step Functions really executing ASL."""

from __future__ import annotations

import copy
import logging
import os
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import requests
from moto.core.common_models import BaseModel
from moto.dynamodb.responses import DynamoHandler
from moto.server import ThreadedMotoServer
from moto.stepfunctions.models import StateMachineInstance

from control.local.processes import free_port

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


class WeakInstances(list):
    """What moto's `instances_tracked` holds, without keeping the instances alive."""

    def append(self, instance: object) -> None:
        if len(self) >= 1024 and len(self) % 1024 == 0:
            self[:] = [ref for ref in super().__iter__() if ref() is not None]
        super().append(weakref.ref(instance))

    def __iter__(self) -> Iterator[Any]:
        return (instance for ref in list(super().__iter__()) if (instance := ref()) is not None)


def _track_instances_weakly() -> None:
    """moto's BaseModel appends every instance it creates to a class-level list, for its dashboard
    and `reset`, and nothing ever removes one. Deep copies count: a DynamoDB transaction copies
    the whole table first (and every update_item copies the item), so a long-running embedded
    platform grows by a table's worth of objects per conditional write that fails. Keep the
    list, hold the instances weakly."""
    if getattr(BaseModel.__new__, "weak", False):
        return

    def __new__(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
        instance = super(BaseModel, cls).__new__(cls)
        tracked = cls.instances_tracked  # type: ignore[attr-defined]
        if not isinstance(tracked, WeakInstances):  # a new class, or moto's reset put a plain list
            tracked = cls.instances_tracked = WeakInstances()  # type: ignore[attr-defined]
        tracked.append(instance)
        return instance

    __new__.weak = True  # type: ignore[attr-defined]
    BaseModel.__new__ = __new__  # type: ignore[method-assign]


def _reuse_lambda_clients() -> None:
    """moto's ASL interpreter builds a new boto3 client for every Lambda task it runs (~20 ms of
    CPU, most of the time between an execution's start and its first task: the rollback loop's
    dispatch). The client is the same each time (one endpoint, fixed settings): build it once
    per (region, endpoint) and reuse it; botocore clients are safe to share between threads."""
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    original = lambda_eval_utils.boto_client_for
    if getattr(original, "reused", False):
        return
    clients: dict[tuple[str, str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        # moto's own builds ignore `state_credentials` (fixed fake keys), so one client serves all.
        key = (region, service, os.environ.get("MOTO_PORT", ""))
        with lock:
            if key not in clients:
                clients[key] = original(region, service)
            return clients[key]

    boto_client_for.reused = True  # type: ignore[attr-defined]
    lambda_eval_utils.boto_client_for = boto_client_for


def _parse_each_definition_once() -> None:
    """moto's ASL interpreter parses the state machine's definition (ANTLR, in Python) at the start
    of every execution: ~15 ms on a quiet core, most of the time between a rollback loop's start and
    its first task. Parse each definition once and give every execution a deep copy of the parsed
    program (~1.5 ms): its own tree, as a fresh parse gives it."""
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    original = ExecutionWorker._get_evaluation_entrypoint
    if getattr(original, "cached", False):
        return
    parsed: dict[str, Any] = {}
    lock = threading.Lock()

    def _get_evaluation_entrypoint(self: ExecutionWorker) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:
            program = parsed.get(definition)
        if program is None:
            program = original(self)
            with lock:
                if len(parsed) >= 64:
                    parsed.clear()
                parsed[definition] = program
        return copy.deepcopy(program)

    _get_evaluation_entrypoint.cached = True  # type: ignore[attr-defined]
    ExecutionWorker._get_evaluation_entrypoint = _get_evaluation_entrypoint  # type: ignore[method-assign]


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
    _track_instances_weakly()
    _reuse_lambda_clients()
    _parse_each_definition_once()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    # Failed executions are logged by moto as exceptions; their history already says why.
    logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    aws = EmbeddedAws(server=server, port=port, region=region)
    aws._configure()
    return aws
