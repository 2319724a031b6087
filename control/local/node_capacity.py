"""The training pool's node, for the embedded platform: from the table Terraform reads.

terraform/modules/node_groups/instance_types.json lists every instance type a node group may
launch with its vCPUs, memory, GPUs and max pods; the node_groups module's `smallest_node`
output takes, per group, the least of each over the group's types, and the example environment
gives the training pool's to the functions (CONTROL_TRAINING_NODE_CAPACITY). The embedded
platform renders for the same pool: the example's gpu-training instance types
(tests/contract/test_instance_types.py keeps the two lists equal).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from control.local.provision import REPO

INSTANCE_TABLE = REPO / "terraform" / "modules" / "node_groups" / "instance_types.json"
TRAINING_INSTANCE_TYPES = ("g5.2xlarge", "g5.12xlarge")  # terraform/envs/example, gpu-training
FIELDS = ("vcpus", "memory_mib", "gpus", "max_pods")


def instance_specs(table: Path = INSTANCE_TABLE) -> dict[str, dict[str, int]]:
    loaded = json.loads(table.read_text())
    return {name: spec for kind in ("gpu", "cpu") for name, spec in loaded[kind].items()}


def smallest_node(instance_types: Sequence[str], table: Path = INSTANCE_TABLE) -> dict[str, int]:
    """What Terraform's `smallest_node` gives for a group of these types."""
    specs = instance_specs(table)
    return {name: min(int(specs[t].get(name, 0)) for t in instance_types) for name in FIELDS}
