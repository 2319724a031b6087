"""Registry use cases: browse models and versions, approve or reject, read the history."""

from __future__ import annotations

from control.domain.registry import ModelSummary, ModelVersion, iso, serving_at
from control.domain.registry_requests import HistoryQuery, ModelHistory, ProductionAt, VersionDecision
from control.ports import Platform


def list_models(platform: Platform) -> list[ModelSummary]:
    return platform.registry.list_models()


def list_versions(platform: Platform, model_name: str) -> list[ModelVersion]:
    """The model's versions, oldest first; NotFound for an unknown model."""
    return platform.registry.list_versions(model_name)


def get_version(platform: Platform, model_name: str, version: int) -> ModelVersion:
    return platform.registry.get_version(model_name, version)


def decide(platform: Platform, decision: VersionDecision, actor: str) -> ModelVersion:
    """Approve or reject a version, with a reason that goes into the history."""
    return platform.registry.set_status(
        decision.model_name,
        decision.version,
        decision.decision.target,
        actor=actor,
        reason=decision.reason or f"{decision.decision.target} by {actor}",
        now=platform.clock(),
    )


def history(platform: Platform, query: HistoryQuery) -> ModelHistory:
    """Every change to the model; with `at`, also what served production then."""
    platform.registry.aliases(query.model_name)  # NotFound for an unknown model
    entries = platform.registry.history(query.model_name)
    if query.at is None:
        return ModelHistory(query.model_name, entries)
    moment = iso(query.at)
    return ModelHistory(query.model_name, entries, ProductionAt(moment, serving_at(entries, moment)))
