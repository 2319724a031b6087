"""Rendering the blue-green serving objects."""

from __future__ import annotations

import json

import pytest

from control.errors import DependencyError, InvalidInput
from control.manifests.config import ManifestConfig
from control.manifests.serving import (
    INGRESS_ACTION,
    INGRESS_ACTION_ANNOTATION,
    ServingVersion,
    render_deployment,
    render_ingress,
    render_network_policy,
    render_routing,
    render_serving_stack,
    version_selector,
)

CONFIG = ManifestConfig(inference_image="registry.example/inference:1")
V3 = ServingVersion("churn", "churn", 3, "s3://artifacts/models/churn/runs/r3/", "c" * 64)
V4 = ServingVersion("churn", "churn", 4, "s3://artifacts/models/churn/runs/r4/", "d" * 64)


def pod(manifest: dict) -> dict:
    return manifest["spec"]["template"]["spec"]


def test_a_version_is_a_deployment_named_after_it_that_its_services_can_select() -> None:
    deployment = render_deployment(V3, CONFIG)
    assert deployment["metadata"]["name"] == "churn-v3"
    assert deployment["metadata"]["namespace"] == "ml-serving"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "churn"
    assert labels["mlcp.dev/model"] == "churn" and labels["mlcp.dev/version"] == "3"
    assert deployment["spec"]["selector"]["matchLabels"] == version_selector("churn", 3)
    env = {e["name"]: e["value"] for e in pod(deployment)["containers"][0]["env"]}
    assert env["MODEL_URI"] == V3.model_uri and env["MODEL_SHA256"] == "c" * 64
    assert env["MODEL_NAME"] == "churn" and env["MODEL_VERSION"] == "3"


