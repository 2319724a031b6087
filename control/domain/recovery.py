"""Disaster recovery rules: what a restored registry must satisfy, and the objectives it is held to.

Pure values: the table's items come in as plain dicts (pk, sk and the attributes), artifacts as
their computed sha256. The drill runs these checks on the restored copy; a problem names the
model, the version and what is wrong, so a failed drill says what the backup lost.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from control.domain.registry import Lineage, VersionStatus
from control.domain.rollout import Phase, RolloutStatus
from control.errors import InvalidInput

# The stated objectives (terraform/README.md, "Disaster recovery"); a contract test keeps them equal.
RPO_TARGET = timedelta(minutes=15)
RTO_TARGET = timedelta(hours=4)

LINEAGE_REQUIRED = ("dataset_uri", "training_run_id", "artifact_uri", "artifact_sha256", "code_version")


class ProblemKind(enum.StrEnum):
    VERSION_GAP = "version-gap"
    HISTORY_GAP = "history-gap"
    LINEAGE = "lineage"
    MISSING_ARTIFACT = "missing-artifact"
    SHA256_MISMATCH = "sha256-mismatch"
    DEPLOYMENT = "deployment"
    NOT_RESTORED = "not-restored"


@dataclass(frozen=True)
class Problem:
    kind: ProblemKind
    where: str  # model and version, deployment, or item key
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.where}: {self.detail}"


@dataclass(frozen=True)
class ArtifactRef:
    """One version's artifact, as its lineage names it."""

    model: str
    version: int
    uri: str
    sha256: str

    @property
    def where(self) -> str:
        return f"{self.model} v{self.version}"


@dataclass
class _Model:
    meta: Mapping[str, Any] | None = None
    versions: dict[int, Mapping[str, Any]] = field(default_factory=dict)
    history: list[Mapping[str, Any]] = field(default_factory=list)
    run_refs: dict[str, int] = field(default_factory=dict)


def _models(items: Iterable[Mapping[str, Any]]) -> dict[str, _Model]:
    models: dict[str, _Model] = defaultdict(_Model)
    for item in items:
        pk, sk = str(item["pk"]), str(item["sk"])
        if not pk.startswith("MODEL#"):
            continue
        model = models[pk.removeprefix("MODEL#")]
        if sk == "META":
            model.meta = item
        elif sk.startswith("VERSION#"):
            model.versions[int(item["version"])] = item
        elif sk.startswith("HISTORY#"):
            model.history.append(item)
        elif sk.startswith("RUNREF#"):
            model.run_refs[sk.removeprefix("RUNREF#")] = int(item["version"])
    for model in models.values():
        model.history.sort(key=lambda entry: str(entry["sk"]))
    return models


