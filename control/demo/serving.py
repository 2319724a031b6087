"""The serving half of the demo: deploy v1, blue-green to v2, a fault in v2 after promotion,
the real Prometheus fires, the real Alertmanager delivers, and traffic is back on v1; then v3 with
the same fault by canary: judged against v1 at its first step (10 %) and aborted, never promoted."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import requests
from rich.live import Live
from rich.text import Text

from control.cli.api_client import ApiClient
from control.cli.config import config_from_endpoints
from control.cli.errors import ClientError
from control.demo.canary import FaultOnArrival
from control.demo.report import DemoReport, write_report
from control.demo.training import console, versions_line
from control.local.loadgen import LoadGenerator, Sample, summarize
from control.local.runtime import EmbeddedRuntime
from control.manifests.serving import deployment_name, preview_service_name


@dataclass
class Traffic:
    """Constant load on a deployment's active and preview endpoints, started as they appear."""

    platform: EmbeddedRuntime
    deployment: str
    rate: float = 15.0
    generators: dict[str, LoadGenerator] = field(default_factory=dict)

    def refresh(self) -> None:
        endpoints = self.platform.deployment_endpoints()
        for service in (self.deployment, preview_service_name(self.deployment)):
            if service in endpoints and service not in self.generators and _router_answers(endpoints[service]):
                self.generators[service] = LoadGenerator.for_features(endpoints[service], rate=self.rate).start()

    def stop(self) -> dict[str, list[Sample]]:
        return {service: generator.stop() for service, generator in self.generators.items()}

    def counts(self) -> tuple[int, int]:
        """(requests sent, requests failed) so far to the deployment's Service, the one users call
        (the preview's load starts before its pods are ready, so its early failures are expected)."""
        generator = self.generators.get(self.deployment)
        samples = list(generator.samples) if generator else []
        return len(samples), sum(1 for sample in samples if sample.status != 200)


def _router_answers(url: str) -> bool:
    """A Service is recorded a moment before its router listens: load starts once it answers."""
    try:
        return requests.get(url + "/_router/status", timeout=1).ok
    except requests.RequestException:
        return False


def deploy(api: ApiClient, traffic: Traffic, deployment: str, model: str, version: int, timeout: float = 240) -> dict:
    api.decide(model, version, "approve", "demo: metrics look good")
    api.start_rollout(deployment, {"model": model, "version": version})
    console.print(f"[bold]→[/] blue-green rollout of {model} v{version} to [cyan]{deployment}[/]")
    return wait_for_phase(api, traffic, deployment, {"COMPLETED", "ROLLED_BACK", "FAILED"}, timeout)


def wait_for_phase(
    api: ApiClient,
    traffic: Traffic,
    deployment: str,
    phases: set[str],
    timeout: float,
    target_version: int | None = None,
    poll_seconds: float = 1.0,
) -> dict:
    """Poll the deployment until it is in one of `phases` (rolling out `target_version`, if given).

    Each phase is printed once, as it is entered; below it one live line (on a terminal) shows the
    phase's age, what serves, and the requests the constant load has sent so far."""
    deadline = time.monotonic() + timeout
    last = ""
    entered = time.monotonic()
    # Live must not take over stdout/stderr: what others write there belongs in the log (progress_only).
    with Live(
        console=console, auto_refresh=False, transient=True, redirect_stdout=False, redirect_stderr=False
    ) as live:
        while time.monotonic() < deadline:
            traffic.refresh()
            found = api.get_deployment(deployment)
            status = found["status"]
            if target_version is not None and status["target_version"] != target_version:
                time.sleep(poll_seconds)
                continue
            canary = found.get("canary") or {}
            weight = f" canary {canary['weight']}% (step {canary['step']}/{canary['steps']})" if canary else ""
            shown = f"{status['phase']}{weight} {status.get('reason', '')}".strip()
            if shown != last:
                line = Text(f"   {datetime.now(UTC):%H:%M:%S}  ")
                line.append(status["phase"], style="bold")
                if canary:  # a canary has no preview: it takes a share of the real traffic
                    line.append(
                        f"  {versions_line(status.get('active_version'), None)}, canary v{status['target_version']}"
                    )
                else:
                    line.append(f"  {versions_line(status.get('active_version'), status.get('preview_version'))}")
                if canary and status["phase"] == "CANARY":
                    line.append(f" · {canary['weight']}% of the requests to v{status['target_version']}", style="bold")
                if status.get("reason"):
                    line.append(f" · {status['reason']}")
                live.console.print(line)
                last, entered = shown, time.monotonic()
            if status["phase"] in phases:
                return status
            live.update(_live_line(deployment, status, time.monotonic() - entered, traffic), refresh=True)
            time.sleep(poll_seconds)
    raise TimeoutError(f"{deployment} did not reach {sorted(phases)} in {timeout:.0f} s (last: {last})")


