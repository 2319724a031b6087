"""Settings, read from the environment once, at the composition root.

Terraform sets these variables on every Lambda in AWS; the local runtime sets them for the
embedded platform. Nothing else in the control plane reads the environment.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control.errors import DependencyError

API_AUTH_MODES = ("iam", "token")
INGRESS_SCHEMES = ("internal", "internet-facing")
CERTIFICATE_ARN = re.compile(r"arn:aws[a-z-]*:acm:[a-z0-9-]+:[0-9]{12}:certificate/[A-Za-z0-9-]+")


@dataclass(frozen=True)
class Settings:
    region: str
    data_bucket: str
    artifacts_bucket: str
    registry_table: str
    training_state_machine_arn: str = ""
    rollout_state_machine_arn: str = ""
    dead_letter_queue_url: str = ""
    aws_endpoint_url: str | None = None
    cluster: str = "eks"  # "eks" or "local"
    eks_cluster_name: str = ""
    training_namespace: str = "ml-training"
    serving_namespace: str = "ml-serving"
    training_image: str = "mlcp/training:latest"
    inference_image: str = "mlcp/inference:latest"
    checkpoint_claim: str = "training-checkpoints"
    # Where the staging Lambda mounts the checkpoint EFS (the same access point the training pods
    # mount at /mnt/checkpoints); the local runtime uses its local EFS folder instead.
    efs_mount_path: str = "/mnt/checkpoints"
    training_service_account: str = "training"
    inference_service_account: str = "inference"
    vpc_cidr: str = "10.0.0.0/16"  # the ALB's addresses, allowed into the model servers (NetworkPolicy)
    ingress_scheme: str = "internal"  # the deployments' ALB: "internal" or "internet-facing"
    ingress_certificate_arn: str = ""  # ACM certificate of the ALB's HTTPS listener; none: HTTP only
    local_state_dir: str = ""
    prometheus_url: str = ""
    api_auth: str = "token"  # "iam": API Gateway verified a SigV4 signature (AWS); "token": bearer token (local)
    api_token: str = ""
    alert_token: str = ""
    alert_token_secret_arn: str = ""
    code_version: str = "dev"
    poll_seconds: int = 30
    rollout_defaults: Mapping[str, float] = field(default_factory=dict)  # RolloutSpec timings
    # The smallest node of the training pool ({vcpus, memory_mib, gpus, max_pods}, from
    # terraform/modules/node_groups/instance_types.json): right-sizing never recommends more.
    training_node_capacity: Mapping[str, int] = field(default_factory=dict)
    extra: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        missing = [
            name
            for name in ("CONTROL_DATA_BUCKET", "CONTROL_ARTIFACTS_BUCKET", "CONTROL_REGISTRY_TABLE")
            if not env.get(name)
        ]
        if missing:
            raise DependencyError(f"missing settings: {', '.join(missing)} (set them in the environment)")

        def get(name: str, default: str = "") -> str:
            return env.get(f"CONTROL_{name}", default)

        cluster = get("CLUSTER", "eks")
        if cluster not in ("eks", "local"):
            raise DependencyError(f"CONTROL_CLUSTER must be 'eks' or 'local', not {cluster!r}")
        api_auth = get("API_AUTH", "token")
        if api_auth not in API_AUTH_MODES:
            raise DependencyError(f"CONTROL_API_AUTH must be 'iam' or 'token', not {api_auth!r}")
        ingress_scheme = get("INGRESS_SCHEME", "internal")
        if ingress_scheme not in INGRESS_SCHEMES:
            raise DependencyError(
                f"CONTROL_INGRESS_SCHEME must be 'internal' or 'internet-facing', not {ingress_scheme!r}"
            )
        certificate_arn = get("INGRESS_CERTIFICATE_ARN")
        if certificate_arn and not CERTIFICATE_ARN.fullmatch(certificate_arn):
            raise DependencyError(
                f"CONTROL_INGRESS_CERTIFICATE_ARN must be an ACM certificate ARN "
                f"(arn:aws:acm:<region>:<account>:certificate/<id>), not {certificate_arn!r}"
            )
        return cls(
            region=get("REGION") or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
            data_bucket=get("DATA_BUCKET"),
            artifacts_bucket=get("ARTIFACTS_BUCKET"),
            registry_table=get("REGISTRY_TABLE"),
            training_state_machine_arn=get("TRAINING_STATE_MACHINE_ARN"),
            rollout_state_machine_arn=get("ROLLOUT_STATE_MACHINE_ARN"),
            dead_letter_queue_url=get("DEAD_LETTER_QUEUE_URL"),
            aws_endpoint_url=env.get("AWS_ENDPOINT_URL") or None,
            cluster=cluster,
            eks_cluster_name=get("EKS_CLUSTER_NAME"),
            training_namespace=get("TRAINING_NAMESPACE", "ml-training"),
            serving_namespace=get("SERVING_NAMESPACE", "ml-serving"),
            training_image=get("TRAINING_IMAGE", "mlcp/training:latest"),
            inference_image=get("INFERENCE_IMAGE", "mlcp/inference:latest"),
            checkpoint_claim=get("CHECKPOINT_CLAIM", "training-checkpoints"),
            efs_mount_path=get("EFS_MOUNT_PATH", "/mnt/checkpoints"),
            training_service_account=get("TRAINING_SERVICE_ACCOUNT", "training"),
            inference_service_account=get("INFERENCE_SERVICE_ACCOUNT", "inference"),
            vpc_cidr=get("VPC_CIDR", "10.0.0.0/16"),
            ingress_scheme=ingress_scheme,
            ingress_certificate_arn=certificate_arn,
            local_state_dir=get("LOCAL_STATE_DIR"),
            prometheus_url=get("PROMETHEUS_URL"),
            api_auth=api_auth,
            api_token=get("API_TOKEN"),
            alert_token=get("ALERT_TOKEN"),
            alert_token_secret_arn=get("ALERT_TOKEN_SECRET_ARN"),
            code_version=get("CODE_VERSION", "dev"),
            poll_seconds=int(get("POLL_SECONDS", "30")),
            rollout_defaults=_json_object(get("ROLLOUT_DEFAULTS", "{}"), "CONTROL_ROLLOUT_DEFAULTS"),
            training_node_capacity=_json_object(get("TRAINING_NODE_CAPACITY", "{}"), "CONTROL_TRAINING_NODE_CAPACITY"),
        )


def _json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise DependencyError(f"{name} is not JSON: {error}") from error
    if not isinstance(value, dict):
        raise DependencyError(f"{name} must be a JSON object")
    return value
