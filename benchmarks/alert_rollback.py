"""Alert → rollback benchmark (issue 3, "Benchmarks"): one embedded platform, the real Prometheus
and Alertmanager, the functions in-process, the Step Functions reconcile loop run by moto.

Set-up, once: train two small versions of one model (run_training_demo), deploy v1, then keep a
constant load on the deployment's active and preview endpoints for the whole run.

(b) control-plane part alone, first (N samples): roll v2 out with a long scale_down_delay_seconds
    (v1 stays warm), wait until v2 is promoted, then POST a real Alertmanager v4 payload to
    /alerts/alertmanager with the alert token and time until the active Service's selector
    (LocalServing.service_selector) points at v1 again. No Prometheus in the path. Each sample
    also splits the time with the Step Functions execution's history (webhook → execution
    started → first Reconcile task → its end) and notes the first answer from v1 on the active
    endpoint.
(a) end to end (K repetitions): promote v2 with the local defaults (LOCAL_ROLLOUT_DEFAULTS: v1 is
    scaled down to its warm replica for the rollback window before COMPLETED; --cold sets the
    window to 0, so v1 is at 0 replicas and re-created), wait COMPLETED, inject a 50 % error fault
    into v2, and time: fault → alert firing in Prometheus (/api/v1/alerts, polled every 50 ms) →
    webhook received (the registry's 'rollback-requested' entry) → [v1 ready again, when cold] →
    selector on v1 → first answer from v1 (the load generator's X-Model-Version), and count the
    failed requests on the active endpoint from the fault to that answer. Also the RSS of the warm
    v1 process, and what the window costs on EKS. Before each repetition after the
    first, waits until v2's pre-promotion check (error ratio over [1m], model+version) no
    longer sees the previous fault, or the new rollout would be aborted by its own analysis.

    .venv/bin/python benchmarks/alert_rollback.py [--repeats 3] [--samples 10] [--rate 15] [--cold] [--json out.json]

Default run: about 8 minutes on 2 shared cores (two trainings ≈ 80 s, each v2 model-server start
≈ 5-10 s). Figures are medians with min-max over the repetitions of this one run.
"""

from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import queue
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import requests  # noqa: E402
import yaml  # noqa: E402

from control.cli.api_client import ApiClient  # noqa: E402
from control.cli.config import config_from_endpoints  # noqa: E402
from control.demo.training import console, run_training_demo  # noqa: E402
from control.local.loadgen import LoadGenerator, Sample  # noqa: E402
from control.local.processes import exit_on_sigterm  # noqa: E402
from control.local.runtime import LOCAL_ROLLOUT_DEFAULTS, EmbeddedRuntime  # noqa: E402
from control.manifests.config import LABEL_VERSION  # noqa: E402
from control.manifests.serving import deployment_name, preview_service_name  # noqa: E402
from dashboards.alertmanager import CONTROL_PLANE_RECEIVER  # noqa: E402

ALERT = "MlcpInferenceHighErrorRatio"
AT_REST = {"COMPLETED", "ROLLED_BACK", "FAILED"}
CONTROL_PLANE_TARGET_MS = 100.0  # issue 15
ANCHORS = (
    ("Flagger (default analysis interval 1 min × threshold 10)", "~10 min"),
    ("Argo Rollouts (traffic shift after abort)", "~30 s"),
)


# -- the platform and its load -------------------------------------------------------------------


