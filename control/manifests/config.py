"""Where rendered objects go and what they run: filled from Settings by the caller."""

from __future__ import annotations

from dataclasses import dataclass

from control.settings import Settings

LABEL_NAME = "app.kubernetes.io/name"
LABEL_COMPONENT = "app.kubernetes.io/component"
LABEL_PART_OF = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
LABEL_MODEL = "mlcp.dev/model"
LABEL_VERSION = "mlcp.dev/version"
LABEL_RUN_ID = "mlcp.dev/run-id"
LABEL_DEPLOYMENT = "mlcp.dev/deployment"
NODE_POOL_LABEL = "node.kubernetes.io/pool"
ZONE_LABEL = "topology.kubernetes.io/zone"
PART_OF = "mlcp"
MANAGED_BY = "mlcp-control-plane"


@dataclass(frozen=True)
class ManifestConfig:
    training_namespace: str = "ml-training"
    serving_namespace: str = "ml-serving"
    training_image: str = "mlcp/training:latest"
    inference_image: str = "mlcp/inference:latest"
    checkpoint_claim: str = "training-checkpoints"
    # gp3 EBS StorageClass of the workers' scratch volumes (terraform/charts/mlcp-platform, k8s base).
    scratch_storage_class: str = "mlcp-scratch-gp3"
    training_service_account: str = "training"
    inference_service_account: str = "inference"
    region: str = "us-east-1"
    gpu_pool: str = "gpu-training"
    inference_pool: str = "cpu-inference"
    # Namespaces whose pods may reach the model servers (NetworkPolicy ingress).
    ingress_controller_namespace: str = "kube-system"
    monitoring_namespace: str = "monitoring"
    # The ALB (target type ip) sends from its ENIs in the VPC, not from a pod: allow the VPC CIDR.
    vpc_cidr: str = "10.0.0.0/16"
    # A NetworkPolicy cannot name the S3 gateway endpoint's prefix list. By default HTTPS may leave
    # for public addresses only, which from private subnets without NAT reaches S3 through the
    # gateway endpoint alone; Terraform can pass the region's S3 prefix-list CIDRs instead.
    s3_cidrs: tuple[str, ...] = ("0.0.0.0/0",)
    private_cidrs: tuple[str, ...] = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
    ingress_class: str = "alb"
    ingress_scheme: str = "internal"
    certificate_arn: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ManifestConfig:
        return cls(
            training_namespace=settings.training_namespace,
            serving_namespace=settings.serving_namespace,
            training_image=settings.training_image,
            inference_image=settings.inference_image,
            checkpoint_claim=settings.checkpoint_claim,
            training_service_account=settings.training_service_account,
            inference_service_account=settings.inference_service_account,
            region=settings.region,
            vpc_cidr=settings.vpc_cidr,
            ingress_scheme=settings.ingress_scheme,
            certificate_arn=settings.ingress_certificate_arn,
        )
