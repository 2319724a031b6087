"""Retention of the checkpoint file system: which staged datasets and checkpoints may go. Pure.

Per model, the newest `keep_last` staged dataset revisions and the newest `keep_last` runs'
checkpoints stay; so does anything a registered model version's lineage points to (its dataset
version, its training run) and anything a run that has not finished is using. Temporary folders
that a crashed staging left behind go once they are older than `leftover_seconds`.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from control.domain.names import check_name
from control.errors import InvalidInput

MAX_KEEP_LAST = 1000


class EntryKind(enum.StrEnum):
    DATASET = "dataset"  # datasets/<model>/<dataset-version>/<revision>
    CHECKPOINT = "checkpoint"  # <run-id>
    LEFTOVER = "leftover"  # a staging's temporary folder


@dataclass(frozen=True)
class EfsEntry:
    path: str  # relative to the file system's root
    kind: EntryKind
    model: str  # "" when not known (a checkpoint of a run the registry does not know)
    name: str  # the dataset version, or the run id
    modified: float  # seconds since the epoch


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int = 3
    leftover_seconds: float = 3600.0

    @classmethod
    def parse(cls, keep_last: object) -> RetentionPolicy:
        if keep_last is None:
            return cls()
        if isinstance(keep_last, bool) or not isinstance(keep_last, int) or not 1 <= keep_last <= MAX_KEEP_LAST:
            raise InvalidInput(f"keep_last must be an integer between 1 and {MAX_KEEP_LAST}", field="keep_last")
        return cls(keep_last=keep_last)


@dataclass(frozen=True)
class RetentionRequest:
    """`POST /retention`, parsed: a dry run unless `dry_run` is false; `model` None: every model."""

    policy: RetentionPolicy = field(default_factory=RetentionPolicy)
    dry_run: bool = True
    model: str | None = None

    FIELDS = ("keep_last", "dry_run", "model")

    @classmethod
    def parse(cls, body: Any) -> RetentionRequest:
        body = {} if body is None else body
        if not isinstance(body, Mapping):
            raise InvalidInput("the request body must be a JSON object", field="body")
        unknown = sorted(set(body) - set(cls.FIELDS))
        if unknown:
            raise InvalidInput(f"unknown fields: {', '.join(unknown)}", field=unknown[0])
        dry_run = body.get("dry_run", True)
        if not isinstance(dry_run, bool):
            raise InvalidInput("dry_run must be true or false", field="dry_run")
        model = body.get("model")
        if model is not None:
            check_name(model, "model")
        return cls(RetentionPolicy.parse(body.get("keep_last")), dry_run, model)


@dataclass(frozen=True)
class Protected:
    """What must stay whatever its age: from the registry's lineage and the unfinished runs."""

    dataset_versions: frozenset[tuple[str, str]] = frozenset()  # (model, dataset version)
    runs: frozenset[str] = frozenset()
    folders: frozenset[str] = frozenset()  # staged folders that unfinished runs read


@dataclass(frozen=True)
class Decision:
    entry: EfsEntry
    remove: bool
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {
            "path": self.entry.path,
            "kind": self.entry.kind.value,
            "model": self.entry.model,
            "name": self.entry.name,
            "remove": self.remove,
            "reason": self.reason,
        }


def plan_retention(
    entries: Iterable[EfsEntry], policy: RetentionPolicy, protected: Protected, now: float
) -> list[Decision]:
    """One decision per entry, in a stable order (path)."""
    decisions: list[Decision] = []
    groups: dict[tuple[EntryKind, str], list[EfsEntry]] = defaultdict(list)
    for entry in entries:
        if entry.kind == EntryKind.LEFTOVER:
            old = now - entry.modified > policy.leftover_seconds
            reason = "an interrupted staging's temporary folder" if old else "a staging may still be writing it"
            decisions.append(Decision(entry, old, reason))
        elif not entry.model:
            decisions.append(Decision(entry, False, "no run in the registry owns it"))
        else:
            groups[(entry.kind, entry.model)].append(entry)
    for (kind, _model), members in groups.items():
        decisions.extend(_decide_group(kind, members, policy, protected))
    return sorted(decisions, key=lambda d: d.entry.path)


def _decide_group(
    kind: EntryKind, members: Sequence[EfsEntry], policy: RetentionPolicy, protected: Protected
) -> list[Decision]:
    newest_first = sorted(members, key=lambda e: (e.modified, e.path), reverse=True)
    what = "dataset revisions" if kind == EntryKind.DATASET else "runs' checkpoints"
    decisions = []
    for rank, entry in enumerate(newest_first):
        if rank < policy.keep_last:
            decisions.append(Decision(entry, False, f"among the model's {policy.keep_last} newest {what}"))
        elif kind == EntryKind.DATASET and (entry.model, entry.name) in protected.dataset_versions:
            decisions.append(Decision(entry, False, "a registered model version was trained on it"))
        elif kind == EntryKind.DATASET and entry.path in protected.folders:
            decisions.append(Decision(entry, False, "an unfinished run reads it"))
        elif kind == EntryKind.CHECKPOINT and entry.name in protected.runs:
            decisions.append(Decision(entry, False, "a registered model version or an unfinished run uses it"))
        else:
            decisions.append(Decision(entry, True, f"older than the model's {policy.keep_last} newest {what}"))
    return decisions


@dataclass(frozen=True)
class RetentionApplied:
    """What a retention pass removed (or, in a dry run, would remove) and what it kept, each with its reason."""

    dry_run: bool
    keep_last: int
    model: str | None
    removed: Sequence[Decision]
    kept: Sequence[Decision]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "keep_last": self.keep_last,
            "model": self.model,
            ("would_remove" if self.dry_run else "removed"): [d.to_dict() for d in self.removed],
            "kept": [d.to_dict() for d in self.kept],
        }
