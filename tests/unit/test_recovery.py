"""The restore's rules, on plain items: version gaps, history that does not explain a version,
incomplete lineage, artifacts, the rebuilt deployment status, and the stated objectives."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from control.domain.recovery import (
    RPO_TARGET,
    RTO_TARGET,
    ArtifactRef,
    ProblemKind,
    check_artifact,
    for_rebuilt_cluster,
    last_known_good,
    verify_registry,
)
from control.domain.rollout import Phase, RolloutStatus

REPO = Path(__file__).resolve().parents[2]
SHA = "a" * 64
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def version(n: int, status: str = "approved") -> dict:
    lineage = {
        "dataset_uri": "s3://d/datasets/m/v1/data.csv",
        "dataset_etag": "e",
        "dataset_version_id": "",
        "training_run_id": f"run-{n}",
        "execution_arn": "arn",
        "hyperparameters": {},
        "metrics": {},
        "artifact_uri": f"s3://a/models/m/runs/run-{n}/model.pt",
        "artifact_sha256": SHA,
        "code_version": "abc",
    }
    return {
        "pk": "MODEL#m",
        "sk": f"VERSION#{n:06d}",
        "model_name": "m",
        "version": n,
        "status": status,
        "lineage": lineage,
    }


def history(n: int, at: str, action: str, **details) -> dict:
    return {
        "pk": "MODEL#m",
        "sk": f"HISTORY#{at}#{n}{action}",
        "model_name": "m",
        "at": at,
        "action": action,
        "version": n,
        "details": details,
    }


def registry(versions: int = 2) -> list[dict]:
    items: list[dict] = [{"pk": "MODEL#m", "sk": "META", "latest_version": versions, "aliases": {"production": 1}}]
    for n in range(1, versions + 1):
        items += [
            version(n),
            {"pk": "MODEL#m", "sk": f"RUNREF#run-{n}", "version": n},
            history(n, f"2026-01-0{n}T00:00:00Z", "registered", artifact_sha256=SHA),
            history(n, f"2026-01-0{n}T01:00:00Z", "status-approved", **{"from": "registered", "to": "approved"}),
        ]
    items.append(history(1, "2026-01-05T00:00:00Z", "alias-set", alias="production"))
    return items


def kinds(items: list[dict]) -> list[str]:
    return [problem.kind for problem in verify_registry(items)]


def test_a_complete_registry_has_no_problem():
    assert verify_registry(registry()) == []


def test_a_missing_version_is_a_version_gap():
    items = [i for i in registry(3) if i["sk"] != "VERSION#000002"]
    assert ProblemKind.VERSION_GAP in kinds(items)


def test_each_missing_history_entry_is_a_history_gap():
    for action in ("registered", "status-approved", "alias-set"):
        items = [i for i in registry() if not (i.get("action") == action and i["version"] == 1)]
        assert kinds(items) == [ProblemKind.HISTORY_GAP], action


def test_incomplete_lineage_and_a_missing_run_reference_are_lineage_problems():
    items = registry()
    items[1]["lineage"]["code_version"] = ""
    assert kinds(items) == [ProblemKind.LINEAGE]
    assert kinds([i for i in registry() if i["sk"] != "RUNREF#run-2"]) == [ProblemKind.LINEAGE]


def test_artifacts_must_exist_with_the_lineages_sha256():
    ref = ArtifactRef("m", 1, "s3://a/k", SHA)
    assert check_artifact(ref, SHA) is None
    assert check_artifact(ref, None).kind == ProblemKind.MISSING_ARTIFACT
    assert check_artifact(ref, "b" * 64).kind == ProblemKind.SHA256_MISMATCH


def status(**changes) -> RolloutStatus:
    base = RolloutStatus("d", "m", 3, 2, Phase.BAKING, NOW, NOW, revision=7, active_version=3, stable_version=2)
    return RolloutStatus.from_dict(base.to_dict() | changes)


def test_the_last_known_good_is_the_stable_version_or_a_completed_rollouts_active_one():
    assert last_known_good(status()).version == 2
    assert last_known_good(status(phase="COMPLETED", stable_version=None)).version == 3
    assert last_known_good(status(phase="FAILED", stable_version=None, previous_version=None)) is None


def test_a_rebuilt_cluster_serves_nothing_and_accepts_the_next_rollout():
    rebuilt = for_rebuilt_cluster(status(), NOW)
    assert not rebuilt.phase.in_progress and rebuilt.revision == 8
    assert (rebuilt.active_version, rebuilt.stable_version, rebuilt.preview_version) == (None, None, None)
    assert "v2" in rebuilt.reason


def test_the_objectives_are_the_ones_terraform_readme_states():
    text = (REPO / "terraform" / "README.md").read_text()
    assert re.search(r"RPO ≤ 15 minutes", text) and RPO_TARGET.total_seconds() == 15 * 60
    assert re.search(r"RTO ≤ 4 hours", text) and RTO_TARGET.total_seconds() == 4 * 3600
