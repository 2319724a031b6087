"""Kubernetes API calls and bytes per rollout reconcile step, through the EKS adapters.

The rollout use case (control/usecases/rollouts.py: start, then reconcile_step until done) runs
with KubernetesCluster as its serving port against the checking API server of
tests/support/kube_apiserver (the adapter's own EKS token, the chart's RBAC, strict decoding).
Registry, deployment records and metrics are the in-memory fakes of tests/fakes.py (all metrics
good), so only Kubernetes calls are counted. Between steps the server's controllers settle
(Deployment → ReplicaSet → Pods, every pod ready at once; their writes are not the adapter's and
are not counted).

Two rollouts of one deployment: v1 (the first: Services, NetworkPolicy, Ingress created) and v2
(blue-green with two versions), each version's pods not ready for its first WARMUP_STEPS steps (a
model server loading its artifact: steps that wait and have nothing to change). Each step prints
its API calls by verb, the write requests, the objects a write actually changed (resourceVersion
moved) and bytes each way, against the target: no step makes more write requests than objects it
changes, and a step with nothing to change makes no write. Then what a real EKS control plane
would see for 100 deployments stepped once a second.

    .venv/bin/python benchmarks/kube_api_calls.py [--deployments-per-second 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from control.adapters.kubernetes_cluster import KubernetesCluster  # noqa: E402
from control.domain.deployments import RolloutRequest, StepRequest  # noqa: E402
from control.manifests.config import LABEL_VERSION  # noqa: E402
from control.usecases import rollouts  # noqa: E402
from tests.fakes import NOW, InMemoryRegistry, in_memory_platform  # noqa: E402
from tests.support.kube_apiserver import Identities, KubeApiServer, eks_client, eks_session, running  # noqa: E402
from tests.support.kube_apiserver.controllers import Controllers  # noqa: E402
from tests.support.lineage import register_approved  # noqa: E402

DEPLOYMENT, MODEL = "churn", "churn"
FAST = {  # seconds: the rollout's timings shortened, the same steps
    "bake_seconds": 30,
    "scale_down_delay_seconds": 60,
    "rollback_window_seconds": 0,
    "analysis_interval_seconds": 10,
    "poll_interval_seconds": 5,
}
WARMUP_STEPS = 2  # steps during which a new version's pods are running but not ready
VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


class AllGood:
    """Every analysis query answers 0.0: no errors, no latency (the checks are all `<`)."""

    def value(self, query: str) -> float | None:
        return 0.0


@dataclass
class Step:
    rollout: str
    number: int
    phase: str
    calls: Counter[str]
    writes: int
    changed: int
    bytes_in: int
    bytes_out: int
    seconds: float


def register(registry: InMemoryRegistry, run_id: str) -> int:
    return register_approved(registry, MODEL, run_id, actor="bench")


def run_rollout(
    server: KubeApiServer, controllers: Controllers, platform: Any, now: list[Any], label: str, version: int
) -> list[Step]:
    steps: list[Step] = []
    rollouts.start(platform, DEPLOYMENT, RolloutRequest(MODEL, version, FAST), "bench")
    warming = [WARMUP_STEPS]
    kubelet: Any = controllers.kubelet
    kubelet.never_ready = lambda pod: warming[0] > 0 and pod["metadata"]["labels"][LABEL_VERSION] == str(version)
    for number in range(1, 200):
        before_requests, before_version = len(server.requests), server.api.store.resource_version
        started = time.perf_counter()
        result = rollouts.reconcile_step(platform, StepRequest(DEPLOYMENT))
        seconds = time.perf_counter() - started
        made = server.requests[before_requests:]
        changed = {c.key for c in server.api.store.changes_since(before_version)}
        steps.append(
            Step(
                label,
                number,
                result.phase.value,
                Counter(VERBS[r.method] for r in made),
                sum(r.method != "GET" for r in made),
                len(changed),
                sum(r.bytes_in for r in made),
                sum(r.bytes_out for r in made),
                seconds,
            )
        )
        controllers.settle()
        warming[0] -= 1
        if result.done:
            break
        now[0] += timedelta(seconds=max(result.requeue_after, 1))
    return steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--deployments-per-second", type=int, default=100)
    args = parser.parse_args()
    identities = Identities()
    with running(identities) as server:
        cluster = KubernetesCluster(eks_client(server, eks_session(identities)))
        registry = InMemoryRegistry()
        now = [NOW]
        platform = in_memory_platform(registry=registry, serving=cluster, metrics=AllGood(), clock=lambda: now[0])
        controllers = Controllers(server.api)
        steps = run_rollout(server, controllers, platform, now, "v1", register(registry, "run-1"))
        steps += run_rollout(server, controllers, platform, now, "v2", register(registry, "run-2"))
        refused = [r for r, allowed in server.api.authorizations if not allowed]
    print(f"{'rollout':7} {'step':>4} {'phase':20} {'calls':>5} {'by verb':34} {'writes':>6} {'changed':>7} "
          f"{'sent B':>9} {'recv B':>9} {'ms':>6}  target")  # fmt: skip
    misses = 0
    for s in steps:
        verbs = " ".join(f"{v}:{n}" for v, n in sorted(s.calls.items()))
        ok = s.writes <= s.changed
        misses += not ok
        print(
            f"{s.rollout:7} {s.number:>4} {s.phase:20} {sum(s.calls.values()):>5} {verbs:34} {s.writes:>6} "
            f"{s.changed:>7} {s.bytes_in:>9} {s.bytes_out:>9} {s.seconds * 1000:>6.1f}  "
            f"{'ok' if ok else 'MISSED: more writes than objects changed'}"
        )
    v2 = [s for s in steps if s.rollout == "v2"]
    calls = [sum(s.calls.values()) for s in v2]
    sent = [s.bytes_in for s in v2]
    received = [s.bytes_out for s in v2]
    idle = [s for s in v2 if s.changed == 0]
    rate = args.deployments_per_second
    print()
    writes_when_idle = sum(s.writes for s in idle)
    print(
        f"v2 (two versions): {len(v2)} steps; calls a step median {statistics.median(calls):.0f}, max {max(calls)}; "
        f"steps with nothing to change: {len(idle)}, their writes: {writes_when_idle}"
    )
    verdict = "met on every step" if misses == 0 else f"missed on {misses} steps"
    print(
        f"target (writes <= objects changed, no write when nothing changes): {verdict}; refused by RBAC: {len(refused)}"
    )
    sent_rate, received_rate = rate * statistics.median(sent) / 1024, rate * statistics.median(received) / 1024
    print(
        f"at {rate} deployments x 1 step/s (median v2 step): {rate * statistics.median(calls):.0f} requests/s, "
        f"{sent_rate:.1f} KiB/s sent, {received_rate:.1f} KiB/s received (peak step: {rate * max(calls)} requests/s)"
    )
    return 0 if misses == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
