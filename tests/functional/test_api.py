"""The HTTP API of the embedded platform (Chalice routes served locally), through real HTTP."""

import pytest
import requests


def test_health_needs_no_token(endpoints):
    assert requests.get(endpoints["api_url"] + "/healthz", timeout=10).json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/models", "/training-runs", "/models/x/versions"])
def test_every_other_route_refuses_calls_without_the_token(endpoints, path):
    response = requests.get(endpoints["api_url"] + path, timeout=10)
    assert response.status_code == 401
    assert response.json()["error"] == "Unauthorized"
    wrong = requests.get(endpoints["api_url"] + path, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "dataset_uri"),
        ({"dataset_uri": "https://example.com/x.csv"}, "dataset_uri"),
        ({"dataset_uri": "s3://other-bucket/datasets/m/v1/data.csv"}, "dataset_uri"),
        ({"dataset_uri": "s3://{data}/datasets/m/v1/part-1.csv"}, "dataset_uri"),
        (
            {"dataset_uri": "s3://{data}/datasets/m/v1/data.csv", "hyperparameters": {"epochs": -1}},
            "hyperparameters.epochs",
        ),
        ({"dataset_uri": "s3://{data}/datasets/m/v1/data.csv", "gate": {"metric": "f1"}}, "gate.metric"),
        ({"dataset_uri": "s3://{data}/datasets/m/v1/data.csv", "workers": 0}, "workers"),
        ({"dataset_uri": "s3://{data}/datasets/m/v1/data.csv", "colour": "red"}, "colour"),
        ({"dataset_uri": "s3://{data}/datasets/no-such/v1/data.csv"}, "dataset_uri"),
    ],
)
def test_invalid_training_requests_are_400_naming_the_field(api, endpoints, body, field):
    if "dataset_uri" in body:
        body = {**body, "dataset_uri": body["dataset_uri"].replace("{data}", endpoints["data_bucket"])}
    response = api.post("/training-runs", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["field"] == field
    assert response.json()["message"]


def test_a_body_that_is_not_json_is_400(api):
    response = api.post("/training-runs", data="{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["field"] == "body"


def test_unknown_models_versions_and_runs_are_404(api):
    assert api.get("/models/no-such-model/versions").status_code == 404
    assert api.get("/models/no-such-model/versions/1").status_code == 404
    assert api.get("/training-runs/no-such-run").status_code == 404


@pytest.mark.parametrize("path", ["/models/BAD/versions", "/models/m/versions/zero", "/models/m/versions/1/promote"])
def test_malformed_names_are_400(api, path):
    response = api.get(path) if path.count("/") < 5 else api.post(path, json={})
    assert response.status_code == 400, response.text


def test_a_run_timeline_and_progress_come_through_the_api(api):
    missing = api.get("/training-runs/no-such-run/timeline")
    assert missing.status_code == 404, missing.text
    assert "no Step Functions execution" in missing.json()["message"]

    progress = api.get("/training-runs/no-such-run/progress")
    assert progress.status_code == 200, progress.text
    body = progress.json()
    assert body["run_id"] == "no-such-run" and isinstance(body["available"], bool)
    assert body["progress"]["epoch"] is None  # a run that never reported has no epoch

    assert api.get("/training-runs/Bad_Name/timeline").status_code == 400
