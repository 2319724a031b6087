"""GPU build and cost against the instance types Terraform can launch, both ways.

One table, terraform/modules/node_groups/instance_types.json (Terraform's instance_types.tf and the
control plane both read it), lists the instance types a node group may launch (the node groups'
validation enforces it), each one's vCPUs, memory and max pods (training right-sizing's cap), and
each GPU type's CUDA compute capability.
The training image's HOROVOD_BUILD_CUDA_CC_LIST builds exactly those capabilities, the image's
torch wheels run each of them, and the cost rule prices exactly those types.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import hcl2
import yaml

from control.local.node_capacity import (
    INSTANCE_TABLE,
    TRAINING_INSTANCE_TYPES,
    instance_specs,
    smallest_node,
    training_node,
)
from control.manifests.config import ManifestConfig
from tests.support.addons_values import release_values

REPO = Path(__file__).resolve().parents[2]
NODE_GROUPS = REPO / "terraform" / "modules" / "node_groups"
EXAMPLE = REPO / "terraform" / "envs" / "example"
DOCKERFILE = REPO / "workloads" / "training" / "Dockerfile"
COST_RULES = REPO / "dashboards" / "rules" / "infrastructure.yml"

# The GPU architectures PyTorch's Linux x86 wheels carry, per CUDA variant (pytorch/pytorch
# RELEASE.md, "PyTorch CUDA Support Matrix", release 2.11 and later: Volta left the cu128 wheels).
TORCH_WHEEL_ARCHES = {
    "cu126": {"5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"},
    "cu128": {"7.5", "8.0", "8.6", "9.0", "10.0", "12.0"},
    "cu130": {"7.5", "8.0", "8.6", "9.0", "10.0", "12.0"},
}


def unq(value: Any) -> Any:
    """python-hcl2 8 keeps string quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def table() -> tuple[dict[str, str], list[str]]:
    """(GPU instance type → compute capability, CPU instance types) from the table Terraform reads."""
    loaded = json.loads((NODE_GROUPS / "instance_types.json").read_text())
    return {t: spec["compute_capability"] for t, spec in loaded["gpu"].items()}, list(loaded["cpu"])


def test_terraform_reads_the_table_that_the_control_plane_reads() -> None:
    with (NODE_GROUPS / "instance_types.tf").open() as handle:
        merged = {k: v for block in hcl2.load(handle)["locals"] for k, v in block.items()}
    assert 'jsondecode(file("${path.module}/instance_types.json"))' in str(merged["instance_table"])
    assert INSTANCE_TABLE == NODE_GROUPS / "instance_types.json"
    for name, spec in instance_specs().items():
        assert {"vcpus", "memory_mib", "max_pods"} <= set(spec), f"{name} lacks what right-sizing needs"
        assert all(isinstance(spec[f], int) and spec[f] > 0 for f in ("vcpus", "memory_mib", "max_pods")), name


def test_the_embedded_platform_bounds_training_by_the_example_training_pool() -> None:
    """Right-sizing's cap: the example gives the functions its gpu-training group's smallest node;
    the embedded platform computes it from the same table for the same instance types."""
    with (EXAMPLE / "variables.tf").open() as handle:
        variables = {unq(n): b for block in hcl2.load(handle)["variable"] for n, b in block.items()}
    training_pool = ManifestConfig().gpu_pool
    example_types = [unq(t) for t in variables["node_groups"]["default"][training_pool]["instance_types"]]
    assert list(TRAINING_INSTANCE_TYPES) == example_types
    main = (EXAMPLE / "main.tf").read_text()
    assert f'training_pool      = "{training_pool}"' in main
    assert "CONTROL_TRAINING_NODE_CAPACITY = jsonencode(module.node_groups.smallest_node[local.training_pool])" in main
    # platform.tftest.hcl asserts the same figures for Terraform's output.
    assert training_node() == smallest_node(TRAINING_INSTANCE_TYPES, training_pool)
    assert training_node() == {
        "vcpus": 8,
        "memory_mib": 32768,
        "gpus": 1,
        "max_pods": 58,
        # aws-node, kube-proxy, ebs-csi-node, node-exporter on every node; the device plugin and DCGM on GPUs
        "daemonset_cpu_millicores": 25 + 100 + 30 + 10 + 10 + 100,
        "daemonset_memory_mib": 120 + 32 + 64 + 256,
    }