def quiet() -> None:
    """The demo's console and the local API's access log are for people; a benchmark prints tables."""
    import chalice.local

    console.quiet = True
    chalice.local.ChaliceRequestHandler.log_message = lambda *args, **kwargs: None  # type: ignore[method-assign]
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@dataclass
class Load:
    """Constant load on the active endpoint (`rate`) and, once it exists, the preview one
    (`preview_rate`, for the pre-promotion analysis). The load generators run in a child process,
    so their threads do not compete for this process's GIL with the control plane under test
    (the API, moto, the in-process functions). Samples stream back every 0.1 s."""

    platform: EmbeddedRuntime
    deployment: str
    rate: float
    preview_rate: float
    workers: int = 4
    max_seconds: float = 1800.0
    samples: dict[str, list[Sample]] = field(default_factory=dict)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _process: Any = None
    _commands: Any = None
    _drain: threading.Thread | None = None

    def start(self) -> Load:
        context = multiprocessing.get_context("spawn")
        self._commands, results = context.Queue(), context.Queue()
        self._process = context.Process(target=_load_process, args=(self._commands, results), daemon=True)
        self._process.start()
        self._drain = threading.Thread(target=self._collect, args=(results,), daemon=True)
        self._drain.start()
        self.refresh()
        threading.Thread(target=self._watch, daemon=True).start()
        return self

    def refresh(self) -> None:
        endpoints = self.platform.deployment_endpoints()
        for service, rate in ((self.deployment, self.rate), (preview_service_name(self.deployment), self.preview_rate)):
            if service in endpoints and service not in self.samples and rate > 0 and answers(endpoints[service]):
                with self._lock:
                    self.samples[service] = []
                self._commands.put(("start", service, endpoints[service], rate, self.workers, self.max_seconds))

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            self.refresh()

    def _collect(self, results: Any) -> None:
        while (batch := results.get()) is not None:
            service, rows = batch
            with self._lock:
                self.samples.setdefault(service, []).extend(Sample(*row) for row in rows)

    def active_samples(self) -> list[Sample]:
        with self._lock:
            return list(self.samples.get(self.deployment, []))

    def stop(self) -> dict[str, list[Sample]]:
        self._stop.set()
        self._commands.put(("stop",))
        if self._drain is not None:
            self._drain.join(timeout=30)
        self._process.join(timeout=10)
        with self._lock:
            return {service: list(rows) for service, rows in self.samples.items()}


def _load_process(commands: Any, results: Any) -> None:
    """The child process: LoadGenerators started on command, their samples sent back in batches."""
    generators: dict[str, LoadGenerator] = {}
    sent: dict[str, int] = {}

    def flush() -> None:
        for service, generator in generators.items():
            with generator._lock:
                rows = [(s.at, s.status, s.latency, s.version) for s in generator.samples[sent[service] :]]
            sent[service] += len(rows)
            if rows:
                results.put((service, rows))

    while True:
        try:
            command = commands.get(timeout=0.1)
        except queue.Empty:
            command = ("tick",)
        if command[0] == "stop":
            break
        if command[0] == "start":
            _, service, url, rate, workers, max_seconds = command
            generators[service] = LoadGenerator.for_features(
                url, rate=rate, workers=workers, max_seconds=max_seconds
            ).start()
            sent[service] = 0
        flush()
    for generator in generators.values():
        generator.stop()
    flush()
    results.put(None)


def answers(url: str) -> bool:
    """The Service's router is listening (its state file, and so the endpoint, exists a moment before)."""
    try:
        return requests.get(f"{url}/_router/status", timeout=1).status_code == 200
    except requests.RequestException:
        return False


# When each Lambda handler was entered (epoch seconds), by function: the reconcile task's time in
# moto's Lambda invoke, apart from the step's own time before its switch.
HANDLER_ENTERED: dict[str, list[float]] = {}


def _time_handler_entries() -> None:
    from control.local import lambda_bridge

    invoke = lambda_bridge.invoke

    def timed(handlers: Any, function_name: str, event: Any) -> Any:
        HANDLER_ENTERED.setdefault(function_name.rsplit("-", 1)[-1], []).append(time.time())
        return invoke(handlers, function_name, event)

    lambda_bridge.invoke = timed  # the bridge looks it up at each call


def start_platform(state_dir: Path) -> EmbeddedRuntime:
    quiet()
    _time_handler_entries()
    return EmbeddedRuntime(state_dir).start()


