"""The Kubeflow MPIJob (kubeflow.org/v2beta1, mpi-operator v0.8.0) for one training run.

The launcher runs `mpirun` the way mpi-operator's own v2beta1 Horovod example does
(examples/v2beta1/horovod/tensorflow-mnist.yaml at v0.8.0): the operator mounts the hostfile
and points OpenMPI at it (`OMPI_MCA_orte_default_hostfile`). Processes that mpirun starts over
ssh do not inherit the worker container's environment, so everything the training script needs
is exported with `-x` (including the IRSA variables the EKS webhook injects).

Every pod runs as the image's `mpiuser` (uid/gid 1000) and meets Pod Security `restricted`,
following the operator's non-root recipe (examples/v2beta1/pi/pi.yaml at v0.8.0): the SSH keys
are mounted at `sshAuthMountPath` in mpiuser's home (the operator then leaves the key files
readable, mode 0644, instead of root's 0600), and each worker runs `sshd` itself, as mpiuser,
with the config the image ships (/home/mpiuser/.sshd_config: unprivileged port 2222, pid file
and host key in the home directory). The operator's default worker command, `sshd -De` with
the system config, needs root.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from control.domain.training import TrainingJobSpec
from control.manifests.config import (
    LABEL_COMPONENT,
    LABEL_MANAGED_BY,
    LABEL_MODEL,
    LABEL_PART_OF,
    LABEL_RUN_ID,
    MANAGED_BY,
    NODE_POOL_LABEL,
    PART_OF,
    ManifestConfig,
)

API_VERSION = "kubeflow.org/v2beta1"
KIND = "MPIJob"
GROUP = "kubeflow.org"
VERSION = "v2beta1"
PLURAL = "mpijobs"
MPI_OPERATOR_VERSION = "v0.8.0"

ENTRYPOINT = "/opt/training/train.py"
CHECKPOINT_MOUNT = "/mnt/checkpoints"
SCRATCH_MOUNT = "/mnt/scratch"
METRICS_PORT = 9100
GPU_RESOURCE = "nvidia.com/gpu"
GPU_TAINT = {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}
ANNOTATION_RUN_ID = "mlcp.dev/run-id"
LABEL_TRAINING_JOB = "mlcp.dev/training-job"

# `<name>-worker-<index>` must stay a DNS-1035 label (<= 63 characters), which the operator
# checks; 52 leaves room for up to 999 workers.
MAX_NAME_LENGTH = 52
_DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")

# Exported to every rank with `mpirun -x NAME`; the IRSA ones are injected by EKS.
FORWARDED_ENV = (
    "PATH",
    "LD_LIBRARY_PATH",
    "PYTHONUNBUFFERED",
    "NCCL_DEBUG",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_STS_REGIONAL_ENDPOINTS",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
)
MPIRUN_OPTIONS = (
    "-bind-to", "none",
    "-map-by", "slot",
    "-mca", "pml", "ob1",
    "-mca", "btl", "^openib",
)  # fmt: skip

# mpiuser in workloads/training/Dockerfile; the EFS access point (terraform/modules/storage)
# writes checkpoints as the same uid/gid.
RUN_AS_USER = 1000
SSH_AUTH_MOUNT_PATH = "/home/mpiuser/.ssh"
SSHD_CONFIG = "/home/mpiuser/.sshd_config"
WORKER_COMMAND = ("/usr/sbin/sshd", "-De", "-f", SSHD_CONFIG)

LAUNCHER_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
TTL_SECONDS_AFTER_FINISHED = 86400
BACKOFF_LIMIT = 2  # the launcher is retried; training resumes from the last checkpoint


def mpijob_name(run_id: str) -> str:
    """The MPIJob's name for a run: the run id itself when it is a valid, short DNS-1035 label.

    Otherwise (starts with a digit, or too long) a readable prefix plus a hash of the whole id,
    so that the name is deterministic and distinct per run.
    """
    if len(run_id) <= MAX_NAME_LENGTH and _DNS1035.match(run_id):
        return run_id
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:8]
    base = re.sub(r"[^a-z0-9-]+", "-", run_id.lower())
    if not base[:1].isalpha():
        base = "run-" + base
    base = base[: MAX_NAME_LENGTH - len(digest) - 1].strip("-")
    return f"{base}-{digest}"


def label_value(value: str) -> str:
    """A value Kubernetes accepts as a label: <= 63 characters, alphanumeric at both ends."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value)[:63]
    return cleaned.strip("-_.")