def _live_line(deployment: str, status: dict[str, Any], seconds: float, traffic: Traffic) -> Text:
    sent, failed = traffic.counts()
    line = Text(f"   {deployment}: {status['phase']} for {seconds:.0f} s · ", style="dim")
    line.append(versions_line(status.get("active_version"), status.get("preview_version")), style="dim")
    line.append(f" · {sent} requests to {deployment}, {failed} failed", style="dim")
    return line


def alert_rollback(
    platform: EmbeddedRuntime, api: ApiClient, traffic: Traffic, deployment: str, bad_version: int, timeout: float = 120
) -> dict[str, Any]:
    """Inject a fault in the serving version; return when traffic is back on last-known-good."""
    fault_at = time.time()
    platform.fault(deployment_name(deployment, bad_version), error_ratio=0.5)
    console.print(f"[bold red]→[/] injected a fault into v{bad_version}: half its requests now fail")
    status = wait_for_phase(api, traffic, deployment, {"ROLLED_BACK", "FAILED"}, timeout)
    back_at = time.time()
    history = api.get_deployment(deployment)["history"]
    alert = next((h for h in reversed(history) if h["action"] == "rollback-requested"), None)
    return {"fault_at": fault_at, "back_at": back_at, "status": status, "alert": alert}


CANARY = {"type": "canary", "weights": "10,50,100", "step_pause": "20s"}


def canary_release(
    platform: EmbeddedRuntime, api: ApiClient, traffic: Traffic, deployment: str, model: str, version: int
) -> dict[str, Any]:
    """Roll `version` out by canary with a 50 % fault in it from its first request; return when it rests."""
    fault = FaultOnArrival(platform.serving(), deployment, version, error_ratio=0.5).start()
    try:
        api.decide(model, version, "approve", "demo: metrics look good")
        body = {"model": model, "version": version, "strategy": CANARY}
        api.start_rollout(deployment, body)
        console.print(
            f"[bold]→[/] canary rollout of {model} v{version} to [cyan]{deployment}[/] "
            f"(10 % → 50 % → 100 %, 20 s a step), with a fault in it: half its requests fail"
        )
        status = wait_for_phase(api, traffic, deployment, {"COMPLETED", "ROLLED_BACK", "FAILED"}, 240, version)
    finally:
        fault.stop()
    history = api.get_deployment(deployment)["history"]
    weights = [
        (datetime.fromisoformat(h["at"].replace("Z", "+00:00")).timestamp(), h["reason"])
        for h in history
        if h["action"] == "traffic-weight-changed" and h.get("version") == version
    ]
    fault_at = fault.set_at or time.time()
    served = traffic.generators[deployment].samples if deployment in traffic.generators else []
    first = min((s.at for s in list(served) if s.at >= fault_at and s.version == str(version)), default=fault_at)
    return {
        "fault_at": fault_at,
        "first_request_at": first,
        "done_at": time.time(),
        "status": status,
        "weights": weights,
    }


