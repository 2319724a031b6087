"""The test server's process kubelet: pods run their container as a local process.

The model server runs as the local serving runtime runs it, its readiness is the real `/ping` of
the readinessProbe, the Service's Endpoints carry the local port it listens on, a process that
exits gives its pod a phase and exit code, and a pod deleted through the API loses its process.
"""

from __future__ import annotations

import json
import sys
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
from tests.support.lineage import register_approved

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

    def job_conditions() -> list[Any]:  # the Job controller follows its pod on its own turn
        job = api_server.api.store.get(("batch", "jobs", "ml-serving", "exits")) or {}
        return list((job.get("status") or {}).get("conditions") or [])

    assert wait_for(job_conditions, 10, 0.1, "the Job's conditions")[0]["type"] == "Failed"


# -- an MPIJob on horovodrun: a node lost under a worker -------------------------------------------

# Two horovod ranks; rank 0 writes one checkpoint file per epoch and a rerun starts after the last one.
RESUMING_TRAIN = """\
import argparse, pathlib, time
import horovod.torch as hvd
import torch
p = argparse.ArgumentParser()
for name in ("dataset-uri", "output-uri", "checkpoint-dir", "model-name", "run-id", "epochs",
             "batch-size", "learning-rate", "hidden-units", "seed", "metrics-port", "scratch-dir"):
    p.add_argument("--" + name)
a = p.parse_args()
hvd.init()
ckpt = pathlib.Path(a.checkpoint_dir); ckpt.mkdir(parents=True, exist_ok=True)
start = len(list(ckpt.glob("epoch-*")))
print(f"rank {hvd.rank()} of {hvd.size()} resuming at epoch {start}", flush=True)
for epoch in range(start, int(a.epochs)):
    hvd.allreduce(torch.ones(1), name=f"epoch-{epoch}")
    if hvd.rank() == 0:
        (ckpt / f"epoch-{epoch}").write_text("x")
    time.sleep(0.5)
"""


def mpijob(run_id: str, epochs: int) -> dict[str, Any]:
    from control.domain.training import Hyperparameters, TrainingJobSpec
    from control.manifests.training import render_mpijob

    spec = TrainingJobSpec(run_id, "resuming", "/data/train.csv", "/out/", Hyperparameters(epochs=epochs), workers=2)
    return render_mpijob(spec, CONFIG)


@pytest.mark.slow
def test_a_node_lost_under_a_worker_fails_the_mpijob_and_a_resubmit_resumes_from_its_checkpoint(
    server: tuple[KubeApiServer, KubernetesCluster], tmp_path: Path
) -> None:
    from control.domain.training import JobState

    horovodrun = Path(sys.executable).parent / "horovodrun"
    assert horovodrun.exists(), "horovodrun is not installed (scripts/setup.sh builds it)"
    api_server, cluster = server
    repo = tmp_path / "repo"
    (repo / "workloads" / "training").mkdir(parents=True)
    (repo / "workloads" / "training" / "train.py").write_text(RESUMING_TRAIN)
    kubelet = ProcessKubelet(tmp_path / "kubelet", repo_root=repo, horovodrun=str(horovodrun), grace_seconds=5)
    controllers = Controllers(api_server.api, kubelet).start()
    run = "resuming-v1-0123456789ab"
    checkpoints = kubelet.checkpoints_dir / run
    try:
        cluster.submit_training_job(mpijob(run, epochs=60))
        wait_for(lambda: len(list(checkpoints.glob("epoch-*"))) >= 2, 120, 0.1, "two epochs checkpointed")
        assert cluster.training_job_status(run).state == JobState.RUNNING
        api_server.api.store.delete(("", "pods", "ml-training", f"{run}-worker-1"))  # its node is lost
        status = wait_for(
            lambda: (s := cluster.training_job_status(run)).state.finished and s, 60, 0.2, "the MPIJob failed"
        )
        assert status.state == JobState.FAILED
        done = len(list(checkpoints.glob("epoch-*")))
        assert 2 <= done < 60

        cluster.delete_training_job(run)
        wait_for(lambda: not api_server.api.store.list("", "pods", "ml-training"), 30, 0.1, "the old pods gone")
        cluster.submit_training_job(mpijob(run, epochs=done + 1))
        status = wait_for(
            lambda: (s := cluster.training_job_status(run)).state.finished and s, 120, 0.2, "the resubmitted run"
        )
        assert status.state == JobState.SUCCEEDED, status
        logs = "".join(p.log.read_text() for p in kubelet.pods.values() if p.rank is None and p.job == run)
        assert f"rank 0 of 2 resuming at epoch {done}" in logs
    finally:
        controllers.stop()
        kubelet.stop_all()


