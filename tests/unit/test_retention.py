"""Which staged datasets and checkpoints retention removes, and why (pure rules)."""

from __future__ import annotations

import pytest

from control.domain.retention import EfsEntry, EntryKind, Protected, RetentionPolicy, plan_retention
from control.errors import InvalidInput

NOW = 1_000_000.0


def dataset(model: str, version: str, age: float) -> EfsEntry:
    return EfsEntry(f"datasets/{model}/{version}/rev", EntryKind.DATASET, model, version, NOW - age)


def checkpoint(model: str, run: str, age: float) -> EfsEntry:
    return EfsEntry(run, EntryKind.CHECKPOINT, model, run, NOW - age)


def removed(decisions) -> set[str]:
    return {d.entry.path for d in decisions if d.remove}


def test_keeps_the_newest_n_per_model_and_removes_the_rest() -> None:
    entries = [dataset("iris", f"v{i}", age=100 - i) for i in range(5)] + [dataset("churn", "v0", age=500)]
    decisions = plan_retention(entries, RetentionPolicy(keep_last=2), Protected(), NOW)
    assert removed(decisions) == {"datasets/iris/v0/rev", "datasets/iris/v1/rev", "datasets/iris/v2/rev"}
    reasons = {d.entry.path: d.reason for d in decisions}
    assert "2 newest" in reasons["datasets/iris/v4/rev"] and "older than" in reasons["datasets/iris/v0/rev"]


def test_what_a_registered_version_or_an_unfinished_run_uses_stays() -> None:
    entries = [
        dataset("iris", "v0", age=300),
        dataset("iris", "v1", age=200),
        dataset("iris", "v2", age=100),
        checkpoint("iris", "run-a", age=300),
        checkpoint("iris", "run-b", age=200),
        checkpoint("iris", "run-c", age=100),
    ]
    protected = Protected(dataset_versions=frozenset({("iris", "v0")}), runs=frozenset({"run-a"}))
    decisions = plan_retention(entries, RetentionPolicy(keep_last=1), protected, NOW)
    assert removed(decisions) == {"datasets/iris/v1/rev", "run-b"}
    assert "registered" in next(d.reason for d in decisions if d.entry.path == "datasets/iris/v0/rev")


def test_an_interrupted_stagings_temporary_folder_goes_once_it_is_old() -> None:
    old = EfsEntry("datasets/iris/v1/.staging-rev-1", EntryKind.LEFTOVER, "iris", "v1", NOW - 7200)
    fresh = EfsEntry("datasets/iris/v1/.staging-rev-2", EntryKind.LEFTOVER, "iris", "v1", NOW - 10)
    decisions = plan_retention([old, fresh], RetentionPolicy(), Protected(), NOW)
    assert removed(decisions) == {old.path}


def test_a_checkpoint_no_known_run_owns_is_left_alone() -> None:
    stray = checkpoint("", "someone-elses", age=10**6)
    assert removed(plan_retention([stray], RetentionPolicy(keep_last=1), Protected(), NOW)) == set()


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", 1001])
def test_keep_last_must_be_a_sensible_integer(bad: object) -> None:
    with pytest.raises(InvalidInput, match="keep_last"):
        RetentionPolicy.parse(bad)
