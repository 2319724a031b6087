"""The model server's HTTP contract, in process (docs/contracts.md, "Model server")."""

from __future__ import annotations

import io
import json
import logging
import random

import numpy as np
import pytest

from tests.support.inference_artifact import Artifact, model_bytes, write_artifact
from tests.support.inference_http import asgi_call, labels, samples
from workloads.inference.app import ListenerRouter, create_app
from workloads.inference.faults import FaultInjector
from workloads.inference.settings import ServerSettings

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]]
JSON = {"Content-Type": "application/json"}


def invoke(app, body: bytes, content_type: str = "application/json", **headers: str):
    return asgi_call(app, "POST", "/invocations", body, {"Content-Type": content_type, **headers})


def test_ping_is_503_until_the_model_is_loaded_then_200(make_server) -> None:
    server = make_server(load=False)
    before = asgi_call(server.data_app, "GET", "/ping")
    assert before.status == 503 and before.json()["status"] == "loading"
    refused = invoke(server.data_app, json.dumps(ROWS).encode())
    assert refused.status == 503 and refused.json()["error"] == "model_not_ready"
    server.slot.start_loading()
    assert server.slot.wait_settled(30)
    assert asgi_call(server.data_app, "GET", "/ping").status == 200
    assert asgi_call(server.data_app, "GET", "/healthz").status == 200


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"instances": ROWS}).encode(), "application/json"),
        (json.dumps(ROWS).encode(), "application/json; charset=utf-8"),
        ("\n".join(",".join(str(v) for v in row) for row in ROWS).encode(), "text/csv"),
        (None, "application/x-npy"),
    ],
)
def test_invocations_answer_each_content_type_with_the_contract_json(make_server, body, content_type) -> None:
    if body is None:
        buffer = io.BytesIO()
        np.save(buffer, np.array(ROWS))
        body = buffer.getvalue()
    server = make_server()
    reply = invoke(server.data_app, body, content_type)
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"] == "application/json"
    document = reply.json()
    assert set(document) == {"predictions", "probabilities"}
    assert len(document["predictions"]) == 3 and all(p in (0, 1, 2) for p in document["predictions"])
    assert [len(p) for p in document["probabilities"]] == [3, 3, 3]
    assert document["predictions"] == [int(np.argmax(p)) for p in document["probabilities"]]


def test_the_same_rows_give_the_same_answer_whatever_the_encoding(make_server) -> None:
    server = make_server()
    as_json = invoke(server.data_app, json.dumps(ROWS).encode()).json()
    as_csv = invoke(server.data_app, b"\n".join(",".join(map(str, r)).encode() for r in ROWS), "text/csv").json()
    assert as_json["predictions"] == as_csv["predictions"]
    np.testing.assert_allclose(as_json["probabilities"], as_csv["probabilities"], rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        (b"[[1, 2, 3, 4]]", "text/plain", 415, "unsupported_content_type"),
        (b"[[1, 2, 3, 4]]", "", 415, "unsupported_content_type"),
        (b"{broken", "application/json", 400, "bad_request"),
        (b"[[1, 2, 3]]", "application/json", 400, "bad_request"),
        (b"1,2,three,4", "text/csv", 400, "bad_request"),
        (b"", "application/json", 400, "bad_request"),
    ],
)
def test_bad_requests_get_json_errors(make_server, body: bytes, content_type: str, status: int, error: str) -> None:
    server = make_server()
    reply = invoke(server.data_app, body, content_type)
    assert reply.status == status
    assert reply.headers["content-type"] == "application/json"
    assert reply.json()["error"] == error and reply.json()["message"]


def test_unsupported_accept_is_406_and_routes_and_methods_are_checked(make_server) -> None:
    server = make_server()
    assert invoke(server.data_app, b"[[1, 2, 3, 4]]", Accept="text/csv").status == 406
    assert asgi_call(server.data_app, "GET", "/invocations").status == 405
    assert asgi_call(server.data_app, "POST", "/ping").status == 405
    missing = asgi_call(server.data_app, "GET", "/nope")
    assert missing.status == 404 and missing.json()["error"] == "not_found"


def test_a_body_over_the_limit_is_413(make_server) -> None:
    server = make_server(max_body_bytes=1024)
    reply = invoke(server.data_app, json.dumps([[1.0, 2.0, 3.0, 4.0]] * 200).encode())
    assert reply.status == 413


def test_metrics_carry_the_contract_names_and_model_version_labels(make_server) -> None:
    server = make_server()
    invoke(server.data_app, json.dumps(ROWS).encode())
    invoke(server.data_app, json.dumps(ROWS[:1]).encode())
    invoke(server.data_app, b"x", "text/plain")
    found = samples(server)
    assert found[("mlcp_inference_requests_total", labels(code="200"))] == 2
    assert found[("mlcp_inference_requests_total", labels(code="415"))] == 1
    assert found[("mlcp_inference_request_duration_seconds_count", labels())] == 3
    assert found[("mlcp_inference_in_flight_requests", labels())] == 0
    assert found[("mlcp_inference_model_loaded", labels())] == 1
    predicted = {k[1]: v for k, v in found.items() if k[0] == "mlcp_inference_predictions_total"}
    assert sum(predicted.values()) == 4  # one per row
    assert {dict(key)["class"] for key in predicted} == {"0", "1", "2"}
    for stage in ("decode", "predict", "encode"):
        assert found[("mlcp_inference_stage_duration_seconds_count", labels(stage=stage))] == 2


