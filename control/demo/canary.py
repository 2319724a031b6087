"""Canary helpers shared by the demo, the e2e test and the benchmark: a fault set on a version as soon
as its model servers are up (so its very first requests already fail), a rollout with a strategy,
and the weight changes the history recorded."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from control.cli.api_client import ApiClient
from control.errors import DependencyError, NotFound
from control.local.serving import LocalServing
from control.manifests.serving import deployment_name

DONE = frozenset({"COMPLETED", "ROLLED_BACK", "FAILED"})


@dataclass
class FaultOnArrival:
    """Sets `error_ratio` on every model server of `version` as it starts, until stopped."""

    serving: LocalServing
    deployment: str
    version: int
    error_ratio: float = 0.5
    set_at: float | None = None  # time.time() of the first fault set
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _done: set[str] = field(default_factory=set)

    def start(self) -> FaultOnArrival:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        name = deployment_name(self.deployment, self.version)
        while not self._stop.wait(0.05):
            try:
                pods = [pod for pod in self.serving.pods(name) if pod.alive and pod.pod not in self._done]
            except NotFound:
                continue
            for pod in pods:
                try:
                    self.serving.fault(name, self.error_ratio)
                except DependencyError:
                    break  # its admin listener is not up yet: next round
                self._done.add(pod.pod)
                self.set_at = self.set_at or time.time()


def start_rollout(api: ApiClient, deployment: str, model: str, version: int, strategy: Any = None) -> None:
    api.decide(model, version, "approve", "canary demo")
    body: dict[str, Any] = {"model": model, "version": version}
    if strategy is not None:
        body["strategy"] = strategy
    api.start_rollout(deployment, body)


def wait_until_done(api: ApiClient, deployment: str, version: int, timeout: float, poll: float = 0.5) -> dict[str, Any]:
    """The deployment's description once its rollout of `version` rests."""
    deadline = time.monotonic() + timeout
    found: dict[str, Any] = {}
    while time.monotonic() < deadline:
        found = api.get_deployment(deployment)
        status = found["status"]
        if status["target_version"] == version and status["phase"] in DONE:
            return found
        time.sleep(poll)
    raise TimeoutError(f"{deployment} v{version} still {found.get('status', {}).get('phase')} after {timeout:.0f}s")


def weight_changes(description: dict[str, Any], version: int) -> list[str]:
    """The reasons of the weight changes recorded for `version`, in order."""
    return [
        entry["reason"]
        for entry in description.get("history", [])
        if entry["action"] == "traffic-weight-changed" and entry.get("version") == version
    ]