def verify_registry(items: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """Every model's versions are 1..latest with complete lineage, and its history explains them:
    one `registered` entry per version (with the lineage's sha256), a status chain from
    `registered` to the recorded status, and the last `alias-set` of each alias naming the
    version the alias holds. Deployments name models and versions that exist."""
    models = _models(items)
    problems: list[Problem] = []
    for name, model in sorted(models.items()):
        problems.extend(_check_model(name, model))
    problems.extend(_check_deployments(items, models))
    return problems


def _check_model(name: str, model: _Model) -> list[Problem]:
    if model.meta is None:
        return [Problem(ProblemKind.VERSION_GAP, name, "versions without the model's META item")]
    problems: list[Problem] = []
    latest = int(model.meta.get("latest_version", 0))
    missing = sorted(set(range(1, latest + 1)) - set(model.versions))
    extra = sorted(set(model.versions) - set(range(1, latest + 1)))
    if missing:
        problems.append(Problem(ProblemKind.VERSION_GAP, name, f"versions {missing} missing (latest is v{latest})"))
    if extra:
        problems.append(Problem(ProblemKind.VERSION_GAP, name, f"versions {extra} beyond the counter v{latest}"))
    for number, item in sorted(model.versions.items()):
        problems.extend(_check_version(name, number, item, model))
    problems.extend(_check_aliases(name, model))
    return problems


def _check_version(name: str, number: int, item: Mapping[str, Any], model: _Model) -> list[Problem]:
    where = f"{name} v{number}"
    problems: list[Problem] = []
    raw = item.get("lineage") or {}
    empty = [key for key in LINEAGE_REQUIRED if not raw.get(key)]
    if empty:
        problems.append(Problem(ProblemKind.LINEAGE, where, f"lineage lacks {', '.join(empty)}"))
        return problems
    try:
        lineage = Lineage(**raw)
    except (InvalidInput, TypeError) as error:
        return [Problem(ProblemKind.LINEAGE, where, f"lineage is malformed: {error}")]
    if model.run_refs.get(lineage.training_run_id) != number:
        problems.append(
            Problem(ProblemKind.LINEAGE, where, f"no run reference from {lineage.training_run_id} to this version")
        )
    entries = [entry for entry in model.history if entry.get("version") == number]
    registered = [entry for entry in entries if entry.get("action") == "registered"]
    if len(registered) != 1:
        problems.append(Problem(ProblemKind.HISTORY_GAP, where, f"{len(registered)} 'registered' entries, not 1"))
    elif (registered[0].get("details") or {}).get("artifact_sha256") != lineage.artifact_sha256:
        problems.append(Problem(ProblemKind.HISTORY_GAP, where, "the 'registered' entry names another sha256"))
    status = VersionStatus.REGISTERED.value
    for entry in entries:
        action = str(entry.get("action", ""))
        if not action.startswith("status-"):
            continue
        details = entry.get("details") or {}
        if details.get("from") != status:
            problems.append(
                Problem(
                    ProblemKind.HISTORY_GAP,
                    where,
                    f"history goes {details.get('from')} → {details.get('to')} at {entry.get('at')}, "
                    f"but the previous entry left it {status}",
                )
            )
        status = str(details.get("to"))
    if status != item.get("status"):
        problems.append(
            Problem(ProblemKind.HISTORY_GAP, where, f"history ends at {status}, the version is {item.get('status')}")
        )
    return problems


def _check_aliases(name: str, model: _Model) -> list[Problem]:
    assert model.meta is not None
    problems: list[Problem] = []
    replayed: dict[str, int | None] = {}
    for entry in model.history:
        alias = (entry.get("details") or {}).get("alias")
        if entry.get("action") == "alias-set" and alias:
            replayed[alias] = entry.get("version")
        elif entry.get("action") == "alias-removed" and alias:
            replayed[alias] = None
    for alias, version in sorted((model.meta.get("aliases") or {}).items()):
        if replayed.get(alias) != int(version):
            problems.append(
                Problem(
                    ProblemKind.HISTORY_GAP,
                    name,
                    f"alias {alias} holds v{version}, the history last set it to {replayed.get(alias)}",
                )
            )
    return problems


def _check_deployments(items: Iterable[Mapping[str, Any]], models: Mapping[str, _Model]) -> list[Problem]:
    problems: list[Problem] = []
    for item in items:
        if not str(item["pk"]).startswith("DEPLOYMENT#"):
            continue
        where = str(item["pk"]).removeprefix("DEPLOYMENT#")
        try:
            status = RolloutStatus.from_dict(item["status"])
        except (InvalidInput, KeyError) as error:
            problems.append(Problem(ProblemKind.DEPLOYMENT, where, f"unreadable status: {error}"))
            continue
        model = models.get(status.model)
        named = {v for v in (status.target_version, status.active_version, status.stable_version) if v is not None}
        if model is None:
            problems.append(Problem(ProblemKind.DEPLOYMENT, where, f"serves {status.model}, which is not restored"))
        elif unknown := sorted(v for v in named if v not in model.versions):
            problems.append(Problem(ProblemKind.DEPLOYMENT, where, f"names {status.model} versions {unknown}"))
    return problems


def artifacts(items: Iterable[Mapping[str, Any]]) -> list[ArtifactRef]:
    """The artifact of every version, as its lineage names it."""
    refs = []
    for item in items:
        if str(item["pk"]).startswith("MODEL#") and str(item["sk"]).startswith("VERSION#"):
            lineage = item.get("lineage") or {}
            refs.append(
                ArtifactRef(
                    str(item["model_name"]),
                    int(item["version"]),
                    str(lineage.get("artifact_uri", "")),
                    str(lineage.get("artifact_sha256", "")),
                )
            )
    return sorted(refs, key=lambda ref: (ref.model, ref.version))


def check_artifact(ref: ArtifactRef, computed_sha256: str | None) -> Problem | None:
    """`computed_sha256` is None when the restored bucket has no such object."""
    if computed_sha256 is None:
        return Problem(ProblemKind.MISSING_ARTIFACT, ref.where, f"{ref.uri} is not in the restored bucket")
    if computed_sha256 != ref.sha256:
        return Problem(
            ProblemKind.SHA256_MISMATCH, ref.where, f"{ref.uri} has sha256 {computed_sha256}, lineage says {ref.sha256}"
        )
    return None


def compare_restored(backup: Sequence[Mapping[str, Any]], restored: Sequence[Mapping[str, Any]]) -> list[Problem]:
    """The restored table holds exactly the backup's items."""

    def keyed(items: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Mapping[str, Any]]:
        return {(str(item["pk"]), str(item["sk"])): item for item in items}

    expected, actual = keyed(backup), keyed(restored)
    problems = [
        Problem(ProblemKind.NOT_RESTORED, f"{pk} {sk}", "in the backup, not in the restored table")
        for pk, sk in sorted(expected.keys() - actual.keys())
    ]
    problems += [
        Problem(ProblemKind.NOT_RESTORED, f"{pk} {sk}", "differs from the backup")
        for (pk, sk), item in sorted(expected.items())
        if (pk, sk) in actual and actual[pk, sk] != item
    ]
    return problems


# -- redeploying into a rebuilt cluster -------------------------------------------------------------


@dataclass(frozen=True)
class Redeploy:
    deployment: str
    model: str
    version: int  # the last-known-good


def last_known_good(status: RolloutStatus) -> Redeploy | None:
    """What the deployment served last that was known good: the stable version, or (a completed
    rollout) the active one. None for a deployment that never had a good version."""
    version = status.stable_version
    if version is None and status.phase == Phase.COMPLETED:
        version = status.active_version
    return None if version is None else Redeploy(status.deployment, status.model, version)


def for_rebuilt_cluster(status: RolloutStatus, now: datetime) -> RolloutStatus:
    """The restored status of a deployment whose cluster is new and empty: nothing serves, no
    rollout is in progress, so the next rollout of the last-known-good starts from nothing."""
    good = last_known_good(status)
    return replace(
        status,
        phase=Phase.FAILED if good is None else Phase.ROLLED_BACK,
        phase_entered_at=now,
        revision=status.revision + 1,
        active_version=None,
        preview_version=None,
        stable_version=None,
        paused_from=None,
        intent=None,
        promotion=None,
        inconclusive_since=None,
        reason="restored into a rebuilt cluster"
        + ("" if good is None else f"; last-known-good v{good.version} to be redeployed"),
    )


# -- the measured objectives ----------------------------------------------------------------------


@dataclass(frozen=True)
class Objectives:
    """Measured recovery against the stated targets."""

    rto: timedelta  # disaster declared → first successful prediction on every redeployed deployment
    rpo: timedelta  # disaster declared − the backup's snapshot time
    lost_changes: int  # items in the lost source that the backup does not hold (when it is readable)

    @property
    def rto_met(self) -> bool:
        return self.rto <= RTO_TARGET

    @property
    def rpo_met(self) -> bool:
        return self.rpo <= RPO_TARGET


def lost_changes(backup: Sequence[Mapping[str, Any]], source_now: Sequence[Mapping[str, Any]]) -> int:
    """Items written or changed in the source after the backup was taken."""
    held = {(str(item["pk"]), str(item["sk"])): item for item in backup}
    return sum(1 for item in source_now if held.get((str(item["pk"]), str(item["sk"]))) != item)
