"""The local serving runtime under test: model versions from a tiny artifact, readiness, and a load
of keep-alive clients through a router that counts every failed request."""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from control.local.serving import LocalServing
from control.manifests.config import ManifestConfig
from control.manifests.serving import ServingVersion
from tests.support import wait_for
from tests.support.inference_artifact import write_artifact

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ManifestConfig()
ROW = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


def serving_version(tmp_path: Path, version: int, replicas: int = 1, deployment: str = "iris") -> ServingVersion:
    artifact = write_artifact(tmp_path / "artifacts" / f"v{version}", seed=version)
    return ServingVersion(deployment, "iris", version, str(artifact.folder), artifact.sha256, replicas=replicas)


def wait_ready(serving: LocalServing, name: str, timeout: float = 90.0) -> None:
    try:
        wait_for(lambda: serving.deployment_readiness(name).is_ready, timeout, 0.1, f"{name} ready")
    except AssertionError as exc:
        logs = [f"{pod.pod} alive={pod.alive}:\n{Path(pod.log).read_text()[-1500:]}" for pod in serving.pods(name)]
        raise AssertionError("\n".join([str(exc), str(serving.deployment_readiness(name)), *logs])) from None


def router_port(serving: LocalServing, service: str) -> int:
    return int(serving.service_url(service).rsplit(":", 1)[1])


def invoke(port: int, path: str = "/invocations") -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=ROW, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        connection.close()


@dataclass
class Outcome:
    started: float
    status: int  # 0: the request failed without an answer
    version: str
    error: str = ""


@dataclass
class Load:
    """Clients on keep-alive connections sending /invocations to a router until stopped."""

    port: int
    clients: int = 4
    pause: float = 0.0
    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> Load:
        self._threads = [threading.Thread(target=self._client, daemon=True) for _ in range(self.clients)]
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                connection.request("POST", "/invocations", body=ROW, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                outcome = Outcome(started, response.status, response.getheader("X-Model-Version", ""))
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                outcome = Outcome(started, 0, "", repr(exc))
            with self._lock:
                self.outcomes.append(outcome)
            if self.pause:
                time.sleep(self.pause)
        connection.close()

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [outcome for outcome in self.outcomes if outcome.status != 200]