def total_slots(spec: TrainingJobSpec) -> int:
    return spec.workers * spec.gpus_per_worker


def launcher_command(spec: TrainingJobSpec) -> list[str]:
    args = spec.training_args(f"{CHECKPOINT_MOUNT}/{spec.run_id}", metrics_port=METRICS_PORT, scratch_dir=SCRATCH_MOUNT)
    exports = [part for name in FORWARDED_ENV for part in ("-x", name)]
    return ["mpirun", "-np", str(total_slots(spec)), *MPIRUN_OPTIONS, *exports, "python", ENTRYPOINT, *args]


def _labels(spec: TrainingJobSpec, name: str) -> dict[str, str]:
    return {
        LABEL_PART_OF: PART_OF,
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_COMPONENT: "training",
        LABEL_MODEL: spec.model_name,
        LABEL_RUN_ID: label_value(spec.run_id),
        LABEL_TRAINING_JOB: name,
    }


def _pod_security_context() -> dict[str, Any]:
    """Pod Security `restricted` (v1.31) for launcher and workers: non-root, RuntimeDefault seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS_USER,
        "runAsGroup": RUN_AS_USER,
        # The SSH key Secret and the volumes are group-readable by mpiuser. EFS checkpoints are
        # owned by the access point's uid/gid 1000 already: skip the recursive chown.
        "fsGroup": RUN_AS_USER,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _container_security_context() -> dict[str, Any]:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _launcher(spec: TrainingJobSpec, config: ManifestConfig, labels: dict[str, str]) -> dict[str, Any]:
    env = [
        {"name": "PYTHONUNBUFFERED", "value": "1"},
        {"name": "NCCL_DEBUG", "value": "WARN"},
        {"name": "AWS_REGION", "value": config.region},
        {"name": "AWS_DEFAULT_REGION", "value": config.region},
    ]
    return {
        "replicas": 1,
        "restartPolicy": "Never",
        "template": {
            "metadata": {"labels": {**labels, "mlcp.dev/role": "launcher"}},
            "spec": {
                "serviceAccountName": config.training_service_account,
                "securityContext": _pod_security_context(),
                "containers": [
                    {
                        "name": "launcher",
                        "image": config.training_image,
                        "imagePullPolicy": "IfNotPresent",
                        "command": launcher_command(spec),
                        "env": env,
                        "resources": LAUNCHER_RESOURCES,
                        "securityContext": _container_security_context(),
                    }
                ],
            },
        },
    }


def _scratch_volume(spec: TrainingJobSpec, config: ManifestConfig, labels: dict[str, str]) -> dict[str, Any]:
    """A gp3 EBS volume per worker pod (generic ephemeral volume): created with the pod, deleted with it."""
    return {
        "name": "scratch",
        "ephemeral": {
            "volumeClaimTemplate": {
                "metadata": {"labels": labels},
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "storageClassName": config.scratch_storage_class,
                    "resources": {"requests": {"storage": f"{spec.resources.scratch_gib}Gi"}},
                },
            }
        },
    }


def worker_resources(spec: TrainingJobSpec) -> dict[str, Any]:
    gpus = str(spec.gpus_per_worker)
    memory = spec.resources.memory_mib
    return {
        "requests": {"cpu": f"{spec.resources.cpu_millicores}m", "memory": f"{memory}Mi", GPU_RESOURCE: gpus},
        "limits": {"memory": f"{memory * 2}Mi", GPU_RESOURCE: gpus},
    }


def _worker(spec: TrainingJobSpec, config: ManifestConfig, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "replicas": spec.workers,
        "restartPolicy": "OnFailure",
        "template": {
            "metadata": {"labels": {**labels, "mlcp.dev/role": "worker"}},
            "spec": {
                "serviceAccountName": config.training_service_account,
                "nodeSelector": {NODE_POOL_LABEL: config.gpu_pool},
                "tolerations": [GPU_TAINT],
                "securityContext": _pod_security_context(),
                "containers": [
                    {
                        "name": "worker",
                        "image": config.training_image,
                        "imagePullPolicy": "IfNotPresent",
                        # sshd as mpiuser, for the launcher's mpirun to reach (port 2222).
                        "command": list(WORKER_COMMAND),
                        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
                        "resources": worker_resources(spec),
                        "volumeMounts": [
                            {"name": "checkpoints", "mountPath": CHECKPOINT_MOUNT},
                            {"name": "scratch", "mountPath": SCRATCH_MOUNT},
                            {"name": "dshm", "mountPath": "/dev/shm"},
                        ],
                        "securityContext": _container_security_context(),
                    }
                ],
                "volumes": [
                    {"name": "checkpoints", "persistentVolumeClaim": {"claimName": config.checkpoint_claim}},
                    _scratch_volume(spec, config, labels),
                    # NCCL needs more shared memory than the container runtime's 64 MiB default.
                    {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "8Gi"}},
                ],
            },
        },
    }


def render_mpijob(spec: TrainingJobSpec, config: ManifestConfig) -> dict[str, Any]:
    """The MPIJob for `spec`: `spec.workers` GPU workers of `spec.gpus_per_worker` slots each."""
    name = mpijob_name(spec.run_id)
    labels = _labels(spec, name)
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": name,
            "namespace": config.training_namespace,
            "labels": labels,
            "annotations": {ANNOTATION_RUN_ID: spec.run_id},
        },
        "spec": {
            "slotsPerWorker": spec.gpus_per_worker,
            "sshAuthMountPath": SSH_AUTH_MOUNT_PATH,
            "mpiImplementation": "OpenMPI",
            "launcherCreationPolicy": "WaitForWorkersReady",
            "runLauncherAsWorker": False,
            "runPolicy": {
                "cleanPodPolicy": "Running",
                "backoffLimit": BACKOFF_LIMIT,
                "ttlSecondsAfterFinished": TTL_SECONDS_AFTER_FINISHED,
                "activeDeadlineSeconds": spec.deadline_seconds,
            },
            "mpiReplicaSpecs": {
                "Launcher": _launcher(spec, config, labels),
                "Worker": _worker(spec, config, labels),
            },
        },
    }


def operator_validation_errors(manifest: dict[str, Any]) -> list[str]:
    """The checks mpi-operator v0.8.0's admission (pkg/apis/kubeflow/validation) adds to the schema."""
    errors: list[str] = []
    spec = manifest.get("spec", {})
    replica_specs = spec.get("mpiReplicaSpecs") or {}
    workers = (replica_specs.get("Worker") or {}).get("replicas") or 1
    hostname = f"{manifest.get('metadata', {}).get('name', '')}-worker-{workers - 1}"
    if len(hostname) > 63 or not _DNS1035.match(hostname):
        errors.append(f"metadata.name: pod hostname {hostname!r} is not a DNS-1035 label")
    if spec.get("slotsPerWorker") is None or spec["slotsPerWorker"] < 0:
        errors.append("spec.slotsPerWorker: required, non-negative")
    if spec.get("runPolicy", {}).get("cleanPodPolicy") not in ("None", "Running", "All"):
        errors.append("spec.runPolicy.cleanPodPolicy: must be None, Running or All")
    launcher = replica_specs.get("Launcher")
    if launcher is None or launcher.get("replicas") != 1:
        errors.append("spec.mpiReplicaSpecs.Launcher: required, with replicas 1")
    for role, replica in replica_specs.items():
        if replica.get("restartPolicy") not in ("Never", "OnFailure"):
            errors.append(f"spec.mpiReplicaSpecs.{role}.restartPolicy: must be Never or OnFailure")
        if not replica.get("template", {}).get("spec", {}).get("containers"):
            errors.append(f"spec.mpiReplicaSpecs.{role}.template.spec.containers: at least one")
    return errors
