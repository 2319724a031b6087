"""Soak: the whole local loop repeated under constant load, watching the long-lived processes.

    .venv/bin/python benchmarks/soak.py [--cycles 20] [--minutes 0] [--rate 10]

One embedded platform; v1 is trained and rolled out once, then every cycle trains the next version
(S3 drop → pipeline → Horovod → registry), rolls it out blue-green, injects a fault into it after its
promotion and waits until the real Prometheus + Alertmanager have rolled it back to last-known-good.
Constant load runs on the active and preview endpoints all along (control/demo/serving.py).

Per cycle it prints the RSS and open file descriptors of this process, Prometheus, Alertmanager and
the routers, requests sent to the active endpoint and failed outside the injected faults (`failed*`),
requests to the preview endpoint that were not 200 (`preview!`: green while it starts, a rolled-back
version after a rollback; not user traffic), and events lost (a dataset drop
that registered no version, a fault whose alert recorded no rollback, a dead letter): must be 0.
`--minutes N` stops after the cycle that crosses N minutes. Exits non-zero if anything was lost or
failed outside a fault.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from control.cli.api_client import ApiClient  # noqa: E402
from control.cli.config import config_from_endpoints  # noqa: E402
from control.demo.serving import Traffic, alert_rollback, deploy  # noqa: E402
from control.demo.training import run_training_demo  # noqa: E402
from control.local.loadgen import LoadGenerator, Sample  # noqa: E402
from control.local.processes import exit_on_sigterm  # noqa: E402
from control.local.runtime import EmbeddedRuntime  # noqa: E402
from control.manifests.serving import preview_service_name  # noqa: E402

MODEL = "soak"
DEPLOYMENT = "soak"
FAULT_GRACE_SECONDS = 2.0  # requests in flight when traffic moved back


@dataclass
class SoakTraffic(Traffic):
    """Traffic with no time limit on its generators (the demo's stop after 10 minutes)."""

    def refresh(self) -> None:
        endpoints = self.platform.deployment_endpoints()
        for service in (self.deployment, preview_service_name(self.deployment)):
            if service in endpoints and service not in self.generators:
                generator = LoadGenerator.for_features(endpoints[service], rate=self.rate, max_seconds=86400)
                self.generators[service] = generator.start()

    def samples(self, service: str) -> list[Sample]:
        generator = self.generators.get(service)
        if generator is None:
            return []
        with generator._lock:  # noqa: SLF001  (a snapshot while it runs)
            return list(generator.samples)


def watched(platform: EmbeddedRuntime) -> dict[str, psutil.Process]:
    processes = {"control": psutil.Process()}
    recorded = platform.state_dir / "observability" / "processes.json"
    if recorded.exists():
        for name, process in json.loads(recorded.read_text()).items():
            processes[name] = psutil.Process(process["pid"])
    for name, state in platform.serving().state.all_services().items():
        if state.get("router"):
            processes[f"router {name}"] = psutil.Process(state["router"]["pid"])
    return processes


def usage(processes: dict[str, psutil.Process]) -> dict[str, tuple[float, int]]:
    out = {}
    for name, process in processes.items():
        try:
            out[name] = (process.memory_info().rss / 2**20, process.num_fds())
        except psutil.NoSuchProcess:
            out[name] = (float("nan"), -1)
    return out


def in_fault(sample: Sample, windows: list[tuple[float, float, int]]) -> bool:
    return any(
        start <= sample.at <= end + FAULT_GRACE_SECONDS and sample.version in ("", str(bad))
        for start, end, bad in windows
    )


def dead_letters(endpoints: dict[str, Any]) -> int:
    import boto3

    sqs = boto3.client("sqs", endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])
    attributes = sqs.get_queue_attributes(
        QueueUrl=endpoints["dead_letter_queue_url"], AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"])


def _codes(samples: list[Sample]) -> dict[str, int]:
    codes: dict[str, int] = {}
    for sample in samples:
        if sample.status != 200:
            key = f"{sample.status}@v{sample.version or '?'}"
            codes[key] = codes.get(key, 0) + 1
    return codes


def main() -> int:
    exit_on_sigterm()  # a stopped run stops the platform it started
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after the cycle that crosses this")
    parser.add_argument("--rate", type=float, default=10.0, help="requests/s on each endpoint")
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--trace-memory", action="store_true", help="print where this process's memory grew")
    args = parser.parse_args()
    if args.trace_memory:
        tracemalloc.start(1)
    baseline: tracemalloc.Snapshot | None = None

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="mlcp-soak-") as state, EmbeddedRuntime(Path(state)) as platform:
        endpoints = platform.endpoints()
        api = ApiClient(config_from_endpoints(endpoints))
        traffic = SoakTraffic(platform, DEPLOYMENT, rate=args.rate)
        windows: list[tuple[float, float, int]] = []
        lost = sent_before = failed_before = preview_before = 0
        rows: list[dict[str, Any]] = []
        try:
            trained = run_training_demo(platform, model=MODEL, rows=args.rows, seed=100, dataset_version="v1")
            if not trained.ok:
                raise SystemExit(f"training v1 failed: {trained.reason}")
            status = deploy(api, traffic, DEPLOYMENT, MODEL, trained.version["version"])
            if status["phase"] != "COMPLETED":
                raise SystemExit(f"rollout of v1 ended {status['phase']}: {status.get('reason')}")
            print(f"\nset-up (v1 trained and serving): {time.monotonic() - started:.0f} s\n", flush=True)
            header = f"{'cycle':>5} {'s':>5} {'sent':>6} {'failed*':>7} {'preview!':>8} {'lost':>4}  " + "  ".join(
                f"{name} MiB/fds" for name in watched(platform)
            )
            print(header, flush=True)
            registered = int(trained.version["version"])
            for cycle in range(1, args.cycles + 1):
                cycle_start = time.monotonic()
                version = registered + 1
                trained = run_training_demo(
                    platform, model=MODEL, rows=args.rows, seed=100 + cycle, dataset_version=f"d{cycle + 1}"
                )
                if not trained.ok or trained.version["version"] != version:
                    lost += 1  # the dataset event did not become exactly the next version
                    print(f"cycle {cycle}: training v{version}: {trained.reason}", flush=True)
                    continue
                registered = version
                status = deploy(api, traffic, DEPLOYMENT, MODEL, version)
                if status["phase"] != "COMPLETED":
                    raise SystemExit(f"cycle {cycle}: rollout of v{version} ended {status['phase']}")
                outcome = alert_rollback(platform, api, traffic, DEPLOYMENT, bad_version=version)
                windows.append((outcome["fault_at"], outcome["back_at"], version))
                if outcome["status"]["phase"] != "ROLLED_BACK" or outcome["alert"] is None:
                    lost += 1  # the fault's alert never became a rollback
                time.sleep(FAULT_GRACE_SECONDS)
                active = traffic.samples(DEPLOYMENT)
                failed = sum(1 for s in active if s.status != 200 and not in_fault(s, windows))
                preview = traffic.samples(preview_service_name(DEPLOYMENT))
                preview_failed = sum(1 for s in preview if s.status != 200)
                figures = usage(watched(platform))
                rows.append({"cycle": cycle, "seconds": time.monotonic() - cycle_start, "usage": figures})
                print(
                    f"{cycle:>5} {time.monotonic() - cycle_start:>5.0f} {len(active) - sent_before:>6} "
                    f"{failed - failed_before:>7} {preview_failed - preview_before:>8} {lost:>4}  "
                    + "  ".join(f"{rss:.0f}/{fds}" for rss, fds in figures.values()),
                    flush=True,
                )
                sent_before, failed_before, preview_before = len(active), failed, preview_failed
                if args.trace_memory and baseline is None:
                    baseline = tracemalloc.take_snapshot()
                if args.minutes and time.monotonic() - started >= args.minutes * 60:
                    break
        finally:
            samples = traffic.stop()
        total = samples.get(DEPLOYMENT, [])  # user traffic: the active endpoint
        preview_total = samples.get(preview_service_name(DEPLOYMENT), [])
        failed_outside = [s for s in total if s.status != 200 and not in_fault(s, windows)]
        in_faults = sum(1 for s in total if s.status != 200) - len(failed_outside)
        lost += dead_letters(endpoints)
        if baseline is not None:
            print("\nthis process's memory growth since cycle 1 (tracemalloc, top 15 lines):")
            for stat in tracemalloc.take_snapshot().compare_to(baseline, "lineno")[:15]:
                print(f"  {stat}")
    print(
        f"\n{len(rows)} cycles in {time.monotonic() - started:.0f} s "
        f"(a cycle: median {sorted(r['seconds'] for r in rows)[len(rows) // 2] if rows else 0:.0f} s); "
        f"requests {len(total)}, failed inside the injected faults {in_faults}, "
        f"failed outside them {len(failed_outside)} {_codes(failed_outside)}; events lost {lost}\n"
        f"preview endpoint (not user traffic): {len(preview_total)} requests, "
        f"{sum(1 for s in preview_total if s.status != 200)} not 200 {_codes(preview_total)}"
    )
    if rows:
        print("trend (first → last cycle):")
        for name in rows[0]["usage"]:
            (rss0, fds0), (rss1, fds1) = rows[0]["usage"][name], rows[-1]["usage"].get(name, (float("nan"), -1))
            print(f"  {name:<22} RSS {rss0:7.1f} → {rss1:7.1f} MiB   fds {fds0:4d} → {fds1:4d}")
    return 1 if failed_outside or lost else 0


if __name__ == "__main__":
    sys.exit(main())
