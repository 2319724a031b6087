"""Training workers' CPU and memory use on EKS, from the pods' cAdvisor metrics in Prometheus.

kube-prometheus-stack scrapes every kubelet's cAdvisor: `container_cpu_usage_seconds_total` and
`container_memory_working_set_bytes` per namespace, pod and container. mpi-operator names the
worker pods `<job>-worker-<index>`; their container is `worker` (control/manifests/training.py).
The queries run through the same Prometheus adapter as the rollout analysis (MetricsQueries).
"""

from __future__ import annotations

import math
from datetime import datetime

from control.domain.rightsizing import TARGET_CPU_PERCENTILE, WorkerUsage
from control.ports import MetricsQueries

WORKER_CONTAINER = "worker"
RATE_WINDOW = "1m"
SUBQUERY_STEP_SECONDS = 15  # the CPU rate sampled every 15 s, as VPA's recommender samples metrics


def worker_usage_queries(namespace: str, pod: str, window_seconds: int) -> dict[str, str]:
    """The PromQL for one worker pod over the run's window: CPU p90 and max (cores), memory peak and
    how many memory samples it had (bytes, count)."""
    selector = f'namespace="{namespace}",pod="{pod}",container="{WORKER_CONTAINER}"'
    rate = f"rate(container_cpu_usage_seconds_total{{{selector}}}[{RATE_WINDOW}])"
    window = f"{window_seconds}s"
    return {
        "cpu_p90_cores": (
            f"max(quantile_over_time({TARGET_CPU_PERCENTILE}, {rate}[{window}:{SUBQUERY_STEP_SECONDS}s]))"
        ),
        "cpu_max_cores": f"max(max_over_time({rate}[{window}:{SUBQUERY_STEP_SECONDS}s]))",
        "memory_peak_bytes": f"max(max_over_time(container_memory_working_set_bytes{{{selector}}}[{window}]))",
        "samples": f"max(count_over_time(container_memory_working_set_bytes{{{selector}}}[{window}]))",
    }


class PrometheusWorkerUsage:
    """ResourceUsage on EKS: four instant queries per worker pod."""

    def __init__(self, queries: MetricsQueries, namespace: str) -> None:
        self._queries = queries
        self._namespace = namespace

    def worker_usage(self, job_name: str, *, workers: int, since: datetime, now: datetime) -> list[WorkerUsage]:
        window = max(60, math.ceil((now - since).total_seconds()))
        found = []
        for index in range(workers):
            queries = worker_usage_queries(self._namespace, f"{job_name}-worker-{index}", window)
            values = {name: self._queries.value(query) for name, query in queries.items()}
            if values["memory_peak_bytes"] is None:
                continue  # the pod never reported (never scheduled, or scraped too briefly)
            found.append(
                WorkerUsage(
                    worker=index,
                    cpu_p90_cores=values["cpu_p90_cores"] or 0.0,
                    cpu_max_cores=values["cpu_max_cores"] or 0.0,
                    memory_peak_bytes=int(values["memory_peak_bytes"]),
                    samples=int(values["samples"] or 0),
                )
            )
        return found
