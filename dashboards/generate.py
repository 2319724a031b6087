"""Generates the Grafana dashboards (dashboards/grafana/*.json) and the PrometheusRule
(workloads/k8s/monitoring/prometheusrule.yaml) from code.

    .venv/bin/python -m dashboards.generate           # regenerate
    .venv/bin/python -m dashboards.generate --check   # exit 1 if a committed file is stale

Dashboards are built with grafana-foundation-sdk (Grafana 11.6 flavour, pinned in the README).
Every query reads the metrics of docs/contracts.md, the recording rules of dashboards/rules/ or the
exporter metrics listed in dashboards/metric_inventory.yml (a test holds them to that).
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.builders import prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common as common_models
from grafana_foundation_sdk.models import dashboard as dm

from dashboards.rules import dump_yaml, prometheus_rule
from dashboards.scrape import pod_monitors

ROOT = Path(__file__).resolve().parent.parent
GRAFANA_DIR = ROOT / "dashboards" / "grafana"
PROMETHEUS_RULE_PATH = ROOT / "workloads" / "k8s" / "monitoring" / "prometheusrule.yaml"

DATASOURCE = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["mlcp"]


# ---------------------------------------------------------------------------------------------
# Small builders: a panel is a title, queries, a unit and thresholds.


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Steps:
    """Threshold steps: base colour, then (value, colour) pairs in increasing order."""

    base: str = "green"
    steps: tuple[tuple[float, str], ...] = ()

    def build(self) -> db.ThresholdsConfig:
        return (
            db.ThresholdsConfig()
            .mode(dm.ThresholdsMode.ABSOLUTE)
            .steps(
                [dm.Threshold(value=None, color=self.base)] + [dm.Threshold(value=v, color=c) for v, c in self.steps]
            )
        )


@dataclass
class Row:
    title: str
    panels: list[Any] = field(default_factory=list)


def _targets(builder: Any, queries: list[Query]) -> Any:
    for ref_id, query in zip(string.ascii_uppercase, queries, strict=False):
        target = prometheus.Dataquery().expr(query.expr).ref_id(ref_id).datasource(DATASOURCE)
        if query.legend:
            target = target.legend_format(query.legend)
        target = target.instant() if query.instant else target.range()
        builder = builder.with_target(target)
    return builder


def graph(
    title: str,
    queries: list[Query],
    unit: str,
    description: str = "",
    thresholds: Steps | None = None,
    width: int = 12,
    height: int = 8,
    min_value: float | None = None,
    max_value: float | None = None,
) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .legend(
            common_builders.VizLegendOptions()
            .display_mode(common_models.LegendDisplayMode.LIST)
            .placement(common_models.LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    if thresholds is not None:
        panel = panel.thresholds(thresholds.build()).thresholds_style(
            common_builders.GraphThresholdsStyleConfig().mode(common_models.GraphThresholdsStyleMode.DASHED)
        )
    if min_value is not None:
        panel = panel.min(min_value)
    if max_value is not None:
        panel = panel.max(max_value)
    return _targets(panel, queries)


def single(
    title: str, query: Query, unit: str, description: str = "", thresholds: Steps | None = None, width: int = 6
) -> stat.Panel:
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(4)
        .graph_mode(common_models.BigValueGraphMode.AREA)
        .color_mode(common_models.BigValueColorMode.VALUE)
        .thresholds((thresholds or Steps()).build())
    )
    return _targets(panel, [query])


def alerts_table(title: str, selector: str, width: int = 24) -> table.Panel:
    panel = (
        table.Panel()
        .title(title)
        .description("Alerts firing now (Prometheus ALERTS series); runbooks in dashboards/README.md.")
        .datasource(DATASOURCE)
        .span(width)
        .height(6)
    )
    return _targets(panel, [Query(f'ALERTS{{alertstate="firing", {selector}}}', instant=True)])


def query_variable(
    name: str, label: str, query: str, include_all: bool = True, default: str | None = None
) -> db.QueryVariable:
    variable = (
        db.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(query)
        .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dm.VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(include_all)
    )
    if include_all:
        variable = variable.all_value(".*")
    if default is not None:
        variable = variable.current(dm.VariableOption(text=default, value=default, selected=True))
    return variable


def datasource_variable() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def annotation(name: str, expr: str, color: str) -> db.AnnotationQuery:
    return db.AnnotationQuery().name(name).datasource(DATASOURCE).enable(True).icon_color(color).expr(expr)


def assemble(
    uid: str,
    title: str,
    description: str,
    variables: list[Any],
    rows: list[Row],
    annotations: list[db.AnnotationQuery] = (),  # type: ignore[assignment]
) -> dict[str, Any]:
    builder = (
        db.Dashboard(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .editable()
        .refresh("30s")
        .time("now-3h", "now")
        .timezone("browser")
        .tooltip(dm.DashboardCursorSync.CROSSHAIR)
        .with_variable(datasource_variable())
    )
    for variable in variables:
        builder = builder.with_variable(variable)
    # Grafana's own annotations (manual ones, alert state changes), as every new dashboard has.
    builder = builder.annotation(
        db.AnnotationQuery()
        .name("Annotations & Alerts")
        .datasource(dm.DataSourceRef(type_val="grafana", uid="-- Grafana --"))
        .enable(True)
        .hide(True)
        .icon_color("rgba(0, 211, 255, 1)")
        .type("dashboard")
        .built_in(1)
    )
    for item in annotations:
        builder = builder.annotation(item)
    for row in rows:
        builder = builder.with_row(db.Row(row.title))
        for panel in row.panels:
            builder = builder.with_panel(panel)
    document = json.loads(json.dumps(builder.build(), cls=JSONEncoder))
    return _normalise(document)


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Stable panel ids, and no interval-variable fields on variables of other types."""
    for number, panel in enumerate(document.get("panels", []), start=1):
        panel["id"] = number
    for variable in document.get("templating", {}).get("list", []):
        if variable.get("type") != "interval":
            for key in ("auto", "auto_count", "auto_min"):
                variable.pop(key, None)
    return document


