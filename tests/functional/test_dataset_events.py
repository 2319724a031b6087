"""Datasets dropped into the embedded S3 run the real S3 handler, which starts pipelines."""

import json
import threading
import uuid

import pytest

from tests.support import wait_for


def executions_named(aws, endpoints, prefix):
    sfn = aws("stepfunctions")
    arn = endpoints["state_machines"]["training_pipeline"]
    return [e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"].startswith(prefix)]


def dead_letters(aws, endpoints):
    sqs = aws("sqs")
    messages = sqs.receive_message(
        QueueUrl=endpoints["dead_letter_queue_url"], MaxNumberOfMessages=10, VisibilityTimeout=0
    ).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_duplicate_deliveries_start_one_execution(aws, endpoints, platform):
    from chalicelib.events import on_dataset_uploaded

    model = f"dup-{uuid.uuid4().hex[:6]}"
    key = f"datasets/{model}/v1/data.csv"
    s3 = aws("s3")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"x,label\n1,0\n")
    head = s3.head_object(Bucket=endpoints["data_bucket"], Key=key)
    event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": endpoints["data_bucket"]},
                    "object": {"key": key, "size": 12, "eTag": head["ETag"], "versionId": head["VersionId"]},
                },
            }
        ]
    }
    outcomes: list[dict] = []
    threads = [
        threading.Thread(target=lambda: outcomes.extend(on_dataset_uploaded(event, None)["outcomes"]))
        for _ in range(10)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Step Functions answers a repeated start (same name and input) with the same execution.
    assert {o["outcome"] for o in outcomes} <= {"started", "duplicate"}
    assert len({o["execution_arn"] for o in outcomes}) == 1
    assert len(executions_named(aws, endpoints, f"{model}-v1-")) == 1


def test_a_new_version_of_the_same_object_is_a_new_run(aws, endpoints):
    model = f"rev-{uuid.uuid4().hex[:6]}"
    s3 = aws("s3")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/data.csv", Body=b"x,label\n1,0\n")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/data.csv", Body=b"x,label\n2,1\n")
    assert len(executions_named(aws, endpoints, f"{model}-v1-")) == 2


def test_parts_and_test_events_start_nothing(aws, endpoints):
    from chalicelib.events import on_dataset_uploaded

    model = f"parts-{uuid.uuid4().hex[:6]}"
    aws("s3").put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/part-0.csv", Body=b"x,label\n")
    assert executions_named(aws, endpoints, model) == []
    assert on_dataset_uploaded({"Event": "s3:TestEvent", "Bucket": endpoints["data_bucket"]}, None) == {"outcomes": []}


def test_bad_keys_and_empty_objects_are_dead_lettered_not_started(aws, endpoints):
    model = f"bad-{uuid.uuid4().hex[:6]}"
    s3 = aws("s3")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model.upper()}/v1/data.csv", Body=b"x,label\n1,0\n")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=f"datasets/{model}/v1/data.csv", Body=b"")
    letters = wait_for(
        lambda: [d for d in dead_letters(aws, endpoints) if model in d["payload"].lower()] or None,
        timeout=10,
        what="dead letters",
    )
    reasons = " | ".join(d["reason"] for d in letters)
    assert "lower-case" in reasons or "empty" in reasons
    assert executions_named(aws, endpoints, model) == []


def test_a_malformed_event_is_dead_lettered_with_its_payload(aws, endpoints):
    from chalicelib.events import on_dataset_uploaded

    marker = uuid.uuid4().hex
    result = on_dataset_uploaded({"Records": [{"marker": marker}]}, None)
    assert result["outcomes"][0]["outcome"] == "rejected"
    letters = wait_for(
        lambda: [d for d in dead_letters(aws, endpoints) if marker in d["payload"]] or None,
        timeout=10,
        what="the dead letter",
    )
    assert letters[0]["error"] == "InvalidInput" and "eventName" in letters[0]["reason"]


def test_validation_reads_the_version_the_event_named_not_a_later_overwrite(aws, endpoints):
    from chalicelib.runtime import current_platform

    from control.errors import InvalidInput
    from control.usecases.training import validate_dataset

    model = f"late-{uuid.uuid4().hex[:6]}"
    key = f"datasets/{model}/v1/data.csv"
    s3 = aws("s3")
    first = s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"x,label\n1,0\n2,1\n")["VersionId"]
    later = s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"x,y\n1,0\n")["VersionId"]

    def state(version_id: str) -> dict:
        bucket = endpoints["data_bucket"]
        dataset = {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}", "version_id": version_id}
        return {"run_id": f"{model}-{version_id[:6]}", "model_name": model, "dataset": dataset}

    # The late event for the first upload still validates the first upload's bytes ...
    assert validate_dataset(current_platform(), state(first))["columns"] == ["x", "label"]
    # ... and the overwrite's own event sees its own bytes (no label column).
    with pytest.raises(InvalidInput, match="no 'label' column"):
        validate_dataset(current_platform(), state(later))
