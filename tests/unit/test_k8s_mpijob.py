"""Rendering the MPIJob for a training run (kubeflow.org/v2beta1, mpi-operator v0.8.0)."""

from __future__ import annotations

from control.domain.training import Hyperparameters, TrainingJobSpec, WorkerResources
from control.manifests.config import ManifestConfig
from control.manifests.training import (
    mpijob_name,
    operator_validation_errors,
    render_mpijob,
)

CONFIG = ManifestConfig(training_image="registry.example/training:1", checkpoint_claim="training-checkpoints")


def spec(**overrides: object) -> TrainingJobSpec:
    values: dict[str, object] = {
        "run_id": "churn-v1-0123456789ab",
        "model_name": "churn",
        "dataset_uri": "s3://data/datasets/churn/v1/data.csv",
        "output_uri": "s3://artifacts/models/churn/runs/churn-v1-0123456789ab/",
        "hyperparameters": Hyperparameters(epochs=3),
        "workers": 3,
        "gpus_per_worker": 4,
        "deadline_seconds": 5400,
    }
    values.update(overrides)
    return TrainingJobSpec(**values)  # type: ignore[arg-type]


def replica(manifest: dict, role: str) -> dict:
    return manifest["spec"]["mpiReplicaSpecs"][role]


def container(manifest: dict, role: str) -> dict:
    return replica(manifest, role)["template"]["spec"]["containers"][0]


def test_workers_slots_and_gpus_follow_the_spec() -> None:
    manifest = render_mpijob(spec(), CONFIG)
    assert manifest["apiVersion"] == "kubeflow.org/v2beta1" and manifest["kind"] == "MPIJob"
    assert manifest["metadata"] == {
        "name": "churn-v1-0123456789ab",
        "namespace": "ml-training",
        "labels": manifest["metadata"]["labels"],
        "annotations": {"mlcp.dev/run-id": "churn-v1-0123456789ab"},
    }
    assert manifest["metadata"]["labels"]["mlcp.dev/model"] == "churn"
    assert manifest["metadata"]["labels"]["mlcp.dev/run-id"] == "churn-v1-0123456789ab"
    assert manifest["spec"]["slotsPerWorker"] == 4
    assert manifest["spec"]["mpiImplementation"] == "OpenMPI"
    assert manifest["spec"]["launcherCreationPolicy"] == "WaitForWorkersReady"
    assert replica(manifest, "Launcher")["replicas"] == 1
    assert replica(manifest, "Worker")["replicas"] == 3
    resources = container(manifest, "Worker")["resources"]
    assert resources["requests"]["nvidia.com/gpu"] == "4" == resources["limits"]["nvidia.com/gpu"]
    assert "nvidia.com/gpu" not in str(container(manifest, "Launcher")["resources"])


