import pytest

from control.domain.datasets import (
    MAX_DATASET_BYTES,
    check_dataset_size,
    parse_dataset_key,
    parse_s3_event,
    run_id_for,
)
from control.errors import InvalidInput, PayloadTooLarge


def s3_event(key: str, size: int = 10, bucket: str = "data") -> dict:
    return {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": key, "size": size, "eTag": '"abc"'}},
            }
        ]
    }


def test_single_file_and_manifest_complete_a_dataset():
    single = parse_dataset_key("data", "datasets/churn/v3/data.csv")
    assert (single.model_name, single.dataset_version, single.is_manifest) == ("churn", "v3", False)
    manifest = parse_dataset_key("data", "datasets/churn/v3/_manifest.json")
    assert manifest.is_manifest and manifest.uri == "s3://data/datasets/churn/v3/_manifest.json"


def test_parts_of_a_dataset_start_nothing():
    assert parse_dataset_key("data", "datasets/churn/v3/part-0.csv") is None


@pytest.mark.parametrize(
    ("key", "field"),
    [
        ("uploads/churn/v3/data.csv", "key"),
        ("datasets/churn/data.csv", "key"),
        ("datasets/churn/v3/extra/data.csv", "key"),
        ("datasets/Churn/v3/data.csv", "model"),
        ("datasets/churn/v 3/data.csv", "dataset_version"),
        ("datasets/../v3/data.csv", "model"),
        ("datasets/churn/v3/" + "x" * 2000, "key"),
    ],
)
def test_keys_outside_the_layout_are_rejected_naming_the_field(key, field):
    with pytest.raises(InvalidInput) as caught:
        parse_dataset_key("data", key)
    assert caught.value.field == field


def test_s3_keys_arrive_url_encoded():
    [obj] = parse_s3_event(s3_event("datasets/churn/v%C3%A9+1/data.csv"))
    assert obj.key == "datasets/churn/vé 1/data.csv"
    assert obj.etag == "abc"


def test_a_test_event_yields_nothing():
    assert parse_s3_event({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "data"}) == []


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ([], "event"),
        ({}, "Records"),
        ({"Records": ["x"]}, "Records[0]"),
        ({"Records": [{"s3": {}}]}, "Records[0].eventName"),
        (
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"object": {"key": "k"}}}]},
            "Records[0].s3.bucket.name",
        ),
        (
            {"Records": [{"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}}}]},
            "Records[0].s3.object.key",
        ),
        (s3_event("k", size="big"), "Records[0].s3.object.size"),
    ],
)
def test_malformed_events_name_the_bad_field(event, field):
    with pytest.raises(InvalidInput) as caught:
        parse_s3_event(event)
    assert caught.value.field == field


def test_removals_are_not_creations():
    event = s3_event("datasets/churn/v3/data.csv")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"
    assert parse_s3_event(event) == []


def test_dataset_size_limits():
    with pytest.raises(InvalidInput, match="empty"):
        check_dataset_size(0)
    with pytest.raises(PayloadTooLarge, match="the limit is 2147483648"):
        check_dataset_size(2 * 1024**3 + 1)
    check_dataset_size(1)
    check_dataset_size(2_000_000_000)  # a 2 GB dataset stages and trains


def test_run_ids_are_deterministic_and_fit_kubernetes_names():
    content = {"etag": "abc", "hyperparameters": {"epochs": 3}}
    first = run_id_for("churn", "v3", content)
    assert first == run_id_for("churn", "v3", dict(reversed(content.items())))
    assert first != run_id_for("churn", "v3", {**content, "etag": "abd"})
    long_id = run_id_for("m" * 63, "v" * 63, content)
    assert len(long_id) <= 50 and long_id[-13] == "-" and not long_id.startswith("-")


def test_the_control_plane_and_the_training_job_accept_the_same_largest_dataset():
    from workloads.training import data

    assert data.MAX_BYTES == MAX_DATASET_BYTES  # what the event handler accepts, the job reads