# ---------------------------------------------------------------------------------------------
# The dashboards.

SERVING = 'namespace=~"$namespace", deployment=~"$deployment", model=~"$model"'
BY_VERSION = "deployment, model, version"


def inference_dashboard() -> dict[str, Any]:
    requests = f"mlcp_deployment:inference_requests:rate1m{{{SERVING}}}"
    errors = f"mlcp_deployment:inference_errors:rate1m{{{SERVING}}}"

    def share_of(rates: str) -> str:
        return f"sum by (deployment, version) ({rates})\n  / on (deployment) group_left\nsum by (deployment) ({rates})"

    share = share_of(requests)
    share_before = share_of(f"{requests} offset 2m")
    error_steps = Steps("green", ((0.01, "orange"), (0.05, "red")))
    latency_steps = Steps("green", ((0.25, "orange"), (0.5, "red")))
    rows = [
        Row(
            "Overview",
            [
                single("Requests/s", Query(f"sum({requests})"), "reqps"),
                single(
                    "Error ratio",
                    Query(f"sum({errors}) / sum({requests})"),
                    "percentunit",
                    "5xx answers over all answers, last minute. Alert at 5%.",
                    error_steps,
                ),
                single(
                    "Worst p99 latency",
                    Query(f"max(mlcp_deployment:inference_latency_seconds:p99_1m{{{SERVING}}})"),
                    "s",
                    "The slowest version's 99th percentile. Alert at 500 ms.",
                    latency_steps,
                ),
                single(
                    "Model servers loaded",
                    Query(f"sum(mlcp_inference_model_loaded{{{SERVING}}})"),
                    "short",
                    "Model server processes that have loaded their model (GET /ping answers 200).",
                ),
            ],
        ),
        Row(
            "Traffic by version",
            [
                graph(
                    "Requests/s by version",
                    [Query(f"sum by ({BY_VERSION}) ({requests})", "{{deployment}} v{{version}}")],
                    "reqps",
                ),
                graph(
                    "Traffic share: active vs preview version",
                    [Query(share, "{{deployment}} v{{version}}")],
                    "percentunit",
                    "The active Service sends all user traffic to one version; a preview version only gets test "
                    "traffic. During a switch the shares cross; after a rollback they cross back.",
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "Error ratio by version",
                    [
                        Query(
                            f"mlcp_deployment:inference_error_ratio:rate1m{{{SERVING}}}", "{{deployment}} v{{version}}"
                        )
                    ],
                    "percentunit",
                    "Alert MlcpInferenceHighErrorRatio at 5% for 2 minutes.",
                    error_steps,
                    min_value=0,
                ),
                graph(
                    "Answers by status code",
                    [
                        Query(
                            f"sum by (code) (rate(mlcp_inference_requests_total{{{SERVING}}}[$__rate_interval]))",
                            "{{code}}",
                        )
                    ],
                    "reqps",
                ),
            ],
        ),
        Row(
            "Latency",
            [
                graph(
                    "Latency p50 / p95 / p99 by version",
                    [
                        Query(
                            f"mlcp_deployment:inference_latency_seconds:p50_1m{{{SERVING}}}",
                            "p50 {{deployment}} v{{version}}",
                        ),
                        Query(
                            f"mlcp_deployment:inference_latency_seconds:p95_1m{{{SERVING}}}",
                            "p95 {{deployment}} v{{version}}",
                        ),
                        Query(
                            f"mlcp_deployment:inference_latency_seconds:p99_1m{{{SERVING}}}",
                            "p99 {{deployment}} v{{version}}",
                        ),
                    ],
                    "s",
                    "Alert MlcpInferenceHighLatencyP99 when p99 exceeds 500 ms for 5 minutes.",
                    latency_steps,
                    width=16,
                ),
                graph(
                    "In-flight requests by version",
                    [
                        Query(
                            f"sum by ({BY_VERSION}) (mlcp_inference_in_flight_requests{{{SERVING}}})",
                            "{{deployment}} v{{version}}",
                        )
                    ],
                    "short",
                    width=8,
                ),
                graph(
                    "Micro-batch size: invocations per forward pass",
                    [
                        Query(
                            f"sum by ({BY_VERSION}) (rate(mlcp_inference_batch_size_sum{{{SERVING}}}[$__rate_interval]))\n"  # noqa: E501
                            f"  / sum by ({BY_VERSION}) (rate(mlcp_inference_batch_size_count{{{SERVING}}}[$__rate_interval]))",  # noqa: E501
                            "mean {{deployment}} v{{version}}",
                        ),
                        Query(
                            f"histogram_quantile(0.95, sum by ({BY_VERSION}, le) "
                            f"(rate(mlcp_inference_batch_size_bucket{{{SERVING}}}[$__rate_interval])))",
                            "p95 {{deployment}} v{{version}}",
                        ),
                    ],
                    "short",
                    "Concurrent invocations that shared one forward pass of the model (1: a request ran alone). "
                    "It grows with concurrency; the model's cost per request falls with it.",
                    min_value=0,
                    width=24,
                ),
            ],
        ),
        Row(
            "Model and pods",
            [
                graph(
                    "Prediction share by class",
                    [
                        Query(
                            f"mlcp_deployment:inference_prediction_share:rate10m{{{SERVING}}}",
                            "v{{version}} class {{class}}",
                        )
                    ],
                    "percentunit",
                    "Share of each predicted class over 10 minutes. MlcpInferencePredictionDrift fires when a share "
                    "moves by more than 20 points against the same version an hour earlier.",
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "Pods not ready by version (kube-state-metrics)",
                    [
                        Query(
                            f'count by ({BY_VERSION}) ((kube_pod_status_ready{{namespace=~"$namespace", condition="true"}} == 0)\n'  # noqa: E501
                            f"  * on (namespace, pod) group_left (deployment, model, version) "
                            f'mlcp:inference_pod_labels{{deployment=~"$deployment", model=~"$model"}})',
                            "{{deployment}} v{{version}}",
                        )
                    ],
                    "short",
                    thresholds=Steps("green", ((1, "red"),)),
                    min_value=0,
                ),
                alerts_table("Firing alerts for these deployments", 'deployment=~"$deployment"'),
            ],
        ),
    ]
    annotations = [
        annotation(
            "Version started",
            'max by (deployment, version) (mlcp_inference_model_loaded{deployment=~"$deployment"} > 0)\n'
            'unless max by (deployment, version) (mlcp_inference_model_loaded{deployment=~"$deployment"} offset 2m > 0)',  # noqa: E501
            "blue",
        ),
        annotation(
            "Traffic switched (promotion or rollback)",
            f"({share}) > 0.5\nunless on (deployment, version)\n({share_before}) > 0.5",
            "orange",
        ),
        annotation(
            "Rollback-triggering alert",
            'ALERTS{alertstate="firing", severity="critical", deployment=~"$deployment"}',
            "red",
        ),
    ]
    variables = [
        query_variable(
            "namespace",
            "Namespace",
            "label_values(mlcp_inference_requests_total, namespace)",
            include_all=False,
            default="ml-serving",
        ),
        query_variable(
            "deployment",
            "Deployment",
            'label_values(mlcp_inference_requests_total{namespace=~"$namespace"}, deployment)',
        ),
        query_variable(
            "model",
            "Model",
            'label_values(mlcp_inference_requests_total{namespace=~"$namespace", deployment=~"$deployment"}, model)',
        ),
    ]
    return assemble(
        "mlcp-inference",
        "MLCP / Inference",
        "Model servers by deployment and version: traffic, errors, latency, rollouts and rollbacks.",
        variables,
        rows,
        annotations,
    )


