"""Bad input, fuzzed, against the running embedded platform.

- The HTTP API, every operation of its OpenAPI document, with generated path parameters, query
  parameters and bodies (schema-shaped and not): never a 5xx, every 4xx a JSON error that says
  what is wrong. The generator is our own (hypothesis strategies read from the document's schemas):
  schemathesis would pull in dependencies the pinned requirements do not have.
- S3 events and Alertmanager payloads (hypothesis): odd keys, missing fields, wrong types, huge
  bodies → a clear rejection, the event dead-lettered, no pipeline started.
- Request size limits: the API (413 above `MAX_REQUEST_BYTES`) and the model server (413 above
  `SAGEMAKER_MAX_PAYLOAD_IN_MB`).
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[2]
OPENAPI = json.loads((REPO / "functions" / "chalicelib" / "openapi.json").read_text())
EXAMPLES_PER_OPERATION = 18  # 14 operations: about 250 requests in all
FUZZ = settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

# -- generators ------------------------------------------------------------------------------------

ODD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            "..",
            "../../etc/passwd",
            "%2e%2e%2f",
            "a%00b",
            "Ünïcödé-模型",
            "x" * 2000,
            "0",
            "-1",
            "1e9",
            "null",
            "' OR 1=1 --",
            "<script>",
            "${jndi:ldap://x}",
            "MODEL",
            " ",
        ]
    ),
)
JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=30), ODD_TEXT
)
ANY_JSON = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


def _resolve(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref:
        node: Any = OPENAPI
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        return dict(node)
    return schema


def shaped(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Values that follow the schema most of the time and break it some of the time."""
    schema = _resolve(schema)
    kind = schema.get("type")
    if "enum" in schema:
        conforming: st.SearchStrategy[Any] = st.sampled_from(schema["enum"])
    elif kind == "object":
        properties = schema.get("properties", {})
        conforming = st.fixed_dictionaries(
            {}, optional={name: shaped(sub) for name, sub in properties.items()}
        ) | st.builds(
            lambda known, extra: {**known, **extra},
            st.fixed_dictionaries({}, optional={name: shaped(sub) for name, sub in properties.items()}),
            st.dictionaries(ODD_TEXT, ANY_JSON, max_size=2),
        )
    elif kind == "integer":
        low, high = schema.get("minimum", -(2**31)), schema.get("maximum", 2**31)
        conforming = st.integers(low, high) | st.sampled_from([low - 1, high + 1, 2**63, -(2**63)])
    elif kind == "number":
        conforming = st.floats(allow_nan=False, allow_infinity=False, width=32) | st.sampled_from([1e308, -0.0])
    elif kind == "string":
        pattern = schema.get("pattern")
        conforming = (st.from_regex(pattern, fullmatch=True) if pattern else st.text(max_size=40)) | ODD_TEXT
    else:
        conforming = ANY_JSON
    return st.one_of(conforming, conforming, ANY_JSON)


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    found = []
    for path, item in OPENAPI["paths"].items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "delete", "patch"):
                found.append((method.upper(), path, operation))
    return found


def request_cases(operation: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    parameters = operation.get("parameters", [])
    path_params = {p["name"]: shaped(p.get("schema", {"type": "string"})) for p in parameters if p["in"] == "path"}
    query_params = {p["name"]: shaped(p.get("schema", {"type": "string"})) for p in parameters if p["in"] == "query"}
    body_schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    raw_bodies = st.sampled_from([b"", b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b"{}" * 1000, b'{"a":' * 300])
    bodies: st.SearchStrategy[Any] = (
        st.one_of(shaped(body_schema).map(lambda v: ("json", v)), raw_bodies.map(lambda b: ("raw", b)))
        if body_schema
        else st.just(("none", None))
    )
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries(path_params),
            "query": st.fixed_dictionaries({}, optional=query_params),
            "body": bodies,
        }
    )


def as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


# -- the API ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "path", "operation"), operations(), ids=[f"{m} {p}" for m, p, _ in operations()])
def test_the_api_answers_fuzzed_requests_without_5xx_and_with_json_errors(
    api, method, path, operation, ledger, executions
):
    before = executions("training_pipeline")
    sent: list[tuple[int, str]] = []

    @FUZZ
    @given(case=request_cases(operation))
    def attack(case: dict[str, Any]) -> None:
        url = path
        for name, value in case["path"].items():
            url = url.replace("{" + name + "}", quote(as_text(value), safe="") or "%20")
        params = {name: as_text(value) for name, value in case["query"].items()}
        kind, body = case["body"]
        headers = {"Content-Type": "application/json"}
        data = json.dumps(body).encode() if kind == "json" else body
        response = api.request(method, url, params=params, data=data, headers=headers)
        sent.append((response.status_code, url))
        assert response.status_code < 500, f"{method} {url} {data!r:.200}: {response.status_code} {response.text:.300}"
        if response.status_code >= 400:
            error = response.json()
            assert isinstance(error.get("message"), str) and error["message"], response.text
            if response.status_code != 403:  # API Gateway's own answer to a path no route matches
                assert isinstance(error.get("error"), str) and error["error"], response.text

    attack()
    assert executions("training_pipeline") == before, "a fuzzed request started a pipeline"
    ledger.add("api fuzz (OpenAPI)", bad_inputs_tried=len(sent), requests_sent=len(sent))


