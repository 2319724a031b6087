"""The registry and training-run use cases, typed requests in and domain values out, against the
in-memory fakes (tests/fakes.py); the parsing of each request at the API's edge."""

from __future__ import annotations

from datetime import timedelta

import pytest

from control.domain.datasets import parse_s3_event
from control.domain.registry import Alias, VersionStatus, iso
from control.domain.registry_requests import Decision, HistoryQuery, VersionDecision, parse_version
from control.domain.retention import RetentionRequest
from control.domain.training import Hyperparameters, WorkerResources
from control.domain.training_runs import NotStarted, Skip, StartedRun, TrainingRunRequest
from control.errors import Conflict, InvalidInput, NotFound
from control.usecases import models, training
from tests.fakes import NOW, InMemoryObjects, InMemoryPipelines, InMemoryRegistry, in_memory_platform
from tests.support.lineage import lineage

CSV = b"f1,label\n0.1,0\n"


def test_approving_records_the_reason_and_an_empty_reason_names_the_actor() -> None:
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry)
    registry.register_version("churn", lineage("churn", "run-1"), actor="pipeline", now=NOW)
    registry.register_version("churn", lineage("churn", "run-2"), actor="pipeline", now=NOW)

    approved = models.decide(platform, VersionDecision("churn", 1, Decision.APPROVE, "passed review"), "alice")
    rejected = models.decide(platform, VersionDecision("churn", 2, Decision.REJECT), "bob")

    assert (approved.version, approved.status) == (1, VersionStatus.APPROVED)
    assert (rejected.version, rejected.status) == (2, VersionStatus.REJECTED)
    assert [(e.actor, e.action, e.reason) for e in registry.history("churn")][-2:] == [
        ("alice", "status-approved", "passed review"),
        ("bob", "status-rejected", "rejected by bob"),
    ]
    with pytest.raises(Conflict):  # a rejected version stays rejected
        models.decide(platform, VersionDecision("churn", 2, Decision.APPROVE), "alice")


def test_history_says_what_served_production_at_a_time_and_an_unknown_model_is_not_found() -> None:
    registry = InMemoryRegistry()
    platform = in_memory_platform(registry=registry)
    registry.register_version("churn", lineage("churn", "run-1"), actor="pipeline", now=NOW)
    later = NOW + timedelta(minutes=5)
    registry.set_alias("churn", Alias.PRODUCTION, 1, actor="alice", reason="", now=later)

    assert models.history(platform, HistoryQuery("churn")).production_at is None
    before = models.history(platform, HistoryQuery("churn", NOW + timedelta(minutes=1))).production_at
    after = models.history(platform, HistoryQuery("churn", later + timedelta(minutes=1))).production_at
    assert before is not None and after is not None
    assert (before.at, before.version) == (iso(NOW + timedelta(minutes=1)), None)
    assert after.version == 1
    with pytest.raises(NotFound):
        models.history(platform, HistoryQuery("no-such-model"))


def test_registry_requests_are_checked_at_the_edge_naming_the_field() -> None:
    assert VersionDecision.parse("churn", "3", "approve", None) == VersionDecision("churn", 3, Decision.APPROVE, "")
    assert VersionDecision.parse("churn", "3", "reject", {"reason": "bias"}).reason == "bias"
    cases = [
        (("BAD", "1", "approve", {}), "model"),
        (("churn", "1", "promote", {}), "decision"),
        (("churn", "1", "approve", {"reason": 7}), "reason"),
        (("churn", "1", "approve", {"reason": "x" * 1001}), "reason"),
        (("churn", "1", "approve", ["reason"]), "reason"),
        (("churn", "0", "approve", {}), "version"),
        (("churn", "one", "approve", {}), "version"),
    ]
    for args, field in cases:
        with pytest.raises(InvalidInput) as raised:
            VersionDecision.parse(*args)
        assert raised.value.field == field, args
    with pytest.raises(InvalidInput) as raised:
        HistoryQuery.parse("churn", "yesterday-ish")
    assert raised.value.field == "at"
    assert (
        HistoryQuery.parse("churn", "2026-11-26T19:30:00Z").at
        == HistoryQuery.parse("churn", "2026-11-26T20:30+01:00").at
    )
    assert HistoryQuery.parse("churn", "") == HistoryQuery("churn")
    assert parse_version("12") == 12


def test_a_training_request_parses_into_domain_values_or_names_the_bad_field() -> None:
    request = TrainingRunRequest.parse(
        {
            "dataset_uri": "s3://data/datasets/churn/v2/data.csv",
            "model_name": "churn",
            "hyperparameters": {"epochs": 3},
            "workers": 4,
            "auto_deploy": "churn-api",
            "resources": {"cpu_millicores": 1000},
        }
    )
    assert (request.dataset.bucket, request.dataset.model_name, request.dataset.dataset_version) == (
        "data",
        "churn",
        "v2",
    )
    assert request.hyperparameters == Hyperparameters(epochs=3) and request.workers == 4
    assert request.auto_deploy == "churn-api" and request.resources == WorkerResources(cpu_millicores=1000)
    cases = [
        (None, "body"),
        ({"dataset_uri": "s3://data/datasets/churn/v2/data.csv", "colour": "red"}, "colour"),
        ({"dataset_uri": "s3://data/datasets/churn/v2/part-1.csv"}, "dataset_uri"),
        ({"dataset_uri": "s3://data/datasets/churn/v2/data.csv", "model_name": "other"}, "model_name"),
        ({"dataset_uri": "s3://data/datasets/churn/v2/data.csv", "auto_deploy": "Bad Name"}, "auto_deploy"),
        ({"dataset_uri": "s3://data/datasets/churn/v2/data.csv", "gate": {"metric": "f1"}}, "gate.metric"),
    ]
    for body, field in cases:
        with pytest.raises(InvalidInput) as raised:
            TrainingRunRequest.parse(body)
        assert raised.value.field == field, body


