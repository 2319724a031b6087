"""The rollout applies the deployment's ALB Ingress, with the scheme and TLS certificate the settings
give, when it points the active Service at a version (the real LocalServing records the Ingress
exactly as the EKS adapter would apply it)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from control.composition import build_platform
from control.domain.rollout import Decision, RolloutSpec, ServiceRole, SetTrafficWeight, SwitchSelector, start_rollout
from control.local.serving import LocalServing
from control.manifests.serving import INGRESS_ACTION, INGRESS_ACTION_ANNOTATION, version_selector
from control.settings import Settings
from control.usecases import rollouts
from tests.support.alb_actions import controller_errors

ROOT = Path(__file__).resolve().parents[2]
CERTIFICATE = "arn:aws:acm:eu-west-1:123456789012:certificate/0f6a3c1e-1111-2222-3333-444455556666"
SETTINGS = {
    "CONTROL_DATA_BUCKET": "d",
    "CONTROL_ARTIFACTS_BUCKET": "a",
    "CONTROL_REGISTRY_TABLE": "t",
    "CONTROL_CLUSTER": "local",
    "CONTROL_INGRESS_SCHEME": "internet-facing",
    "CONTROL_INGRESS_CERTIFICATE_ARN": CERTIFICATE,
}


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalServing]:
    runtime = LocalServing(tmp_path / "serving", repo_root=ROOT, grace_seconds=5.0)
    yield runtime
    runtime.stop_all()


def step(serving: LocalServing, switches: list[SwitchSelector]) -> None:
    """Apply one reconcile decision's selector switches through the rollout's executor."""
    settings = Settings.from_env(SETTINGS | {"CONTROL_LOCAL_STATE_DIR": str(serving.state.root)})
    platform = build_platform(settings, serving=serving)
    spec = RolloutSpec("churn", "churn", 1, None, replicas=1)
    status = start_rollout(spec, datetime.now(UTC))
    rollouts._apply(platform, spec, Decision(tuple(switches), status, changed=False))


def recorded_ingress(serving: LocalServing) -> dict[str, Any] | None:
    path = serving.state.object_path("Ingress", "churn")
    return json.loads(path.read_text()) if path.exists() else None


def test_the_first_switch_of_the_active_service_applies_the_ingress_from_the_settings(serving: LocalServing) -> None:
    step(serving, [SwitchSelector(ServiceRole.PREVIEW, 1)])
    assert recorded_ingress(serving) is None, "the preview Service is not what the ALB serves"

    step(serving, [SwitchSelector(ServiceRole.ACTIVE, 1)])
    ingress = recorded_ingress(serving)
    assert ingress is not None, "the rollout pointed the active Service at v1 but applied no Ingress"
    annotations = ingress["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == CERTIFICATE
    assert annotations["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": INGRESS_ACTION, "port": {"name": "use-annotation"}}
    groups = json.loads(annotations[INGRESS_ACTION_ANNOTATION])["forwardConfig"]["targetGroups"]
    assert groups == [{"serviceName": "churn", "servicePort": "80", "weight": 100}]


def test_a_later_switch_applies_it_again_so_an_older_deployment_gets_it(serving: LocalServing) -> None:
    step(serving, [SwitchSelector(ServiceRole.ACTIVE, 1)])
    serving.state.object_path("Ingress", "churn").unlink()  # a deployment made before the Ingress was applied
    step(serving, [SwitchSelector(ServiceRole.ACTIVE, 2)])
    assert recorded_ingress(serving) is not None
    assert serving.service_selector("churn")["mlcp.dev/version"] == "2"


def test_a_canary_weight_is_the_canary_service_and_the_ingress_weighted_forward(serving: LocalServing) -> None:
    settings = Settings.from_env(SETTINGS | {"CONTROL_LOCAL_STATE_DIR": str(serving.state.root)})
    platform = build_platform(settings, serving=serving)
    spec = RolloutSpec("churn", "churn", 2, 1, replicas=1)
    status = start_rollout(spec, datetime.now(UTC))
    decision = Decision((SwitchSelector(ServiceRole.CANARY, 2), SetTrafficWeight(2, 10)), status, changed=False)
    rollouts._apply(platform, spec, decision)
    assert serving.service_selector("churn-canary") == version_selector("churn", 2)
    ingress = recorded_ingress(serving)
    assert ingress is not None and controller_errors(ingress) == []
    assert serving.ingress_weights("churn") == {"churn": 90, "churn-canary": 10}
    rollouts._apply(platform, spec, Decision((SetTrafficWeight(2, 0),), status, changed=False))
    assert serving.ingress_weights("churn") == {"churn": 100}
