"""The disaster-recovery drill: restore the registry and the artifacts into a fresh environment,
prove them, redeploy every deployment's last-known-good there and send it traffic, and measure
RTO and RPO against the stated targets.

Locally the lost environment is a running embedded platform (its endpoints file) and the fresh
one is a second embedded platform, started here as its own `python -m control up` process; in
AWS they are the two regions' endpoints files (the DR region's table from PITR or this import,
its artifacts bucket the replica). Every step goes through the public surfaces: DynamoDB and S3
for the data, the API for the rollouts, the active Service for the prediction.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import requests

from control.adapters.aws import RETRY_CONFIG, client
from control.adapters.dynamodb_deployments import DynamoDbDeployments
from control.adapters.dynamodb_items import from_item
from control.adapters.registry_backup import (
    BackupManifest,
    copy_prefix,
    export_table,
    import_table,
    object_sha256,
    plain_items,
    read_items,
    split_uri,
)
from control.cli.api_client import ApiClient
from control.cli.config import load_client_config
from control.domain.recovery import (
    RPO_TARGET,
    RTO_TARGET,
    Objectives,
    Problem,
    Redeploy,
    artifacts,
    check_artifact,
    compare_restored,
    for_rebuilt_cluster,
    last_known_good,
    lost_changes,
    verify_registry,
)
from control.errors import ControlError, DependencyError, TransientError

COPIED_PREFIXES = {"artifacts_bucket": "models/", "data_bucket": "datasets/"}


class DrillFailed(ControlError):
    """The restored environment is not what the backup promised; `problems` says what."""

    def __init__(self, problems: list[Problem], report: DrillReport) -> None:
        super().__init__(f"the drill found {len(problems)} problems: " + "; ".join(map(str, problems[:10])))
        self.problems = problems
        self.report = report


@dataclass(frozen=True)
class Environment:
    """One platform's data stores, from its endpoints file."""

    endpoints_file: Path
    endpoints: dict[str, Any]

    @classmethod
    def read(cls, path: Path) -> Environment:
        return cls(path, json.loads(path.read_text()))

    def aws(self, service: str) -> Any:
        """A client for the platform's AWS; the embedded one takes any credentials, so it gets its own."""
        endpoint = self.endpoints.get("aws_endpoint_url") or None
        if endpoint is None:
            return client(service, self.endpoints["region"])
        session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")
        return session.client(service, region_name=self.endpoints["region"], endpoint_url=endpoint, config=RETRY_CONFIG)

    @property
    def table(self) -> str:
        return str(self.endpoints["registry_table"])


@dataclass
class DrillReport:
    disaster_at: str = ""
    backup: dict[str, Any] = field(default_factory=dict)
    phases: dict[str, float] = field(default_factory=dict)  # seconds from the disaster
    items_restored: int = 0
    objects_copied: int = 0
    bytes_copied: int = 0
    versions_verified: int = 0
    redeployed: list[dict[str, Any]] = field(default_factory=list)
    rto_seconds: float | None = None
    rpo_seconds: float | None = None
    lost_changes: int | None = None
    rto_target_seconds: float = RTO_TARGET.total_seconds()
    rpo_target_seconds: float = RPO_TARGET.total_seconds()
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.rto_seconds is not None

    def to_dict(self) -> dict[str, Any]:
        body = {k: v for k, v in self.__dict__.items()}
        return body | {
            "ok": self.ok,
            "rto_met": self.rto_seconds is not None and self.rto_seconds <= self.rto_target_seconds,
            "rpo_met": self.rpo_seconds is not None and self.rpo_seconds <= self.rpo_target_seconds,
        }