TRAINING = 'model=~"$model", run_id=~"$run_id"'


def training_dashboard() -> dict[str, Any]:
    pod_run = 'mlcp:training_pod_run{namespace=~"$namespace", run_id=~"$run_id"}'
    rows = [
        Row(
            "Progress",
            [
                single(
                    "Epoch",
                    Query(f"max by (run_id) (mlcp_training_epoch{{{TRAINING}}})", instant=True),
                    "short",
                    "Current epoch of each selected run (rank 0).",
                ),
                single("Samples/s", Query(f"sum(mlcp_training_samples_per_second{{{TRAINING}}})"), "short"),
                single(
                    "Runs with a failed pod",
                    Query(
                        f'count(count by (run_id) ((kube_pod_status_phase{{namespace=~"$namespace", phase="Failed"}} == 1)'  # noqa: E501
                        f" * on (namespace, pod) group_left (run_id) {pod_run})) or vector(0)"
                    ),
                    "short",
                    thresholds=Steps("green", ((1, "red"),)),
                ),
                single(
                    "Mean GPU utilisation",
                    Query('avg(mlcp_run:gpu_utilisation:avg{run_id=~"$run_id"})'),
                    "percent",
                    "DCGM exporter, GPUs held by the selected runs. Alert under 10% for 15 minutes.",
                    Steps("red", ((10, "orange"), (50, "green"))),
                ),
            ],
        ),
        Row(
            "Learning curves",
            [
                graph(
                    "Loss by run and split",
                    [Query(f"mlcp_training_loss{{{TRAINING}}}", "{{run_id}} {{split}}")],
                    "none",
                    "MlcpTrainingLossNaN fires on NaN; MlcpTrainingLossNotDecreasing when 30 minutes bring no improvement.",  # noqa: E501
                ),
                graph(
                    "Accuracy by run and split",
                    [Query(f"mlcp_training_accuracy{{{TRAINING}}}", "{{run_id}} {{split}}")],
                    "percentunit",
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "Samples/s by run",
                    [Query(f"mlcp_training_samples_per_second{{{TRAINING}}}", "{{run_id}}")],
                    "short",
                ),
                graph(
                    "Time per epoch",
                    [
                        Query(
                            f"rate(mlcp_training_epoch_duration_seconds_sum{{{TRAINING}}}[$__rate_interval])\n"
                            f"  / rate(mlcp_training_epoch_duration_seconds_count{{{TRAINING}}}[$__rate_interval])",
                            "{{run_id}}",
                        )
                    ],
                    "s",
                ),
                graph(
                    "Steps/s by run",
                    [Query(f"rate(mlcp_training_steps_total{{{TRAINING}}}[$__rate_interval])", "{{run_id}}")],
                    "short",
                ),
            ],
        ),
        Row(
            "GPUs (DCGM exporter)",
            [
                graph(
                    "GPU utilisation by run",
                    [Query('mlcp_run:gpu_utilisation:avg{run_id=~"$run_id"}', "{{run_id}}")],
                    "percent",
                    thresholds=Steps("red", ((10, "green"),)),
                    min_value=0,
                    max_value=100,
                ),
                graph(
                    "GPU memory used by pod",
                    [Query('sum by (pod) (DCGM_FI_DEV_FB_USED{namespace=~"$namespace"})', "{{pod}}")],
                    "decmbytes",
                    "Frame buffer in use (MiB) on the GPUs each training pod holds.",
                ),
                graph(
                    "GPU memory used ratio by pod",
                    [
                        Query(
                            'sum by (pod) (DCGM_FI_DEV_FB_USED{namespace=~"$namespace"})\n'
                            '  / (sum by (pod) (DCGM_FI_DEV_FB_USED{namespace=~"$namespace"}) + sum by (pod) (DCGM_FI_DEV_FB_FREE{namespace=~"$namespace"}))',  # noqa: E501
                            "{{pod}}",
                        )
                    ],
                    "percentunit",
                    thresholds=Steps("green", ((0.9, "red"),)),
                    min_value=0,
                    max_value=1,
                ),
            ],
        ),
        Row(
            "Job status",
            [
                graph(
                    "Training pods by phase",
                    [
                        Query(
                            f'count by (phase) ((kube_pod_status_phase{{namespace=~"$namespace"}} == 1) * on (namespace, pod) group_left (run_id) {pod_run})',  # noqa: E501
                            "{{phase}}",
                        )
                    ],
                    "short",
                ),
                graph(
                    "Training pipeline executions (Step Functions)",
                    [
                        Query(
                            'sum(aws_states_executions_succeeded_sum{state_machine_arn=~".*training.*"})', "succeeded"
                        ),
                        Query('sum(aws_states_executions_failed_sum{state_machine_arn=~".*training.*"})', "failed"),
                    ],
                    "short",
                ),
                alerts_table("Firing training alerts", 'alertname=~"MlcpTraining.*"'),
            ],
        ),
    ]
    variables = [
        query_variable(
            "namespace",
            "Namespace",
            "label_values(mlcp_training_epoch, namespace)",
            include_all=False,
            default="ml-training",
        ),
        query_variable("model", "Model", 'label_values(mlcp_training_epoch{namespace=~"$namespace"}, model)'),
        query_variable(
            "run_id", "Run", 'label_values(mlcp_training_epoch{namespace=~"$namespace", model=~"$model"}, run_id)'
        ),
    ]
    return assemble(
        "mlcp-training",
        "MLCP / Training",
        "Training runs: learning curves, throughput, GPU use and job status.",
        variables,
        rows,
    )


