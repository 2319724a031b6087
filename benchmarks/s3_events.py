"""S3 event handling benchmark: dataset events through the handler vs a bare boto3 `start_execution`
loop, same embedded AWS, same names, one run (issue 2, "Benchmarks").

The embedded AWS (moto's server, Step Functions executing) is started with the platform's resources
(`provision`: versioned buckets, table, queue, functions, state machines). The bucket's own
notification is then removed: the benchmark delivers the events itself, and no real training runs.
Three trivial state machines (one Pass state) are created, one per path measured:

  use case  `handle_dataset_event(platform, parse_s3_event(event))` (control.usecases.training), with a Platform built
            from Settings whose training_state_machine_arn is the first trivial machine;
  chalice   the Lambda handler `on_dataset_uploaded(event, context)` as Lambda calls it (the use case
            + Powertools metrics flushed and a log line per outcome, written to /dev/null);
  bare      `boto3.client("stepfunctions").start_execution(name=..., input=...)` with the same names and
            inputs the handler sends (ExecutionAlreadyExists caught), on the third machine.

N distinct dataset objects `datasets/<model>/<version>/data.csv` are put in the data bucket; the
events are S3 ObjectCreated:Put notifications in S3's shape (eTag and versionId, as S3 sends for a
versioned bucket), one record each, --duplicates of them redeliveries of earlier ones, shuffled so
that a redelivery can arrive before its first delivery. Every event goes through the three paths in
turn (rotating order), so that load on the shared machine and the growing number of executions hit
them alike. At the end, list_executions on each machine must show exactly N executions.

    .venv/bin/python benchmarks/s3_events.py [--events 1000] [--duplicates 0.3] [--seed 7] [--json out.json]

Default run: about a minute on 2 cores. Target: the handler costs <= 1.5x the bare call (median latency).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import boto3  # noqa: E402
from botocore.exceptions import ClientError  # noqa: E402

from control.composition import build_platform  # noqa: E402
from control.domain.datasets import DatasetObject, parse_s3_event, run_id_for  # noqa: E402
from control.domain.training import TrainingRequest  # noqa: E402
from control.domain.training_runs import StartedRun  # noqa: E402
from control.local.moto_server import start_embedded_aws  # noqa: E402
from control.local.provision import ACCOUNT, provision  # noqa: E402
from control.local.runtime import load_chalice_app  # noqa: E402
from control.settings import Settings  # noqa: E402
from control.usecases.training import handle_dataset_event  # noqa: E402

REGION = "us-east-1"
TARGET_RATIO = 1.5
TRIVIAL_DEFINITION = json.dumps(
    {"Comment": "benchmark: starts and ends", "StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": True}}}
)
CSV = "f1,f2,f3,label\n0.1,0.2,0.3,0\n0.4,0.5,0.6,1\n0.7,0.8,0.9,0\n"


@dataclass
class PathResult:
    name: str
    latencies_ms: list[float] = field(default_factory=list)
    client_cpu_ms: list[float] = field(default_factory=list)  # this thread's CPU: our side, not moto's
    outcomes: dict[str, int] = field(default_factory=dict)
    executions: int = 0

    def count(self, outcome: str) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    @property
    def total_s(self) -> float:
        return sum(self.latencies_ms) / 1000

    def events_per_s(self) -> float:
        return len(self.latencies_ms) / self.total_s if self.latencies_ms else float("nan")

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass(frozen=True)
class Dataset:
    model: str
    version: str
    key: str
    etag: str
    version_id: str
    size: int
    sequencer: str


def put_datasets(s3: Any, bucket: str, count: int) -> list[Dataset]:
    """`count` distinct small CSV datasets, spread over a few models; S3 gives each its ETag and version."""
    datasets = []
    models = max(1, min(10, count // 50))
    for index in range(count):
        model, version = f"bench-model-{index % models}", f"v{index // models + 1}"
        key = f"datasets/{model}/{version}/data.csv"
        body = (CSV + f"{index / count:.6f},0,0,{index % 2}\n").encode()
        response = s3.put_object(Bucket=bucket, Key=key, Body=body)
        datasets.append(
            Dataset(
                model=model,
                version=version,
                key=key,
                etag=response["ETag"].strip('"'),
                version_id=response["VersionId"],
                size=len(body),
                sequencer=f"{time.time_ns():016X}"[:18],
            )
        )
    return datasets


def s3_event(bucket: str, dataset: Dataset) -> dict[str, Any]:
    """One ObjectCreated:Put notification as S3 sends it (a versioned bucket: versionId present)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:AIDAEXAMPLEBENCHMARK"},
                "requestParameters": {"sourceIPAddress": "127.0.0.1"},
                "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": uuid.uuid4().hex},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "datasets-uploaded",
                    "bucket": {
                        "name": bucket,
                        "ownerIdentity": {"principalId": "A3EXAMPLEOWNER"},
                        "arn": f"arn:aws:s3:::{bucket}",
                    },
                    "object": {
                        "key": quote_plus(dataset.key, safe="/"),
                        "size": dataset.size,
                        "eTag": dataset.etag,
                        "versionId": dataset.version_id,
                        "sequencer": dataset.sequencer,
                    },
                },
            }
        ]
    }