def train_two(platform: EmbeddedRuntime, model: str, rows: int) -> None:
    for version, seed in ((1, 31), (2, 32)):
        started = time.monotonic()
        trained = run_training_demo(platform, model=model, rows=rows, seed=seed, dataset_version=f"v{version}")
        if not trained.ok:
            raise RuntimeError(f"training v{version}: {trained.reason}")
        print(f"  trained {model} v{trained.version['version']} in {time.monotonic() - started:.0f} s", flush=True)


def status(api: ApiClient, deployment: str) -> dict[str, Any]:
    return dict(api.get_deployment(deployment)["status"])


def wait_until(api: ApiClient, deployment: str, done: Any, timeout: float, poll: float = 0.1) -> dict[str, Any]:
    """Poll the deployment's status until `done(status)`; raise with the last status otherwise."""
    deadline = time.monotonic() + timeout
    last: dict[str, Any] = {}
    while time.monotonic() < deadline:
        last = status(api, deployment)
        if done(last):
            return last
        time.sleep(poll)
    raise TimeoutError(f"{deployment}: condition not met in {timeout:.0f} s; last status {last}")


def roll_out(api: ApiClient, deployment: str, model: str, version: int, **timings: float) -> None:
    """Approve if still only registered, then POST the rollout (timings override the local defaults)."""
    if api.get_version(model, version)["status"] == "registered":
        api.decide(model, version, "approve", "benchmark")
    api.start_rollout(deployment, {"model": model, "version": version, **timings})


def first_answer(samples: list[Sample], version: str, after: float) -> float | None:
    """When the first request sent after `after` came back 200 from `version` (send + latency)."""
    answered = [s.at + s.latency for s in samples if s.at >= after and s.status == 200 and s.version == version]
    return min(answered) if answered else None


INFERENCE_NODE = ("m5.xlarge", 4.0, 16.0)  # the cpu-inference pool's first type (terraform/envs/example): vCPU, GiB


def warm_window_cost() -> str:
    """What one warm replica costs for the default rollback window on EKS: its share of an inference
    node by its CPU or memory request (whichever is larger), at the node's list price."""
    from control.domain.rollout import WARM_REPLICAS, RolloutSpec
    from control.manifests.serving import ServingVersion
    from dashboards.rules import load_rules

    node, vcpu, gib = INFERENCE_NODE
    price = next(
        float(rule["expr"].removeprefix("vector(").removesuffix(")"))
        for group in load_rules()
        for rule in group["rules"]
        if rule.get("record") == "mlcp:instance_price_usd_per_hour" and rule["labels"]["instance_type"] == node
    )
    pod = ServingVersion("d", "m", 1, "s3://b/p/", "0" * 64)
    cpu = float(pod.cpu_request.removesuffix("m")) / 1000 if pod.cpu_request.endswith("m") else float(pod.cpu_request)
    memory = float(pod.memory_request.removesuffix("Gi"))
    share = max(cpu / vcpu, memory / gib)
    window_h = RolloutSpec.__dataclass_fields__["rollback_window_seconds"].default / 3600
    per_hour = WARM_REPLICAS * share * price
    return (
        f"warm window on EKS: {WARM_REPLICAS} replica x {window_h:g} h (default rollback_window_seconds) = "
        f"{share:.3f} of an {node} (${price}/h list) x {window_h:g} h = ${per_hour * window_h:.3f} per promotion "
        f"per deployment (${per_hour:.3f}/h while warm; requests {pod.cpu_request} CPU, {pod.memory_request})"
    )


def process_rss_mib(pid: int) -> float:
    import psutil

    try:
        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except psutil.Error:
        return float("nan")


def selector_version(platform: EmbeddedRuntime, service: str) -> str:
    return platform.serving().service_selector(service).get(LABEL_VERSION, "")