def infrastructure_dashboard() -> dict[str, Any]:
    pool = 'pool=~"$pool"'
    rows = [
        Row(
            "Node groups",
            [
                single("Nodes", Query(f"count(mlcp:node_pool{{{pool}}})"), "short"),
                single(
                    "Nodes not ready",
                    Query(
                        f'count((max by (node) (kube_node_status_condition{{condition="Ready", status="true"}}) == 0)'
                        f" * on (node) group_left (pool) mlcp:node_pool{{{pool}}}) or vector(0)"
                    ),
                    "short",
                    thresholds=Steps("green", ((1, "red"),)),
                ),
                single(
                    "Pending pods",
                    Query('sum(kube_pod_status_phase{phase="Pending", namespace=~"$namespace"})'),
                    "short",
                    thresholds=Steps("green", ((1, "orange"), (10, "red"))),
                ),
                single(
                    "Estimated cost per hour",
                    Query(f"sum(mlcp_pool:cost_usd_per_hour:sum{{{pool}}})"),
                    "currencyUSD",
                    "List price per instance type (recording rule mlcp:instance_price_usd_per_hour); spot at 35%.",
                ),
                graph(
                    "CPU utilisation by node group",
                    [Query(f"mlcp_pool:cpu_utilisation:ratio{{{pool}}}", "{{pool}}")],
                    "percentunit",
                    thresholds=Steps("green", ((0.8, "orange"), (0.9, "red"))),
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "Memory utilisation by node group",
                    [Query(f"mlcp_pool:memory_utilisation:ratio{{{pool}}}", "{{pool}}")],
                    "percentunit",
                    thresholds=Steps("green", ((0.8, "orange"), (0.9, "red"))),
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "Nodes by node group and capacity type",
                    [Query(f"count by (pool, capacity_type) (mlcp:node_pool{{{pool}}})", "{{pool}} {{capacity_type}}")],
                    "short",
                ),
                graph(
                    "Cost per hour by node group",
                    [Query(f"mlcp_pool:cost_usd_per_hour:sum{{{pool}}}", "{{pool}}")],
                    "currencyUSD",
                ),
            ],
        ),
        Row(
            "Scheduling and autoscaling",
            [
                graph(
                    "Pending pods by namespace",
                    [
                        Query(
                            'sum by (namespace) (kube_pod_status_phase{phase="Pending", namespace=~"$namespace"})',
                            "{{namespace}}",
                        )
                    ],
                    "short",
                ),
                graph(
                    "Cluster autoscaler: unschedulable pods and nodes",
                    [
                        Query("cluster_autoscaler_unschedulable_pods_count", "unschedulable pods"),
                        Query('sum(cluster_autoscaler_nodes_count{state="ready"})', "ready nodes"),
                    ],
                    "short",
                ),
                graph(
                    "Cluster autoscaler: scale-ups and scale-downs",
                    [
                        Query(
                            "sum(increase(cluster_autoscaler_scaled_up_nodes_total[$__rate_interval]))", "nodes added"
                        ),
                        Query(
                            "sum(increase(cluster_autoscaler_scaled_down_nodes_total[$__rate_interval]))",
                            "nodes removed",
                        ),
                    ],
                    "short",
                ),
                graph(
                    "Spot interruption warnings",
                    [
                        Query(
                            'sum(aws_events_triggered_rules_sum{rule_name=~".*spot-interruption.*"})',
                            "interruption warnings",
                        )
                    ],
                    "short",
                    "EventBridge rule on 'EC2 Spot Instance Interruption Warning' (CloudWatch exporter, AWS/Events).",
                ),
            ],
        ),
        Row(
            "Storage",
            [
                graph(
                    "Volume usage by claim",
                    [
                        Query(
                            '1 - kubelet_volume_stats_available_bytes{namespace=~"$namespace"} / kubelet_volume_stats_capacity_bytes{namespace=~"$namespace"}',  # noqa: E501
                            "{{namespace}}/{{persistentvolumeclaim}}",
                        )
                    ],
                    "percentunit",
                    thresholds=Steps("green", ((0.8, "orange"), (0.9, "red"))),
                    min_value=0,
                    max_value=1,
                ),
                graph(
                    "EFS burst credit balance",
                    [Query("aws_efs_burst_credit_balance_minimum", "{{file_system_id}}")],
                    "bytes",
                    "MlcpEfsBurstCreditsLow fires under 0.5 TiB.",
                    Steps("red", ((0.5 * 1024**4, "green"),)),
                    min_value=0,
                ),
                alerts_table("Firing infrastructure alerts", 'alertname=~"MlcpNode.*|MlcpVolume.*|MlcpEfs.*"'),
            ],
        ),
    ]
    variables = [
        query_variable("pool", "Node group", "label_values(mlcp:node_pool, pool)"),
        query_variable("namespace", "Namespace", "label_values(kube_pod_status_phase, namespace)"),
    ]
    return assemble(
        "mlcp-infrastructure",
        "MLCP / Infrastructure",
        "The EKS cluster by node group: utilisation, scheduling, autoscaling, spot, cost and storage.",
        variables,
        rows,
    )


