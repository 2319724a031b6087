"""Faults in the running processes: the control process dying between the actions of a rollout step,
a corrupt model artifact, a Horovod rank killed mid-training, Alertmanager down.

The rollout tests drive `rollouts.reconcile_step` themselves against the embedded platform, with a
tiny artifact in the embedded S3, once on each serving cluster: the real LocalServing (model servers
and routers as processes) and the EKS adapters (`KubernetesCluster`) against the checking API server
(tests/support/kube_apiserver: controllers, the process kubelet running the model servers, a proxy
per Service). Only what the ServingCluster port offers is used, plus the runtime's
`deployment_endpoints()` and the model servers' logs (tests/support/rollout_runtimes.py). On EKS the
corrupt artifact is a pod that never becomes ready in the full runtime (the rollout aborts, blue keeps
serving live load); the crash test kills the control process inside every step there too (every crash
point: the EKS variant, its runtime's start included, adds about 45 s on 2 cores).
A crash is an exception raised by the ServingCluster right after the first action of a step went
through (the rest of the step's actions and its status write never happen); the next call with the
real ServingCluster is the restarted control process.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest

from control.domain.rollout import RolloutSpec, start_rollout
from control.local.loadgen import LoadGenerator
from control.manifests.config import LABEL_VERSION
from control.manifests.serving import deployment_name, preview_service_name
from tests.support.inference_artifact import write_artifact
from tests.support.lineage import lineage
from tests.support.rollout_runtimes import CLUSTERS, RolloutRuntime, eks_runtime

FAST = {
    "bake_seconds": 0,
    "scale_down_delay_seconds": 0,
    "rollback_window_seconds": 0,  # blue to 0 at COMPLETED, and the loop ends there
    "analysis_interval_seconds": 1,
    "poll_interval_seconds": 1,
}


class Crash(Exception):
    """The control process dies here."""


class WatchedServing:
    """The real ServingCluster, checking at every selector change that the version it points to is
    ready, and crashing (after the action went through) once `crash_after` actions were applied."""

    def __init__(self, real: Any, deployment: str, switches: list[tuple[str, int, int]], crash_after: int = 0) -> None:
        self.real, self.deployment, self.switches, self.crash_after = real, deployment, switches, crash_after
        self.actions = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def _done(self) -> None:
        self.actions += 1
        if self.crash_after and self.actions >= self.crash_after:
            raise Crash(f"killed after action {self.actions}")

    def _points_at(self, service: str, version: int) -> None:
        ready = self.real.deployment_readiness(deployment_name(self.deployment, version)).ready
        self.switches.append((service, version, ready))

    def apply(self, manifest: dict[str, Any]) -> None:
        if manifest.get("kind") == "Service":  # a first rollout creates the Service pointing at a version
            self._points_at(manifest["metadata"]["name"], int(manifest["spec"]["selector"][LABEL_VERSION]))
        self.real.apply(manifest)
        self._done()

    def scale_deployment(self, name: str, replicas: int) -> None:
        self.real.scale_deployment(name, replicas)
        self._done()

    def switch_service_selector(self, name: str, selector: dict[str, str]) -> bool:
        self._points_at(name, int(selector[LABEL_VERSION]))
        changed = self.real.switch_service_selector(name, selector)
        self._done()
        return bool(changed)


def _control(serving: Any | None = None) -> Any:
    """A fresh control process: the platform's settings, its own clients; `serving` replaces the port."""
    from chalicelib.runtime import current_platform

    from control.composition import build_platform

    embedded = current_platform()
    control = build_platform(embedded.settings, training=embedded.training, serving=serving or embedded.serving)
    return control


