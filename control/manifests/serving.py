"""Blue-green serving objects: per version a Deployment (+ PDB, HPA); per deployment two Services,
the NetworkPolicy and the ALB Ingress. The Services pick a version by `mlcp.dev/version`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from control.errors import InvalidInput
from control.manifests.config import (
    LABEL_COMPONENT,
    LABEL_DEPLOYMENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_NAME,
    LABEL_PART_OF,
    LABEL_VERSION,
    MANAGED_BY,
    NODE_POOL_LABEL,
    PART_OF,
    ZONE_LABEL,
    ManifestConfig,
)

HTTP_PORT = 8080
SERVICE_PORT = 80
RUN_AS_USER = 10001
TERMINATION_GRACE_SECONDS = 40  # preStop 5 s + the server's own drain (<= 30 s)
SERVICE_ROLE_LABEL = "mlcp.dev/service-role"
# The CPU inference pool is dedicated (and spot): pods must tolerate its taint.
CPU_INFERENCE_TAINT_KEY = NODE_POOL_LABEL


@dataclass(frozen=True)
class ServingVersion:
    """One model version served by a deployment (the blue or the green side)."""

    deployment: str
    model_name: str
    version: int
    model_uri: str
    model_sha256: str
    replicas: int = 2
    min_replicas: int = 2
    max_replicas: int = 10
    target_cpu_utilization: int = 70
    cpu_request: str = "500m"
    memory_request: str = "1Gi"
    cpu_limit: str = "2"
    memory_limit: str = "2Gi"

    @property
    def name(self) -> str:
        return deployment_name(self.deployment, self.version)


def deployment_name(deployment: str, version: int) -> str:
    return f"{deployment}-v{version}"


def preview_service_name(deployment: str) -> str:
    return f"{deployment}-preview"


def canary_service_name(deployment: str) -> str:
    """The Service a canary's share of the ALB's traffic goes to (Argo Rollouts' canaryService)."""
    return f"{deployment}-canary"


def version_selector(deployment: str, version: int) -> dict[str, str]:
    """What a Service selects to send traffic to one version (the only thing a switch changes)."""
    return {LABEL_NAME: deployment, LABEL_VERSION: str(version)}


def _common_labels(deployment: str) -> dict[str, str]:
    return {
        LABEL_NAME: deployment,
        LABEL_DEPLOYMENT: deployment,
        LABEL_COMPONENT: "inference",
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
    }


def _version_labels(v: ServingVersion) -> dict[str, str]:
    return {**_common_labels(v.deployment), LABEL_MODEL: v.model_name, LABEL_VERSION: str(v.version)}


def _restricted_container() -> dict[str, Any]:
    """Pod Security `restricted` for every container the serving namespace runs."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "capabilities": {"drop": ["ALL"]},
    }


def _on_the_inference_pool(config: ManifestConfig) -> dict[str, Any]:
    """nodeSelector and toleration of the (tainted) inference node group, for every serving pod."""
    return {
        "nodeSelector": {NODE_POOL_LABEL: config.inference_pool},
        "tolerations": [
            {
                "key": CPU_INFERENCE_TAINT_KEY,
                "operator": "Equal",
                "value": config.inference_pool,
                "effect": "NoSchedule",
            }
        ],
    }


MAX_SERVER_WORKERS = 64  # the model server's own cap on MLCP_WORKERS (workloads/inference/settings.py)


def cpu_cores(quantity: str) -> float:
    """A Kubernetes CPU quantity in cores: "500m" -> 0.5, "2" -> 2.0, "1.5" -> 1.5."""
    text = quantity.strip()
    try:
        cores = float(text[:-1]) / 1000 if text.endswith("m") else float(text)
    except ValueError:
        raise ValueError(f"not a Kubernetes CPU quantity: {quantity!r}") from None
    if not cores > 0:
        raise ValueError(f"a CPU quantity must be positive, not {quantity!r}")
    return cores


def server_workers(cpu_request: str) -> int:
    """MLCP_WORKERS for a pod: one model-server process per whole core it requests, at least one.
    One process answers from one core (its event loop), so the request is what it is sized on: the
    scheduler guarantees the request, while the limit above it is only there when the node is idle."""
    return max(1, min(MAX_SERVER_WORKERS, int(cpu_cores(cpu_request))))


def _container(v: ServingVersion, config: ManifestConfig) -> dict[str, Any]:
    env = {
        "MODEL_URI": v.model_uri,
        "MODEL_SHA256": v.model_sha256,
        "MODEL_NAME": v.model_name,
        "MODEL_VERSION": str(v.version),
        "SAGEMAKER_BIND_TO_PORT": str(HTTP_PORT),
        "MLCP_WORKERS": str(server_workers(v.cpu_request)),
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "TMPDIR": "/tmp",
    }
    return {
        "name": MODEL_SERVER_CONTAINER,
        "image": config.inference_image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": HTTP_PORT, "protocol": "TCP"}],
        "env": [{"name": key, "value": value} for key, value in env.items()],
        "resources": {
            "requests": {"cpu": v.cpu_request, "memory": v.memory_request},
            "limits": {"cpu": v.cpu_limit, "memory": v.memory_limit},
        },
        # Ready only once the model is loaded and its sha256 checked (/ping answers 503 before).
        "readinessProbe": {
            "httpGet": {"path": "/ping", "port": "http"},
            "periodSeconds": 2,
            "failureThreshold": 2,
            "timeoutSeconds": 2,
        },
        # Alive = the process answers; a slow model download must not restart the pod.
        "livenessProbe": {
            "tcpSocket": {"port": "http"},
            "initialDelaySeconds": 5,
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        # Endpoints and ALB targets are removed before SIGTERM reaches the server.
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "securityContext": _restricted_container(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def render_deployment(v: ServingVersion, config: ManifestConfig) -> dict[str, Any]:
    labels = _version_labels(v)
    selector = version_selector(v.deployment, v.version)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": v.name, "namespace": config.serving_namespace, "labels": labels},
        "spec": {
            "replicas": v.replicas,
            "revisionHistoryLimit": 3,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": config.inference_service_account,
                    # IRSA mounts its own projected token; the pod never calls the Kubernetes API.
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": TERMINATION_GRACE_SECONDS,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "fsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **_on_the_inference_pool(config),
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": key,
                            # Spot capacity can vanish from a zone: prefer spreading, never block.
                            "whenUnsatisfiable": "ScheduleAnyway",
                            "labelSelector": {"matchLabels": selector},
                            "matchLabelKeys": ["pod-template-hash"],
                        }
                        for key in (ZONE_LABEL, "kubernetes.io/hostname")
                    ],
                    "containers": [_container(v, config)],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}],
                },
            },
        },
    }


def render_pdb(v: ServingVersion, config: ManifestConfig) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": v.name, "namespace": config.serving_namespace, "labels": _version_labels(v)},
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": version_selector(v.deployment, v.version)},
            # Pods that never became ready (a broken model) may always be evicted.
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }


def render_hpa(v: ServingVersion, config: ManifestConfig) -> dict[str, Any]:
    """Scaling a Deployment to 0 (blue scaled away) switches its HPA off until it is scaled up."""
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": v.name, "namespace": config.serving_namespace, "labels": _version_labels(v)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": v.name},
            "minReplicas": v.min_replicas,
            "maxReplicas": v.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": v.target_cpu_utilization},
                    },
                }
            ],
            "behavior": {"scaleDown": {"stabilizationWindowSeconds": 300}},
        },
    }


VPA_GROUP = "autoscaling.k8s.io"
VPA_VERSION = "v1"
VPA_PLURAL = "verticalpodautoscalers"
MODEL_SERVER_CONTAINER = "model-server"


def render_vpa(v: ServingVersion, config: ManifestConfig) -> dict[str, Any]:
    """The version's VerticalPodAutoscaler in recommendation mode (updateMode Off): VPA's recommender
    watches the model servers and publishes requests in its status; it never evicts or resizes a
    pod, so it does not fight the HPA (which scales on CPU) or a rollout."""
    return {
        "apiVersion": f"{VPA_GROUP}/{VPA_VERSION}",
        "kind": "VerticalPodAutoscaler",
        "metadata": {"name": v.name, "namespace": config.serving_namespace, "labels": _version_labels(v)},
        "spec": {
            "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": v.name},
            "updatePolicy": {"updateMode": "Off"},
            "resourcePolicy": {
                "containerPolicies": [
                    {"containerName": MODEL_SERVER_CONTAINER, "controlledResources": ["cpu", "memory"]}
                ]
            },
        },
    }


def render_service(
    deployment: str, version: int, config: ManifestConfig, *, preview: bool = False, canary: bool = False
) -> dict[str, Any]:
    role = "preview" if preview else "canary" if canary else "active"
    names = {"preview": preview_service_name(deployment), "canary": canary_service_name(deployment)}
    name = names.get(role, deployment)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": name,
            "namespace": config.serving_namespace,
            "labels": {**_common_labels(deployment), SERVICE_ROLE_LABEL: role},
        },
        "spec": {
            "type": "ClusterIP",
            "selector": version_selector(deployment, version),
            "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def _s3_egress_blocks(config: ManifestConfig) -> list[dict[str, Any]]:
    """Where S3 (and STS for IRSA) may be reached: the configured CIDRs, the open internet less the
    private ranges."""
    return [
        {"ipBlock": {"cidr": cidr, **({"except": list(config.private_cidrs)} if cidr == "0.0.0.0/0" else {})}}
        for cidr in config.s3_cidrs
    ]


def render_network_policy(deployment: str, config: ManifestConfig) -> dict[str, Any]:
    """What the model servers of one deployment need on top of the namespace's default deny."""
    http = [{"protocol": "TCP", "port": HTTP_PORT}]
    https_out = _s3_egress_blocks(config)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{deployment}-model-server",
            "namespace": config.serving_namespace,
            "labels": _common_labels(deployment),
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_NAME: deployment}},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [
                # The ALB (target type ip) and in-VPC callers (the control plane's smoke checks).
                {"from": [{"ipBlock": {"cidr": config.vpc_cidr}}], "ports": http},
                # Prometheus scrapes /metrics on the same port.
                {
                    "from": [
                        {
                            "namespaceSelector": {
                                "matchLabels": {"kubernetes.io/metadata.name": config.monitoring_namespace}
                            },
                            "podSelector": {"matchLabels": {LABEL_NAME: "prometheus"}},
                        }
                    ],
                    "ports": http,
                },
                # The rollout's preview-traffic load test (a Job) sends the sample request.
                {"from": [{"podSelector": {"matchLabels": preview_traffic_labels(deployment)}}], "ports": http},
            ],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                # STS (IRSA) and other interface endpoints answer on private addresses in the VPC.
                {"to": [{"ipBlock": {"cidr": config.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]},
                # S3 through the gateway endpoint.
                {"to": https_out, "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }


# The Ingress's backend is this ALB action, not a Service: a forward to weighted target groups
# (one per Service). Blue-green gives the active Service all of it; a canary sets other weights.
INGRESS_ACTION = "weighted-forward"
INGRESS_ACTION_ANNOTATION = f"alb.ingress.kubernetes.io/actions.{INGRESS_ACTION}"


def ingress_weights(deployment: str, canary_weight: int = 0) -> dict[str, int]:
    """Blue-green: every request to the active Service (its selector picks the version). A canary:
    `canary_weight` % to the canary Service, the rest to the active (stable) one, as Argo Rollouts
    sets the ALB's weighted target groups."""
    if isinstance(canary_weight, bool) or not isinstance(canary_weight, int) or not 0 <= canary_weight <= 100:
        raise InvalidInput(f"a canary weight is an integer 0-100, not {canary_weight!r}", field="weight")
    if canary_weight == 0:
        return {deployment: 100}
    return {deployment: 100 - canary_weight, canary_service_name(deployment): canary_weight}


def weights_of_ingress(manifest: Mapping[str, Any]) -> dict[str, int]:
    """Service name → weight of an applied Ingress's weighted forward action ({} if it has none)."""
    annotation = ((manifest.get("metadata") or {}).get("annotations") or {}).get(INGRESS_ACTION_ANNOTATION)
    try:
        action = json.loads(annotation) if annotation else {}
        groups = action.get("forwardConfig", {}).get("targetGroups", [])
        return {str(group["serviceName"]): int(group.get("weight", 1)) for group in groups}
    except (ValueError, TypeError, KeyError, AttributeError):
        return {}


def canary_weight_of(weights: Mapping[str, int], deployment: str) -> int:
    """The % of the requests the split sends to the deployment's canary Service."""
    total = sum(weights.values())
    return round(100 * weights.get(canary_service_name(deployment), 0) / total) if total else 0


def render_ingress(deployment: str, config: ManifestConfig, weights: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The deployment's ALB Ingress. `weights`: Service name → share (0-999, the ALB's range)."""
    weights = dict(weights or ingress_weights(deployment))
    if not weights or any(isinstance(w, bool) or not isinstance(w, int) or not 0 <= w <= 999 for w in weights.values()):
        raise InvalidInput(f"Ingress weights must be integers 0-999 per Service, not {weights!r}", field="weights")
    if sum(weights.values()) == 0:
        raise InvalidInput("at least one Service needs a weight above 0", field="weights")
    forward = {
        "type": "forward",
        "forwardConfig": {
            "targetGroups": [
                {"serviceName": service, "servicePort": str(SERVICE_PORT), "weight": weight}
                for service, weight in weights.items()
            ],
            "targetGroupStickinessConfig": {"enabled": False},
        },
    }
    annotations = {
        INGRESS_ACTION_ANNOTATION: json.dumps(forward, separators=(",", ":")),
        "alb.ingress.kubernetes.io/scheme": config.ingress_scheme,
        "alb.ingress.kubernetes.io/target-type": "ip",
        "alb.ingress.kubernetes.io/group.name": PART_OF,
        "alb.ingress.kubernetes.io/healthcheck-path": "/ping",
        "alb.ingress.kubernetes.io/healthcheck-interval-seconds": "5",
        "alb.ingress.kubernetes.io/healthy-threshold-count": "2",
        "alb.ingress.kubernetes.io/target-group-attributes": "deregistration_delay.timeout_seconds=30",
    }
    if config.certificate_arn:
        annotations.update(
            {
                "alb.ingress.kubernetes.io/listen-ports": '[{"HTTPS": 443}]',
                "alb.ingress.kubernetes.io/certificate-arn": config.certificate_arn,
                "alb.ingress.kubernetes.io/ssl-policy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
            }
        )
    else:
        annotations["alb.ingress.kubernetes.io/listen-ports"] = '[{"HTTP": 80}]'
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": deployment,
            "namespace": config.serving_namespace,
            "labels": _common_labels(deployment),
            "annotations": annotations,
        },
        "spec": {
            "ingressClassName": config.ingress_class,
            "rules": [
                {
                    "http": {
                        "paths": [
                            {
                                "path": "/",
                                "pathType": "Prefix",
                                "backend": {"service": {"name": INGRESS_ACTION, "port": {"name": "use-annotation"}}},
                            }
                        ]
                    }
                }
            ],
        },
    }


def render_version(v: ServingVersion, config: ManifestConfig) -> list[dict[str, Any]]:
    """What one version needs: its Deployment, PDB, HPA and VPA (recommendations only)."""
    return [render_deployment(v, config), render_pdb(v, config), render_hpa(v, config), render_vpa(v, config)]


def render_routing(
    deployment: str, config: ManifestConfig, *, active_version: int, preview_version: int | None = None
) -> list[dict[str, Any]]:
    """What a deployment needs once: the active and preview Services, NetworkPolicy, Ingress."""
    return [
        render_service(deployment, active_version, config),
        render_service(deployment, preview_version or active_version, config, preview=True),
        render_network_policy(deployment, config),
        render_preview_traffic_network_policy(deployment, config),
        render_ingress(deployment, config),
    ]


def render_serving_stack(
    versions: list[ServingVersion],
    config: ManifestConfig,
    *,
    active_version: int,
    preview_version: int | None = None,
) -> list[dict[str, Any]]:
    if not versions:
        return []
    deployment = versions[0].deployment
    objects = [obj for v in versions for obj in render_version(v, config)]
    return objects + render_routing(deployment, config, active_version=active_version, preview_version=preview_version)


# -- preview traffic: the load test a rollout runs against the preview Service during analysis ------

PREVIEW_TRAFFIC_COMPONENT = "preview-traffic"
LOAD_TESTER_MODULE = "workloads.inference.loadtest"
MAX_NAME = 63  # the Job controller labels its pods with the Job's name: a label value


def preview_traffic_job_name(deployment: str, version: int) -> str:
    suffix = f"-v{version}-{PREVIEW_TRAFFIC_COMPONENT}"
    return deployment[: MAX_NAME - len(suffix)].rstrip("-") + suffix


def preview_traffic_labels(deployment: str) -> dict[str, str]:
    """Selects the load tester's pods (never a model server's: the Services select `name=deployment`)."""
    return {LABEL_DEPLOYMENT: deployment, LABEL_COMPONENT: PREVIEW_TRAFFIC_COMPONENT}


def preview_service_url(deployment: str, config: ManifestConfig) -> str:
    """The preview Service's in-cluster URL; the local runtime swaps the host for its router."""
    return f"http://{preview_service_name(deployment)}.{config.serving_namespace}.svc:{SERVICE_PORT}/invocations"


@dataclass(frozen=True)
class PreviewTraffic:
    """A bounded load test of one version through the preview Service."""

    deployment: str
    model_name: str
    version: int
    rate: float  # requests per second
    seconds: float
    payload_uri: str

    @property
    def name(self) -> str:
        return preview_traffic_job_name(self.deployment, self.version)


def render_preview_traffic_job(t: PreviewTraffic, config: ManifestConfig) -> dict[str, Any]:
    """A batch/v1 Job running the load tester in the inference image (it reads the payload from S3
    with the inference service account's role); it ends on its own after `seconds`."""
    labels = {
        LABEL_NAME: t.name,
        **preview_traffic_labels(t.deployment),
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_MODEL: t.model_name,
        LABEL_VERSION: str(t.version),
    }
    command = [
        "python", "-m", LOAD_TESTER_MODULE,
        "--url", preview_service_url(t.deployment, config),
        "--rate", f"{t.rate:g}",
        "--duration", f"{t.seconds:g}",
        "--payload-uri", t.payload_uri,
    ]  # fmt: skip
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": t.name, "namespace": config.serving_namespace, "labels": labels},
        "spec": {
            "backoffLimit": 2,
            "activeDeadlineSeconds": int(t.seconds) + 120,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "serviceAccountName": config.inference_service_account,
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": RUN_AS_USER,
                        "runAsGroup": RUN_AS_USER,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    **_on_the_inference_pool(config),
                    "containers": [
                        {
                            "name": "load-tester",
                            "image": config.inference_image,
                            "imagePullPolicy": "IfNotPresent",
                            "command": command,
                            "env": [
                                {"name": "AWS_REGION", "value": config.region},
                                {"name": "AWS_DEFAULT_REGION", "value": config.region},
                            ],
                            "resources": {
                                "requests": {"cpu": "100m", "memory": "128Mi"},
                                "limits": {"cpu": "500m", "memory": "256Mi"},
                            },
                            "securityContext": _restricted_container(),
                            "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                        }
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
                },
            },
        },
    }


def render_preview_traffic_network_policy(deployment: str, config: ManifestConfig) -> dict[str, Any]:
    """The load tester may resolve names, reach this deployment's model servers, and read its payload
    from S3 (STS for IRSA in the VPC); nothing may connect to it."""
    https_out = _s3_egress_blocks(config)
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": f"{deployment}-{PREVIEW_TRAFFIC_COMPONENT}",
            "namespace": config.serving_namespace,
            "labels": _common_labels(deployment),
        },
        "spec": {
            "podSelector": {"matchLabels": preview_traffic_labels(deployment)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": [],
            "egress": [
                {
                    "to": [
                        {
                            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                            "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
                        }
                    ],
                    "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}],
                },
                {
                    "to": [{"podSelector": {"matchLabels": {LABEL_NAME: deployment}}}],
                    "ports": [{"protocol": "TCP", "port": HTTP_PORT}],
                },
                {"to": [{"ipBlock": {"cidr": config.vpc_cidr}}], "ports": [{"protocol": "TCP", "port": 443}]},
                {"to": https_out, "ports": [{"protocol": "TCP", "port": 443}]},
            ],
        },
    }