def test_the_api_refuses_an_oversized_body_with_413(api, ledger):
    from chalicelib.runtime import MAX_REQUEST_BYTES

    too_big = json.dumps({"reason": "x" * MAX_REQUEST_BYTES}).encode()
    for path in ("/training-runs", "/models/m/versions/1/approve", "/deployments/d/rollback"):
        response = api.post(path, data=too_big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.status_code, response.text[:200])
        assert response.json()["error"] == "PayloadTooLarge"
        assert str(MAX_REQUEST_BYTES) in response.json()["message"]
    just_under = api.post("/models/no-such-m/versions/1/approve", json={"reason": "x" * 1000})
    assert just_under.status_code == 404
    ledger.add("size limits", bad_inputs_tried=3, requests_sent=4)


def test_the_model_server_refuses_a_body_over_its_limit(tmp_path, ledger):
    from tests.support.inference_artifact import write_artifact
    from tests.support.inference_http import asgi_call
    from workloads.inference.app import create_app
    from workloads.inference.settings import ServerSettings

    artifact = write_artifact(tmp_path / "run")
    settings_ = ServerSettings(model_uri=str(artifact.folder), model_name="m", model_version="1", model_load_attempts=1)
    server = create_app(settings_)
    server.slot.start_loading()
    assert server.slot.wait_settled(60)
    try:
        limit = settings_.max_body_bytes
        body = b'{"instances": [[' + b"0," * (limit // 2) + b"0]]}"
        reply = asgi_call(server.data_app, "POST", "/invocations", body, {"content-type": "application/json"})
        assert reply.status == 413, reply
        assert reply.json()["error"]
        ok = asgi_call(
            server.data_app, "POST", "/invocations", b'{"instances": []}', {"content-type": "application/json"}
        )
        assert ok.status < 500
    finally:
        server.start_draining()
    ledger.add("size limits", bad_inputs_tried=1, requests_sent=2)


def test_the_api_throttles_like_its_stage_with_429_json_and_the_cli_client_waits_it_out(embedded, endpoints, ledger):
    import threading
    import time

    from control.cli.api_client import ApiClient
    from control.cli.config import ClientConfig
    from control.local.api_gateway import create_api_server
    from control.local.processes import free_port
    from control.local.runtime import load_chalice_app

    port = free_port()
    gateway = create_api_server(load_chalice_app().app, "127.0.0.1", port, rate=4, burst=6)
    threading.Thread(target=gateway.server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{port}"
    auth = {"Authorization": f"Bearer {endpoints['api_token']}"}
    try:
        with requests.Session() as session:
            replies = [session.get(f"{url}/models", headers=auth, timeout=10) for _ in range(12)]
            codes = [r.status_code for r in replies]
            assert codes[:6] == [200] * 6 and 429 in codes[6:], codes
            throttled = next(r for r in replies if r.status_code == 429)
            assert throttled.json() == {
                "error": "TooManyRequests",
                "message": "the API allows 4 requests/s (bursts of 6)",
            }
            assert int(throttled.headers["Retry-After"]) >= 1
            # Unauthenticated or bad requests are throttled too (before any handler runs).
            refused = [session.post(f"{url}/training-runs", data=b"{", timeout=10).status_code for _ in range(4)]
            assert refused.count(429) >= 3, refused
            time.sleep(0.6)  # two tokens come back: the same session gets through again
            assert session.get(f"{url}/models", headers=auth, timeout=10).status_code == 200

        client = ApiClient(ClientConfig(api_url=url, api_token=endpoints["api_token"], region=endpoints["region"]))
        started = time.monotonic()
        answers = [client.list_models() for _ in range(12)]  # over the burst: the client waits, never fails
        assert len(answers) == 12 and time.monotonic() - started >= 1.0
    finally:
        gateway.server.shutdown()
        gateway.server.server_close()
    ledger.add("rate limits", bad_inputs_tried=16, requests_sent=29)


def test_the_model_server_answers_429_over_its_concurrency_limit_and_ping_never_waits(tmp_path, ledger):
    import asyncio

    from tests.support.inference_artifact import write_artifact
    from tests.support.inference_http import asgi_request
    from workloads.inference.app import create_app
    from workloads.inference.settings import ServerSettings

    artifact = write_artifact(tmp_path / "run")
    settings_ = ServerSettings(
        model_uri=str(artifact.folder),
        model_name="m",
        model_version="1",
        model_load_attempts=1,
        fault_injection_enabled=True,
        max_concurrent_invocations=2,
    )
    server = create_app(settings_)
    server.slot.start_loading()
    assert server.slot.wait_settled(60)
    server.faults.update({"latency_ms": 300})  # two slow invocations hold both slots
    row = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    json_type = {"content-type": "application/json"}

    async def burst():
        calls = [asgi_request(server.data_app, "POST", "/invocations", row, json_type) for _ in range(5)]
        return await asyncio.gather(*calls, asgi_request(server.data_app, "GET", "/ping"))

    try:
        *invocations, ping = asyncio.run(burst())
        assert sorted(r.status for r in invocations) == [200, 200, 429, 429, 429]
        throttled = next(r for r in invocations if r.status == 429)
        assert throttled.json()["error"] == "too_many_requests" and "2 invocations" in throttled.json()["message"]
        assert throttled.headers["retry-after"] == "1" and throttled.headers["x-model-version"] == "1"
        assert ping.status == 200
        server.faults.reset()
        again = asyncio.run(asgi_request(server.data_app, "POST", "/invocations", row, json_type))
        assert again.status == 200  # the slots came back
        metrics = asyncio.run(asgi_request(server.data_app, "GET", "/metrics")).body.decode()
        assert 'mlcp_inference_requests_total{code="429",model="m",version="1"} 3.0' in metrics
    finally:
        server.start_draining()
    ledger.add("rate limits", bad_inputs_tried=3, requests_sent=7)


# -- S3 events -------------------------------------------------------------------------------------

ODD_KEYS = st.one_of(
    st.sampled_from(
        [
            "datasets%2Fm%2Fv1%2Fdata.csv",
            "datasets/m/v1/data%2Ecsv",
            "datasets/m/../v1/data.csv",
            "datasets/../../etc/data.csv",
            "datasets/Ünï/v1/data.csv",
            "datasets/m/v1/da\u0000ta.csv",
            "datasets/" + "m" * 2000 + "/v1/data.csv",
            "other/m/v1/data.csv",
            "/datasets/m/v1/data.csv",
            "datasets/m/v1/",
            "datasets//v1/data.csv",
            "datasets/m+m/v1/data.csv",
            "datasets/-m/v1/_manifest.json",
        ]
    ),
    st.builds(lambda a, b: f"datasets/{a}/{b}/data.csv", ODD_TEXT, ODD_TEXT),
    st.text(min_size=1, max_size=60),
)


@st.composite
def s3_events(draw: st.DrawFn, data_bucket: str) -> Any:
    def record() -> Any:
        obj: dict[str, Any] = {"key": draw(ODD_KEYS), "size": draw(st.integers(0, 10**12) | JSON_SCALARS)}
        if draw(st.booleans()):
            obj.update(eTag=draw(st.text(max_size=34)), versionId=draw(st.text(max_size=10)))
        for name in draw(st.sets(st.sampled_from(["key", "size"]), max_size=1)):
            del obj[name]
        s3 = {"bucket": {"name": draw(st.sampled_from([data_bucket, "someone-elses-bucket", ""]) | ANY_JSON)}}
        s3["object"] = obj
        raw: dict[str, Any] = {
            "eventName": draw(st.sampled_from(["ObjectCreated:Put", "ObjectCreated:Copy"])),
            "s3": s3,
        }
        if draw(st.integers(0, 9)) == 0:
            raw["s3"] = draw(ANY_JSON)
        if draw(st.integers(0, 9)) == 0:
            del raw["eventName"]
        if draw(st.integers(0, 9)) == 0 and isinstance(raw["s3"], dict):
            raw["s3"]["bucket"] = draw(ANY_JSON)  # not an object: {"bucket": "x"}, [..], 3
        return raw

    shape = draw(st.integers(0, 9))
    if shape == 0:
        return draw(ANY_JSON)
    if shape == 1:
        return {"Records": draw(ANY_JSON)}
    if shape == 2:  # huge: one record whose key is 1 MB
        return {
            "Records": [
                {
                    "eventName": "ObjectCreated:Put",
                    "s3": {"bucket": {"name": data_bucket}, "object": {"key": "k" * 2**20}},
                }
            ]
        }
    return {"Records": [record() for _ in range(draw(st.integers(1, 3)))]}


def test_fuzzed_s3_events_are_rejected_dead_lettered_and_start_nothing(
    endpoints, embedded, ledger, dead_letters, executions
):
    from chalicelib.events import on_dataset_uploaded

    before_executions = executions("training_pipeline")
    before_letters = dead_letters()
    rejected = 0
    tried = 0

    @settings(FUZZ, max_examples=120)
    @given(event=s3_events(endpoints["data_bucket"]))
    def attack(event: Any) -> None:
        nonlocal rejected, tried
        tried += 1
        outcomes = on_dataset_uploaded(event, None)["outcomes"]  # never raises: Lambda would retry, then drop
        for outcome in outcomes:
            assert outcome["outcome"] in ("rejected", "ignored"), outcome
            assert outcome["reason"], outcome
            rejected += outcome["outcome"] == "rejected"

    attack()
    assert executions("training_pipeline") == before_executions, "a malformed event started a pipeline"
    lost = rejected - (dead_letters() - before_letters)
    ledger.add("s3 events (fuzzed)", bad_inputs_tried=tried, events_delivered=tried, lost=lost)
    assert lost == 0, "every rejected event is in the dead-letter queue"


# -- Alertmanager payloads -------------------------------------------------------------------------


def _firing_payload(deployment: str) -> dict[str, Any]:
    return {
        "version": "4",
        "groupKey": '{}:{alertname="MlcpInferenceHighErrorRatio"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "mlcp-control-plane",
        "groupLabels": {"alertname": "MlcpInferenceHighErrorRatio"},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {
                    "alertname": "MlcpInferenceHighErrorRatio",
                    "deployment": deployment,
                    "severity": "critical",
                    "version": "2",
                },
                "annotations": {"summary": "errors"},
                "startsAt": "2026-01-01T00:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus/graph",
                "fingerprint": uuid.uuid4().hex[:16],
            }
        ],
    }


