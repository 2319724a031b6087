"""The local serving runtime: Deployments as model-server processes, Services as routers.

Fast tests run routers only; the slow ones start real model servers (tiny TorchScript models built
by tests/support/inference_artifact.py) and drive traffic through the router while versions switch,
scale, die and restart, counting every failed request.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from control.errors import DependencyError, NotFound
from control.local.processes import process_alive
from control.local.serving import LocalServing
from control.local.serving_state import recorded_pods
from control.manifests.serving import (
    render_deployment,
    render_service,
    render_serving_stack,
    version_selector,
)
from tests.support import wait_for
from tests.support.serving import CONFIG, ROOT, Load, invoke, router_port, serving_version, wait_ready


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalServing]:
    runtime = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=10.0)
    yield runtime
    runtime.stop_all()


def all_pids(serving: LocalServing) -> list[tuple[int, str | None]]:
    pids = [(pod.pid, pod.start) for state in serving.state.all_deployments().values() for pod in recorded_pods(state)]
    routers = [state["router"] for state in serving.state.all_services().values() if state.get("router")]
    return pids + [(router["pid"], router["start"]) for router in routers]


# -- fast: routers and state, no model server -------------------------------------------------


def test_unknown_objects_are_not_found(serving: LocalServing) -> None:
    for call in (
        lambda: serving.deployment_readiness("nope-v1"),
        lambda: serving.scale_deployment("nope-v1", 1),
        lambda: serving.service_selector("nope"),
        lambda: serving.switch_service_selector("nope", {"a": "b"}),
        lambda: serving.service_url("nope"),
        lambda: serving.fault("nope-v1", 1.0),
    ):
        with pytest.raises(NotFound):
            call()
    serving.delete_deployment("nope-v1")  # idempotent
    with pytest.raises(ValueError, match="ConfigMap"):
        serving.apply({"kind": "ConfigMap", "metadata": {"name": "x"}})


def test_service_router_selector_switch_and_restart(serving: LocalServing, tmp_path: Path) -> None:
    serving.apply(render_service("iris", 1, CONFIG))
    url = serving.service_url("iris")
    status, _, body = invoke(router_port(serving, "iris"))
    assert status == 503 and json.loads(body)["error"] == "no_ready_upstream"
    with urllib.request.urlopen(url + "/_router/status", timeout=5) as reply:
        assert json.loads(reply.read())["selector"] == version_selector("iris", 1)

    assert serving.switch_service_selector("iris", version_selector("iris", 2)) is True
    assert serving.switch_service_selector("iris", version_selector("iris", 2)) is False
    serving.apply(render_service("iris", 1, CONFIG))  # an update leaves the selector as it is
    fresh = LocalServing(tmp_path / "serving", repo_root=ROOT)
    assert fresh.service_selector("iris") == version_selector("iris", 2)
    wait_for(
        lambda: (
            json.loads(urllib.request.urlopen(url + "/_router/status", timeout=5).read())["selector"]
            == version_selector("iris", 2)
        ),
        5,
        0.05,
        "the router to pick up the new selector",
    )

    router = serving.state.read_service("iris")["router"]
    serving.stop_all()
    assert not process_alive(router["pid"], router["start"])
    serving.apply(render_service("iris", 1, CONFIG))  # a dead router is restarted, same URL
    assert fresh.service_url("iris") == url
    assert invoke(router_port(serving, "iris"))[0] == 503


def test_other_kinds_are_recorded_and_deleted_with_their_version(serving: LocalServing, tmp_path: Path) -> None:
    v1 = serving_version(tmp_path, 1)
    stack = render_serving_stack([v1], CONFIG, active_version=1)
    for manifest in stack:
        if manifest["kind"] not in ("Deployment", "Service"):
            serving.apply(manifest)
    recorded = sorted(
        path.relative_to(serving.state.objects).as_posix() for path in serving.state.objects.rglob("*.json")
    )
    assert recorded == [
        "HorizontalPodAutoscaler/iris-v1.json",
        "Ingress/iris.json",
        "NetworkPolicy/iris-model-server.json",
        "NetworkPolicy/iris-preview-traffic.json",
        "PodDisruptionBudget/iris-v1.json",
        "VerticalPodAutoscaler/iris-v1.json",
    ]
    serving.delete_deployment("iris-v1")
    recorded = sorted(path.name for path in serving.state.objects.rglob("*.json"))
    assert recorded == ["iris-model-server.json", "iris-preview-traffic.json", "iris.json"]


# -- slow: real model servers -----------------------------------------------------------------


@pytest.mark.slow
def test_blue_green_switch_under_load_loses_no_request(serving: LocalServing, tmp_path: Path) -> None:
    v1, v2 = serving_version(tmp_path, 1, replicas=2), serving_version(tmp_path, 2)
    for manifest in render_serving_stack([v1, v2], CONFIG, active_version=1, preview_version=2):
        serving.apply(manifest)
    wait_ready(serving, "iris-v1")
    wait_ready(serving, "iris-v2")
    readiness = serving.deployment_readiness("iris-v1")
    assert (readiness.desired, readiness.ready, readiness.updated, readiness.observed) == (2, 2, 2, True)

    # the meta labels Kubernetes discovery gives the pods; the PodMonitor relabels them (dashboards/scrape.py)
    targets = [t["labels"] for t in json.loads(serving.targets_file.read_text())]
    name, version = "__meta_kubernetes_pod_label_app_kubernetes_io_name", "__meta_kubernetes_pod_label_mlcp_dev_version"
    assert sorted((t[name], t[version]) for t in targets) == [("iris", "1"), ("iris", "1"), ("iris", "2")]
    assert {t["__meta_kubernetes_namespace"] for t in targets} == {"ml-serving"}
    assert len({t["__meta_kubernetes_pod_name"] for t in targets}) == 3

    status, headers, body = invoke(router_port(serving, "iris"))
    assert (status, headers.get("x-model-version")) == (200, "1"), body
    assert "predictions" in json.loads(body)
    status, headers, body = invoke(router_port(serving, "iris-preview"))
    assert (status, headers.get("x-model-version")) == (200, "2"), body

    with Load(router_port(serving, "iris"), clients=4) as load:
        time.sleep(1.5)
        assert serving.switch_service_selector("iris", version_selector("iris", 2)) is True
        switched_at = time.monotonic()
        time.sleep(1.5)
    assert serving.switch_service_selector("iris", version_selector("iris", 2)) is False

    assert load.failures() == []
    before = [o for o in load.outcomes if o.started < switched_at - 0.5]
    after = [o for o in load.outcomes if o.started > switched_at]
    assert before and {o.version for o in before} == {"1"}
    assert after and {o.version for o in after} == {"2"}, "a request sent after the switch reached v1"
    print(f"\nswitch under load: {len(load.outcomes)} requests in 3 s, 0 failed")

    pods = serving.pods("iris-v1")
    serving.scale_deployment("iris-v1", 0)
    wait_for(lambda: not any(pod.alive for pod in pods), 35, 0.1, "v1's processes to exit")
    readiness = serving.deployment_readiness("iris-v1")
    assert (readiness.desired, readiness.ready, readiness.is_ready) == (0, 0, True)
    targets = json.loads(serving.targets_file.read_text())
    assert [t["labels"]["__meta_kubernetes_pod_label_mlcp_dev_version"] for t in targets] == ["2"]

    fresh = LocalServing(tmp_path / "serving", repo_root=ROOT)
    assert fresh.service_selector("iris") == version_selector("iris", 2)
    assert fresh.deployment_readiness("iris-v2").is_ready
    assert fresh.service_url("iris") == serving.service_url("iris")

    # Rollback to the version that was scaled away: bring it back, then switch under load.
    fresh.scale_deployment("iris-v1", 2)
    wait_ready(fresh, "iris-v1")
    with Load(router_port(serving, "iris"), clients=4) as load:
        time.sleep(1.0)
        assert fresh.switch_service_selector("iris", version_selector("iris", 1)) is True
        switched_at = time.monotonic()
        time.sleep(1.0)
    assert load.failures() == []
    assert {o.version for o in load.outcomes if o.started > switched_at} == {"1"}


@pytest.mark.slow
def test_dead_and_draining_processes_lose_no_request_and_are_restarted(serving: LocalServing, tmp_path: Path) -> None:
    v1 = serving_version(tmp_path, 1, replicas=2)
    serving.apply(render_deployment(v1, CONFIG))
    serving.apply(render_service("iris", 1, CONFIG))
    wait_ready(serving, "iris-v1")
    port = router_port(serving, "iris")

    with Load(port, clients=4) as load:
        time.sleep(0.5)
        victim = serving.pods("iris-v1")[0]
        os.kill(victim.pid, signal.SIGKILL)
        wait_for(lambda: serving.deployment_readiness("iris-v1").ready == 1, 5, 0.05, "readiness to drop")
        assert not serving.deployment_readiness("iris-v1").is_ready
        time.sleep(0.5)
    # A request whose answer had started when the process died is not retried (it may have run):
    # at most the requests in flight on that process fail, with 502; every other one is retried.
    failures = load.failures()
    assert len(failures) <= load.clients and {o.status for o in failures} <= {502}, failures

    wait_for(lambda: not victim.alive, 5, 0.05, "the process to be gone")
    serving.apply(render_deployment(v1, CONFIG))  # apply restarts what died
    pods = serving.pods("iris-v1")
    assert victim.pod not in [pod.pod for pod in pods] and len(pods) == 2
    wait_ready(serving, "iris-v1")

    with Load(port, clients=4) as load:
        time.sleep(0.5)
        serving.scale_deployment("iris-v1", 1)  # SIGTERM: the process drains under traffic
        time.sleep(1.5)
    assert load.failures() == [], "a draining process made requests fail"
    with urllib.request.urlopen(serving.service_url("iris") + "/_router/status", timeout=5) as reply:
        print(f"\nrouter counts after a kill and a drain: {json.loads(reply.read())['counts']}")
    assert len(serving.pods("iris-v1")) == 1

    fresh = LocalServing(tmp_path / "serving", repo_root=ROOT)
    victim = fresh.pods("iris-v1")[0]
    os.kill(victim.pid, signal.SIGKILL)
    wait_for(lambda: fresh.deployment_readiness("iris-v1").ready == 0, 5, 0.05, "readiness to drop")
    wait_for(lambda: not victim.alive, 5, 0.05, "the process to be gone")  # it stops answering first
    fresh.scale_deployment("iris-v1", 2)  # scale restarts what died, too
    wait_ready(serving, "iris-v1")

    serving.fault("iris-v1", 1.0)
    assert invoke(port)[0] == 500
    serving.fault("iris-v1", 0.0)
    assert invoke(port)[0] == 200

    started = all_pids(serving)
    serving.stop_all()
    assert not any(process_alive(pid, start) for pid, start in started)
    assert serving.deployment_readiness("iris-v1").ready == 0


@pytest.mark.slow
def test_a_dead_model_server_is_restarted_in_its_pod_with_crash_loop_back_off(
    serving: LocalServing, tmp_path: Path
) -> None:
    """The kubelet's part, with nothing applied or scaled: the first death is restarted at once, the
    next after the back-off, and the thread `start_kubelet` runs does it on its own."""
    serving.restart_backoff = (2.0, 20.0)
    serving.apply(render_deployment(serving_version(tmp_path, 1, replicas=1), CONFIG))
    serving.apply(render_service("iris", 1, CONFIG))
    wait_ready(serving, "iris-v1")
    port = router_port(serving, "iris")

    def kill(pod: object) -> None:
        os.kill(pod.pid, signal.SIGKILL)  # type: ignore[attr-defined]
        wait_for(lambda: not pod.alive, 5, 0.05, "the process to be gone")  # type: ignore[attr-defined]

    (first,) = serving.pods("iris-v1")
    kill(first)
    now = time.time()
    assert serving.restart_dead(now=now) == 1  # the first death: at once
    (second,) = serving.pods("iris-v1")
    assert (second.pod, second.restarts) == (first.pod, 1) and second.pid != first.pid
    wait_ready(serving, "iris-v1")
    assert invoke(port)[0] == 200  # the router finds the restarted process
    assert serving.deployment_readiness("iris-v1").desired == 1

    kill(second)
    assert serving.restart_dead(now=now + 1) == 0  # seen dead: back off 2 s
    assert serving.restart_dead(now=now + 2.9) == 0
    assert serving.restart_dead(now=now + 3.0) == 1
    (third,) = serving.pods("iris-v1")
    assert third.restarts == 2
    wait_ready(serving, "iris-v1")

    serving.start_kubelet(every_seconds=0.2)
    kill(third)  # restarted by the thread after 4 s
    wait_for(lambda: serving.pods("iris-v1")[0].restarts == 3, 15, 0.1, "the kubelet to restart it")
    wait_ready(serving, "iris-v1")
    assert invoke(port)[0] == 200


@pytest.mark.slow
def test_a_pod_runs_the_model_server_workers_its_cpu_request_pays_for(serving: LocalServing, tmp_path: Path) -> None:
    """The manifest's env is the process's env: MLCP_WORKERS from the CPU request, as on EKS."""
    v1 = dataclasses.replace(serving_version(tmp_path, 1), cpu_request="2", cpu_limit="2")
    serving.apply(render_deployment(v1, CONFIG))
    serving.apply(render_service("iris", 1, CONFIG))
    wait_ready(serving, "iris-v1")
    pod = serving.pods("iris-v1")[0]
    environ = dict(
        item.split("=", 1) for item in Path(f"/proc/{pod.pid}/environ").read_text().split("\0") if "=" in item
    )
    assert environ["MLCP_WORKERS"] == "2" and "MLCP_ENABLE_FAULT_INJECTION" not in environ
    children = Path(f"/proc/{pod.pid}/task/{pod.pid}/children").read_text().split()
    assert len(children) == 2, "a supervisor and its two workers"
    assert invoke(router_port(serving, "iris"))[0] == 200
    with pytest.raises(DependencyError, match="MLCP_WORKERS"):
        serving.fault("iris-v1", 1.0)


@pytest.mark.slow
def test_router_throughput(serving: LocalServing, tmp_path: Path) -> None:
    """Hundreds of requests per second through the router on this host's cores."""
    serving.apply(render_deployment(serving_version(tmp_path, 1, replicas=2), CONFIG))
    serving.apply(render_service("iris", 1, CONFIG))
    wait_ready(serving, "iris-v1")
    with Load(router_port(serving, "iris"), clients=8) as load:
        time.sleep(3.0)
    rate = len(load.outcomes) / 3.0
    print(f"\nrouter throughput: {rate:.0f} requests/s with 8 clients on {os.cpu_count()} cores")
    assert load.failures() == []
    assert rate > 200
