"""Zero-downtime benchmark (issue 3, "Benchmarks"): failed requests while traffic is switched
between versions under constant load, on the embedded platform (moto, the functions in-process,
LocalServing's router and model-server processes, the real Prometheus for the rollout analysis).

Set-up: train two small versions of one model, deploy v1, then send `--rate` requests/s (default
50) to the deployment's active endpoint for the whole run (and `--preview-rate` to the preview
endpoint, which the pre-promotion analysis needs). After `--steady` seconds of steady state, do
`--switches` blue-green rollouts alternating v1 → v2 → v1 …; every third one is promoted and
then rolled back through the API (POST /deployments/{name}/rollback) while its blue is still warm,
which is one more switch. A thread records each moment the active Service's selector changes.

Reported: requests sent and failed (any non-200, connection errors included: no fault is
injected, so every failure is the platform's; target 0), and p50/p99 latency in steady state
(outside any rollout), during rollouts (request → at rest + 2 s, the old version's drain
included) and around switches (selector change −0.5 s … +2 s).

    .venv/bin/python benchmarks/zero_downtime.py [--switches 8] [--rate 50] [--steady 15] [--json out.json]

Default run: about 4-5 minutes on 2 shared cores.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.alert_rollback import (  # noqa: E402
    AT_REST,
    Load,
    percentile,
    print_table,
    roll_out,
    selector_version,
    start_platform,
    train_two,
    wait_until,
)
from control.cli.api_client import ApiClient  # noqa: E402
from control.cli.config import config_from_endpoints  # noqa: E402
from control.local.loadgen import Sample  # noqa: E402
from control.local.processes import exit_on_sigterm  # noqa: E402
from control.local.runtime import EmbeddedRuntime  # noqa: E402

SWITCH_BEFORE_S = 0.5
SWITCH_AFTER_S = 2.0
DRAIN_AFTER_S = 2.0


@dataclass
class SelectorWatch:
    """Every change of the active Service's selector, as (time, version), polled every 10 ms."""

    platform: EmbeddedRuntime
    service: str
    changes: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> SelectorWatch:
        self.changes.append((time.time(), selector_version(self.platform, self.service)))
        threading.Thread(target=self._run, daemon=True).start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.01):
            version = selector_version(self.platform, self.service)
            if version != self.changes[-1][1]:
                self.changes.append((time.time(), version))

    def stop(self) -> list[tuple[float, str]]:
        self._stop.set()
        return self.changes[1:]


def switch(api: ApiClient, deployment: str, model: str, target: int, roll_back: bool) -> dict[str, Any]:
    """One rollout to `target`; with roll_back, promote it and roll it back by the API while blue is warm."""
    began = time.time()
    if roll_back:
        roll_out(
            api, deployment, model, target, bake_seconds=60, scale_down_delay_seconds=90, analysis_interval_seconds=1
        )
        promoted = wait_until(
            api, deployment, lambda s: s["phase"] in AT_REST or s.get("active_version") == target, 180
        )
        if promoted.get("active_version") != target:
            raise RuntimeError(f"v{target} was not promoted: {promoted}")
        time.sleep(2)
        api.rollback(deployment, "benchmark: rollback by API")
        done = wait_until(api, deployment, lambda s: s["phase"] in AT_REST, 180, poll=0.25)
        expected = "ROLLED_BACK"
    else:
        roll_out(
            api, deployment, model, target, bake_seconds=1, scale_down_delay_seconds=3, analysis_interval_seconds=1
        )
        done = wait_until(api, deployment, lambda s: s["phase"] in AT_REST, 180, poll=0.25)
        expected = "COMPLETED"
    if done["phase"] != expected:
        raise RuntimeError(f"rollout of v{target} ended {done['phase']}: {done.get('reason')}")
    return {"target": target, "rolled_back": roll_back, "began": began, "at_rest": time.time()}


def within(sample: Sample, windows: list[tuple[float, float]]) -> bool:
    return any(start <= sample.at <= end for start, end in windows)


def latency_row(name: str, samples: list[Sample]) -> tuple[str, ...]:
    if not samples:
        return (name, "0", "0", "n/a", "n/a")
    failed = sum(1 for s in samples if s.status != 200)
    latencies = [s.latency * 1000 for s in samples]
    return (
        name,
        str(len(samples)),
        str(failed),
        f"{percentile(latencies, 0.5):.1f}",
        f"{percentile(latencies, 0.99):.1f}",
    )