def build_events(datasets: list[Dataset], total: int, duplicate_share: float, rng: random.Random) -> list[Dataset]:
    """`total` deliveries: every dataset once, the rest redeliveries of random ones; shuffled."""
    duplicates = total - len(datasets)
    deliveries = list(datasets) + [rng.choice(datasets) for _ in range(duplicates)]
    rng.shuffle(deliveries)
    return deliveries


def expected_start(settings: Settings, bucket: str, dataset: Dataset) -> tuple[str, str]:
    """The execution name and input the handler sends for this dataset (what the bare loop sends)."""
    obj = DatasetObject(
        bucket=bucket,
        key=dataset.key,
        model_name=dataset.model,
        dataset_version=dataset.version,
        etag=dataset.etag,
        version_id=dataset.version_id,
        size=dataset.size,
    )
    request = TrainingRequest(model_name=dataset.model, dataset_version=dataset.version, dataset=obj.to_dict())
    run_id = run_id_for(dataset.model, dataset.version, request.content_key())
    payload = request.to_execution_input(run_id) | {"poll_seconds": settings.poll_seconds}
    return run_id, json.dumps(payload)


def create_trivial_machine(sfn: Any, name: str, role_arn: str) -> str:
    return sfn.create_state_machine(name=name, definition=TRIVIAL_DEFINITION, roleArn=role_arn)["stateMachineArn"]


def count_executions(sfn: Any, arn: str) -> int:
    total = 0
    for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=arn):
        total += len(page["executions"])
    return total


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"