def local_alerting(platform: EmbeddedRuntime) -> dict[str, str]:
    """What the running Prometheus and Alertmanager were really given (their config files)."""
    observability = platform.state_dir / "observability"
    prometheus = yaml.safe_load((observability / "prometheus.yml").read_text())["global"]
    rules = yaml.safe_load((observability / "rules.yml").read_text())
    rule = next(r for g in rules["groups"] for r in g["rules"] if r.get("alert") == ALERT)
    alertmanager = yaml.safe_load((observability / "alertmanager.yml").read_text())
    webhook_route = next(r for r in alertmanager["route"]["routes"] if r["receiver"] == CONTROL_PLANE_RECEIVER)
    return {
        "scrape_interval": prometheus["scrape_interval"],
        "evaluation_interval": prometheus["evaluation_interval"],
        "rule_for": rule["for"],
        "rule_expr": " ".join(rule["expr"].split()),
        "group_wait": webhook_route["group_wait"],
        "group_interval": webhook_route["group_interval"],
    }


def seconds(text: str) -> float:
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    for unit in ("ms", "s", "m", "h"):
        if text.endswith(unit) and text[: -len(unit)].replace(".", "", 1).isdigit():
            return float(text[: -len(unit)]) * units[unit]
    raise ValueError(f"not a duration: {text}")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


# -- executions (where the control plane spends its time) ----------------------------------------


def executions_since(platform: EmbeddedRuntime, since: float) -> list[dict[str, Any]]:
    import boto3

    endpoints = platform.endpoints()
    sfn = boto3.client("stepfunctions", endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])
    machine = endpoints["state_machines"]["rollout"]
    found = []
    for execution in sfn.list_executions(stateMachineArn=machine)["executions"]:
        if execution["startDate"].timestamp() >= since - 0.5:
            events = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
            found.append({"name": execution["name"], "start": execution["startDate"].timestamp(), "events": events})
    return sorted(found, key=lambda e: e["start"])


def first_reconcile(execution: dict[str, Any]) -> tuple[float | None, float | None]:
    """(first Reconcile task scheduled, its first success) as epoch seconds."""
    scheduled = succeeded = None
    for event in execution["events"]:
        at = event["timestamp"].timestamp()
        if scheduled is None and event["type"] in ("LambdaFunctionScheduled", "TaskScheduled"):
            scheduled = at
        if succeeded is None and event["type"] in ("LambdaFunctionSucceeded", "TaskSucceeded"):
            succeeded = at
    return scheduled, succeeded


# -- (b) the control-plane part ------------------------------------------------------------------


def alert_payload(deployment: str, model: str, version: int, fingerprint: str) -> dict[str, Any]:
    """What Alertmanager 0.25's webhook receiver POSTs (payload version 4) for the error-ratio alert."""
    labels = {
        "alertname": ALERT,
        "deployment": deployment,
        "model": model,
        "version": str(version),
        "namespace": "ml-serving",
        "severity": "critical",
    }
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    group = {k: labels[k] for k in ("alertname", "deployment", "model", "version")}
    return {
        "version": "4",
        "groupKey": '{}/{deployment=~".+"}:' + "{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "control-plane-webhook",
        "groupLabels": group,
        "commonLabels": labels,
        "commonAnnotations": {"summary": f"{deployment} v{version}: 50% of requests fail"},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": labels,
                "annotations": {"summary": f"{deployment} v{version}: 50% of requests fail"},
                "startsAt": now,
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=benchmark",
                "fingerprint": fingerprint,
            }
        ],
    }