def test_the_daemonsets_the_addons_deploy_request_what_right_sizing_subtracts() -> None:
    """The Helm releases' DaemonSets take their requests and node selector from the table (their
    values evaluated by the terraform binary): a recommendation at the cap still schedules."""
    daemonsets = json.loads(INSTANCE_TABLE.read_text())["daemonsets"]
    values = release_values()
    deployed = {
        "prometheus-node-exporter": values["kube_prometheus_stack"]["prometheus-node-exporter"],
        "nvidia-device-plugin": values["nvidia_device_plugin"],
        "dcgm-exporter": values["dcgm_exporter"],
    }
    for name, release in deployed.items():
        table = daemonsets[name]
        assert release["resources"] == {
            "requests": {"cpu": f"{table['cpu_millicores']}m", "memory": f"{table['memory_mib']}Mi"}
        }, name
        assert release.get("nodeSelector", {}).get("node.kubernetes.io/pool") == table["pool"], name
    assert {n for n, d in daemonsets.items() if d["set_by"].startswith("terraform/addons")} == set(deployed)
    assert all(d["set_by"].startswith(("terraform/addons", "EKS add-on")) for d in daemonsets.values())


def allowed() -> set[str]:
    gpus, cpus = table()
    return set(gpus) | set(cpus)


def launched_by_the_example() -> set[str]:
    """The instance types of the example environment's node groups (its default and its tfvars)."""
    with (EXAMPLE / "variables.tf").open() as handle:
        variables = {unq(n): b for block in hcl2.load(handle)["variable"] for n, b in block.items()}
    groups = [variables["node_groups"]["default"]]
    with (EXAMPLE / "example.tfvars").open() as handle:
        tfvars = hcl2.load(handle)
    if "node_groups" in tfvars:
        groups.append(tfvars["node_groups"])
    return {unq(t) for g in groups for group in g.values() for t in group["instance_types"]}


def dockerfile_arg(name: str) -> str:
    match = re.search(rf"^ARG {name}=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert match, f"{DOCKERFILE.name} has no ARG {name}=..."
    return match.group(1)


def built_capabilities() -> set[str]:
    """HOROVOD_BUILD_CUDA_CC_LIST (75,80,...) as compute capabilities (7.5, 8.0, ...)."""
    return {f"{cc[:-1]}.{cc[-1]}" for cc in dockerfile_arg("HOROVOD_BUILD_CUDA_CC_LIST").split(",")}


def priced() -> dict[str, float]:
    rules = [r for g in yaml.safe_load(COST_RULES.read_text())["groups"] for r in g["rules"]]
    prices = {}
    for rule in rules:
        if rule.get("record") == "mlcp:instance_price_usd_per_hour":
            instance_type = rule["labels"]["instance_type"]
            assert instance_type not in prices, f"{instance_type} is priced twice"
            prices[instance_type] = float(re.fullmatch(r"vector\(([0-9.]+)\)", rule["expr"]).group(1))  # type: ignore[union-attr]
    return prices


def test_the_node_groups_validation_enforces_the_table() -> None:
    text = (NODE_GROUPS / "variables.tf").read_text()
    assert "contains(local.allowed_instance_types, t)" in text
    assert launched_by_the_example() - allowed() == set(), "the example's node groups use types outside the table"


def test_every_gpu_node_can_run_the_horovod_build_and_the_build_names_no_other() -> None:
    gpus, _ = table()
    needed = set(gpus.values())
    assert needed - built_capabilities() == set(), "GPUs the node groups launch but the image is not built for"
    assert built_capabilities() - needed == set(), "compute capabilities built for GPUs no node group launches"


def test_the_image_torch_wheels_run_on_every_gpu_node() -> None:
    variant = dockerfile_arg("TORCH_CUDA")
    arches = TORCH_WHEEL_ARCHES[variant]
    gpus, _ = table()

    def runs(cc: str) -> bool:
        # A cubin runs on its own architecture and on later minors of the same major (8.6 on 8.9).
        major, minor = cc.split(".")
        return any(a.split(".")[0] == major and int(a.split(".")[1]) <= int(minor) for a in arches)

    assert {t: cc for t, cc in gpus.items() if not runs(cc)} == {}, f"torch {variant} wheels have no kernels for them"


def test_the_cost_rule_prices_exactly_the_instance_types_terraform_can_launch() -> None:
    prices = priced()
    assert allowed() - set(prices) == set(), "launchable but unpriced (the cost panel would show nothing)"
    assert set(prices) - allowed() == set(), "priced but no node group may launch them"
    assert all(price > 0 for price in prices.values())