def main() -> int:
    exit_on_sigterm()  # a stopped run stops the platform it started
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--switches", type=int, default=8, help="rollouts (every third also rolled back by API)")
    parser.add_argument("--rate", type=float, default=50.0, help="requests/s on the active endpoint")
    parser.add_argument("--preview-rate", type=float, default=10.0, help="requests/s on the preview endpoint")
    parser.add_argument("--workers", type=int, default=8, help="load-generator threads per endpoint")
    parser.add_argument("--steady", type=float, default=15.0, help="seconds of steady state before the switches")
    parser.add_argument("--rows", type=int, default=300, help="rows of each training dataset")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args()

    model = f"zdt-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    started = time.monotonic()
    rollouts: list[dict[str, Any]] = []
    measure_from = float("inf")
    with tempfile.TemporaryDirectory(prefix="mlcp-bench-") as state:
        platform = start_platform(Path(state))
        load: Load | None = None
        watch: SelectorWatch | None = None
        try:
            api = ApiClient(config_from_endpoints(platform.endpoints()))
            print(f"platform up in {time.monotonic() - started:.0f} s; training two versions of {model}", flush=True)
            train_two(platform, model, args.rows)
            roll_out(api, deployment, model, 1)
            load = Load(platform, deployment, args.rate, args.preview_rate, workers=args.workers).start()
            wait_until(api, deployment, lambda s: s["phase"] in AT_REST, timeout=240, poll=0.5)
            watch = SelectorWatch(platform, deployment).start()
            measure_from = time.time()
            print(f"v1 serving at {time.monotonic() - started:.0f} s; {args.steady:.0f} s of steady state", flush=True)
            time.sleep(args.steady)
            active = 1
            for index in range(args.switches):
                target = 2 if active == 1 else 1
                roll_back = index % 3 == 2
                rollouts.append(switch(api, deployment, model, target, roll_back))
                active = active if roll_back else target
                took = rollouts[-1]["at_rest"] - rollouts[-1]["began"]
                kind = "rolled back by API" if roll_back else "completed"
                print(f"  switch {index + 1}: v{target} {kind} in {took:.1f} s", flush=True)
                time.sleep(2)
            time.sleep(5)
        finally:
            changes = watch.stop() if watch else []
            samples = load.stop() if load else {}
            platform.stop()
    # From v1 serving on (its own first rollout created the endpoint; that is not a switch).
    active_samples = [s for s in samples.get(deployment, []) if s.at >= measure_from]
    preview_samples = next((v for k, v in samples.items() if k != deployment), [])
    rollout_windows = [(r["began"], r["at_rest"] + DRAIN_AFTER_S) for r in rollouts]
    switch_windows = [(at - SWITCH_BEFORE_S, at + SWITCH_AFTER_S) for at, _ in changes]
    steady = [s for s in active_samples if not within(s, rollout_windows)]
    during = [s for s in active_samples if within(s, rollout_windows)]
    around = [s for s in active_samples if within(s, switch_windows)]
    failed = [s for s in active_samples if s.status != 200]
    span = (max(s.at for s in active_samples) - min(s.at for s in active_samples)) if active_samples else 0.0

    print(f"\nrun: {time.monotonic() - started:.0f} s")
    print_table(
        f"zero downtime: {len(rollouts)} rollouts ({sum(r['rolled_back'] for r in rollouts)} rolled back by API), "
        f"{len(changes)} active-selector switches, {args.rate:.0f} req/s offered to the active endpoint "
        f"({len(active_samples) / span if span else 0:.1f} req/s achieved over {span:.0f} s)",
        ("active endpoint", "requests", "failed", "p50 ms", "p99 ms"),
        [
            latency_row("whole run", active_samples),
            latency_row("steady state (outside rollouts)", steady),
            latency_row("during rollouts (request → at rest + 2 s)", during),
            latency_row(f"around switches (−{SWITCH_BEFORE_S} s … +{SWITCH_AFTER_S} s)", around),
        ],
    )
    by_status: dict[int, int] = {}
    for s in failed:
        by_status[s.status] = by_status.get(s.status, 0) + 1
    verdict = "met" if not failed else "NOT met"
    print(f"target: 0 failed requests caused by the platform → {verdict} ({len(failed)} failed, by status {by_status})")
    preview_failed: dict[int, int] = {}
    for s in preview_samples:
        if s.status != 200:
            preview_failed[s.status] = preview_failed.get(s.status, 0) + 1
    print(
        f"preview endpoint (analysis traffic, not the target; it selects green, which is absent between "
        f"rollouts): {len(preview_samples)} requests, {sum(preview_failed.values())} failed, by status {preview_failed}"
    )
    print("switches: " + ", ".join(f"→v{version}" for _, version in changes))
    if args.json:
        summary = {
            "rollouts": rollouts,
            "switches": changes,
            "requests": len(active_samples),
            "failed": len(failed),
            "failed_by_status": by_status,
            "failed_samples": [s.__dict__ for s in failed[:50]],
        }
        args.json.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return 0 if not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