def control_plane_sample(
    platform: EmbeddedRuntime, api: ApiClient, load: Load, deployment: str, model: str, index: int
) -> dict[str, Any]:
    """v1 serving → roll v2 out with blue kept warm → v2 promoted → alert → selector on v1."""
    roll_out(api, deployment, model, 2, bake_seconds=1, scale_down_delay_seconds=900, analysis_interval_seconds=1)
    promoted = wait_until(api, deployment, lambda s: s["phase"] in AT_REST or s.get("active_version") == 2, timeout=180)
    if promoted.get("active_version") != 2 or promoted["phase"] in AT_REST:
        raise RuntimeError(f"v2 was not promoted: {promoted}")
    time.sleep(0.5)
    serving = platform.serving()
    blue = serving.deployment_readiness(deployment_name(deployment, 1))
    if blue.ready < 1:
        raise RuntimeError(f"v1 is not warm: {blue}")
    phase = promoted["phase"]
    body = json.dumps(alert_payload(deployment, model, 2, f"bench{index:02d}{uuid.uuid4().hex[:8]}"))
    headers = {"Authorization": f"Bearer {platform.alert_token}", "Content-Type": "application/json"}
    sent = time.time()
    response = requests.post(f"{platform.api_url}/alerts/alertmanager", data=body, headers=headers, timeout=30)
    answered = time.time()
    if response.status_code != 200 or not response.json().get("rollbacks"):
        raise RuntimeError(f"webhook: {response.status_code} {response.text}")
    deadline = sent + 60
    while selector_version(platform, deployment) != "1":
        if time.time() > deadline:
            raise TimeoutError("the active selector did not come back to v1 in 60 s")
        time.sleep(0.002)
    switched = time.time()
    wait_until(api, deployment, lambda s: s["phase"] in AT_REST, timeout=120, poll=0.25)
    time.sleep(1.0)
    served = first_answer(load.active_samples(), "1", sent)
    sample: dict[str, Any] = {
        "phase_at_alert": phase,
        "webhook_http_ms": (answered - sent) * 1000,
        "alert_to_selector_ms": (switched - sent) * 1000,
        "alert_to_v1_answer_ms": None if served is None else (served - sent) * 1000,
    }
    execution = next((e for e in executions_since(platform, sent) if e["start"] >= sent - 0.5), None)
    if execution is not None:
        scheduled, succeeded = first_reconcile(execution)
        sample["execution"] = execution["name"]
        sample["alert_to_execution_start_ms"] = (execution["start"] - sent) * 1000
        if scheduled is not None:
            sample["execution_start_to_task_ms"] = (scheduled - execution["start"]) * 1000
            sample["task_to_selector_ms"] = (switched - scheduled) * 1000
            entered = next((t for t in HANDLER_ENTERED.get("reconcile_rollout", []) if t >= scheduled), None)
            if entered is not None and entered <= switched:
                sample["task_to_handler_ms"] = (entered - scheduled) * 1000
                sample["handler_to_selector_ms"] = (switched - entered) * 1000
        if succeeded is not None and scheduled is not None:
            sample["reconcile_task_ms"] = (succeeded - scheduled) * 1000
    return sample


# -- (a) end to end ------------------------------------------------------------------------------


@dataclass
class Watch:
    """Polls, every `interval`: Prometheus' alerts, the active selector and v1's readiness."""

    platform: EmbeddedRuntime
    deployment: str
    interval: float = 0.05
    pending_at: float | None = None
    firing_at: float | None = None
    active_at: float | None = None  # Prometheus' own activeAt (when the alert went pending)
    v1_ready_at: float | None = None
    selector_v1_at: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Watch:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        prometheus = self.platform.observability.prometheus_url  # type: ignore[union-attr]
        serving = self.platform.serving()
        blue = deployment_name(self.deployment, 1)
        session = requests.Session()
        while not self._stop.wait(self.interval):
            now = time.time()
            if self.firing_at is None:
                try:
                    alerts = session.get(f"{prometheus}/api/v1/alerts", timeout=2).json()["data"]["alerts"]
                except (requests.RequestException, ValueError, KeyError):
                    alerts = []
                for alert in alerts:
                    labels = alert["labels"]
                    if labels.get("alertname") != ALERT or labels.get("deployment") != self.deployment:
                        continue
                    if labels.get("version") != "2":
                        continue
                    self.active_at = self.active_at or parse_iso(alert["activeAt"])
                    self.pending_at = self.pending_at or now
                    if alert["state"] == "firing":
                        self.firing_at = now
            if self.v1_ready_at is None:
                try:
                    if serving.deployment_readiness(blue).ready >= 1:
                        self.v1_ready_at = time.time()
                except Exception:  # noqa: BLE001 - not there yet
                    pass
            if self.selector_v1_at is None and selector_version(self.platform, self.deployment) == "1":
                self.selector_v1_at = time.time()


