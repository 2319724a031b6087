"""The training pool's node, for the embedded platform: from the table Terraform reads.

terraform/modules/node_groups/instance_types.json lists every instance type a node group may
launch with its vCPUs, memory, GPUs and max pods; the node_groups module's `smallest_node`
output takes, per group, the least of each over the group's types, adds what the DaemonSets on the
group's nodes request (the table's `daemonsets`, by pool), and the example environment
gives the training pool's to the functions (CONTROL_TRAINING_NODE_CAPACITY). The embedded
platform renders for the same pool: the example's gpu-training instance types
(tests/contract/test_instance_types.py keeps the two lists equal).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from control.local.provision import REPO
from control.manifests.config import ManifestConfig

INSTANCE_TABLE = REPO / "terraform" / "modules" / "node_groups" / "instance_types.json"
TRAINING_INSTANCE_TYPES = ("g5.2xlarge", "g5.12xlarge")  # terraform/envs/example, gpu-training
FIELDS = ("vcpus", "memory_mib", "gpus", "max_pods")


def instance_specs(table: Path = INSTANCE_TABLE) -> dict[str, dict[str, int]]:
    loaded = json.loads(table.read_text())
    return {name: spec for kind in ("gpu", "cpu") for name, spec in loaded[kind].items()}


def smallest_node(instance_types: Sequence[str], pool: str, table: Path = INSTANCE_TABLE) -> dict[str, int]:
    """What Terraform's `smallest_node` gives for a group of these types labelled with this pool:
    the least of each figure over the types, and what the DaemonSets on its nodes request."""
    specs = instance_specs(table)
    node = {name: min(int(specs[t].get(name, 0)) for t in instance_types) for name in FIELDS}
    daemonsets = [d for d in json.loads(table.read_text())["daemonsets"].values() if d["pool"] in (None, pool)]
    node["daemonset_cpu_millicores"] = sum(d["cpu_millicores"] for d in daemonsets)
    node["daemonset_memory_mib"] = sum(d["memory_mib"] for d in daemonsets)
    return node


def training_node(table: Path = INSTANCE_TABLE) -> dict[str, int]:
    """The training pool's smallest node, as the example environment gives it to the functions."""
    return smallest_node(TRAINING_INSTANCE_TYPES, ManifestConfig().gpu_pool, table)
