"""Canary benchmark (issue 13, "Benchmarks"): blast radius, weight changes and peak pods, canary and
blue-green side by side in one run on one embedded platform (moto, the functions in-process, the
Step Functions reconcile loop, LocalServing's routers and model servers, the real Prometheus and
Alertmanager).

Set-up: three approved versions of one model are registered without training (control/local/
registry_seed.py: real TorchScript artifacts, lineage and sample requests), v1 is deployed, and a
constant load (`--rate` requests/s, in a child process) goes to the deployment's endpoint throughout.

1. Blast radius, the same 50 % fault, the same load:
   - blue-green: v2 is rolled out and promoted, then the fault is injected into v2; failed requests
     from the fault until the rollback is done (the real alert path: Prometheus → Alertmanager →
     webhook → rollback);
   - canary at 10 %: v3 is rolled out by canary (setWeight 10, pause 60s, analysis, setWeight 100)
     with the fault in it from its first request; failed requests from then until the abort is done
     (the canary's analysis against v1 on the real Prometheus, or the alert, whichever is first), and
     failed requests served by any version but the canary (target 0).
   Target: canary ≤ 1/5 of blue-green's failed requests.
2. Weight changes: on a second deployment with both versions healthy, 20 canary weight changes
   (10 % … 100 % and back) through the rollout's executor, against 20 blue-green selector switches:
   time from the decision to the router serving the new split (its /_router/status), and the
   requests failed during them (target 0).
3. Peak pods during a rollout of a 4-replica deployment: the pure reconcile step driven over a
   simulated cluster whose pods start at once, canary (10, 50, 100) vs blue-green.

    .venv/bin/python benchmarks/canary.py [--rate 20] [--json out.json]

Default run: about 4 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.alert_rollback import Load, print_table, start_platform, wait_until  # noqa: E402
from control.cli.api_client import ApiClient  # noqa: E402
from control.cli.config import config_from_endpoints  # noqa: E402
from control.demo.canary import FaultOnArrival  # noqa: E402
from control.domain.canary import CanaryStrategy, SetWeight, parse_strategy  # noqa: E402
from control.domain.rollout import (  # noqa: E402
    Decision,
    EnsureDeployment,
    Observed,
    RolloutSpec,
    ScaleDeployment,
    ServiceRole,
    SetTrafficWeight,
    SwitchSelector,
    VersionObservation,
    reconcile,
    start_rollout,
)
from control.local.processes import exit_on_sigterm  # noqa: E402
from control.local.registry_seed import seed  # noqa: E402
from control.local.runtime import EmbeddedRuntime  # noqa: E402
from control.manifests.serving import canary_service_name, deployment_name  # noqa: E402
from control.usecases import rollouts  # noqa: E402
from tests.support.inference_artifact import model_bytes  # noqa: E402

FEATURES = [f"f{i}" for i in range(8)]  # what the load generator sends: 8 features
CANARY_10 = {"type": "canary", "steps": [{"setWeight": 10}, {"pause": "60s"}, {"analysis": {}}, {"setWeight": 100}]}
DONE = {"COMPLETED", "ROLLED_BACK", "FAILED"}


def model_pt() -> bytes:
    """The same tiny TorchScript model the tests and the DR benchmark use, with the load's 8 features."""
    return model_bytes(n_features=len(FEATURES), seed=5)


def approve_and_roll(api: ApiClient, deployment: str, model: str, version: int, **extra: Any) -> None:
    if api.get_version(model, version)["status"] == "registered":
        api.decide(model, version, "approve", "benchmark")
    api.start_rollout(deployment, {"model": model, "version": version, **extra})


def rested(version: int) -> Any:
    return lambda status: status["target_version"] == version and status["phase"] in DONE


# -- 1. blast radius ------------------------------------------------------------------------------


def blast_radius(platform: EmbeddedRuntime, api: ApiClient, load: Load, deployment: str, model: str) -> dict[str, Any]:
    approve_and_roll(api, deployment, model, 2)
    promoted = wait_until(api, deployment, rested(2), 240)
    assert promoted["phase"] == "COMPLETED", promoted
    time.sleep(3)
    fault_at = time.time()
    platform.serving().fault(deployment_name(deployment, 2), error_ratio=0.5)
    back = wait_until(api, deployment, lambda s: s["phase"] in ("ROLLED_BACK", "FAILED"), 180)
    back_at = time.time()
    assert back["phase"] == "ROLLED_BACK" and back["active_version"] == 1, back
    time.sleep(3)

    fault = FaultOnArrival(platform.serving(), deployment, 3, error_ratio=0.5).start()
    try:
        approve_and_roll(api, deployment, model, 3, strategy=CANARY_10)
        aborted = wait_until(api, deployment, rested(3), 240)
        aborted_at = time.time()
    finally:
        fault.stop()
    time.sleep(2)
    samples = load.active_samples()
    blue_green = [s for s in samples if fault_at <= s.at <= back_at]
    # The canary's window: from its first request (its pods, faulty from their start, wait for the split)
    # to the end of the rollback.
    by_canary = [s.at for s in samples if s.version == "3" and s.at >= (fault.set_at or 0)]
    canary_from = min(by_canary, default=aborted_at)
    canary = [s for s in samples if canary_from <= s.at <= aborted_at]
    return {
        "blue_green": {
            "requests": len(blue_green),
            "failed": sum(s.status != 200 for s in blue_green),
            "seconds": back_at - fault_at,
            "how": back.get("reason", ""),
        },
        "canary": {
            "requests": len(canary),
            "failed": sum(s.status != 200 for s in canary),
            "failed_outside_canary": sum(s.status != 200 and s.version != "3" for s in canary),
            "served_by_canary": sum(s.version == "3" for s in canary),
            "seconds": aborted_at - canary_from,
            "share_seconds": (max(by_canary) - canary_from) if by_canary else 0.0,
            "phase": aborted["phase"],
            "how": (aborted.get("intent") or {}).get("key", ""),
        },
    }