def test_workers_land_on_the_tainted_gpu_pool_with_checkpoints_on_efs() -> None:
    pod = replica(render_mpijob(spec(), CONFIG), "Worker")["template"]["spec"]
    assert pod["nodeSelector"] == {"node.kubernetes.io/pool": "gpu-training"}
    assert {"key": "nvidia.com/gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"} in pod["tolerations"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["checkpoints"]["persistentVolumeClaim"] == {"claimName": "training-checkpoints"}
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["checkpoints"] == "/mnt/checkpoints"
    assert pod["serviceAccountName"] == "training"


def test_each_worker_gets_its_own_gp3_scratch_volume_sized_by_the_run() -> None:
    resources = WorkerResources(cpu_millicores=1500, memory_mib=3072, scratch_gib=120)
    manifest = render_mpijob(spec(resources=resources), CONFIG)
    pod = replica(manifest, "Worker")["template"]["spec"]
    scratch = {v["name"]: v for v in pod["volumes"]}["scratch"]
    claim = scratch["ephemeral"]["volumeClaimTemplate"]["spec"]  # generic ephemeral: gone with the pod
    assert claim == {
        "accessModes": ["ReadWriteOnce"],
        "storageClassName": "mlcp-scratch-gp3",
        "resources": {"requests": {"storage": "120Gi"}},
    }
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert mounts["scratch"] == "/mnt/scratch"
    command = container(manifest, "Launcher")["command"]
    assert command[command.index("--scratch-dir") + 1] == "/mnt/scratch"
    worker = container(manifest, "Worker")["resources"]
    assert worker["requests"]["cpu"] == "1500m" and worker["requests"]["memory"] == "3072Mi"
    assert worker["limits"]["memory"] == "6144Mi"


def test_every_pod_runs_as_mpiuser_with_sshd_on_its_own_config() -> None:
    """mpi-operator's non-root recipe (examples/v2beta1/pi/pi.yaml at v0.8.0), with the image's
    mpiuser (workloads/training/Dockerfile): keys in its home, sshd started as mpiuser."""
    manifest = render_mpijob(spec(), CONFIG)
    assert manifest["spec"]["sshAuthMountPath"] == "/home/mpiuser/.ssh"
    for role in ("Launcher", "Worker"):
        pod = replica(manifest, role)["template"]["spec"]
        assert pod["securityContext"] == {
            "runAsNonRoot": True,
            "runAsUser": 1000,
            "runAsGroup": 1000,
            "fsGroup": 1000,
            "fsGroupChangePolicy": "OnRootMismatch",
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert container(manifest, role)["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        }
    # Without a command the operator would start `sshd -De` with the system config, as root.
    assert container(manifest, "Worker")["command"] == ["/usr/sbin/sshd", "-De", "-f", "/home/mpiuser/.sshd_config"]
    assert "--allow-run-as-root" not in container(manifest, "Launcher")["command"]


def test_run_policy_carries_the_deadline_and_clean_up() -> None:
    run_policy = render_mpijob(spec(deadline_seconds=777), CONFIG)["spec"]["runPolicy"]
    assert run_policy == {
        "activeDeadlineSeconds": 777,  # the run's own deadline: the operator stops a job that overruns it
        "cleanPodPolicy": "Running",  # workers still running when the launcher ends are deleted
        "ttlSecondsAfterFinished": 86400,  # the finished job (and its logs) kept one day, then collected
        "backoffLimit": 2,  # the launcher retried twice; training resumes from its checkpoint
    }
    assert render_mpijob(spec(deadline_seconds=5400), CONFIG)["spec"]["runPolicy"]["activeDeadlineSeconds"] == 5400


def test_launcher_runs_every_slot_with_the_training_arguments() -> None:
    job = spec()
    argv = container(render_mpijob(job, CONFIG), "Launcher")["command"]
    assert argv[:3] == ["mpirun", "-np", "12"]  # 3 workers x 4 slots
    program = argv.index("python")
    assert argv[program + 1] == "/opt/training/train.py"
    assert argv[program + 2 :] == job.training_args(
        "/mnt/checkpoints/churn-v1-0123456789ab", metrics_port=9100, scratch_dir="/mnt/scratch"
    )
    exported = {argv[i + 1] for i, part in enumerate(argv[:program]) if part == "-x"}
    assert {"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_REGION", "PATH"} <= exported


def test_rendering_is_deterministic() -> None:
    assert render_mpijob(spec(), CONFIG) == render_mpijob(spec(), CONFIG)


def test_names_that_make_bad_pod_hostnames_are_shortened_deterministically() -> None:
    assert mpijob_name("churn-v1") == "churn-v1"
    digit_first = mpijob_name("2024-churn-v1")
    assert digit_first[0].isalpha() and digit_first == mpijob_name("2024-churn-v1")
    long_id = "a" * 30 + "-" + "b" * 49
    shortened = mpijob_name(long_id)
    assert len(shortened) <= 52 and shortened != mpijob_name(long_id[:-1] + "c")
    manifest = render_mpijob(spec(run_id=long_id, workers=999), CONFIG)
    assert operator_validation_errors(manifest) == []
    assert manifest["metadata"]["annotations"]["mlcp.dev/run-id"] == long_id
    assert len(manifest["metadata"]["labels"]["mlcp.dev/run-id"]) <= 63


def test_operator_rules_catch_what_the_schema_does_not() -> None:
    manifest = render_mpijob(spec(), CONFIG)
    assert operator_validation_errors(manifest) == []
    manifest["metadata"]["name"] = "9-starts-with-a-digit"
    replica(manifest, "Launcher")["replicas"] = 2
    errors = operator_validation_errors(manifest)
    assert any("DNS-1035" in e for e in errors) and any("Launcher" in e for e in errors)
