"""Right-sizing of training workers, computed as the Vertical Pod Autoscaler's recommender does.

VPA cannot target an MPIJob (no /scale subresource, mpi-operator#336), so the platform measures
each run's workers itself and recommends the next run's requests with VPA's own rules
(kubernetes/autoscaler, vertical-pod-autoscaler/pkg/recommender, logic/recommender.go and
model/aggregations_config.go, defaults of its flags):

- CPU: the 90th percentile of the CPU usage samples (`--target-cpu-percentile=0.9`);
- memory: the peak working set (VPA takes the 90th percentile of the peaks of its pods'
  aggregation intervals; a training job fails whole when one rank is OOM-killed, so here the
  highest peak of any worker counts);
- plus a 15 % safety margin (`--recommendation-margin-fraction=0.15`), and at least 25 millicores
  and 250 MiB (`--pod-recommendation-min-cpu-millicores`, `--pod-recommendation-min-memory-mb`),
  raised to what a training request may be (WorkerResources' lower limits);
- bounded by what one node of the training pool can give (VPA's maxAllowed): the node's
  allocatable as the EKS AMI computes it from the instance type. A capped value says so, with
  the cap and the value it would have been.

Workers of one MPIJob share one pod template: the recommendation is the largest worker's, so
that every worker fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from control.domain.training import WorkerResources
from control.errors import InvalidInput

TARGET_CPU_PERCENTILE = 0.9
SAFETY_MARGIN = 0.15
MIN_CPU_MILLICORES = max(25, WorkerResources.LIMITS["cpu_millicores"][0])
MIN_MEMORY_MIB = max(250, WorkerResources.LIMITS["memory_mib"][0])
MIB = 1024 * 1024

# The EKS AMI's kubelet reservations (amazon-eks-ami, nodeadm's kubelet config and the AL2
# bootstrap.sh before it): memory 255 MiB + 11 MiB per pod the node may run, CPU 6 % of the first
# core, 1 % of the second, 0.5 % of the third and fourth and 0.25 % of each further core; and the
# kubelet's hard eviction threshold, memory.available < 100 MiB.
EVICTION_HARD_MEMORY_MIB = 100


@dataclass(frozen=True)
class Allocatable:
    cpu_millicores: int
    memory_mib: int

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class NodeCapacity:
    """A node of the training pool: the smallest of the instance types the pool may launch
    (terraform/modules/node_groups/instance_types.json, the table Terraform reads)."""

    vcpus: int
    memory_mib: int
    max_pods: int
    gpus: int = 0
    daemonset_cpu_millicores: int = 0  # what the DaemonSets on the node request
    daemonset_memory_mib: int = 0

    OPTIONAL = ("gpus", "daemonset_cpu_millicores", "daemonset_memory_mib")

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> NodeCapacity:
        values = {}
        for name in ("vcpus", "memory_mib", "max_pods", *cls.OPTIONAL):
            optional = name in cls.OPTIONAL
            value = raw.get(name, 0 if optional else None)
            if isinstance(value, bool) or not isinstance(value, int) or value < (0 if optional else 1):
                kind = "a non-negative" if optional else "a positive"
                raise InvalidInput(f"node capacity {name} must be {kind} integer; got {value!r}", field=name)
            values[name] = value
        return cls(**values)

    def allocatable(self) -> Allocatable:
        """What a pod can be given on the node: its capacity less the kubelet's reservations (the EKS
        AMI's formula) and less what the node's DaemonSets request."""
        reserved_cpu = 0.0
        for core in range(self.vcpus):
            reserved_cpu += 60 if core == 0 else 10 if core == 1 else 5 if core < 4 else 2.5
        reserved_memory = 255 + 11 * self.max_pods + EVICTION_HARD_MEMORY_MIB
        return Allocatable(
            self.vcpus * 1000 - math.ceil(reserved_cpu) - self.daemonset_cpu_millicores,
            self.memory_mib - reserved_memory - self.daemonset_memory_mib,
        )


@dataclass(frozen=True)
class WorkerUsage:
    """What one worker (one rank) used during a run."""

    worker: int
    cpu_p90_cores: float  # 90th percentile of its CPU usage samples
    cpu_max_cores: float
    memory_peak_bytes: int  # highest working set (RSS locally)
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "worker": self.worker,
            "cpu_p90_cores": round(self.cpu_p90_cores, 4),
            "cpu_max_cores": round(self.cpu_max_cores, 4),
            "memory_peak_mib": round(self.memory_peak_bytes / MIB, 1),
            "samples": self.samples,
        }


@dataclass(frozen=True)
class Recommendation:
    cpu_millicores: int
    memory_mib: int
    uncapped_cpu_millicores: int
    uncapped_memory_mib: int
    bound: Allocatable

    @property
    def capped(self) -> list[str]:
        return [
            name
            for name, value, uncapped in (
                ("cpu_millicores", self.cpu_millicores, self.uncapped_cpu_millicores),
                ("memory_mib", self.memory_mib, self.uncapped_memory_mib),
            )
            if value < uncapped
        ]

    def resources(self, scratch_gib: int = WorkerResources.scratch_gib) -> WorkerResources:
        return WorkerResources(cpu_millicores=self.cpu_millicores, memory_mib=self.memory_mib, scratch_gib=scratch_gib)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cpu_millicores": self.cpu_millicores,
            "memory_mib": self.memory_mib,
            "uncapped": {"cpu_millicores": self.uncapped_cpu_millicores, "memory_mib": self.uncapped_memory_mib},
            "capped": self.capped,
            "cap": self.bound.to_dict(),
            "rule": (
                f"p{round(TARGET_CPU_PERCENTILE * 100)} CPU and peak memory of the largest worker, "
                f"+{round(SAFETY_MARGIN * 100)} %, within one training node's allocatable"
            ),
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Recommendation:
        uncapped, cap = raw.get("uncapped") or {}, raw.get("cap") or {}
        return cls(
            cpu_millicores=int(raw["cpu_millicores"]),
            memory_mib=int(raw["memory_mib"]),
            uncapped_cpu_millicores=int(uncapped.get("cpu_millicores", raw["cpu_millicores"])),
            uncapped_memory_mib=int(uncapped.get("memory_mib", raw["memory_mib"])),
            bound=Allocatable(int(cap.get("cpu_millicores", 0)), int(cap.get("memory_mib", 0))),
        )


def percentile(values: Sequence[float], fraction: float) -> float:
    """The smallest sample with at least `fraction` of the samples at or below it (0.0 when none)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def recommend(usage: Sequence[WorkerUsage], bound: Allocatable) -> Recommendation:
    """The next run's worker requests from this run's workers' use; ValueError with no usage."""
    if not usage:
        raise ValueError("no worker usage to recommend from")
    cpu = max(worker.cpu_p90_cores for worker in usage)
    memory = max(worker.memory_peak_bytes for worker in usage)
    wanted_cpu = max(MIN_CPU_MILLICORES, math.ceil(cpu * 1000 * (1 + SAFETY_MARGIN)))
    wanted_memory = max(MIN_MEMORY_MIB, math.ceil(memory * (1 + SAFETY_MARGIN) / MIB))
    return Recommendation(
        cpu_millicores=min(wanted_cpu, bound.cpu_millicores),
        memory_mib=min(wanted_memory, bound.memory_mib),
        uncapped_cpu_millicores=wanted_cpu,
        uncapped_memory_mib=wanted_memory,
        bound=bound,
    )