# -- 2. weight changes ----------------------------------------------------------------------------


def router_status(url: str) -> dict[str, Any]:
    return dict(requests.get(f"{url}/_router/status", timeout=2).json())


def wait_router(url: str, seen: Any, timeout: float = 10.0) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if seen(router_status(url)):
            return time.perf_counter() - started
        time.sleep(0.005)
    raise TimeoutError("the router never served the new split")


def weight_changes(
    platform: EmbeddedRuntime, api: ApiClient, load: Load, model: str, deployment: str
) -> dict[str, Any]:
    """20 canary weight changes, then 20 blue-green switches, through the rollout's executor."""
    control = platform.platform  # the embedded runtime's own ports: the same executor the loop runs
    assert control is not None
    spec = RolloutSpec(deployment, model, 2, 1, replicas=1)
    status = start_rollout(spec, datetime.now(UTC))

    def execute(*actions: Any) -> float:
        started = time.perf_counter()
        rollouts._apply(control, spec, Decision(tuple(actions), status, changed=False))
        return time.perf_counter() - started

    execute(EnsureDeployment(1, 1), SwitchSelector(ServiceRole.ACTIVE, 1))
    execute(EnsureDeployment(2, 1), SwitchSelector(ServiceRole.CANARY, 2))
    serving = platform.serving()
    for version in (1, 2):
        name = deployment_name(deployment, version)
        deadline = time.monotonic() + 120
        while not serving.deployment_readiness(name).is_ready and time.monotonic() < deadline:
            time.sleep(0.2)
    url = serving.service_url(deployment)
    load.deployment = deployment  # the load follows this deployment from now on
    load.refresh()
    time.sleep(3)
    canary = canary_service_name(deployment)

    def split_is(weight: int) -> Any:
        def check(status: dict[str, Any]) -> bool:
            split = {entry["service"]: entry["weight"] for entry in status.get("split", [])}
            return split.get(canary, 0) == weight and (weight == 100 or split.get(deployment, 0) == 100 - weight)

        return check

    results: dict[str, Any] = {}
    weights = [10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 90, 80, 70, 60, 50, 40, 30, 20, 10, 0]
    started = time.time()
    latencies, applies = [], []
    for weight in weights:
        decided = time.perf_counter()
        applies.append(execute(SetTrafficWeight(2, weight)))
        wait_router(url, split_is(weight))
        latencies.append(time.perf_counter() - decided)
        time.sleep(0.5)
    ended = time.time()
    results["canary"] = {"latencies": latencies, "applies": applies, "window": (started, ended)}

    latencies, applies = [], []
    started = time.time()
    for turn in range(20):
        version = 2 if turn % 2 == 0 else 1
        decided = time.perf_counter()
        applies.append(execute(SwitchSelector(ServiceRole.ACTIVE, version)))
        wait_router(url, lambda s, v=version: s.get("selector", {}).get("mlcp.dev/version") == str(v))
        latencies.append(time.perf_counter() - decided)
        time.sleep(0.5)
    ended = time.time()
    results["blue_green"] = {"latencies": latencies, "applies": applies, "window": (started, ended)}
    time.sleep(1)
    samples = load.active_samples()
    for outcome in results.values():
        start, end = outcome.pop("window")
        during = [s for s in samples if start <= s.at <= end + 1]
        outcome["requests"] = len(during)
        outcome["failed"] = sum(s.status != 200 for s in during)
    return results


# -- 3. peak pods ---------------------------------------------------------------------------------


