"""The embedded platform on the EKS adapters vs on its local clusters (issue 12, step 5).

1. Startup: `EmbeddedRuntime(...).start()` as `make demo` starts it (Prometheus and Alertmanager
   included), with its local clusters and with `clusters=eks_clusters` (the checking API server,
   its controllers, the process kubelet, a proxy per Service): seconds to ready.
2. Two blue-green rollouts (v1, then v2 with two versions) on real model-server processes, driven
   by the rollout use case on the real clock (in-memory registry and records, all metrics good,
   artifacts in an embedded S3), serving through LocalServing and through KubernetesCluster:
   wall time per rollout, reconcile steps, and for the EKS path the API calls per step (all, and
   writes) as the server logged them.

    .venv/bin/python benchmarks/eks_loop.py
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "functions"))

import boto3  # noqa: E402
from moto.server import ThreadedMotoServer  # noqa: E402

from control.adapters.kubernetes_cluster import KubernetesCluster  # noqa: E402
from control.composition import utc_now  # noqa: E402
from control.domain.deployments import RolloutRequest, StepRequest  # noqa: E402
from control.local.external_clusters import ClusterContext  # noqa: E402
from control.local.processes import exit_on_sigterm, free_port  # noqa: E402
from control.local.serving import LocalServing  # noqa: E402
from control.usecases import rollouts  # noqa: E402
from tests.fakes import InMemoryRegistry, in_memory_platform  # noqa: E402
from tests.support.inference_artifact import write_artifact  # noqa: E402
from tests.support.kube_apiserver.embedded import EksClusters  # noqa: E402
from tests.support.lineage import register_approved  # noqa: E402

TIMINGS = {"bake_seconds": 2, "scale_down_delay_seconds": 2, "rollback_window_seconds": 0,
           "analysis_interval_seconds": 1, "poll_interval_seconds": 1, "ready_timeout_seconds": 180}  # fmt: skip
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


class AllGood:
    def value(self, query: str) -> float | None:
        return 0.0


def startup(eks: bool) -> float:
    from control.local.runtime import EmbeddedRuntime
    from tests.support.kube_apiserver.embedded import eks_clusters

    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        runtime = EmbeddedRuntime(Path(folder), stage="eks" if eks else "bench", clusters=eks_clusters if eks else None)
        runtime.start()
        seconds = time.perf_counter() - started
        runtime.stop()
    return seconds


def register(registry: InMemoryRegistry, s3: Any, folder: Path, seed: int) -> int:
    artifact = write_artifact(folder, seed=seed)
    for name in ("model.pt", "metadata.json"):
        s3.put_object(Bucket="artifacts", Key=f"models/iris/run-{seed}/{name}", Body=(folder / name).read_bytes())
    return register_approved(
        registry, "iris", f"run-{seed}", actor="bench",
        artifact_uri=f"s3://artifacts/models/iris/run-{seed}/model.pt", artifact_sha256=artifact.sha256,
    )  # fmt: skip


def rollouts_on(serving: Any, s3: Any, folder: Path, requests: list[Any] | None) -> list[dict[str, Any]]:
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry, serving=serving, metrics=AllGood(), clock=utc_now)
    results = []
    for seed in (1, 2):
        version = register(registry, s3, folder / f"v{seed}", seed)
        started = time.perf_counter()
        rollouts.start(platform, "iris", RolloutRequest("iris", version, TIMINGS), "bench")
        steps: list[Counter[str]] = []
        while True:
            before = len(requests) if requests is not None else 0
            result = rollouts.reconcile_step(platform, StepRequest("iris"))
            if requests is not None:
                steps.append(Counter(r.method for r in requests[before:]))
            if result.done:
                break
            time.sleep(min(float(result.requeue_after), 0.5))
        results.append({"version": version, "phase": result.phase.value, "seconds": time.perf_counter() - started,
                        "steps": steps})  # fmt: skip
    return results


def main() -> int:
    exit_on_sigterm()  # a stopped run stops the platform it started
    print("startup (seconds, EmbeddedRuntime.start with Prometheus and Alertmanager)")
    local_start, eks_start = startup(eks=False), startup(eks=True)
    print(f"  local clusters {local_start:6.2f}   EKS adapters {eks_start:6.2f}   ratio {eks_start / local_start:.2f}")

    port = free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    moto.start()
    endpoint = f"http://127.0.0.1:{port}"
    env = {"AWS_ENDPOINT_URL": endpoint, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")  # fmt: skip
    s3.create_bucket(Bucket="artifacts")
    try:
        with tempfile.TemporaryDirectory() as folder:
            local = LocalServing(Path(folder) / "serving", repo_root=REPO, env=env)
            try:
                local_results = rollouts_on(local, s3, Path(folder), None)
            finally:
                local.stop_all()
        with tempfile.TemporaryDirectory() as folder:
            context = ClusterContext(Path(folder), env, Path(folder) / "s.json", Path(folder) / "t.json")
            eks = EksClusters(context)
            try:
                assert isinstance(eks.serving, KubernetesCluster)
                eks_results = rollouts_on(eks.serving, s3, Path(folder), eks.server.requests)
            finally:
                eks.stop()
    finally:
        moto.stop()

    print("blue-green rollouts on model-server processes (real clock; bake 2 s, scale-down delay 2 s)")
    for local_run, eks_run in zip(local_results, eks_results, strict=True):
        print(
            f"  v{local_run['version']}: local {local_run['seconds']:6.1f} s ({local_run['phase']})   "
            f"EKS {eks_run['seconds']:6.1f} s ({eks_run['phase']}), {len(eks_run['steps'])} steps"
        )
        calls = [sum(step.values()) for step in eks_run["steps"]]
        writes = [sum(n for method, n in step.items() if method in WRITES) for step in eks_run["steps"]]
        print(
            f"       EKS API calls per step: median {statistics.median(calls):.0f}, max {max(calls)}; "
            f"writes per step: median {statistics.median(writes):.0f}, max {max(writes)}, "
            f"steps with no write {sum(1 for w in writes if not w)}/{len(writes)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