def served_by(samples: list[Sample], after: float) -> set[str]:
    return {s.version for s in samples if s.at >= after and s.status == 200}


def report(
    samples: dict[str, list[Sample]],
    deployment: str,
    fault_at: float,
    bad_version: int,
    more_faults: dict[int, float] | None = None,
) -> dict[str, Any]:
    """Failures outside the injected faults (version → since when) are the platform's: there must be none."""
    active = samples.get(deployment, [])
    faults = {bad_version: fault_at, **(more_faults or {})}

    def injected(sample: Sample) -> bool:  # a request still in flight at the fault can meet it (answered after)
        return any(sample.at + sample.latency >= at and sample.version in ("", str(v)) for v, at in faults.items())

    outside = [s for s in active if s.status != 200 and not injected(s)]
    return {
        "active": summarize(active),
        "platform_failures": len(outside),
        "examples": [(round(s.at - fault_at, 2), s.status, s.version, round(s.latency, 3)) for s in outside[:10]],
    }


def _loss_curve(platform: EmbeddedRuntime, api: ApiClient, run_id: str) -> list[dict[str, float]]:
    """Epoch records rank 0 printed (the local job's log; on EKS, the same come from Prometheus)."""
    job_name = api.get_training_run(run_id).get("job_name", "")
    stdout, _ = platform.training_log_paths(job_name)
    records = []
    for line in stdout.read_text().splitlines() if stdout.exists() else []:
        text = line.split(":", 1)[1] if line.startswith("[0]<stdout>:") else line
        if '"event": "epoch"' in text:
            records.append(json.loads(text))
    return records


def run_full_demo(
    platform: EmbeddedRuntime, out_dir: Path, *, model: str = "demo-classifier", deployment: str = "demo"
) -> tuple[bool, str, Path]:
    """S3 drop → training → registration → rollout → fault → alert → rollback, then a faulty canary
    caught at its first step, with a report."""
    from control.demo.training import run_training_demo

    endpoints = platform.endpoints()
    api = ApiClient(config_from_endpoints(endpoints))
    report = DemoReport(title="mlcp demo: the whole loop on one machine")
    traffic = Traffic(platform, deployment)
    ok, reason = False, ""
    try:
        for version, seed in ((1, 21), (2, 22)):
            console.rule(f"training {model} v{version}")
            trained = run_training_demo(platform, model=model, rows=3000, seed=seed, dataset_version=f"v{version}")
            for at, text in trained.timeline:
                report.add(at, f"training v{version}: {text}")
            if not trained.ok:
                raise DemoFailed(f"training v{version}: {trained.reason}")
            run_id = trained.version["lineage"]["training_run_id"]
            report.loss_curves[f"v{version}"] = _loss_curve(platform, api, run_id)
            console.rule(f"deploying v{version}")
            status = deploy(api, traffic, deployment, model, trained.version["version"])
            if status["phase"] != "COMPLETED":
                raise DemoFailed(f"rollout of v{version} ended {status['phase']}: {status.get('reason')}")
        time.sleep(5)
        console.rule("a fault in v2, after its promotion")
        outcome = alert_rollback(platform, api, traffic, deployment, bad_version=2)
        report.markers["fault in v2"] = outcome["fault_at"]
        report.markers["back on v1"] = outcome["back_at"]
        time.sleep(3)
        if outcome["status"]["phase"] != "ROLLED_BACK" or outcome["status"]["active_version"] != 1:
            raise DemoFailed(f"expected a rollback to v1, got {outcome['status']}")
        console.rule(f"training {model} v3")
        trained = run_training_demo(platform, model=model, rows=1500, seed=23, dataset_version="v3")
        if not trained.ok:
            raise DemoFailed(f"training v3: {trained.reason}")
        console.rule("v3 by canary, with the same fault")
        canary = canary_release(platform, api, traffic, deployment, model, trained.version["version"])
        report.markers["v3 at 10 % (faulty)"] = canary["first_request_at"]
        report.markers["v3 aborted"] = canary["done_at"]
        report.weights = [(at, reason) for at, reason in canary["weights"]]
        time.sleep(3)
        if canary["status"]["phase"] != "ROLLED_BACK" or canary["status"]["active_version"] != 1:
            raise DemoFailed(f"expected the faulty canary to be aborted, got {canary['status']}")
        ok = True
    except (DemoFailed, TimeoutError, ClientError) as error:
        reason = str(error)
    finally:
        samples = traffic.stop()
    report.samples = samples.get(deployment, [])
    _deployment_events(api, model, deployment, report)
    if ok:
        failures = platform_failures(samples, deployment, {2: outcome["fault_at"], 3: canary["fault_at"]})
        active = samples.get(deployment, [])
        blue_green = sum(1 for s in active if s.status != 200 and outcome["fault_at"] <= s.at <= outcome["back_at"])
        by_canary = sum(1 for s in active if s.status != 200 and canary["fault_at"] <= s.at <= canary["done_at"])
        report.figures.update(
            {
                "fault → traffic on v1 (s)": outcome["back_at"] - outcome["fault_at"],
                "blue-green, fault after promotion: failed requests": blue_green,
                "canary at 10 %, same fault: failed requests": by_canary,
                "canary: its first request → aborted (s)": canary["done_at"] - canary["first_request_at"],
                "failed requests outside the injected faults": failures,
            }
        )
        report.add(datetime.fromtimestamp(outcome["fault_at"], UTC), "fault injected into v2", "50% of requests fail")
        fault_at = datetime.fromtimestamp(canary["fault_at"], UTC)
        report.add(fault_at, "fault injected into v3 (canary)", "50% of its requests fail")
        if failures:
            ok, reason = False, f"{failures} requests failed outside the injected fault"
    _dashboard_previews(platform, out_dir, report)
    path = write_report(report, out_dir)
    return ok, reason, path