def test_each_server_has_its_own_registry(make_server) -> None:
    first, second = make_server(), make_server()
    invoke(first.data_app, json.dumps(ROWS).encode())
    assert samples(first)[("mlcp_inference_requests_total", labels(code="200"))] == 1
    assert samples(second)[("mlcp_inference_requests_total", labels(code="200"))] == 0


def test_the_error_series_exist_at_zero_before_the_first_error(make_server) -> None:
    """rate() needs an earlier sample: a 5xx series born with the first failure delays the alert a scrape."""
    found = samples(make_server(load=False))
    for code in ("500", "503"):
        assert found[("mlcp_inference_requests_total", labels(code=code))] == 0


def test_a_sha256_mismatch_never_becomes_ready(make_server, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="workloads.inference"):
        server = make_server(model_sha256="0" * 64)
    ping = asgi_call(server.data_app, "GET", "/ping")
    assert ping.status == 503
    assert ping.json()["status"] == "failed" and "artifact_integrity" in ping.json()["reason"]
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 503
    assert samples(server)[("mlcp_inference_model_loaded", labels())] == 0
    assert any("MODEL NOT LOADED" in r.message and "sha256" in r.message for r in caplog.records)


def test_a_corrupt_model_never_becomes_ready(tmp_path, caplog: pytest.LogCaptureFixture) -> None:
    broken: Artifact = write_artifact(tmp_path / "run", model_pt=model_bytes()[:200])
    server = create_app(ServerSettings(model_uri=str(broken.folder), model_load_attempts=1))
    with caplog.at_level(logging.ERROR, logger="workloads.inference"):
        server.slot.start_loading()
        assert server.slot.wait_settled(30)
    assert asgi_call(server.data_app, "GET", "/ping").status == 503
    assert any("artifact_invalid" in r.message for r in caplog.records)


def test_draining_turns_ping_to_503_but_still_answers_invocations(make_server) -> None:
    server = make_server()
    server.start_draining()
    assert asgi_call(server.data_app, "GET", "/ping").json()["status"] == "draining"
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 200


def test_fault_injection_is_off_by_default(make_server) -> None:
    server = make_server()
    assert server.admin_app is None and server.faults is None
    reply = asgi_call(server.data_app, "POST", "/admin/fault", b'{"error_ratio": 1}', JSON)
    assert reply.status == 404
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 200


def test_fault_injection_when_enabled(make_server) -> None:
    server = make_server(fault_injection_enabled=True)
    admin = server.admin_app
    assert asgi_call(admin, "GET", "/admin/fault").json() == {"error_ratio": 0.0, "latency_ms": 0.0}
    assert asgi_call(admin, "POST", "/admin/fault", b'{"error_ratio": 1.0}', JSON).status == 200
    failed = invoke(server.data_app, json.dumps(ROWS).encode())
    assert failed.status == 500 and failed.json()["error"] == "injected_fault"
    assert samples(server)[("mlcp_inference_requests_total", labels(code="500"))] == 1
    assert asgi_call(admin, "POST", "/admin/fault", b'{"error_ratio": 2}', JSON).status == 400
    assert asgi_call(admin, "POST", "/admin/fault", b'{"colour": "red"}', JSON).status == 400
    assert asgi_call(admin, "DELETE", "/admin/fault").json() == {"error_ratio": 0.0, "latency_ms": 0.0}
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 200
    # The admin listener serves only the admin route, the data listener never serves it.
    assert asgi_call(admin, "POST", "/invocations", b"[[1,2,3,4]]", JSON).status == 404
    assert asgi_call(server.data_app, "GET", "/admin/fault").status == 404


def test_a_share_of_requests_fails(make_server) -> None:
    server = make_server(fault_injection_enabled=True)
    server.faults._rng = random.Random(7)  # deterministic draw
    server.faults.update({"error_ratio": 0.5})
    codes = [invoke(server.data_app, json.dumps(ROWS[:1]).encode()).status for _ in range(200)]
    assert set(codes) == {200, 500}
    assert 70 <= codes.count(500) <= 130


def test_injected_latency_delays_answers(make_server) -> None:
    import time

    server = make_server(fault_injection_enabled=True)
    server.faults.update({"latency_ms": 150})
    started = time.perf_counter()
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 200
    assert time.perf_counter() - started >= 0.14


def test_the_listener_router_sends_the_admin_port_to_the_admin_app(make_server) -> None:
    server = make_server(fault_injection_enabled=True)
    router = ListenerRouter(server.data_app, server.admin_app, admin_port=9001)
    on_admin = asgi_call(router, "GET", "/admin/fault", server=("127.0.0.1", 9001))
    on_data = asgi_call(router, "GET", "/admin/fault", server=("10.0.0.5", 8080))
    assert on_admin.status == 200 and on_data.status == 404
    assert asgi_call(router, "GET", "/ping", server=("10.0.0.5", 8080)).status == 200


def test_initial_faults_from_settings_apply_only_when_enabled(make_server) -> None:
    assert make_server(load=False, initial_error_ratio=1.0).faults is None
    server = make_server(fault_injection_enabled=True, initial_error_ratio=1.0)
    assert isinstance(server.faults, FaultInjector)
    assert invoke(server.data_app, json.dumps(ROWS).encode()).status == 500