def print_table(results: list[PathResult], distinct: int, events: int, load: tuple[str, str]) -> bool:
    by_name = {r.name: r for r in results}
    bare = by_name["bare"]
    print()
    print(
        f"S3 event handling: {events} events ({events - distinct} redeliveries, shuffled), "
        f"{distinct} distinct datasets; embedded AWS (moto server, Step Functions executing a one-Pass-state "
        f"machine), {os.cpu_count()} CPUs"
    )
    print(f"load average before: {load[0]}; after: {load[1]}")
    header = ["path", "events/s", "p50 ms", "p99 ms", "mean ms", "p50 ratio", "mean ratio", "client CPU ms", "ratio"]
    header += ["started", "dup", "execs"]
    bare_cpu = statistics.median(bare.client_cpu_ms)
    rows = []
    for r in results:
        rows.append(
            [
                r.name,
                fmt(r.events_per_s(), 0),
                fmt(r.percentile(50)),
                fmt(r.percentile(99)),
                fmt(statistics.fmean(r.latencies_ms)),
                fmt(r.percentile(50) / bare.percentile(50)) + "x",
                fmt(statistics.fmean(r.latencies_ms) / statistics.fmean(bare.latencies_ms)) + "x",
                fmt(statistics.median(r.client_cpu_ms), 3),
                fmt(statistics.median(r.client_cpu_ms) / bare_cpu) + "x",
                str(r.outcomes.get("started", 0)),
                str(r.outcomes.get("duplicate", 0)),
                str(r.executions),
            ]
        )
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for row in rows:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    met = True
    for name in ("use case", "chalice"):
        ratio = by_name[name].percentile(50) / bare.percentile(50)
        verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
        met = met and ratio <= TARGET_RATIO
        print(f"target {name} <= {TARGET_RATIO}x bare (median latency): {fmt(ratio)}x, {verdict}")
    executions = ", ".join(f"{r.name} {r.executions}" for r in results)
    print(f"executions started per state machine (list_executions): {executions}; distinct datasets: {distinct}")
    print(
        "ratios: path / bare. Each event went through the three paths in turn (rotating order). client CPU: "
        "median CPU time of the calling thread per event (parsing, botocore, Powertools; not moto's server "
        "threads), the figure least disturbed by other load. 'execs': list_executions at the end."
    )
    return met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=1000, help="events delivered (default 1000)")
    parser.add_argument("--duplicates", type=float, default=0.3, help="share of redeliveries (default 0.3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if not 0 <= args.duplicates < 1 or args.events < 1:
        parser.error("--events >= 1 and 0 <= --duplicates < 1")
    distinct = max(1, round(args.events * (1 - args.duplicates)))
    rng = random.Random(args.seed)
    load_before = _load_average()

    aws = start_embedded_aws(REGION)
    try:
        with tempfile.TemporaryDirectory(prefix="mlcp-s3-bench-") as state_dir:
            resources, env = provision(aws.endpoint_url, REGION, "bench", {"CONTROL_LOCAL_STATE_DIR": state_dir})
            s3 = boto3.client("s3", region_name=REGION, endpoint_url=aws.endpoint_url)
            sfn = boto3.client("stepfunctions", region_name=REGION, endpoint_url=aws.endpoint_url)
            bucket = resources.data_bucket
            # The benchmark delivers the events itself; the uploads below must not trigger anything.
            s3.put_bucket_notification_configuration(Bucket=bucket, NotificationConfiguration={})
            role = f"arn:aws:iam::{ACCOUNT}:role/mlcp-bench-states"
            machines = {
                name: create_trivial_machine(sfn, f"bench-trivial-{name.replace(' ', '-')}", role)
                for name in ("use case", "chalice", "bare")
            }
            print(f"putting {distinct} datasets in s3://{bucket}/datasets/", file=sys.stderr)
            datasets = put_datasets(s3, bucket, distinct)
            deliveries = build_events(datasets, args.events, args.duplicates, rng)
            events = [s3_event(bucket, d) for d in deliveries]

            # use case: a Platform built from Settings pointing at its trivial machine.
            settings_env = {**os.environ, **env}
            platform = build_platform(
                Settings.from_env(settings_env | {"CONTROL_TRAINING_STATE_MACHINE_ARN": machines["use case"]})
            )
            # chalice: the handler builds its platform from the environment, as in Lambda.
            os.environ.update(env | {"CONTROL_TRAINING_STATE_MACHINE_ARN": machines["chalice"]})
            handler, devnull = _chalice_handler()
            context = SimpleNamespace(function_name="on_dataset_uploaded", aws_request_id="bench")
            # bare: a plain client, the same names and inputs the handler sends.
            bare_client = boto3.client("stepfunctions", region_name=REGION, endpoint_url=aws.endpoint_url)
            starts = [expected_start(platform.settings, bucket, d) for d in deliveries]

            # Warm-up: clients built and connections open on every path; nothing started.
            platform.pipelines.list_executions(machines["use case"])
            from chalicelib.runtime import current_platform

            current_platform().pipelines.list_executions(machines["chalice"])
            bare_client.list_executions(stateMachineArn=machines["bare"])
            with contextlib.redirect_stdout(devnull), warnings.catch_warnings():
                warnings.simplefilter("ignore")  # a test event publishes no metrics: Powertools warns
                handler({"Event": "s3:TestEvent"}, context)

            results = {name: PathResult(name) for name in machines}
            seen_run_ids: set[str] = set()

            def run_use_case(index: int) -> None:
                outcome = handle_dataset_event(platform, parse_s3_event(events[index]))[0]
                assert isinstance(outcome, StartedRun), outcome
                results["use case"].count(outcome.outcome)
                seen_run_ids.add(outcome.run_id)

            def run_chalice(index: int) -> None:
                with contextlib.redirect_stdout(devnull):
                    outcome = handler(events[index], context)["outcomes"][0]
                results["chalice"].count(outcome["outcome"])

            def run_bare(index: int) -> None:
                name, payload = starts[index]
                try:
                    bare_client.start_execution(stateMachineArn=machines["bare"], name=name, input=payload)
                    results["bare"].count("started")
                except ClientError as error:
                    if error.response["Error"]["Code"] != "ExecutionAlreadyExists":
                        raise
                    results["bare"].count("duplicate")

            paths = [("use case", run_use_case), ("chalice", run_chalice), ("bare", run_bare)]
            print(f"delivering {len(events)} events through {len(paths)} paths", file=sys.stderr)
            for index in range(len(events)):
                shift = index % len(paths)
                for name, run in paths[shift:] + paths[:shift]:
                    started, cpu = time.perf_counter(), time.thread_time()
                    run(index)
                    results[name].latencies_ms.append((time.perf_counter() - started) * 1000)
                    results[name].client_cpu_ms.append((time.thread_time() - cpu) * 1000)
                if (index + 1) % 200 == 0:
                    print(f"  {index + 1} events", file=sys.stderr)

            for name, arn in machines.items():
                results[name].executions = count_executions(sfn, arn)
            assert seen_run_ids == {name for name, _ in starts}, "the bare loop did not use the handler's names"
            for result in results.values():
                assert result.executions == distinct, f"{result.name}: {result.executions} executions != {distinct}"
                assert result.outcomes.get("started", 0) == distinct, (result.name, result.outcomes)
    finally:
        aws.stop()

    ordered = [results["use case"], results["chalice"], results["bare"]]
    met = print_table(ordered, distinct, len(events), (load_before, _load_average()))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        figures = {r.name: asdict(r) | {"p50_ms": r.percentile(50), "p99_ms": r.percentile(99)} for r in ordered}
        args.json.write_text(json.dumps({"events": len(events), "distinct": distinct, "paths": figures}, indent=2))
    print(f"target {'met' if met else 'MISSED'}")
    return 0


def _chalice_handler() -> tuple[Any, io.TextIOBase]:
    """The Lambda handler as Lambda calls it; its log lines and metrics go to /dev/null (still written)."""
    app = load_chalice_app()
    from chalicelib.runtime import logger, use_platform

    use_platform(None)
    devnull = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the benchmark
    for handler in logger.handlers:
        if hasattr(handler, "setStream"):
            handler.setStream(devnull)
    return app.app.handler_map["on_dataset_uploaded"], devnull


def _load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


if __name__ == "__main__":
    sys.exit(main())
