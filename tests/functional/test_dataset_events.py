"""Datasets dropped into the embedded S3 run the real S3 handler, which starts pipelines."""

import json
import threading
import uuid

import pytest

from tests.support import wait_for
from tests.support.dead_letters import dead_letters


def executions_named(aws, endpoints, prefix):
    sfn = aws("stepfunctions")
    arn = endpoints["state_machines"]["training_pipeline"]
    return [e for e in sfn.list_executions(stateMachineArn=arn)["executions"] if e["name"].startswith(prefix)]


def letters_about(aws, endpoints, text):
    return [d for d in dead_letters(aws("sqs"), endpoints["dead_letter_queue_url"]) if text in d["payload"].lower()]


def test_duplicate_deliveries_start_one_execution(aws, endpoints, embedded):
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
    bucket, prefix = endpoints["data_bucket"], f"datasets/{model}/v1/"
    s3 = aws("s3")
    for part in ("part-0.csv", "part-1.csv"):
        s3.put_object(Bucket=bucket, Key=prefix + part, Body=b"x,label\n1,0\n")
    # The manifest completes the dataset: once its run shows, the parts' events were handled too (two rows:
    # the run's validation refuses them, so nothing trains).
    s3.put_object(Bucket=bucket, Key=prefix + "_manifest.json", Body=b'{"files": ["part-0.csv", "part-1.csv"]}')
    wait_for(lambda: executions_named(aws, endpoints, f"{model}-v1-"), timeout=20, what="the manifest's run")
    [execution] = executions_named(aws, endpoints, model)
    started = aws("stepfunctions").describe_execution(executionArn=execution["executionArn"])
    assert json.loads(started["input"])["dataset"]["key"] == prefix + "_manifest.json"
    # The handler's own answer for a part, and for the test event S3 sends when notifications are set up.
    part_event = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": bucket}, "object": {"key": prefix + "part-2.csv", "size": 12}},
            }
        ]
    }
    [outcome] = on_dataset_uploaded(part_event, None)["outcomes"]
    assert outcome["outcome"] == "ignored" and outcome["key"] == prefix + "part-2.csv"
    assert on_dataset_uploaded({"Event": "s3:TestEvent", "Bucket": bucket}, None) == {"outcomes": []}
    assert len(executions_named(aws, endpoints, model)) == 1


def test_bad_keys_and_empty_objects_are_dead_lettered_not_started(aws, endpoints):
    model = f"bad-{uuid.uuid4().hex[:6]}"
    s3 = aws("s3")
    upper_key, empty_key = f"datasets/{model.upper()}/v1/data.csv", f"datasets/{model}/v1/data.csv"
    s3.put_object(Bucket=endpoints["data_bucket"], Key=upper_key, Body=b"x,label\n1,0\n")
    s3.put_object(Bucket=endpoints["data_bucket"], Key=empty_key, Body=b"")

    def both():
        letters = {d["payload"]: d for d in letters_about(aws, endpoints, model)}
        upper = [d for payload, d in letters.items() if upper_key in payload]
        empty = [d for payload, d in letters.items() if empty_key in payload]
        return (upper, empty) if upper and empty else None

    upper, empty = wait_for(both, timeout=10, what="a dead letter for each of the two objects")
    assert len(upper) == len(empty) == 1
    assert upper[0]["error"] == "InvalidInput" and "lower-case" in upper[0]["reason"]
    assert empty[0]["error"] == "InvalidInput" and "empty" in empty[0]["reason"]
    assert executions_named(aws, endpoints, model) == []
    assert executions_named(aws, endpoints, model.upper()) == []


def test_a_malformed_event_is_dead_lettered_with_its_payload(aws, endpoints):
    from chalicelib.events import on_dataset_uploaded

    marker = uuid.uuid4().hex
    result = on_dataset_uploaded({"Records": [{"marker": marker}]}, None)
    assert result["outcomes"][0]["outcome"] == "rejected"
    letters = wait_for(
        lambda: letters_about(aws, endpoints, marker),
        timeout=10,
        what="the dead letter",
    )
    assert letters[0]["error"] == "InvalidInput" and "eventName" in letters[0]["reason"]


def test_validation_reads_the_version_the_event_named_not_a_later_overwrite(aws, endpoints):
    from chalicelib.runtime import current_platform

    from control.domain.pipeline_steps import PipelineRun
    from control.errors import InvalidInput
    from control.usecases.training import validate_dataset

    model = f"late-{uuid.uuid4().hex[:6]}"
    key = f"datasets/{model}/v1/data.csv"
    s3 = aws("s3")
    first = s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"x,label\n1,0\n2,1\n")["VersionId"]
    later = s3.put_object(Bucket=endpoints["data_bucket"], Key=key, Body=b"x,y\n1,0\n")["VersionId"]

    def state(version_id: str) -> PipelineRun:
        bucket = endpoints["data_bucket"]
        dataset = {"bucket": bucket, "key": key, "uri": f"s3://{bucket}/{key}", "version_id": version_id}
        return PipelineRun.parse({"run_id": f"{model}-{version_id[:6]}", "model_name": model, "dataset": dataset})

    # The late event for the first upload still validates the first upload's bytes ...
    assert validate_dataset(current_platform(), state(first)).columns == ["x", "label"]
    # ... and the overwrite's own event sees its own bytes (no label column).
    with pytest.raises(InvalidInput, match="no 'label' column"):
        validate_dataset(current_platform(), state(later))