def v2_window_clean(platform: EmbeddedRuntime, model: str) -> bool:
    """The pre-promotion error-ratio check of v2 (control.domain.rollout_analysis.default_checks,
    [1m] window, model+version: not scoped to the deployment) no longer sees an earlier fault."""
    prometheus = platform.observability.prometheus_url  # type: ignore[union-attr]
    query = f'sum(rate(mlcp_inference_requests_total{{model="{model}",version="2",code=~"5.."}}[1m]))'
    result = requests.get(f"{prometheus}/api/v1/query", params={"query": query}, timeout=5).json()["data"]["result"]
    return not result or float(result[0]["value"][1]) == 0.0


def end_to_end_repetition(
    platform: EmbeddedRuntime, api: ApiClient, load: Load, deployment: str, model: str, cold: bool
) -> dict[str, Any]:
    # The local defaults: v1 kept warm through its rollback window (or, --cold, scaled to 0).
    roll_out(api, deployment, model, 2, **({"rollback_window_seconds": 0} if cold else {}))
    done = wait_until(api, deployment, lambda s: s["phase"] in AT_REST, timeout=240, poll=0.5)
    if done["phase"] != "COMPLETED" or done.get("active_version") != 2:
        raise RuntimeError(f"promotion of v2 ended {done['phase']}: {done.get('reason')}")
    serving = platform.serving()
    blue_desired = serving.deployment_readiness(deployment_name(deployment, 1)).desired
    warm_rss = [process_rss_mib(pod.pid) for pod in serving.pods(deployment_name(deployment, 1)) if pod.alive]
    time.sleep(2)
    watch = Watch(platform, deployment).start()
    fault_at = time.time()
    serving.fault(deployment_name(deployment, 2), error_ratio=0.5)
    try:
        back = wait_until(api, deployment, lambda s: s["phase"] in {"ROLLED_BACK", "FAILED"}, timeout=180, poll=0.25)
        time.sleep(1.5)
    finally:
        watch.stop()
    if back["phase"] != "ROLLED_BACK" or back.get("active_version") != 1:
        raise RuntimeError(f"expected a rollback to v1, got {back}")
    history = api.get_deployment(deployment)["history"]
    requested = [
        parse_iso(h["at"])
        for h in history
        if h["action"] == "rollback-requested" and h["actor"] == "alert" and parse_iso(h["at"]) >= fault_at
    ]
    webhook_at = min(requested) if requested else None
    samples = load.active_samples()
    served = first_answer(samples, "1", fault_at)
    failed = [x for x in samples if fault_at <= x.at and (served is None or x.at <= served) and x.status != 200]

    def span(start: float | None, end: float | None) -> float | None:
        return None if start is None or end is None else end - start

    warm = blue_desired > 0
    return {
        "v1_replicas_at_fault": blue_desired,
        "v1_warm_rss_mib": max(warm_rss) if warm_rss else None,
        "failed_requests": len(failed),
        "fault_to_v1_answer_s": span(fault_at, served),
        "fault_to_pending_s": span(fault_at, watch.active_at),
        "fault_to_firing_s": span(fault_at, watch.firing_at),
        "firing_to_webhook_s": span(watch.firing_at, webhook_at),
        "webhook_to_v1_answer_s": span(webhook_at, served),
        "webhook_to_v1_ready_s": None if warm else span(webhook_at, watch.v1_ready_at),
        "v1_ready_to_selector_s": None if warm else span(watch.v1_ready_at, watch.selector_v1_at),
        "webhook_to_selector_s": span(webhook_at, watch.selector_v1_at),
        "selector_to_v1_answer_s": span(watch.selector_v1_at, served),
    }


# -- reporting -----------------------------------------------------------------------------------


def spread(values: list[float | None], scale: float = 1.0, digits: int = 1) -> str:
    present = [v * scale for v in values if v is not None]
    if not present:
        return "n/a"
    text = f"{statistics.median(present):.{digits}f}"
    if len(present) > 1:
        text += f" ({min(present):.{digits}f}–{max(present):.{digits}f})"
    if len(present) < len(values):
        text += f" [{len(values) - len(present)} missing]"
    return text


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    print(f"\n{title}")
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) + " |")