def drive(
    deployment: str,
    switches: list[tuple[str, int, int]],
    *,
    crash_every_step: bool = False,
    steps: int = 0,
    timeout: float = 150,
) -> tuple[Any, int]:
    """Reconcile until the rollout is at rest; with crash_every_step, every step first runs in a
    control process that dies after its first action, then again in a fresh one. Returns the last
    step and how many crashes happened."""
    from chalicelib.runtime import current_platform

    from control.domain.deployments import StepRequest
    from control.usecases import rollouts

    real = current_platform().serving
    crashes = 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if crash_every_step:
            try:
                rollouts.reconcile_step(
                    _control(WatchedServing(real, deployment, switches, crash_after=1)), StepRequest(deployment)
                )
            except Crash:
                crashes += 1
        step = rollouts.reconcile_step(_control(WatchedServing(real, deployment, switches)), StepRequest(deployment))
        steps -= 1
        if step.done or steps == 0:
            return step, crashes
        time.sleep(0.3)
    raise AssertionError(f"{deployment} did not come to rest in {timeout} s: {step}")


def _upload(endpoints: dict[str, Any], aws: Any, folder: Path, prefix: str, corrupt: bool = False) -> None:
    s3 = aws("s3")
    for name in ("model.pt", "metadata.json"):
        body = (folder / name).read_bytes()
        if corrupt and name == "model.pt":
            body = body[: len(body) // 2] + bytes(b ^ 0xFF for b in body[len(body) // 2 :])
        s3.put_object(Bucket=endpoints["artifacts_bucket"], Key=prefix + name, Body=body)


def _register(endpoints: dict[str, Any], model: str, run: str, sha256: str) -> int:
    from chalicelib.runtime import current_platform

    registered = lineage(
        model,
        run,
        data_bucket=endpoints["data_bucket"],
        artifacts_bucket=endpoints["artifacts_bucket"],
        artifact_sha256=sha256,
        dataset_version_id="",
        accuracy=0.95,
    )
    version, _ = current_platform().registry.register_version(model, registered, actor="test", now=datetime.now(UTC))
    return version.version


def _new_rollout(deployment: str, model: str, version: int, previous: int | None, **timings: float) -> None:
    """What `POST /deployments/{name}/rollouts` records, without starting the state machine's loop."""
    from chalicelib.runtime import current_platform

    from control.domain.deployments import DeploymentRecord

    platform = current_platform()
    spec = RolloutSpec(
        deployment, model, version, previous, replicas=1, pre_promotion=(), post_promotion=(), **{**FAST, **timings}
    )
    record = platform.deployments.get(deployment)
    status = start_rollout(spec, datetime.now(UTC))
    if record is not None:
        status = replace(status, revision=record.status.revision + 1)
    platform.deployments.put(
        DeploymentRecord(spec, status), expected_revision=None if record is None else record.status.revision
    )


@pytest.fixture(scope="module", params=CLUSTERS)
def serving_runtime(request: pytest.FixtureRequest, tmp_path_factory) -> Iterator[RolloutRuntime]:
    """The embedded platform on the local clusters (the session's runtime) or on the EKS adapters."""
    if request.param == "local":
        yield RolloutRuntime("local", request.getfixturevalue("embedded"))
        return
    with eks_runtime(tmp_path_factory.mktemp("eks-faults")) as runtime:
        yield runtime


@pytest.fixture
def on_cluster(serving_runtime: RolloutRuntime, blue: dict[str, Any]) -> Iterator[RolloutRuntime]:
    with serving_runtime.active():
        yield serving_runtime


@pytest.fixture(scope="module")
def blue(serving_runtime: RolloutRuntime, tmp_path_factory) -> dict[str, Any]:
    """A deployment serving v1 of a tiny model (rolled out by reconcile steps), and the versions
    registered next to it: a good v2, v3 whose registry sha256 is wrong, v4 whose model.pt is corrupt."""
    with serving_runtime.active():
        return _blue(serving_runtime.runtime.endpoints(), tmp_path_factory)


def _blue(endpoints: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    def aws(service: str) -> Any:
        return boto3.client(service, endpoint_url=endpoints["aws_endpoint_url"], region_name=endpoints["region"])

    model = f"fault-{uuid.uuid4().hex[:6]}"
    deployment = f"{model}-api"
    artifact = write_artifact(tmp_path_factory.mktemp("artifact"))
    versions = {}
    for kind in ("blue", "green", "wrong-sha", "corrupt"):
        run = f"{model}-{kind}"
        _upload(endpoints, aws, artifact.folder, f"models/{model}/runs/{run}/", corrupt=kind == "corrupt")
        sha = "0" * 64 if kind == "wrong-sha" else artifact.sha256
        versions[kind] = _register(endpoints, model, run, sha)
    _new_rollout(deployment, model, versions["blue"], None)
    switches: list[tuple[str, int, int]] = []
    step, _ = drive(deployment, switches)
    assert step.phase.value == "COMPLETED" and step.active_version == versions["blue"], step
    assert _active_switches_ready(deployment, switches), switches
    return {"model": model, "deployment": deployment, "versions": versions}


def _wait_for_log(cluster: RolloutRuntime, deployment_name: str, text: str, timeout: float = 60) -> str:
    """The model servers' logs of a version, once one of them says `text`."""
    deadline = time.monotonic() + timeout
    while True:
        logs = cluster.server_logs(deployment_name)
        if text in logs or time.monotonic() > deadline:
            return logs
        time.sleep(0.2)


def _active_switches_ready(deployment: str, switches: list[tuple[str, int, int]]) -> bool:
    """User traffic (the active Service) only ever meets ready versions; the preview Service is
    pointed at green while it starts, on purpose."""
    return all(ready >= 1 for service, _, ready in switches if service == deployment)


def _load(cluster: RolloutRuntime, deployment: str) -> LoadGenerator:
    url = cluster.endpoint(deployment)
    return LoadGenerator.for_features(url, features=4, rate=10, workers=2).start()


def _active(deployment: str) -> int:
    from chalicelib.runtime import current_platform

    return int(current_platform().serving.service_selector(deployment)[LABEL_VERSION])


@pytest.mark.slow
def test_corrupt_artifact_or_wrong_sha256_never_becomes_ready_and_blue_keeps_serving(on_cluster, blue, ledger):
    deployment, model, versions = blue["deployment"], blue["model"], blue["versions"]
    serving = on_cluster.runtime.platform.serving
    load = _load(on_cluster, deployment)
    switches: list[tuple[str, int, int]] = []
    try:
        for bad in ("wrong-sha", "corrupt"):
            _new_rollout(deployment, model, versions[bad], versions["blue"], ready_timeout_seconds=5)
            drive(deployment, switches, steps=2)  # PENDING, then DEPLOYING_PREVIEW starts green's server
            name = deployment_name(deployment, versions[bad])
            logs = _wait_for_log(on_cluster, name, "MODEL NOT LOADED")
            assert "sha256" in logs, logs[-2000:]
            assert serving.deployment_readiness(name).ready == 0
            step, _ = drive(deployment, switches, timeout=90)
            assert step.phase.value == "ROLLED_BACK" and step.active_version == versions["blue"], step
            assert "not ready after 5s" in step.reason, step.reason
            assert _active(deployment) == versions["blue"]
    finally:
        samples = load.stop()
    # The active Service never moved (the preview Service may point at green while it loads).
    assert [s for s in switches if s[0] == deployment] == []
    failed = [s for s in samples if s.status != 200]
    assert len(samples) > 50 and failed == [], failed[:5]
    assert {s.version for s in samples} == {str(versions["blue"])}
    fault = f"runtime ({on_cluster.cluster}): corrupt artifact"
    ledger.add(fault, faults_injected=2, requests_sent=len(samples), lost=len(failed))


@pytest.mark.slow
def test_control_process_killed_inside_every_rollout_step_resumes_and_traffic_only_meets_ready_versions(
    on_cluster, blue, ledger
):
    from chalicelib.runtime import current_platform

    deployment, model, versions = blue["deployment"], blue["model"], blue["versions"]
    green, old = versions["green"], versions["blue"]
    load = _load(on_cluster, deployment)
    switches: list[tuple[str, int, int]] = []
    try:
        _new_rollout(deployment, model, green, _active(deployment))
        step, crashes = drive(deployment, switches, crash_every_step=True)
    finally:
        samples = load.stop()
    assert step.phase.value == "COMPLETED" and step.active_version == green, step
    assert crashes >= 2, crashes  # at least: after creating green's Deployment, after switching the active Service
    assert (deployment, green, 1) in [(s, v, min(r, 1)) for s, v, r in switches]
    assert _active_switches_ready(deployment, switches), f"the active Service moved to a version not ready: {switches}"
    serving = current_platform().serving
    assert _active(deployment) == green
    assert int(serving.service_selector(preview_service_name(deployment))[LABEL_VERSION]) == green
    assert serving.deployment_readiness(deployment_name(deployment, old)).desired == 0
    # The Deployment's companions exist even though the step that created it died after the first manifest.
    for kind in ("PodDisruptionBudget", "HorizontalPodAutoscaler"):
        assert on_cluster.object_exists(kind, deployment_name(deployment, green)), kind
    record = current_platform().deployments.get(deployment)
    assert record.status.stable_version == green
    events = [h for h in current_platform().registry.history(model) if h.details.get("deployment") == deployment]
    recorded = [h.action for h in events if h.version == green]
    for action in ("rollout-started", "preview-ready", "promoted", "bake-complete", "rollout-completed"):
        assert recorded.count(action) == 1, (action, recorded)  # once each, crashes and repeats included
    failed = [s for s in samples if s.status != 200]
    assert len(samples) > 20 and failed == [], failed[:5]
    assert str(green) in {s.version for s in samples}
    fault = f"runtime ({on_cluster.cluster}): control process killed"
    ledger.add(fault, faults_injected=crashes, requests_sent=len(samples), lost=len(failed))


class DyingPipelines:
    """Step Functions as the control process sees it when it dies just before starting a loop."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    def start(self, state_machine_arn: str, name: str, payload: dict[str, Any]) -> Any:
        raise Crash(f"killed before starting {name}")


def _firing(deployment: str, version: int, fingerprint: str) -> dict[str, Any]:
    """Alertmanager's webhook payload (version 4) for the error-ratio alert on one version."""
    labels = {
        "alertname": "MlcpInferenceHighErrorRatio",
        "deployment": deployment,
        "severity": "critical",
        "version": str(version),
    }
    alert = {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": "5xx ratio above 5%"},
        "startsAt": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus",
        "fingerprint": fingerprint,
    }
    return {
        "version": "4",
        "groupKey": "{}:{}",
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "mlcp",
        "groupLabels": {},
        "commonLabels": labels,
        "commonAnnotations": {},
        "externalURL": "http://am",
        "alerts": [alert],
    }


@pytest.mark.slow
def test_control_process_killed_between_an_alert_s_intent_and_its_loop_the_sweeper_restores_last_known_good(
    on_cluster, blue, ledger
):
    """The intent is written, the process dies before the loop starts, Alertmanager's repeat is a
    duplicate: only the scheduled sweep (the runtime's local scheduler invoking `sweep_rollouts`)
    starts the loop the record names, and traffic goes back to last-known-good."""
    import requests
    from chalicelib.runtime import current_platform

    from control.domain.alert_payload import parse_webhook
    from control.usecases import rollouts

    deployment, model, versions = blue["deployment"], blue["model"], blue["versions"]
    good = _active(deployment)
    bad = versions["green"] if good != versions["green"] else versions["blue"]
    _new_rollout(deployment, model, bad, good)
    step, _ = drive(deployment, [])
    assert step.phase.value == "COMPLETED" and _active(deployment) == bad, step

    payload = _firing(deployment, bad, uuid.uuid4().hex[:16])
    dying = replace(_control(), pipelines=DyingPipelines(current_platform().pipelines))
    with pytest.raises(Crash):
        rollouts.handle_alerts(dying, [parse_webhook(payload)])
    record = current_platform().deployments.get(deployment)
    assert record.status.intent is not None and record.loop, record
    runtime = on_cluster.runtime
    repeat = requests.post(
        f"{runtime.api_url}/alerts/alertmanager",
        data=json.dumps(payload),
        headers={"Authorization": f"Bearer {runtime.alert_token}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert repeat.status_code == 200 and repeat.json()["rollbacks"] == [], repeat.text  # a duplicate
    assert _active(deployment) == bad

    deadline = time.monotonic() + 90
    while _active(deployment) != good:
        assert time.monotonic() < deadline, current_platform().deployments.get(deployment).status
        time.sleep(0.2)
    history = [h for h in current_platform().registry.history(model) if h.details.get("deployment") == deployment]
    restarted = [h for h in history if h.action == "loop-restarted"]
    assert [(h.actor, h.details["loop"]) for h in restarted] == [("loop-sweeper", record.loop)], restarted
    requested = [
        h
        for h in history
        if h.action == "rollback-requested" and h.details["intent"]["key"] == record.status.intent.key
    ]
    assert len(requested) == 1, requested  # the audit entry the dead process did not write, once
    arn = current_platform().pipelines.execution_arn(runtime.platform.settings.rollout_state_machine_arn, record.loop)
    assert current_platform().pipelines.describe(arn)["status"] in ("RUNNING", "SUCCEEDED")
    ledger.add(f"runtime ({on_cluster.cluster}): killed before the rollback loop", faults_injected=1, lost=0)


# -- a Horovod rank killed mid-training ------------------------------------------------------------


def _rank_processes(runner_pid: int, marker: str) -> dict[int, psutil.Process]:
    ranks = {}
    for child in psutil.Process(runner_pid).children(recursive=True):
        try:
            if marker in " ".join(child.cmdline()) and "HOROVOD_RANK" in child.environ():
                ranks[int(child.environ()["HOROVOD_RANK"])] = child
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return ranks


def _wait_state(cluster: Any, name: str, states: set[Any], timeout: float = 120) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = cluster.training_job_status(name)
        if status.state in states:
            return status
        time.sleep(0.2)
    raise AssertionError(f"{name}: {cluster.training_job_status(name)}")


@pytest.mark.slow
def test_a_horovod_rank_killed_mid_training_fails_the_job_and_the_retry_resumes_from_the_checkpoint(tmp_path, ledger):
    from control.domain.training import Hyperparameters, JobState, TrainingJobSpec
    from control.local.cluster import LocalCluster
    from control.manifests.config import ManifestConfig
    from control.manifests.training import render_mpijob
    from workloads.training.synthetic import synthetic_csv

    repo = Path(__file__).resolve().parents[2]
    data = tmp_path / "data.csv"
    data.write_text(synthetic_csv(4000, seed=3))
    output = tmp_path / "out"
    spec = TrainingJobSpec(
        "killed-rank-run",
        "killed",
        str(data),
        f"{output}/",
        Hyperparameters(epochs=25, batch_size=16),
        workers=2,
        gpus_per_worker=1,
    )
    manifest = render_mpijob(spec, ManifestConfig())
    cluster = LocalCluster(tmp_path / "state", repo_root=repo, python=sys.executable, grace_seconds=5)
    name = manifest["metadata"]["name"]
    checkpoint = cluster.checkpoints_dir / spec.run_id / "checkpoint.pt"

    cluster.submit_training_job(manifest)
    deadline = time.monotonic() + 120
    while not checkpoint.exists():
        assert time.monotonic() < deadline, cluster.training_job_status(name)
        assert not cluster.training_job_status(name).state.finished, cluster.training_job_status(name)
        time.sleep(0.05)
    runner_pid = int((cluster.job_dir(name) / "runner.pid").read_text().split()[0])
    ranks = _rank_processes(runner_pid, "train.py")
    assert set(ranks) == {0, 1}, ranks
    os.kill(ranks[1].pid, signal.SIGKILL)

    failed = _wait_state(cluster, name, {JobState.SUCCEEDED, JobState.FAILED})
    assert failed.state is JobState.FAILED and failed.reason and failed.message, failed
    assert not (output / "metadata.json").exists(), "a killed run must not look complete"
    epochs_done = [json.loads(line.split(":", 1)[1]) for line in _epoch_lines(cluster, name)]
    assert 1 <= len(epochs_done) < 25, len(epochs_done)

    cluster.delete_training_job(name)  # what the retry of the pipeline's launch step does
    cluster.submit_training_job(manifest)
    done = _wait_state(cluster, name, {JobState.SUCCEEDED, JobState.FAILED}, timeout=180)
    stdout = cluster.log_paths(name)[0].read_text()
    assert done.state is JobState.SUCCEEDED, (done, cluster.log_paths(name)[1].read_text()[-2000:])
    resumed = [json.loads(line.split(":", 1)[1]) for line in stdout.splitlines() if '"event": "resumed"' in line]
    assert resumed and resumed[0]["from_epoch"] >= len(epochs_done), resumed
    epochs_after = [json.loads(line.split(":", 1)[1])["epoch"] for line in _epoch_lines(cluster, name)]
    assert epochs_after[0] == resumed[0]["from_epoch"] + 1 and epochs_after[-1] == 25, epochs_after
    metadata = json.loads((output / "metadata.json").read_text())
    digest = hashlib.sha256((output / "model.pt").read_bytes()).hexdigest()
    assert metadata["sha256"] == digest and metadata["run_id"] == spec.run_id
    assert metadata["metrics"]["epochs"] == 25
    ledger.add("runtime: horovod rank killed", faults_injected=1)


def _epoch_lines(cluster: Any, name: str) -> list[str]:
    stdout = cluster.log_paths(name)[0].read_text()
    return [line for line in stdout.splitlines() if line.startswith("[0]<stdout>:") and '"event": "epoch"' in line]


def test_evaluate_model_refuses_a_run_without_metadata_json_so_nothing_half_written_is_registered(
    embedded, endpoints, aws, ledger
):
    from chalicelib.runtime import current_platform

    from control.domain.pipeline_steps import LaunchedJob, PipelineRun
    from control.errors import TrainingFailed
    from control.usecases.training import evaluate_model

    run = f"half-{uuid.uuid4().hex[:6]}"
    prefix = f"models/half/runs/{run}/"
    aws("s3").put_object(Bucket=endpoints["artifacts_bucket"], Key=prefix + "model.pt", Body=b"half a model")
    dataset = {"bucket": endpoints["data_bucket"], "key": "datasets/half/v1/data.csv"}
    state = PipelineRun.parse({"run_id": run, "model_name": "half", "dataset": dataset})
    job = LaunchedJob.parse({"output_uri": f"s3://{endpoints['artifacts_bucket']}/{prefix}"})
    with pytest.raises(TrainingFailed, match="without writing metadata.json"):
        evaluate_model(current_platform(), state, job)
    body = json.dumps({"artifact": "model.pt", "sha256": "0" * 64, "metrics": {"val_accuracy": 1.0}})
    aws("s3").put_object(Bucket=endpoints["artifacts_bucket"], Key=prefix + "metadata.json", Body=body.encode())
    with pytest.raises(TrainingFailed, match="does not match"):
        evaluate_model(current_platform(), state, job)
    ledger.add("runtime: half-written artifact", faults_injected=2, lost=0)
