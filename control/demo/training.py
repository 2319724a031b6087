"""The README's main command: the whole training loop on the embedded platform.

Drop a generated dataset into the embedded S3 and follow it: the S3 handler starts the
training pipeline, Horovod trains with 2 workers on this host, the artifact lands in S3 with
its sha256, and a new model version with lineage appears in the DynamoDB registry.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from rich.console import Console
from rich.table import Table

from control.cli.api_client import ApiClient
from control.cli.config import config_from_endpoints
from control.cli.errors import ClientError, ExitCode
from control.domain.datasets import parse_dataset_key, run_id_for
from control.domain.timeline import Step
from control.domain.training import TrainingRequest
from control.local.runtime import EmbeddedRuntime

console = Console(highlight=False)


@contextlib.contextmanager
def progress_only(log_path: Path) -> Iterator[Path]:
    """The screen shows the demo's progress (what `console` prints) and nothing else: whatever this
    process and the processes it starts write to stdout or stderr (the API's access log, the functions'
    JSON logs and metrics) goes to `log_path` instead. Redirected at the file descriptors, so that
    handlers which hold a stream from before are redirected too."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = (os.dup(1), os.dup(2))
    screen = os.fdopen(os.dup(1), "w", buffering=1)
    previous = console.file
    console.file = screen
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    try:
        yield log_path
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        for fd, saved_fd in ((1, saved[0]), (2, saved[1])):
            os.dup2(saved_fd, fd)
            os.close(saved_fd)
        console.file = previous
        screen.close()


def versions_line(active: int | None, preview: int | None) -> str:
    """What serves and what is previewed, in words (a first rollout has nothing serving yet)."""
    serving = f"serving v{active}" if active is not None else "nothing serving yet"
    return serving + (f", preview v{preview}" if preview is not None else "")


@dataclass
class DemoResult:
    ok: bool
    reason: str = ""
    timeline: list[tuple[datetime, str]] = field(default_factory=list)
    version: dict[str, Any] = field(default_factory=dict)


def run_training_demo(
    platform: EmbeddedRuntime,
    *,
    model: str = "demo-classifier",
    rows: int = 3000,
    seed: int = 7,
    dataset_version: str = "",
    timeout: float = 600.0,
) -> DemoResult:
    from workloads.training.synthetic import synthetic_csv

    endpoints = platform.endpoints()
    api = ApiClient(config_from_endpoints(endpoints))
    s3 = boto3.client("s3", endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])
    key = f"datasets/{model}/{dataset_version or f'{datetime.now(UTC):%Y%m%d-%H%M%S}'}/data.csv"
    body = synthetic_csv(rows, seed=seed).encode()
    result = DemoResult(ok=False)
    result.timeline.append((datetime.now(UTC), f"put s3://{endpoints['data_bucket']}/{key} ({len(body):,} bytes)"))
    console.print(f"[bold]1.[/] dropping a {rows}-row dataset into s3://{endpoints['data_bucket']}/{key}")
    put = s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=body)
    run_id = expected_run_id(endpoints["data_bucket"], key, put["ETag"].strip('"'), put.get("VersionId", ""))

    run = _wait_for(lambda: _run_started(api, run_id), 30, "the pipeline to start")
    console.print(f"[bold]2.[/] the S3 handler started execution [cyan]{run_id}[/]")
    shown: set[tuple[str, str]] = set()
    polls = 0
    deadline = time.monotonic() + timeout
    status = "RUNNING"
    while time.monotonic() < deadline:
        run = api.get_training_run(run_id)
        status = (run.get("execution") or {}).get("status", "RUNNING")
        steps = api.run_timeline(run_id)
        polls = sum(1 for step in steps if step.state == "CheckTraining" and step.event == "entered")
        for step in steps:
            # The wait/poll loop repeats its states: show each state once, every failure.
            seen_key = (step.state, step.event if step.event != "failed" else f"failed {step.at}")
            if seen_key not in shown:
                shown.add(seen_key)
                _print_step(step)
                result.timeline.append((step.at, f"{step.state or 'execution'} {step.event} {step.detail}".strip()))
        if status != "RUNNING":
            break
        time.sleep(1)
    console.print(f"   the pipeline polled the training job {polls} times")
    if status != "SUCCEEDED":
        result.reason = f"pipeline {status}: {run.get('cause') or (run.get('execution') or {}).get('cause', '')}"
        return result

    version = next(v for v in api.list_versions(model) if v["lineage"]["training_run_id"] == run_id)
    lineage = version["lineage"]
    bucket, _, artifact_key = lineage["artifact_uri"][5:].partition("/")
    artifact = s3.get_object(Bucket=bucket, Key=artifact_key)["Body"].read()
    digest = hashlib.sha256(artifact).hexdigest()
    if digest != lineage["artifact_sha256"]:
        result.reason = f"artifact sha256 {digest} != registered {lineage['artifact_sha256']}"
        return result
    if lineage["dataset_uri"] != f"s3://{endpoints['data_bucket']}/{key}":
        result.reason = f"lineage names dataset {lineage['dataset_uri']}, not the one dropped"
        return result
    result.version = version
    result.ok = True
    _print_version(version, digest)
    return result


def _run_started(api: ApiClient, run_id: str) -> dict[str, Any] | None:
    """The run once its pipeline execution exists (the S3 handler starts it a moment after the put)."""
    try:
        return api.get_training_run(run_id)
    except ClientError as error:
        if error.exit_code == ExitCode.NOT_FOUND:
            return None
        raise


def expected_run_id(bucket: str, key: str, etag: str, version_id: str) -> str:
    """The run id the S3 handler derives for this object (same rule, so no guessing)."""
    dataset = parse_dataset_key(bucket, key)
    assert dataset is not None
    obj = replace(dataset, etag=etag, version_id=version_id)
    request = TrainingRequest(model_name=obj.model_name, dataset_version=obj.dataset_version, dataset=obj.to_dict())
    return run_id_for(obj.model_name, obj.dataset_version, request.content_key())


def _wait_for(probe: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


def _print_step(step: Step) -> None:
    colour = {"failed": "red", "succeeded": "green"}.get(step.event, "white")
    label = step.state or "execution"
    console.print(f"   {step.at:%H:%M:%S}  [{colour}]{label} {step.event}[/] {step.detail}")


def _print_version(version: dict[str, Any], digest: str) -> None:
    lineage = version["lineage"]
    table = Table(title=f"registered {version['model_name']} v{version['version']} ({version['status']})")
    table.add_column("lineage")
    table.add_column("value", overflow="fold")
    for name in ("dataset_uri", "dataset_etag", "training_run_id", "artifact_uri", "code_version", "workers"):
        table.add_row(name, str(lineage.get(name)))
    table.add_row("artifact_sha256 (verified)", digest)
    for name, value in sorted(lineage["metrics"].items()):
        table.add_row(f"metric {name}", f"{value:.4f}")
    table.add_row("hyperparameters", str(lineage["hyperparameters"]))
    console.print(table)


def print_timeline(timeline: list[tuple[datetime, str]]) -> None:
    start = timeline[0][0]
    table = Table(title="timeline")
    table.add_column("t+ (s)", justify="right")
    table.add_column("step")
    for at, text in sorted(timeline, key=lambda item: item[0]):
        table.add_row(f"{(at - start).total_seconds():6.1f}", text)
    console.print(table)


def state_dir_for(name: str) -> Path:
    return Path(".state") / f"{name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