def test_the_model_server_is_probed_hardened_and_placed_on_the_spot_pool() -> None:
    spec = pod(render_deployment(V3, CONFIG))
    container = spec["containers"][0]
    assert container["ports"] == [{"name": "http", "containerPort": 8080, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/ping"
    assert "livenessProbe" in container
    assert container["resources"]["requests"] and container["resources"]["limits"]
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] and security["runAsNonRoot"]
    assert security["allowPrivilegeEscalation"] is False and security["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in spec["volumes"])
    assert spec["nodeSelector"] == {"node.kubernetes.io/pool": "cpu-inference"}
    assert spec["tolerations"][0]["value"] == "cpu-inference"
    zones = [c for c in spec["topologySpreadConstraints"] if c["topologyKey"] == "topology.kubernetes.io/zone"]
    assert zones and zones[0]["labelSelector"]["matchLabels"] == version_selector("churn", 3)


def test_active_and_preview_services_select_their_versions() -> None:
    active, preview, *_ = render_routing("churn", CONFIG, active_version=3, preview_version=4)
    assert active["metadata"]["name"] == "churn" and active["spec"]["selector"] == version_selector("churn", 3)
    assert preview["metadata"]["name"] == "churn-preview"
    assert preview["spec"]["selector"] == version_selector("churn", 4)


def test_the_stack_has_one_pdb_and_hpa_per_version_and_an_ingress_for_the_active_service() -> None:
    objects = render_serving_stack([V3, V4], CONFIG, active_version=3, preview_version=4)
    kinds = [(o["kind"], o["metadata"]["name"]) for o in objects]
    for name in ("churn-v3", "churn-v4"):
        assert ("Deployment", name) in kinds and ("PodDisruptionBudget", name) in kinds
        assert ("HorizontalPodAutoscaler", name) in kinds
    ingress = next(o for o in objects if o["kind"] == "Ingress")
    forward = json.loads(ingress["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION])["forwardConfig"]
    assert [group["serviceName"] for group in forward["targetGroups"]] == ["churn"]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/target-type"] == "ip"
    assert len({(k, n) for k, n in kinds}) == len(kinds)


def test_network_policy_lets_in_the_alb_and_prometheus_and_out_dns_and_https_only() -> None:
    policy = render_network_policy("churn", CONFIG)["spec"]
    assert policy["policyTypes"] == ["Ingress", "Egress"]
    sources = [peer for rule in policy["ingress"] for peer in rule["from"]]
    assert {"ipBlock": {"cidr": CONFIG.vpc_cidr}} in sources
    assert any(
        p.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "prometheus" for p in sources
    )
    ports = {(p["protocol"], p["port"]) for rule in policy["egress"] for p in rule["ports"]}
    assert ports == {("UDP", 53), ("TCP", 53), ("TCP", 443)}


def test_the_policy_lets_in_the_vpc_the_settings_name() -> None:
    from control.settings import Settings

    env = {"CONTROL_DATA_BUCKET": "d", "CONTROL_ARTIFACTS_BUCKET": "a", "CONTROL_REGISTRY_TABLE": "t"}
    config = ManifestConfig.from_settings(Settings.from_env(env | {"CONTROL_VPC_CIDR": "10.40.0.0/16"}))
    sources = [peer for rule in render_network_policy("churn", config)["spec"]["ingress"] for peer in rule["from"]]
    assert {"ipBlock": {"cidr": "10.40.0.0/16"}} in sources


def test_a_certificate_switches_the_listener_to_https() -> None:
    config = ManifestConfig(certificate_arn="arn:aws:acm:us-east-1:111122223333:certificate/x")
    ingress = render_routing("churn", config, active_version=1)[-1]
    assert ingress["metadata"]["annotations"]["alb.ingress.kubernetes.io/listen-ports"] == '[{"HTTPS": 443}]'


def test_the_ingress_forwards_to_weighted_target_groups_all_on_the_active_service() -> None:
    ingress = render_ingress("churn", CONFIG)
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": INGRESS_ACTION, "port": {"name": "use-annotation"}}
    action = json.loads(ingress["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION])
    assert action["type"] == "forward"
    assert action["forwardConfig"]["targetGroups"] == [{"serviceName": "churn", "servicePort": "80", "weight": 100}]
    canary = render_ingress("churn", CONFIG, weights={"churn": 90, "churn-preview": 10})
    groups = json.loads(canary["metadata"]["annotations"][INGRESS_ACTION_ANNOTATION])["forwardConfig"]["targetGroups"]
    assert [(g["serviceName"], g["weight"]) for g in groups] == [("churn", 90), ("churn-preview", 10)]


@pytest.mark.parametrize("weights", [{"churn": -1}, {"churn": 1000}, {"churn": 0}, {"churn": True}])
def test_impossible_ingress_weights_are_refused(weights: dict[str, int]) -> None:
    with pytest.raises(InvalidInput, match="weight"):
        render_ingress("churn", CONFIG, weights=weights)


def test_the_ingress_scheme_and_certificate_come_from_the_settings() -> None:
    from control.settings import Settings

    env = {"CONTROL_DATA_BUCKET": "d", "CONTROL_ARTIFACTS_BUCKET": "a", "CONTROL_REGISTRY_TABLE": "t"}
    arn = "arn:aws:acm:eu-west-1:123456789012:certificate/abc-123"
    settings = Settings.from_env(
        env | {"CONTROL_INGRESS_SCHEME": "internet-facing", "CONTROL_INGRESS_CERTIFICATE_ARN": arn}
    )
    annotations = render_ingress("churn", ManifestConfig.from_settings(settings))["metadata"]["annotations"]
    assert annotations["alb.ingress.kubernetes.io/scheme"] == "internet-facing"
    assert annotations["alb.ingress.kubernetes.io/certificate-arn"] == arn
    default = render_ingress("churn", ManifestConfig.from_settings(Settings.from_env(env)))["metadata"]["annotations"]
    assert default["alb.ingress.kubernetes.io/scheme"] == "internal"
    assert "alb.ingress.kubernetes.io/certificate-arn" not in default
    for name, value in (("CONTROL_INGRESS_SCHEME", "public"), ("CONTROL_INGRESS_CERTIFICATE_ARN", "my-cert")):
        with pytest.raises(DependencyError, match=name):
            Settings.from_env(env | {name: value})
