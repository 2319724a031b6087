"""The order in which a reconcile step applies its actions: the traffic switch before anything else."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from control.domain.alert_payload import parse_webhook
from control.domain.alert_policy import decide_alert_actions
from control.domain.rollout import Phase, RolloutSpec, VersionObservation, request_rollback, start_rollout
from control.domain.serving import DeploymentReadiness
from control.manifests.config import LABEL_VERSION
from control.settings import Settings
from control.usecases import rollouts
from tests.support.rollout_harness import Cluster, at, make_spec, step

EVENTS = Path(__file__).resolve().parents[1] / "events"

SETTINGS = {
    "CONTROL_DATA_BUCKET": "data",
    "CONTROL_ARTIFACTS_BUCKET": "artifacts",
    "CONTROL_REGISTRY_TABLE": "registry",
}


class RecordingServing:
    """The ServingCluster port, recording each call; the warm v1 has 1 of its 2 replicas."""

    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def deployment_readiness(self, name: str) -> DeploymentReadiness:
        return DeploymentReadiness(name, desired=1, ready=1, updated=1, available=1, observed=True)

    def scale_deployment(self, name: str, replicas: int) -> None:
        self.calls.append(("scale", name, replicas))

    def switch_service_selector(self, name: str, selector: dict[str, str]) -> bool:
        self.calls.append(("switch", name, selector[LABEL_VERSION]))
        return True

    def apply(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("apply", manifest["kind"]))


class RecordingRegistry:
    def __init__(self, calls: list[tuple[Any, ...]]) -> None:
        self.calls = calls

    def record(self, entry: Any, *, dedupe_key: str = "") -> bool:
        self.calls.append(("history", entry.action))
        return True


def test_a_rollback_to_a_warm_version_switches_before_scaling_it_up_and_before_recording() -> None:
    spec = make_spec(deployment="iris-classifier", rollback_window_seconds=300.0)
    started = start_rollout(RolloutSpec("iris-classifier", "iris", 2, 1), at(0))
    status = replace(started, phase=Phase.COMPLETED, preview_version=2, active_version=2, stable_version=2)
    firing = parse_webhook((EVENTS / "alertmanager_v4_firing.json").read_bytes())
    (intent,) = decide_alert_actions(firing.alerts, {}, {"iris-classifier": status}, set(), now=at(5)).intents
    warm = Cluster(deployments={1: VersionObservation(1, 1), 2: VersionObservation(2, 2)}, active=2)
    decision = step(spec, request_rollback(status, intent), warm, at(10), settle=False)

    calls: list[tuple[Any, ...]] = []
    platform = SimpleNamespace(
        settings=Settings.from_env(SETTINGS),
        serving=RecordingServing(calls),
        registry=RecordingRegistry(calls),
        clock=lambda: at(10),
    )
    rollouts._apply(platform, spec, decision)  # type: ignore[arg-type]

    assert calls[0] == ("switch", "iris-classifier", "1"), calls
    assert ("scale", "iris-classifier-v1", 2) in calls  # the warm replica's peers start after the switch
    kinds = [call[0] for call in calls]
    assert "history" in kinds and kinds.index("history") > kinds.index("scale")