def peak_pods(strategy: CanaryStrategy | None, replicas: int = 4) -> int:
    """The most pods a rollout of a `replicas` deployment asks for, with pods that start at once and
    every analysis passing (the pure reconcile step over a simulated cluster)."""
    from control.domain.rollout import AnalysisSample, analysis_request

    spec = RolloutSpec("peak", "peak", 2, 1, replicas=replicas, strategy=strategy, bake_seconds=0,
                       scale_down_delay_seconds=0, rollback_window_seconds=0)  # fmt: skip
    status = start_rollout(spec, datetime(2026, 1, 1, tzinfo=UTC))
    pods = {1: replicas}
    active, preview, canary, weight = 1, None, None, 0
    now, peak = status.started_at, replicas
    for _ in range(500):
        request = analysis_request(spec, status)
        analysis = None
        if request is not None:
            good = dict.fromkeys(request.queries, 0.0)
            analysis = AnalysisSample(request.stage, request.version, good, baseline=dict(good))
        observed = Observed(
            {v: VersionObservation(n, n) for v, n in pods.items()},
            active,
            preview,
            analysis,
            canary_selector=canary,
            canary_weight=weight,
        )
        decision = reconcile(spec, status, observed, now)
        for action in decision.actions:
            if isinstance(action, EnsureDeployment):
                pods[action.version] = max(pods.get(action.version, 0), action.replicas)
            elif isinstance(action, ScaleDeployment):
                pods[action.version] = action.replicas
            elif isinstance(action, SwitchSelector):
                if action.service is ServiceRole.ACTIVE:
                    active, weight = action.version, 0
                elif action.service is ServiceRole.CANARY:
                    canary = action.version
                else:
                    preview = action.version
            elif isinstance(action, SetTrafficWeight):
                weight = action.weight
        peak = max(peak, sum(pods.values()))
        status = decision.status
        if not status.phase.in_progress:
            return peak
        now += timedelta(seconds=5)
    raise RuntimeError("the simulated rollout never ended")


# -- report ---------------------------------------------------------------------------------------


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{statistics.median(values) * 1000:.0f} / {p95 * 1000:.0f} / {max(values) * 1000:.0f}"


def main() -> int:
    exit_on_sigterm()  # a stopped run stops the platform it started
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s to the deployment throughout")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    model = f"bench-canary-{uuid.uuid4().hex[:4]}"
    deployment, second = f"{model}-api", f"{model}-wc"
    print(f"load average at the start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="canary-bench-") as state:
        platform = start_platform(Path(state))
        load = None
        try:
            endpoints = dict(platform.endpoints())
            seed(endpoints, models=[model], versions=3, model_pt=model_pt(), feature_names=FEATURES,
                 classes=[0, 1, 2], sample_rows=[[0.5] * len(FEATURES)])  # fmt: skip
            api = ApiClient(config_from_endpoints(endpoints))
            approve_and_roll(api, deployment, model, 1)
            assert wait_until(api, deployment, rested(1), 240)["phase"] == "COMPLETED"
            load = Load(platform, deployment, rate=args.rate, preview_rate=0.0).start()
            time.sleep(3)
            print(
                "1. blast radius: blue-green v2 (fault after promotion), then canary v3 at 10 % (fault from its start)"
            )
            blast = blast_radius(platform, api, load, deployment, model)
            print("2. 20 weight changes and 20 selector switches on a second deployment")
            changes = weight_changes(platform, api, load, model, second)
        finally:
            if load is not None:
                load.stop()
            platform.stop()
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    canary_strategy = parse_strategy({"type": "canary", "weights": "10,50,100"})
    assert canary_strategy is not None and isinstance(canary_strategy.steps[0], SetWeight)
    peaks = {"blue-green": peak_pods(None), "canary 10,50,100": peak_pods(canary_strategy)}

    bg, cn = blast["blue_green"], blast["canary"]
    print_table(
        f"blast radius: the same 50 % fault, {args.rate:g} requests/s",
        ("", "blue-green (fault after promotion)", "canary at 10 % (fault from its first request)"),
        [
            ("failed requests", str(bg["failed"]), str(cn["failed"])),
            (
                "requests in the window",
                str(bg["requests"]),
                f"{cn['requests']} ({cn['served_by_canary']} by the canary)",
            ),
            (
                "fault reaches users → traffic safe (s)",
                f"{bg['seconds']:.1f} (fault → rolled back)",
                f"{cn['share_seconds']:.1f} (first → last request to v3; rolled back at {cn['seconds']:.1f})",
            ),
            ("failed outside the canary's share", "-", str(cn["failed_outside_canary"])),
            ("stopped by", "alert → rollback", f"{cn['how'] or '?'} → {cn['phase']}"),
            ("ratio canary / blue-green", "", f"{cn['failed'] / max(1, bg['failed']):.2f} (target ≤ 0.20)"),
        ],
    )
    cw, bw = changes["canary"], changes["blue_green"]
    print_table(
        "decision → the router serving the new split (median / p95 / max ms), healthy versions",
        ("", "20 canary weight changes (Ingress)", "20 blue-green switches (selector)"),
        [
            ("decision → served", ms(cw["latencies"]), ms(bw["latencies"])),
            ("executor apply alone", ms(cw["applies"]), ms(bw["applies"])),
            ("requests during / failed", f"{cw['requests']} / {cw['failed']}", f"{bw['requests']} / {bw['failed']}"),
        ],
    )
    print_table(
        "peak pods during a rollout of a 4-replica deployment (reconcile step, simulated cluster)",
        ("strategy", "peak pods"),
        [(name, str(peak)) for name, peak in peaks.items()],
    )
    if args.json:
        args.json.write_text(
            json.dumps({"blast_radius": blast, "weight_changes": changes, "peak_pods": peaks}, indent=2)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