@contextmanager
def fresh_platform(state_dir: Path, *, timeout: float = 180) -> Iterator[Environment]:
    """A second embedded platform in its own process (`python -m control up`); stopped on exit."""
    state_dir.mkdir(parents=True, exist_ok=True)
    endpoints_file = state_dir / "endpoints.json"
    endpoints_file.unlink(missing_ok=True)
    log = (state_dir / "up.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "control", "up", "--endpoints-file", str(endpoints_file), "--state-dir", str(state_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=_without_platform_settings(os.environ),
    )
    try:
        deadline = time.monotonic() + timeout
        while not endpoints_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise DependencyError(f"the fresh platform did not start; see {state_dir / 'up.log'}")
            time.sleep(0.2)
        yield Environment.read(endpoints_file)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def _without_platform_settings(environ: Any) -> dict[str, str]:
    """The child starts its own AWS: nothing of this process's embedded platform may leak in."""
    leaked = ("AWS_ENDPOINT_URL", "MOTO_PORT", "MOTO_HOST")
    return {k: v for k, v in environ.items() if not k.startswith("CONTROL_") and k not in leaked}


class Drill:
    def __init__(
        self,
        work_dir: Path,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        say: Callable[[str], None] = lambda _: None,
        redeploy_timeout: float = 300,
    ) -> None:
        self.work_dir = work_dir
        self.clock = clock
        self.say = say
        self.redeploy_timeout = redeploy_timeout
        self.report = DrillReport()
        self._disaster = clock()

    def _mark(self, phase: str) -> None:
        self.report.phases[phase] = round((self.clock() - self._disaster).total_seconds(), 3)
        self.say(f"{phase}: {self.report.phases[phase]:.1f} s")

    def run(self, source: Environment | None, backup: Path | None, target: Environment | None = None) -> DrillReport:
        """Restore `backup` (or a fresh export of `source`) into `target` (or a fresh platform)."""
        self._disaster = self.clock()
        self.report.disaster_at = self._disaster.isoformat()
        if backup is None:
            if source is None:
                raise DependencyError("the drill needs a backup folder or the source platform to export")
            backup = self.work_dir / "backup"
            export_table(source.aws("dynamodb"), source.table, backup)
            self._mark("exported")
        manifest = BackupManifest.read(backup)
        self.report.backup = {"folder": str(backup), "snapshot_at": manifest.snapshot_at, "items": manifest.items}
        backup_items = [from_item(item) for item in read_items(backup)]
        # A backup taken at the disaster (a fresh export) loses nothing: the window is never negative.
        lost_window = (self._disaster - datetime.fromisoformat(manifest.snapshot_at)).total_seconds()
        self.report.rpo_seconds = round(max(0.0, lost_window), 3)
        if source is not None:
            self.report.lost_changes = lost_changes(backup_items, plain_items(source.aws("dynamodb"), source.table))
        if target is not None:
            return self._restore_and_prove(source, backup, backup_items, target)
        with fresh_platform(self.work_dir / "target") as started:
            self._mark("fresh-platform-up")
            return self._restore_and_prove(source, backup, backup_items, started)

    def _restore_and_prove(
        self, source: Environment | None, backup: Path, backup_items: list[dict[str, Any]], target: Environment
    ) -> DrillReport:
        db = target.aws("dynamodb")
        self.report.items_restored = import_table(db, target.table, backup)
        if source is not None:
            self._copy_objects(source, target)
        self._mark("restored")
        problems = self._verify(backup_items, target)
        self.report.versions_verified = len(artifacts(backup_items))
        self._mark("verified")
        if problems:
            self.report.problems = [str(p) for p in problems]
            raise DrillFailed(problems, self.report)
        self._redeploy_all(target, backup_items)
        self.report.rto_seconds = max(self.report.phases.values())
        objectives = Objectives(
            rto=timedelta(seconds=self.report.rto_seconds),
            rpo=timedelta(seconds=self.report.rpo_seconds or 0),
            lost_changes=self.report.lost_changes or 0,
        )
        self.say(
            f"RTO {objectives.rto.total_seconds():.1f} s (target {RTO_TARGET}, met: {objectives.rto_met}); "
            f"RPO {objectives.rpo.total_seconds():.1f} s (target {RPO_TARGET}, met: {objectives.rpo_met}), "
            f"{objectives.lost_changes} changes lost"
        )
        return self.report

    def _copy_objects(self, source: Environment, target: Environment) -> None:
        source_s3, target_s3 = source.aws("s3"), target.aws("s3")
        for bucket, prefix in COPIED_PREFIXES.items():
            objects, size = copy_prefix(
                source_s3, source.endpoints[bucket], target_s3, target.endpoints[bucket], prefix
            )
            self.report.objects_copied += objects
            self.report.bytes_copied += size

    def _verify(self, backup_items: list[dict[str, Any]], target: Environment) -> list[Problem]:
        restored = plain_items(target.aws("dynamodb"), target.table)
        problems = compare_restored(backup_items, restored) + verify_registry(restored)
        s3 = target.aws("s3")
        bucket = target.endpoints["artifacts_bucket"]
        for ref in artifacts(restored):
            _, key = split_uri(ref.uri)  # the key in the restored bucket, whatever the lost bucket's name
            problem = check_artifact(ref, object_sha256(s3, bucket, key))
            if problem is not None:
                problems.append(problem)
        return problems

    # -- redeploying -------------------------------------------------------------------------------

    def _redeploy_all(self, target: Environment, backup_items: list[dict[str, Any]]) -> None:
        deployments = DynamoDbDeployments(target.aws("dynamodb"), target.table)
        api = ApiClient(load_client_config(target.endpoints_file))
        pending: list[Redeploy] = []
        for name in deployments.names():
            record = deployments.get(name)
            assert record is not None
            good = last_known_good(record.status)
            rebuilt = for_rebuilt_cluster(record.status, self.clock())
            deployments.put(replace(record, status=rebuilt), expected_revision=record.status.revision)
            if good is None:
                self.report.redeployed.append({"deployment": name, "skipped": "no last-known-good version"})
                continue
            api.start_rollout(name, {"model": good.model, "version": good.version})
            pending.append(good)
        self._mark("rollouts-started")
        for good in pending:
            self.report.redeployed.append(self._until_serving(api, target, good, backup_items))

    def _until_serving(
        self, api: ApiClient, target: Environment, good: Redeploy, backup_items: list[dict[str, Any]]
    ) -> dict[str, Any]:
        deadline = time.monotonic() + self.redeploy_timeout
        outcome: dict[str, Any] = {"deployment": good.deployment, "model": good.model, "version": good.version}
        while time.monotonic() < deadline:
            status = api.get_deployment(good.deployment)["status"]
            if status["phase"] in ("FAILED", "ROLLED_BACK"):
                raise DependencyError(f"the redeploy of {good.deployment} ended {status['phase']}: {status['reason']}")
            if status.get("active_version") == good.version:
                break
            time.sleep(0.5)
        else:
            raise TransientError(f"{good.deployment} did not serve v{good.version} in {self.redeploy_timeout} s")
        outcome["switched_s"] = self._seconds()
        sample = self._sample_request(target, good, backup_items)
        while time.monotonic() < deadline:
            url = Environment.read(target.endpoints_file).endpoints.get("deployments", {}).get(good.deployment)
            if url and _predicts(url, sample):
                outcome["first_prediction_s"] = self._seconds()
                self._mark(f"first-prediction:{good.deployment}")
                return outcome
            time.sleep(0.5)
        raise TransientError(f"{good.deployment} answered no prediction in {self.redeploy_timeout} s")

    def _sample_request(self, target: Environment, good: Redeploy, backup_items: list[dict[str, Any]]) -> bytes:
        for item in backup_items:
            if item.get("model_name") == good.model and item.get("version") == good.version and "lineage" in item:
                uri = item["lineage"].get("sample_request_uri")
                if uri:
                    bucket, key = split_uri(uri)
                    s3 = target.aws("s3")
                    data: bytes = s3.get_object(Bucket=target.endpoints["artifacts_bucket"], Key=key)["Body"].read()
                    return data
        raise DependencyError(f"{good.model} v{good.version} has no sample request to send")

    def _seconds(self) -> float:
        return round((self.clock() - self._disaster).total_seconds(), 3)


def _predicts(url: str, body: bytes) -> bool:
    try:
        response = requests.post(
            url.rstrip("/") + "/invocations", data=body, headers={"Content-Type": "application/json"}, timeout=10
        )
    except requests.RequestException:
        return False
    return response.status_code == 200 and "predictions" in response.json()