@st.composite
def broken_alert_payloads(draw: st.DrawFn) -> bytes:
    payload = _firing_payload("fz-" + uuid.uuid4().hex[:8])
    alert = payload["alerts"][0]
    target = draw(st.sampled_from(["top", "alert", "labels", "raw"]))
    if target == "raw":
        return draw(st.sampled_from([b"", b"{", b"[]", b"\xff", b'"x"', b"null", b"{}"]) | st.binary(max_size=64))
    where: dict[str, Any] = payload if target == "top" else alert if target == "alert" else alert["labels"]
    key = draw(st.sampled_from(sorted(where)))
    if draw(st.booleans()):
        del where[key]
    else:
        where[key] = draw(ANY_JSON)
    if target == "labels":  # labels are free-form: make sure the payload is still broken
        alert["startsAt"] = draw(st.sampled_from(["yesterday", "", "2026-13-01T00:00:00Z", 0]))
    if draw(st.integers(0, 4)) == 0:
        payload["alerts"] = [alert] * 201  # over MAX_ALERTS_PER_PAYLOAD
    return json.dumps(payload).encode()


def test_fuzzed_alert_payloads_are_rejected_with_json_errors_and_dead_lettered(
    endpoints, embedded, ledger, dead_letters, executions
):
    url = endpoints["api_url"] + "/alerts/alertmanager"
    headers = {"Authorization": f"Bearer {embedded.alert_token}", "Content-Type": "application/json"}
    session = requests.Session()
    before_letters = dead_letters()
    before = executions("rollout")
    outcome = {"rejected": 0, "accepted": 0}

    @settings(FUZZ, max_examples=80)
    @given(body=broken_alert_payloads())
    def attack(body: bytes) -> None:
        response = session.post(url, data=body, headers=headers, timeout=30)
        assert response.status_code < 500, response.text
        if response.status_code == 200:  # still a valid payload (e.g. an ignorable field changed)
            assert response.json()["rollbacks"] == []
            outcome["accepted"] += 1
            return
        assert response.status_code in (400, 413), response.text
        error = response.json()
        assert error["error"] in ("InvalidInput", "PayloadTooLarge") and error["message"] and error.get("field")
        outcome["rejected"] += 1

    attack()
    huge = session.post(url, data=b'{"version": "4", "x": "' + b"x" * 2**21 + b'"}', headers=headers, timeout=60)
    assert huge.status_code == 413 and huge.json()["error"] == "PayloadTooLarge"
    outcome["rejected"] += 1
    assert outcome["rejected"] > 0
    tried = outcome["rejected"] + outcome["accepted"]
    lost = outcome["rejected"] - (dead_letters() - before_letters)
    ledger.add(
        "alert payloads (fuzzed)", bad_inputs_tried=tried, requests_sent=tried, events_delivered=tried, lost=lost
    )
    assert lost == 0, "every rejected payload is dead-lettered"
    assert executions("rollout") == before, "a malformed alert started a rollout step"


def test_an_unauthenticated_oversized_alert_is_refused_before_it_is_read(endpoints, ledger):
    response = requests.post(endpoints["api_url"] + "/alerts/alertmanager", data=b"x" * 2**21, timeout=60)
    assert response.status_code == 401
    assert re.search("token", response.json()["message"])
    ledger.add("size limits", bad_inputs_tried=1, requests_sent=1)
