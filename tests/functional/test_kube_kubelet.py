"""The test server's process kubelet: pods run their container as a local process.

The model server runs as the local serving runtime runs it, its readiness is the real `/ping` of
the readinessProbe, the Service's Endpoints carry the local port it listens on, a process that
exits gives its pod a phase and exit code, and a pod deleted through the API loses its process.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from control.adapters.kubernetes_cluster import KubernetesCluster
from control.local.processes import process_alive
from control.manifests.config import ManifestConfig
from control.manifests.serving import ServingVersion, render_deployment, render_service
from tests.support import wait_for
from tests.support.inference_artifact import write_artifact
from tests.support.kube_apiserver import Identities, KubeApiServer, eks_client, eks_session, running
from tests.support.kube_apiserver.controllers import Controllers
from tests.support.kube_apiserver.kubelet import ProcessKubelet

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ManifestConfig()
ROW = json.dumps({"instances": [[5.1, 3.5, 1.4, 0.2]]}).encode()


@pytest.fixture
def server() -> Iterator[tuple[KubeApiServer, KubernetesCluster]]:
    identities = Identities()
    with running(identities) as api_server:
        yield api_server, KubernetesCluster(eks_client(api_server, eks_session(identities)))


@pytest.fixture
def kubelet(tmp_path: Path) -> Iterator[ProcessKubelet]:
    kubelet = ProcessKubelet(tmp_path / "kubelet", repo_root=ROOT, grace_seconds=5)
    yield kubelet
    kubelet.stop_all()


@pytest.fixture
def controllers(server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet) -> Iterator[Controllers]:
    controllers = Controllers(server[0].api, kubelet).start()
    yield controllers
    controllers.stop()


def pods(api_server: KubeApiServer, namespace: str = "ml-serving") -> list[dict[str, Any]]:
    return api_server.api.store.list("", "pods", namespace)


def test_a_model_server_pod_is_ready_by_its_ping_and_reached_through_its_endpoints(
    server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet, controllers: Controllers, tmp_path: Path
) -> None:
    api_server, cluster = server
    artifact = write_artifact(tmp_path / "artifact")
    version = ServingVersion("iris", "iris", 1, str(artifact.folder), artifact.sha256, replicas=1)
    cluster.apply(render_deployment(version, CONFIG))
    cluster.apply(render_service("iris", 1, CONFIG))
    assert not cluster.deployment_readiness("iris-v1").is_ready
    wait_for(lambda: cluster.deployment_readiness("iris-v1").is_ready, 90, 0.2, "iris-v1 ready by its /ping")

    [pod] = pods(api_server)
    [local] = kubelet.pods.values()
    assert local.process.poll() is None and local.ports[8080] != 8080
    address = wait_for(lambda: controllers.service_address("ml-serving", "iris"), 10, 0.1, "an endpoint")
    assert address == f"127.0.0.1:{local.ports[8080]}" and pod["status"]["podIP"] == "127.0.0.1"
    request = urllib.request.Request(
        f"http://{address}/invocations", data=ROW, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200 and "predictions" in json.loads(response.read())

    pid = local.process.pid
    cluster.delete_deployment("iris-v1")
    wait_for(lambda: not process_alive(pid, None), 15, 0.1, "the model server stopped with its pod")
    assert pods(api_server) == [] and kubelet.pods == {}


def test_a_pod_deleted_through_the_api_loses_its_process_and_a_new_one_starts(
    server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet, controllers: Controllers, tmp_path: Path
) -> None:
    api_server, cluster = server
    artifact = write_artifact(tmp_path / "artifact")
    version = ServingVersion("iris", "iris", 1, str(artifact.folder), artifact.sha256, replicas=1)
    cluster.apply(render_deployment(version, CONFIG))
    wait_for(lambda: cluster.deployment_readiness("iris-v1").is_ready, 90, 0.2, "iris-v1 ready")
    [pod] = pods(api_server)
    [first] = kubelet.pods.values()
    api_server.api.store.delete(("", "pods", "ml-serving", pod["metadata"]["name"]))  # its node is gone
    wait_for(lambda: first.process.poll() is not None, 15, 0.1, "the deleted pod's process killed")
    wait_for(lambda: cluster.deployment_readiness("iris-v1").is_ready, 90, 0.2, "a replacement pod ready")
    [replacement] = kubelet.pods.values()
    assert replacement.process.pid != first.process.pid and replacement.process.poll() is None


def test_a_container_that_exits_gives_its_pod_a_phase_and_exit_code(
    server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet, controllers: Controllers
) -> None:
    api_server, cluster = server
    job: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "exits", "namespace": "ml-serving"},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [
                        {"name": "main", "image": "python:3.11", "command": ["python", "-c", "raise SystemExit(3)"]}
                    ],
                }
            },
        },
    }
    cluster.apply(job)

    def failed_pod() -> dict[str, Any] | None:
        return next((p for p in pods(api_server) if (p.get("status") or {}).get("phase") == "Failed"), None)

    pod = wait_for(failed_pod, 30, 0.1, "the job's pod failed")
    [container] = pod["status"]["containerStatuses"]
    assert container["state"]["terminated"]["exitCode"] == 3 and container["name"] == "main"
    finished = api_server.api.store.get(("batch", "jobs", "ml-serving", "exits"))
    assert finished is not None and finished["status"]["conditions"][0]["type"] == "Failed"