def report(config: dict[str, str], control: list[dict[str, Any]], e2e: list[dict[str, Any]]) -> dict[str, Any]:
    rule_for = seconds(config["rule_for"])
    target = rule_for + 3
    print(
        f"\nlocal alerting path: scrape {config['scrape_interval']}, evaluation {config['evaluation_interval']}, "
        f"rule {ALERT} `for: {config['rule_for']}` (AWS: 2m), Alertmanager webhook route group_wait "
        f"{config['group_wait']} / group_interval {config['group_interval']}, rollout poll "
        f"{LOCAL_ROLLOUT_DEFAULTS['poll_interval_seconds']} s, scale-down delay "
        f"{LOCAL_ROLLOUT_DEFAULTS['scale_down_delay_seconds']} s, rollback window "
        f"{LOCAL_ROLLOUT_DEFAULTS['rollback_window_seconds']} s\n  expr: {config['rule_expr']}"
    )
    summary: dict[str, Any] = {"config": config, "control_plane": control, "end_to_end": e2e}
    if e2e:
        rows = [
            ("fault → alert pending (Prometheus activeAt)", "fault_to_pending_s"),
            ("fault → alert firing (seen in /api/v1/alerts)", "fault_to_firing_s"),
            ("firing → webhook received ('rollback-requested')", "firing_to_webhook_s"),
            ("webhook → v1 ready again (only when re-created)", "webhook_to_v1_ready_s"),
            ("v1 ready → active selector on v1 (only when re-created)", "v1_ready_to_selector_s"),
            ("webhook → active selector on v1", "webhook_to_selector_s"),
            ("selector on v1 → first answer from v1", "selector_to_v1_answer_s"),
            ("webhook → traffic on v1", "webhook_to_v1_answer_s"),
            ("**fault → traffic on v1 (end to end)**", "fault_to_v1_answer_s"),
        ]
        print_table(
            f"(a) alert → rollback, end to end: K={len(e2e)} repetitions, median (min–max), seconds",
            ("step", "median (min–max) s"),
            [(name, spread([r[key] for r in e2e], digits=2)) for name, key in rows],
        )
        ends = [r["fault_to_v1_answer_s"] for r in e2e if r["fault_to_v1_answer_s"] is not None]
        met = bool(ends) and statistics.median(ends) <= target
        print(
            f"target: ≤ for + 3 s = {target:.0f} s → {'met' if met else 'NOT met'} "
            f"(v1 replicas when the fault was injected: {sorted({r['v1_replicas_at_fault'] for r in e2e})})"
        )
        failed = [r["failed_requests"] for r in e2e]
        print(
            f"failed requests on the active endpoint per rollback (fault → first answer from v1, the injected "
            f"50 % errors of v2): median {statistics.median(failed):.0f}, max {max(failed)}"
        )
        rss = [r["v1_warm_rss_mib"] for r in e2e if r.get("v1_warm_rss_mib")]
        if rss:
            print(f"warm v1 (one model-server process) RSS: {statistics.median(rss):.0f} MiB")
        print(warm_window_cost())
        summary["end_to_end_target_s"] = target
        summary["end_to_end_met"] = met
    if control:
        keys = [
            ("alert POST → answered (webhook HTTP round trip)", "webhook_http_ms"),
            ("alert POST → execution started", "alert_to_execution_start_ms"),
            ("execution started → first Reconcile task", "execution_start_to_task_ms"),
            ("first Reconcile task → active selector on v1 (its switch)", "task_to_selector_ms"),
            ("  of which: task scheduled → handler entered (moto's Lambda invoke)", "task_to_handler_ms"),
            ("  of which: handler entered → switch (the step before its switch)", "handler_to_selector_ms"),
            ("first Reconcile task (observe, decide, switch, record)", "reconcile_task_ms"),
            ("**alert POST → active selector on v1**", "alert_to_selector_ms"),
            ("alert POST → first answer from v1", "alert_to_v1_answer_ms"),
        ]
        rows2 = []
        for name, key in keys:
            values = [s.get(key) for s in control]
            present = [v for v in values if v is not None]
            p90 = f"{percentile(present, 0.9):.0f}" if present else "n/a"
            rows2.append((name, spread(values, digits=0), p90))
        print_table(
            f"(b) control plane alone, v1 warm: N={len(control)} samples, milliseconds",
            ("step", "p50 (min–max) ms", "p90 ms"),
            rows2,
        )
        p50 = statistics.median(s["alert_to_selector_ms"] for s in control)
        print(
            f"target: alert → selector p50 ≤ {CONTROL_PLANE_TARGET_MS:.0f} ms → "
            f"{'met' if p50 <= CONTROL_PLANE_TARGET_MS else 'NOT met'} (p50 {p50:.0f} ms); "
            f"phase when the alert came: {sorted({s['phase_at_alert'] for s in control})}"
        )
        summary["control_plane_p50_ms"] = p50
        summary["control_plane_met"] = p50 <= CONTROL_PLANE_TARGET_MS
    print_table("anchors (their defaults, not measured here)", ("tool", "alert → traffic back"), list(ANCHORS))
    return summary