def control_plane_dashboard() -> dict[str, Any]:
    functions = 'function_name=~"mlcp-$stage-.*"'
    machines = 'state_machine_arn=~".*mlcp-$stage-.*"'

    def executions(kind: str) -> list[Query]:
        return [
            Query(
                f'sum(aws_states_executions_{status}_sum{{{machines}, state_machine_arn=~".*{kind}.*"}})',
                status.replace("_", " "),
            )
            for status in ("started", "succeeded", "failed", "timed_out", "aborted")
        ]

    rows = [
        Row(
            "Pipelines (Step Functions)",
            [
                graph("Training pipeline executions by status", executions("training"), "short", width=12),
                graph("Rollout executions by status", executions("rollout"), "short", width=12),
            ],
        ),
        Row(
            "Functions (Lambda)",
            [
                graph(
                    "Errors by function",
                    [Query(f"sum by (function_name) (aws_lambda_errors_sum{{{functions}}})", "{{function_name}}")],
                    "short",
                    thresholds=Steps("green", ((1, "red"),)),
                    min_value=0,
                ),
                graph(
                    "Invocations by function",
                    [Query(f"sum by (function_name) (aws_lambda_invocations_sum{{{functions}}})", "{{function_name}}")],
                    "short",
                ),
                graph(
                    "Duration by function (average and p99)",
                    [
                        Query(f"aws_lambda_duration_average{{{functions}}}", "avg {{function_name}}"),
                        Query(f"aws_lambda_duration_p99{{{functions}}}", "p99 {{function_name}}"),
                    ],
                    "ms",
                ),
                graph(
                    "Throttles by function",
                    [Query(f"sum by (function_name) (aws_lambda_throttles_sum{{{functions}}})", "{{function_name}}")],
                    "short",
                    thresholds=Steps("green", ((1, "orange"),)),
                ),
                graph(
                    "Dead-letter queue depth",
                    [
                        Query(
                            'aws_sqs_approximate_number_of_messages_visible_maximum{queue_name=~"mlcp-$stage-.*"}',
                            "{{queue_name}}",
                        )
                    ],
                    "short",
                    "Events the functions gave up on; each one is recorded in the registry as DEADLETTER#.",
                    Steps("green", ((1, "red"),)),
                ),
            ],
        ),
        Row(
            "Registry and rollouts",
            [
                graph(
                    "Model versions registered",
                    [
                        Query(
                            'sum by (model) (mlplatform_model_version_registered_sum{service=~"mlcp-$stage"})',
                            "{{model}}",
                        )
                    ],
                    "short",
                    "Counted by the register_model task (CloudWatch namespace MLPlatform).",
                ),
                graph(
                    "Rollbacks by deployment",
                    [Query('sum by (deployment) (mlplatform_rollback_sum{service=~"mlcp-$stage"})', "{{deployment}}")],
                    "short",
                    thresholds=Steps("green", ((1, "red"),)),
                ),
                graph(
                    "Deployment alerts firing",
                    [
                        Query(
                            'count by (deployment, alertname) (ALERTS{alertstate="firing", deployment!=""})',
                            "{{deployment}} {{alertname}}",
                        )
                    ],
                    "short",
                    "Alerts Alertmanager delivers to the control plane's /alerts/alertmanager route.",
                ),
            ],
        ),
    ]
    variables = [
        query_variable(
            "stage",
            "Stage",
            'label_values(aws_lambda_invocations_sum{function_name=~"mlcp-.*"}, function_name)',
            include_all=False,
        ).regex("/^mlcp-([a-z0-9]+)-/"),
    ]
    return assemble(
        "mlcp-control-plane",
        "MLCP / Control plane",
        "The control plane on AWS: Step Functions pipelines, Lambda functions, registry versions, rollbacks.",
        variables,
        rows,
    )


DASHBOARDS: dict[str, Callable[[], dict[str, Any]]] = {
    "training": training_dashboard,
    "inference": inference_dashboard,
    "infrastructure": infrastructure_dashboard,
    "control-plane": control_plane_dashboard,
}


def render_dashboard(name: str) -> str:
    return json.dumps(DASHBOARDS[name](), indent=2, sort_keys=True) + "\n"


def rendered_files() -> dict[Path, str]:
    files = {GRAFANA_DIR / f"{name}.json": render_dashboard(name) for name in DASHBOARDS}
    header = "# Generated by `python -m dashboards.generate` from dashboards/rules/*.yml. Do not edit.\n"
    files[PROMETHEUS_RULE_PATH] = header + dump_yaml(prometheus_rule())
    monitor_header = "# Generated by `python -m dashboards.generate` from dashboards/scrape.py. Do not edit.\n"
    for filename, monitor in pod_monitors().items():
        files[PROMETHEUS_RULE_PATH.parent / filename] = monitor_header + dump_yaml(monitor)
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail if a committed file differs from the generator")
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered_files().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print("stale, run `python -m dashboards.generate`: " + ", ".join(map(str, stale)), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
