"""Scrape definitions: ONE source (the PodMonitors below), two renderings.

- EKS: ``pod_monitors()`` → workloads/k8s/monitoring/podmonitor-*.yaml (``python -m
  dashboards.generate``), which terraform/addons passes to the mlcp-platform chart; prometheus-operator
  turns each into a scrape job.
- Local: ``scrape_config(monitor, ...)`` is that job as prometheus-operator generates it (the
  selector and port as ``keep`` relabelings, namespace/container/pod/job target labels, then the
  PodMonitor's own relabelings converted: sourceLabels → source_labels, targetLabel → target_label,
  ...), over file_sd targets that carry the Kubernetes meta labels (``pod_target``), so the local
  Prometheus derives ``deployment``/``mpijob`` exactly as the EKS one does.

Inference series: ``deployment`` (pod label app.kubernetes.io/name), ``namespace``, ``pod`` from the
scrape; ``model``, ``version`` from the server. Training: ``mpijob`` (the MPIJob's name), ``namespace``,
``pod``; ``model``, ``run_id`` from rank 0.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

LABELS = {
    "app.kubernetes.io/name": "mlcp",
    "app.kubernetes.io/component": "monitoring",
    "release": "kube-prometheus-stack",
}
SERVING_NAMESPACE = "ml-serving"
TRAINING_NAMESPACE = "ml-training"
INFERENCE_PORT = 8080  # the SageMaker contract's port (docs/contracts.md)
TRAINING_METRICS_PORT = 9100  # --metrics-port of rank 0 (control/manifests/training.py)
# Labels every series of a scrape job gets from the target (after relabeling).
TARGET_LABELS = {"mlcp-inference": {"deployment", "namespace", "pod"}, "mlcp-training": {"mpijob", "namespace", "pod"}}

_CAMEL_TO_SNAKE = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}
_INVALID_LABEL_CHARS = re.compile(r"[^a-zA-Z0-9_]")


def _pod_monitor(
    name: str, namespace: str, selector: dict[str, Any], port: int, relabelings: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
        "spec": {
            "namespaceSelector": {"matchNames": [namespace]},
            "selector": selector,
            "podMetricsEndpoints": [
                {
                    "portNumber": port,
                    "path": "/metrics",
                    "interval": "15s",
                    "scrapeTimeout": "10s",
                    "relabelings": relabelings,
                }
            ],
        },
    }


def pod_monitors() -> dict[str, dict[str, Any]]:
    """The PodMonitors, by file name under workloads/k8s/monitoring."""
    return {
        # Every model server pod once, whichever Service (active or preview) selects it: a
        # ServiceMonitor on either Service would miss the other version or scrape pods twice.
        # 15 s keeps four samples in the rules' 1m rate windows.
        "podmonitor-inference.yaml": _pod_monitor(
            "mlcp-inference",
            SERVING_NAMESPACE,
            {
                "matchExpressions": [
                    {"key": key, "operator": "Exists"}
                    for key in ("app.kubernetes.io/name", "mlcp.dev/model", "mlcp.dev/version")
                ]
            },
            INFERENCE_PORT,
            [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_label_app_kubernetes_io_name"],
                    "targetLabel": "deployment",
                    "action": "replace",
                }
            ],
        ),
        # Rank 0 of each MPIJob: under mpirun it runs on the first worker, which mpi-operator
        # labels job-role=worker, replica-index=0. The job name (the run id) is kept as `mpijob`.
        "podmonitor-training.yaml": _pod_monitor(
            "mlcp-training",
            TRAINING_NAMESPACE,
            {"matchLabels": {"training.kubeflow.org/job-role": "worker", "training.kubeflow.org/replica-index": "0"}},
            TRAINING_METRICS_PORT,
            [
                {
                    "sourceLabels": ["__meta_kubernetes_pod_label_training_kubeflow_org_job_name"],
                    "targetLabel": "mpijob",
                    "action": "replace",
                }
            ],
        ),
    }


def sanitize_label_name(name: str) -> str:
    """A Kubernetes label key as Prometheus meta label suffix (prometheus-operator's rule)."""
    return _INVALID_LABEL_CHARS.sub("_", name)


def convert_relabelings(relabelings: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """PodMonitor relabelings → Prometheus relabel_configs, as prometheus-operator converts them."""
    converted = []
    for relabeling in relabelings:
        unknown = set(relabeling) - set(_CAMEL_TO_SNAKE)
        if unknown:
            raise ValueError(f"relabeling fields not converted here: {sorted(unknown)}")
        config = {_CAMEL_TO_SNAKE[key]: relabeling[key] for key in _CAMEL_TO_SNAKE if key in relabeling}
        if "action" in config:
            config["action"] = str(config["action"]).lower()
        converted.append(config)
    return converted


def _selector_relabelings(selector: Mapping[str, Any]) -> list[dict[str, Any]]:
    relabelings = []
    for key, value in sorted(selector.get("matchLabels", {}).items()):
        name = sanitize_label_name(key)
        relabelings.append(
            {
                "action": "keep",
                "source_labels": [f"__meta_kubernetes_pod_label_{name}", f"__meta_kubernetes_pod_labelpresent_{name}"],
                "regex": f"({value});true",
            }
        )
    for expression in selector.get("matchExpressions", []):
        name, operator = sanitize_label_name(expression["key"]), expression["operator"]
        present = f"__meta_kubernetes_pod_labelpresent_{name}"
        if operator in ("Exists", "DoesNotExist"):
            action = "keep" if operator == "Exists" else "drop"
            relabelings.append({"action": action, "source_labels": [present], "regex": "true"})
        elif operator in ("In", "NotIn"):
            values = "|".join(expression["values"])
            relabelings.append(
                {
                    "action": "keep" if operator == "In" else "drop",
                    "source_labels": [f"__meta_kubernetes_pod_label_{name}", present],
                    "regex": f"({values});true",
                }
            )
        else:
            raise ValueError(f"selector operator {operator!r} is not a Kubernetes label selector operator")
    return relabelings


def relabel_configs(monitor: Mapping[str, Any], endpoint: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The relabel_configs prometheus-operator generates for one podMetricsEndpoint (the parts that
    select targets and name their labels; no sharding, no scrape classes)."""
    metadata = monitor["metadata"]
    relabelings = _selector_relabelings(monitor["spec"].get("selector", {}))
    if "portNumber" in endpoint:
        relabelings.append(
            {
                "action": "keep",
                "source_labels": ["__meta_kubernetes_pod_container_port_number"],
                "regex": str(endpoint["portNumber"]),
            }
        )
    relabelings += [
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"], "regex": "(Failed|Succeeded)"},
        {"target_label": "job", "replacement": f"{metadata['namespace']}/{metadata['name']}"},
    ]
    return relabelings + convert_relabelings(endpoint.get("relabelings", []))


def scrape_config(
    monitor: Mapping[str, Any], file_sd_path: str, *, interval: str | None = None, timeout: str | None = None
) -> dict[str, Any]:
    """The monitor's (single) endpoint as a Prometheus scrape job over a file_sd target file.
    interval/timeout: named parameters of the local rendering (None keeps the PodMonitor's)."""
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    metadata = monitor["metadata"]
    return {
        "job_name": f"podMonitor/{metadata['namespace']}/{metadata['name']}/0",
        "honor_labels": bool(endpoint.get("honorLabels", False)),
        "scrape_interval": interval or endpoint["interval"],
        "scrape_timeout": timeout or endpoint["scrapeTimeout"],
        "metrics_path": endpoint.get("path", "/metrics"),
        "file_sd_configs": [{"files": [file_sd_path], "refresh_interval": "5s"}],
        "relabel_configs": relabel_configs(monitor, endpoint),
    }


def pod_target(
    address: str,
    *,
    namespace: str,
    pod: str,
    container: str,
    port: int,
    labels: Mapping[str, str],
    phase: str = "Running",
) -> dict[str, Any]:
    """One file_sd target group for a local process playing a pod: the meta labels Kubernetes
    service discovery would give it (visible to relabeling, dropped after it)."""
    meta = {
        "__meta_kubernetes_namespace": namespace,
        "__meta_kubernetes_pod_name": pod,
        "__meta_kubernetes_pod_container_name": container,
        "__meta_kubernetes_pod_container_port_number": str(port),
        "__meta_kubernetes_pod_phase": phase,
    }
    for key, value in labels.items():
        meta[f"__meta_kubernetes_pod_label_{sanitize_label_name(key)}"] = value
        meta[f"__meta_kubernetes_pod_labelpresent_{sanitize_label_name(key)}"] = "true"
    return {"targets": [address], "labels": meta}
