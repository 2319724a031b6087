"""On EKS a canary's split is the ALB's: the Ingress's `alb.ingress.kubernetes.io/actions.<name>` forward
to weighted target groups, one Service per version (stable and canary), as Argo Rollouts does with ALB.
The annotation is checked against the AWS Load Balancer Controller's own rules for it (its
pkg/ingress/config_types.go: Action, ForwardActionConfig, TargetGroupTuple and their validate())."""

from __future__ import annotations

import json

import pytest

from control.manifests.config import ManifestConfig
from control.manifests.serving import (
    INGRESS_ACTION_ANNOTATION,
    SERVICE_PORT,
    canary_service_name,
    canary_weight_of,
    ingress_weights,
    render_ingress,
    render_service,
    version_selector,
    weights_of_ingress,
)
from tests.support.alb_actions import controller_errors

CONFIG = ManifestConfig()


@pytest.mark.parametrize("weight", [0, 1, 10, 50, 99, 100])
def test_every_canary_weight_renders_an_action_the_controller_accepts(weight: int) -> None:
    ingress = render_ingress("churn", CONFIG, ingress_weights("churn", weight))
    assert controller_errors(ingress) == []
    groups = json.loads(ingress["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION])["forwardConfig"]["targetGroups"]
    expected = [("churn", 100)] if weight == 0 else [("churn", 100 - weight), ("churn-canary", weight)]
    assert [(g["serviceName"], g["weight"]) for g in groups] == expected
    assert all(g["servicePort"] == str(SERVICE_PORT) for g in groups)
    assert canary_weight_of(weights_of_ingress(ingress), "churn") == weight  # what the rollout observes back


def test_the_validator_catches_what_the_controller_rejects() -> None:
    ingress = render_ingress("churn", CONFIG, ingress_weights("churn", 10))
    action = json.loads(ingress["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION])
    del action["forwardConfig"]["targetGroups"][1]["weight"]
    del action["forwardConfig"]["targetGroups"][0]["servicePort"]
    ingress["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION] = json.dumps(action)
    assert controller_errors(ingress) == [
        "missing servicePort",
        "weight must be set when route to multiple target groups",
    ]


def test_one_service_per_version_stable_and_canary_on_the_port_the_action_names() -> None:
    stable, canary = render_service("churn", 3, CONFIG), render_service("churn", 4, CONFIG, canary=True)
    assert (stable["metadata"]["name"], canary["metadata"]["name"]) == ("churn", canary_service_name("churn"))
    assert stable["spec"]["selector"] == version_selector("churn", 3)
    assert canary["spec"]["selector"] == version_selector("churn", 4)
    assert canary["metadata"]["labels"]["mlcp.dev/service-role"] == "canary"
    assert [port["port"] for port in canary["spec"]["ports"]] == [SERVICE_PORT]