# -- main ----------------------------------------------------------------------------------------


def main() -> int:
    exit_on_sigterm()  # a stopped run stops the platform it started
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="(a) end-to-end repetitions (K)")
    parser.add_argument("--samples", type=int, default=10, help="(b) control-plane samples (N)")
    parser.add_argument("--rate", type=float, default=15.0, help="requests/s on the active endpoint")
    parser.add_argument("--preview-rate", type=float, default=10.0, help="requests/s on the preview endpoint")
    parser.add_argument("--rows", type=int, default=300, help="rows of each training dataset")
    parser.add_argument("--cold", action="store_true", help="(a) with no rollback window: v1 re-created")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    model = f"bench-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlcp-bench-") as state:
        platform = start_platform(Path(state))
        load: Load | None = None
        control: list[dict[str, Any]] = []
        e2e: list[dict[str, Any]] = []
        try:
            config = local_alerting(platform)
            api = ApiClient(config_from_endpoints(platform.endpoints()))
            print(f"platform up in {time.monotonic() - started:.0f} s; training two versions of {model}", flush=True)
            train_two(platform, model, args.rows)
            roll_out(api, deployment, model, 1)
            load = Load(platform, deployment, args.rate, args.preview_rate).start()
            wait_until(api, deployment, lambda s: s["phase"] in AT_REST, timeout=240, poll=0.5)
            print(
                f"v1 serving at {time.monotonic() - started:.0f} s; (b) control plane, {args.samples} samples",
                flush=True,
            )
            for index in range(args.samples):
                sample = control_plane_sample(platform, api, load, deployment, model, index)
                control.append(sample)
                print(
                    f"  (b) {index + 1}: alert → selector {sample['alert_to_selector_ms']:.0f} ms "
                    f"({sample['phase_at_alert']})",
                    flush=True,
                )
            for index in range(args.repeats):
                deadline = time.monotonic() + 120
                while not v2_window_clean(platform, model) and time.monotonic() < deadline:
                    time.sleep(1)
                result = end_to_end_repetition(platform, api, load, deployment, model, args.cold)
                e2e.append(result)
                shown = result["fault_to_v1_answer_s"]
                print(
                    f"  (a) {index + 1}: fault → traffic on v1 "
                    f"{'n/a' if shown is None else f'{shown:.2f} s'} at {time.monotonic() - started:.0f} s",
                    flush=True,
                )
        finally:
            samples = load.stop() if load else {}
            platform.stop()
    active = samples.get(deployment, [])
    print(f"\nrun: {time.monotonic() - started:.0f} s; {len(active)} requests on the active endpoint")
    summary = report(config, control, e2e)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
