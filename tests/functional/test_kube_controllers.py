"""The test server's controllers, and the rollout use case through the EKS adapters on top of them.

Readiness here comes from the Deployment → ReplicaSet → Pod chain and a kubelet, not from a test
writing `.status`: what the rollout reads through KubernetesCluster is what those controllers
report. (Pods running their container as a local process are phase 2: the kubelet here makes
pods ready at once, or never, as a test says.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from control.adapters.kubernetes_cluster import KubernetesCluster
from control.domain.deployments import RolloutRequest, StepRequest
from control.domain.rollout import Phase
from control.domain.training import JobState, TrainingJobSpec
from control.manifests.config import LABEL_VERSION, ManifestConfig
from control.manifests.serving import ServingVersion, render_deployment, render_service, version_selector
from control.manifests.training import render_mpijob
from control.usecases import rollouts
from tests.fakes import NOW, InMemoryRegistry, in_memory_platform
from tests.support.kube_apiserver import Identities, KubeApiServer, eks_client, eks_session
from tests.support.kube_apiserver.controllers import Controllers, ReadyKubelet
from tests.support.kube_apiserver.fixtures import identities_fixture, server_fixture  # noqa: F401 (fixtures)
from tests.support.lineage import register_approved

CONFIG = ManifestConfig()
V1 = ServingVersion("churn", "churn", 1, "s3://a/models/churn/runs/r1/", "a" * 64, replicas=2)


@pytest.fixture
def cluster(server: KubeApiServer, identities: Identities) -> KubernetesCluster:
    return KubernetesCluster(eks_client(server, eks_session(identities)))


def names(server: KubeApiServer, group: str, plural: str) -> list[str]:
    return [o["metadata"]["name"] for o in server.api.store.list(group, plural, "ml-serving")]


def test_a_deployment_becomes_ready_through_its_replicaset_and_pods(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    controllers = Controllers(server.api)
    cluster.apply(render_deployment(V1, CONFIG))
    assert not cluster.deployment_readiness("churn-v1").is_ready
    controllers.settle()
    readiness = cluster.deployment_readiness("churn-v1")
    assert (readiness.desired, readiness.ready, readiness.is_ready) == (2, 2, True)
    [replicaset] = names(server, "apps", "replicasets")
    assert replicaset.startswith("churn-v1-")
    assert names(server, "", "pods") == [f"{replicaset}-0", f"{replicaset}-1"]
    cluster.scale_deployment("churn-v1", 3)
    assert not cluster.deployment_readiness("churn-v1").is_ready  # a generation not yet observed
    controllers.settle()
    assert cluster.deployment_readiness("churn-v1").ready == 3


def test_a_new_pod_template_replaces_the_replicaset(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    controllers = Controllers(server.api)
    cluster.apply(render_deployment(V1, CONFIG))
    controllers.settle()
    [old] = names(server, "apps", "replicasets")
    cluster.apply(render_deployment(ServingVersion(**{**V1.__dict__, "cpu_limit": "3"}), CONFIG))
    controllers.settle()
    replicasets = {
        o["metadata"]["name"]: o["spec"]["replicas"] for o in server.api.store.list("apps", "replicasets", None)
    }
    assert replicasets.pop(old) == 0 and list(replicasets.values()) == [2]
    assert all(not p.startswith(old) for p in names(server, "", "pods"))
    assert cluster.deployment_readiness("churn-v1").is_ready


def test_pods_that_never_become_ready_keep_the_deployment_unready(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    controllers = Controllers(server.api, ReadyKubelet(never_ready=lambda pod: True))
    cluster.apply(render_deployment(V1, CONFIG))
    controllers.settle()
    readiness = cluster.deployment_readiness("churn-v1")
    assert (readiness.desired, readiness.ready) == (2, 0)


def test_the_endpoints_of_a_service_are_its_ready_pods_and_follow_the_selector(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    controllers = Controllers(server.api)
    for version in (1, 2):
        cluster.apply(render_deployment(ServingVersion(**{**V1.__dict__, "version": version}), CONFIG))
    cluster.apply(render_service("churn", 1, CONFIG))
    controllers.settle()

    def endpoint_pods() -> set[str]:
        endpoints = server.api.store.get(("", "endpoints", "ml-serving", "churn"))
        assert endpoints is not None
        return {a["targetRef"]["name"] for s in endpoints.get("subsets") or [] for a in s["addresses"]}

    assert {p.rsplit("-", 2)[0] for p in endpoint_pods()} == {"churn-v1"} and len(endpoint_pods()) == 2
    cluster.switch_service_selector("churn", version_selector("churn", 2))
    controllers.settle()
    assert {p.rsplit("-", 2)[0] for p in endpoint_pods()} == {"churn-v2"}


def test_deleting_a_deployment_takes_its_replicasets_and_pods(
    server: KubeApiServer, cluster: KubernetesCluster
) -> None:
    controllers = Controllers(server.api)
    cluster.apply(render_deployment(V1, CONFIG))
    controllers.settle()
    cluster.delete_deployment("churn-v1")
    controllers.settle()
    assert names(server, "apps", "replicasets") == names(server, "", "pods") == []


def test_the_controllers_run_on_their_own_thread(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    from tests.support import wait_for

    controllers = Controllers(server.api).start()
    try:
        cluster.apply(render_deployment(V1, CONFIG))
        wait_for(lambda: cluster.deployment_readiness("churn-v1").is_ready, timeout=10, interval=0.05, what="ready")
    finally:
        controllers.stop()


# -- the rollout use case through the EKS adapters ------------------------------------------------


class AllGood:
    def value(self, query: str) -> float | None:
        return 0.0


def register(registry: InMemoryRegistry, run_id: str) -> int:
    return register_approved(registry, "churn", run_id, actor="test")


FAST = {"bake_seconds": 30, "scale_down_delay_seconds": 60, "rollback_window_seconds": 0,
        "analysis_interval_seconds": 10, "poll_interval_seconds": 5, "ready_timeout_seconds": 60}  # fmt: skip


def roll_out(platform: Any, controllers: Controllers, now: list[Any], version: int) -> str:
    rollouts.start(platform, "churn", RolloutRequest("churn", version, FAST), "test")
    for _ in range(100):
        result = rollouts.reconcile_step(platform, StepRequest("churn"))
        controllers.settle()
        if result.done:
            return result.phase.value
        now[0] += timedelta(seconds=max(result.requeue_after, 1))
    raise AssertionError("the rollout did not finish in 100 steps")


@pytest.fixture
def rollout_platform(cluster: KubernetesCluster) -> tuple[Any, InMemoryRegistry, list[Any]]:
    registry, now = InMemoryRegistry(), [NOW]
    platform = in_memory_platform(registry=registry, serving=cluster, metrics=AllGood(), clock=lambda: now[0])
    return platform, registry, now


def test_a_blue_green_rollout_runs_through_the_eks_adapters(
    server: KubeApiServer, cluster: KubernetesCluster, rollout_platform: tuple[Any, InMemoryRegistry, list[Any]]
) -> None:
    platform, registry, now = rollout_platform
    controllers = Controllers(server.api)
    assert roll_out(platform, controllers, now, register(registry, "run-1")) == Phase.COMPLETED.value
    assert roll_out(platform, controllers, now, register(registry, "run-2")) == Phase.COMPLETED.value
    assert cluster.service_selector("churn")[LABEL_VERSION] == "2"
    assert cluster.deployment_readiness("churn-v2").ready == 2
    assert cluster.deployment_readiness("churn-v1").desired == 0
    assert [r for r, allowed in server.api.authorizations if not allowed] == []


def test_a_green_that_never_becomes_ready_aborts_and_blue_keeps_serving(
    server: KubeApiServer, cluster: KubernetesCluster, rollout_platform: tuple[Any, InMemoryRegistry, list[Any]]
) -> None:
    platform, registry, now = rollout_platform
    kubelet = ReadyKubelet(never_ready=lambda pod: pod["metadata"]["labels"].get(LABEL_VERSION) == "2")
    controllers = Controllers(server.api, kubelet)
    assert roll_out(platform, controllers, now, register(registry, "run-1")) == Phase.COMPLETED.value
    phase = roll_out(platform, controllers, now, register(registry, "run-2"))
    assert phase in (Phase.ROLLED_BACK.value, Phase.FAILED.value)
    assert cluster.service_selector("churn")[LABEL_VERSION] == "1"
    assert cluster.deployment_readiness("churn-v1").is_ready
    endpoints = server.api.store.get(("", "endpoints", "ml-serving", "churn"))
    assert endpoints is not None and all(
        a["targetRef"]["name"].startswith("churn-v1-") for s in endpoints["subsets"] for a in s["addresses"]
    )


# -- training: MPIJob → launcher Job and worker pods ----------------------------------------------

SPEC = TrainingJobSpec("churn-v1-0123456789ab", "churn", "s3://d/datasets/churn/v1/data.csv", "s3://a/m/")


def launcher_ends(phase: str | None) -> ReadyKubelet:
    return ReadyKubelet(
        ends=lambda pod: phase if pod["metadata"]["name"].startswith(f"{SPEC.run_id}-launcher") else None
    )


@pytest.mark.parametrize(
    ("launcher", "state", "reason"),
    [
        (None, JobState.RUNNING, "MPIJobRunning"),
        ("Succeeded", JobState.SUCCEEDED, "MPIJobSucceeded"),
        ("Failed", JobState.FAILED, "BackoffLimitExceeded/Error"),
    ],
)
def test_an_mpijob_runs_its_launcher_and_workers_and_reports_as_mpi_operator_does(
    server: KubeApiServer, cluster: KubernetesCluster, launcher: str | None, state: JobState, reason: str
) -> None:
    controllers = Controllers(server.api, launcher_ends(launcher))
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    assert cluster.training_job_status(SPEC.run_id).state is JobState.PENDING
    controllers.settle()
    status = cluster.training_job_status(SPEC.run_id)
    assert (status.state, status.reason) == (state, reason)
    pods = {p["metadata"]["name"] for p in server.api.store.list("", "pods", "ml-training")}
    assert {f"{SPEC.run_id}-worker-0", f"{SPEC.run_id}-worker-1"} <= pods
    assert any(p.startswith(f"{SPEC.run_id}-launcher") for p in pods)


def test_deleting_an_mpijob_takes_its_launcher_and_workers(server: KubeApiServer, cluster: KubernetesCluster) -> None:
    controllers = Controllers(server.api)
    cluster.submit_training_job(render_mpijob(SPEC, CONFIG))
    controllers.settle()
    cluster.delete_training_job(SPEC.run_id)
    controllers.settle()
    assert (
        server.api.store.list("", "pods", "ml-training") == server.api.store.list("batch", "jobs", "ml-training") == []
    )