# -- a blue-green rollout on model-server processes, traffic through the Service's proxy -------------


class AllGood:
    def value(self, query: str) -> float | None:
        return 0.0


REAL_TIME = {"bake_seconds": 2, "scale_down_delay_seconds": 2, "rollback_window_seconds": 0,
             "analysis_interval_seconds": 1, "poll_interval_seconds": 1, "ready_timeout_seconds": 120}  # fmt: skip


def register_artifact(registry: Any, s3: Any, folder: Path, seed: int) -> int:
    """A model trained elsewhere: its artifact in (embedded) S3, registered and approved."""
    artifact = write_artifact(folder, seed=seed)
    for name in ("model.pt", "metadata.json"):
        s3.put_object(Bucket="artifacts", Key=f"models/iris/run-{seed}/{name}", Body=(folder / name).read_bytes())
    return register_approved(
        registry,
        "iris",
        f"run-{seed}",
        actor="test",
        artifact_uri=f"s3://artifacts/models/iris/run-{seed}/model.pt",
        artifact_sha256=artifact.sha256,
    )


@pytest.fixture
def s3_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    from control.local.processes import free_port

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    yield f"http://127.0.0.1:{port}"
    moto.stop()


def test_a_blue_green_rollout_switches_live_traffic_between_model_server_pods(
    server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet, controllers: Controllers, tmp_path: Path,
    s3_endpoint: str,
) -> None:  # fmt: skip
    import http.client
    import threading
    import time

    import boto3

    from control.composition import utc_now
    from control.domain.deployments import RolloutRequest, StepRequest
    from control.usecases import rollouts
    from tests.fakes import InMemoryRegistry, in_memory_platform
    from tests.support.kube_apiserver.network import ClusterNetwork, PodDiscovery, ServiceProxies

    api_server, cluster = server
    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    kubelet.env.update(aws)  # the model servers read their artifact from the same S3
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="artifacts")
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry, serving=cluster, metrics=AllGood(), clock=utc_now)
    targets = tmp_path / "serving-targets.json"
    network = ClusterNetwork(
        ServiceProxies(api_server.api, "ml-serving"), [PodDiscovery(api_server.api, kubelet, "ml-serving", targets)]
    ).start()
    served: list[tuple[int, str]] = []
    stop = threading.Event()

    def roll_out(version: int) -> str:
        rollouts.start(platform, "iris", RolloutRequest("iris", version, REAL_TIME), "test")
        deadline, result = time.monotonic() + 120, None
        while time.monotonic() < deadline:
            result = rollouts.reconcile_step(platform, StepRequest("iris"))
            if result.done:
                return result.phase.value
            time.sleep(min(float(result.requeue_after), 0.5))
        pods = {p["metadata"]["name"]: p.get("status") for p in api_server.api.store.list("", "pods", None)}
        raise AssertionError(f"the rollout of v{version} did not finish: {result}\n{pods}")

    def load() -> None:
        while not stop.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", int(network.proxies.url("iris").rsplit(":", 1)[1]))
            try:
                connection.request("POST", "/invocations", body=ROW, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                served.append((response.status, response.getheader("X-Model-Version") or ""))
            finally:
                connection.close()
            time.sleep(0.05)

    loader = threading.Thread(target=load, daemon=True)
    try:
        assert roll_out(register_artifact(registry, s3, tmp_path / "v1", 1)) == "COMPLETED"
        wait_for(lambda: "iris" in network.proxies.proxies, 10, 0.1, "the Service's proxy")
        loader.start()
        wait_for(lambda: len(served) >= 5, 30, 0.1, "traffic on v1")
        assert roll_out(register_artifact(registry, s3, tmp_path / "v2", 2)) == "COMPLETED"
        wait_for(lambda: served[-1][1] == "2", 30, 0.1, "traffic on v2")
    finally:
        stop.set()
        if loader.is_alive():
            loader.join(timeout=10)
        network.stop()
    assert [s for s in served if s[0] != 200] == [], "a request failed during the switch"
    versions = [v for _, v in served]
    assert versions[0] == "1" and versions[-1] == "2" and versions == sorted(versions)
    groups = json.loads(targets.read_text())
    v2 = [p for p in api_server.api.store.list("", "pods", "ml-serving") if p["metadata"]["name"].startswith("iris-v2")]
    assert len(v2) == 2  # the rollout's default replicas
    pod = v2[0]
    group = next(g for g in groups if g["labels"]["__meta_kubernetes_pod_name"] == pod["metadata"]["name"])
    assert group["labels"]["__meta_kubernetes_pod_container_port_number"] == "8080"
    assert group["targets"] == [f"127.0.0.1:{kubelet.host_port(pod, 8080)}"]


# -- canaries on model-server processes: the test cluster's network plays the ALB's weighted split ---


class ObservedErrors:
    """The analysis' queries answered from the requests the test saw, per version: error ratio as
    counted, latency well within bounds (Prometheus is not part of this test)."""

    def __init__(self, samples: list[tuple[tuple[int, int] | None, int, str]]) -> None:
        self.samples = samples

    def value(self, query: str) -> float | None:
        import re

        if "histogram_quantile" in query:
            return 0.01
        match = re.search(r'version="(\d+)"', query)
        served = [status for _, status, version in list(self.samples) if match and version == match.group(1)]
        return sum(status >= 500 for status in served) / len(served) if served else 0.0


def test_a_canary_walks_its_weights_through_the_ingress_and_a_faulty_one_returns_to_weight_zero(
    server: tuple[KubeApiServer, KubernetesCluster], kubelet: ProcessKubelet, controllers: Controllers, tmp_path: Path,
    s3_endpoint: str,
) -> None:  # fmt: skip
    import contextlib
    import http.client
    import threading
    import time

    import boto3

    from control.composition import utc_now
    from control.domain.canary import parse_strategy
    from control.domain.deployments import RolloutRequest, StepRequest, StrategyChoice
    from control.manifests.config import LABEL_VERSION
    from control.usecases import rollouts
    from tests.fakes import InMemoryRegistry, in_memory_platform
    from tests.support.alb_actions import forward_weights
    from tests.support.kube_apiserver.network import ClusterNetwork, ServiceProxies

    api_server, cluster = server
    store = api_server.api.store
    aws = {"AWS_ENDPOINT_URL": s3_endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    kubelet.env.update(aws)
    s3 = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="artifacts")
    registry = InMemoryRegistry()
    samples: list[tuple[tuple[int, int] | None, int, str]] = []  # ((version rolling out, its share) when sent, …)
    platform = in_memory_platform(registry=registry, serving=cluster, metrics=ObservedErrors(samples), clock=utc_now)
    network = ClusterNetwork(ServiceProxies(api_server.api, "ml-serving"), []).start()
    share: dict[str, tuple[int, int] | None] = {"now": None}  # None while a step may be changing the split
    stop = threading.Event()

    def share_of(version: int) -> int:
        """The % of requests the Ingress's split sends to Services selecting `version`."""
        ingress = store.get(("networking.k8s.io", "ingresses", "ml-serving", "iris"))
        weights = forward_weights(ingress) if ingress else {}

        def selects(service: str) -> bool:
            found = store.get(("", "services", "ml-serving", service)) or {"spec": {}}
            return (found["spec"].get("selector") or {}).get(LABEL_VERSION) == str(version)

        total = sum(weights.values())
        return round(100 * sum(w for s, w in weights.items() if selects(s)) / total) if total else 0

    def roll_out(version: int, strategy: dict[str, Any] | None, fault: float = 0.0) -> str:
        choice = StrategyChoice(parse_strategy(strategy)) if strategy else None
        rollouts.start(platform, "iris", RolloutRequest("iris", version, REAL_TIME, strategy=choice), "test")
        deadline, result = time.monotonic() + 90, None
        while time.monotonic() < deadline:
            if fault:
                with contextlib.suppress(OSError):  # an admin endpoint not up yet: the next round sets it
                    kubelet.fault(f"iris-v{version}-", fault)  # each new pod of the version, as it runs
            share["now"] = None
            result = rollouts.reconcile_step(platform, StepRequest("iris"))
            share["now"] = (version, share_of(version))
            if result.done:
                return result.phase.value
            time.sleep(min(float(result.requeue_after), 0.2))
        raise AssertionError(f"the rollout of v{version} did not finish: {result}")

    def load() -> None:
        port = int(network.proxies.url("iris").rsplit(":", 1)[1])
        while not stop.is_set():
            sent_at = share["now"]
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            try:
                connection.request("POST", "/invocations", body=ROW, headers={"Content-Type": "application/json"})
                response = connection.getresponse()
                response.read()
                tag = sent_at if share["now"] == sent_at else None  # the split changed on the way
                samples.append((tag, response.status, response.getheader("X-Model-Version") or ""))
            finally:
                connection.close()
            time.sleep(0.01)

    def split_seen(version: int, since: int) -> dict[int, tuple[int, float]]:
        """Share of the new version → (requests sent at it, fraction the new version served)."""
        seen: dict[int, list[str]] = {}
        for tag, _, served_by in samples[since:]:
            if tag is not None and tag[0] == version:
                seen.setdefault(tag[1], []).append(served_by)
        return {tag: (len(vs), sum(v == str(version) for v in vs) / len(vs)) for tag, vs in seen.items()}

    loaders = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    try:
        assert roll_out(register_artifact(registry, s3, tmp_path / "v1", 1), None) == "COMPLETED"
        wait_for(lambda: "iris" in network.proxies.proxies, 10, 0.1, "the Service's proxy")
        for loader in loaders:
            loader.start()
        wait_for(lambda: len(samples) >= 5, 30, 0.1, "traffic on v1")

        healthy_from = len(samples)
        strategy = {"type": "canary", "weights": "10,50,100", "step_pause": "2s"}
        assert roll_out(register_artifact(registry, s3, tmp_path / "v2", 2), strategy) == "COMPLETED"
        wait_for(lambda: len(samples) >= healthy_from + 20 and samples[-1][2] == "2", 30, 0.1, "traffic on v2")
        healthy = split_seen(2, healthy_from)

        faulty_from = len(samples)
        strategy = {"type": "canary", "weights": "10,100", "step_pause": "3s"}
        assert roll_out(register_artifact(registry, s3, tmp_path / "v3", 3), strategy, fault=0.5) == "ROLLED_BACK"
        aborted_at = len(samples)
        wait_for(lambda: len(samples) >= aborted_at + 20, 30, 0.1, "traffic after the abort")
    finally:
        stop.set()
        for loader in loaders:
            if loader.is_alive():
                loader.join(timeout=10)
        network.stop()

    for weight in (10, 50, 100):
        count, served = healthy.get(weight, (0, 0.0))
        assert count >= 20 and abs(served - weight / 100) <= 0.10, (weight, healthy)
    assert [s for s in samples[healthy_from:faulty_from] if s[1] != 200] == [], "a healthy canary's request failed"
    faulty = split_seen(3, faulty_from)
    count, served = faulty.get(10, (0, 0.0))
    assert count >= 20 and abs(served - 0.10) <= 0.10, faulty
    failed = [s for s in samples[faulty_from:] if s[1] != 200]
    assert failed and {version for _, _, version in failed} == {"3"}, "a failed request outside the canary's share"
    assert share_of(3) == 0 and {version for _, _, version in samples[aborted_at:]} == {"2"}
    assert store.get(("networking.k8s.io", "ingresses", "ml-serving", "iris")) is not None