def _dashboard_previews(platform: EmbeddedRuntime, out_dir: Path, report: DemoReport) -> None:
    """The Grafana dashboards' panels, drawn from the embedded Prometheus (Grafana cannot run here)."""
    from dashboards.preview import render_previews
    from dashboards.rules import LOCAL_WINDOW

    prometheus = platform.endpoints().get("prometheus_url")
    if not prometheus:
        return
    started = min((e.at for e in report.events), default=datetime.now(UTC))
    seconds = max(120.0, (datetime.now(UTC) - started).total_seconds() + 30)
    # Rates over the window the local alert rules use, so a panel shows what the alert saw.
    drawn = render_previews(
        prometheus, out_dir / "dashboards", range_seconds=seconds, step=2, rate_interval=LOCAL_WINDOW
    )
    report.previews = {name: f"dashboards/{name}.png" for name in drawn}


class DemoFailed(Exception):
    pass


def platform_failures(samples: dict[str, list[Sample]], deployment: str, faults: dict[int, float]) -> int:
    """Failed requests outside the faults injected (version → since when)."""
    (first, at), *others = faults.items()
    return int(report(samples, deployment, at, first, dict(others))["platform_failures"])


def report_failures(samples: dict[str, list[Sample]], deployment: str, fault_at: float, bad_version: int) -> int:
    return int(report(samples, deployment, fault_at, bad_version)["platform_failures"])


def _deployment_events(api: ApiClient, model: str, deployment: str, report: DemoReport) -> None:
    try:
        history = api.history(model)["history"]
    except ClientError:
        return
    for entry in history:
        if entry.get("details", {}).get("deployment") == deployment or entry["action"] == "registered":
            at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
            report.add(at, f"{entry['action']} v{entry.get('version')}", f"{entry['actor']}: {entry['reason']}")
            if entry["action"] == "promoted":
                report.markers[f"v{entry.get('version')} promoted"] = at.timestamp()