def test_starting_a_run_reads_the_object_and_a_second_start_is_a_duplicate() -> None:
    objects, pipelines = InMemoryObjects(), InMemoryPipelines()
    platform = in_memory_platform(objects=objects, pipelines=pipelines)
    objects.put_bytes("data", "datasets/churn/v2/data.csv", CSV)
    request = TrainingRunRequest.parse({"dataset_uri": "s3://data/datasets/churn/v2/data.csv", "workers": 3})

    first = training.start_training(platform, request, "alice")
    again = training.start_training(platform, request, "alice")

    assert (
        isinstance(first, StartedRun)
        and not first.duplicate
        and again == StartedRun(**{**vars(first), "duplicate": True})
    )
    assert first.to_dict()["outcome"] == "started" and again.to_dict()["outcome"] == "duplicate"
    payload = pipelines.started[first.execution_arn]
    assert payload["requested_by"] == "alice" and payload["workers"] == 3
    assert payload["dataset"]["size"] == len(CSV) and payload["dataset"]["etag"]


def test_a_run_on_another_bucket_or_a_missing_object_is_refused_naming_the_dataset_uri() -> None:
    objects = InMemoryObjects()
    platform = in_memory_platform(objects=objects)
    objects.put_bytes("data", "datasets/churn/v2/data.csv", b"")
    for uri, message in [
        ("s3://elsewhere/datasets/churn/v2/data.csv", "datasets live in s3://data/"),
        ("s3://data/datasets/churn/v3/data.csv", "no dataset object"),
    ]:
        with pytest.raises(InvalidInput, match=message) as raised:
            training.start_training(platform, TrainingRunRequest.parse({"dataset_uri": uri}), "alice")
        assert raised.value.field == "dataset_uri"
    with pytest.raises(InvalidInput, match="empty"):
        training.start_training(
            platform, TrainingRunRequest.parse({"dataset_uri": "s3://data/datasets/churn/v2/data.csv"}), "alice"
        )


def test_a_dataset_event_gives_one_outcome_per_object_and_dead_letters_the_wrong_ones() -> None:
    objects = InMemoryObjects()
    platform = in_memory_platform(objects=objects)
    objects.put_bytes("data", "datasets/churn/v2/data.csv", CSV)

    def created(bucket: str, key: str) -> dict[str, object]:
        return {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": 9}}}

    event = {
        "Records": [
            created("data", "datasets/churn/v2/data.csv"),
            created("data", "datasets/churn/v2/part-1.csv"),
            created("data", "elsewhere/x.csv"),
        ]
    }
    started, ignored, rejected = training.handle_dataset_event(platform, parse_s3_event(event))

    assert isinstance(started, StartedRun) and started.model_name == "churn"
    assert ignored == NotStarted(Skip.IGNORED, "not a dataset trigger", "datasets/churn/v2/part-1.csv")
    assert isinstance(rejected, NotStarted) and rejected.outcome is Skip.REJECTED
    assert ignored.to_dict() == {
        "outcome": "ignored",
        "key": "datasets/churn/v2/part-1.csv",
        "reason": "not a dataset trigger",
    }
    with pytest.raises(InvalidInput) as unreadable:
        parse_s3_event({"Records": "nope"})
    whole = training.reject_dataset_event(platform, unreadable.value, {"Records": "nope"})
    assert whole.to_dict() == {"outcome": "rejected", "reason": "the S3 event has no Records"}
    assert [sent["payload"] for sent in platform.dead_letters.sent] == [  # type: ignore[attr-defined]
        {"bucket": "data", "key": "elsewhere/x.csv", "size": 9},
        {"Records": "nope"},
    ]


def test_a_run_is_its_record_and_its_execution_and_one_with_neither_is_not_found() -> None:
    registry, pipelines = InMemoryRegistry(), InMemoryPipelines()
    platform = in_memory_platform(registry=registry, pipelines=pipelines)
    registry.put_run("run-1", {"status": "TRAINING", "model_name": "churn"})

    run = training.get_training_run(platform, "run-1")
    assert (run.run_id, dict(run.record), run.execution) == (
        "run-1",
        {"status": "TRAINING", "model_name": "churn"},
        None,
    )
    started = pipelines.start(platform.settings.training_state_machine_arn, "run-2", {})
    only_started = training.get_training_run(platform, "run-2")
    assert only_started.record == {} and only_started.execution == {
        "execution_arn": started.execution_arn,
        "status": "RUNNING",
    }
    with pytest.raises(NotFound):
        training.get_training_run(platform, "run-3")
    assert [r.run_id for r in training.list_runs(platform)] == ["run-1"]


def test_a_retention_request_is_a_dry_run_unless_it_says_otherwise() -> None:
    assert RetentionRequest.parse(None) == RetentionRequest()
    assert RetentionRequest.parse({"dry_run": False, "keep_last": 2, "model": "churn"}).policy.keep_last == 2
    for body, field in [({"dry_run": "no"}, "dry_run"), ({"keep_last": 0}, "keep_last"), ({"x": 1}, "x"), ([], "body")]:
        with pytest.raises(InvalidInput) as raised:
            RetentionRequest.parse(body)
        assert raised.value.field == field
