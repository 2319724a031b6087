"""Helpers the tests share; test modules import from here, never from each other or a conftest.

- `wait_for` (here): poll until a condition holds, or fail naming it
- `lineage`: a model version's lineage; `dead_letters`: the dead-letter queue, read in full
- `rollout_harness`: an in-memory cluster that drives the pure reconcile step
- `rollout_loop`: the serving loop end to end (S3 drop to rollback), on whichever clusters the platform runs
- `inference_artifact`, `inference_http`: a model artifact on the contract; the model server in and out of process
- `serving`, `observability`: the local serving runtime under load; Prometheus, Alertmanager and an SNS stand-in
- `tools` (repository paths, Prometheus binaries), `promql` (what rules and dashboards read),
  `alertmanager` and `addons_values` (what terraform/addons renders)
- `kube_apiserver`: a Kubernetes API server that checks what EKS checks (schemas, patches, the EKS
  token, access entries, the chart's RBAC), with controllers, for the EKS adapters; its `kubelet` runs
  pods as local processes, its `network` gives Services a proxy and Prometheus the pods, and its
  `embedded` runs the embedded platform on the EKS adapters (EmbeddedRuntime(clusters=eks_clusters));
  its `fixtures` are the server and its identities as pytest fixtures, for the modules that import them
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(predicate: Callable[[], Any], timeout: float, interval: float = 0.5, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
