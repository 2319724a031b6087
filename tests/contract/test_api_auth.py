"""API auth, one story: in AWS, API Gateway authenticates every route with IAM (SigV4) but the two
public GETs, the functions run with CONTROL_API_AUTH=iam and no API token, the app refuses a request
without the caller's identity and records the caller's ARN, the CLI signs with SigV4, and the README
says so. Locally the bearer token stays."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from chalice.app import Request
from chalice.test import Client

from control.errors import Unauthorized
from control.settings import Settings

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS = REPO / "terraform" / "modules" / "functions"
PUBLIC = {("GET", "healthz"), ("GET", "openapi.json")}
CALLER = "arn:aws:sts::123456789012:assumed-role/ml-engineer/alice"
BASE_ENV = {"CONTROL_DATA_BUCKET": "d", "CONTROL_ARTIFACTS_BUCKET": "a", "CONTROL_REGISTRY_TABLE": "t"}


def unq(value: Any) -> Any:
    """python-hcl2 8 keeps string quotes; drop them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def resources(path: Path, rtype: str) -> dict[str, dict[str, Any]]:
    with path.open() as handle:
        doc = hcl2.load(handle)
    return {
        unq(name): body
        for block in doc.get("resource", [])
        for kind, items in block.items()
        if unq(kind) == rtype
        for name, body in items.items()
    }


def test_every_method_is_aws_iam_but_the_two_public_gets() -> None:
    methods = resources(FUNCTIONS / "api.tf", "aws_api_gateway_method")
    api_resources = resources(FUNCTIONS / "api.tf", "aws_api_gateway_resource")
    assert methods, "no API Gateway method found"
    public = []
    for name, method in methods.items():
        authorization = unq(method["authorization"])
        if authorization == "AWS_IAM":
            continue
        assert authorization == "NONE", f"method {name}: authorization {authorization!r}"
        # A public method's resources: a for_each over aws_api_gateway_resource.public only.
        assert unq(method["for_each"]) == "${aws_api_gateway_resource.public}", f"public method {name} is not scoped"
        paths = {unq(p) for p in api_resources["public"]["for_each"].values()}
        public += [(unq(method["http_method"]), p) for p in paths]
    assert set(public) == PUBLIC, f"unauthenticated routes: {sorted(public)}"
    # Chalice's own routes that the public resources stand for are the unauthenticated ones.
    app = (REPO / "functions" / "app.py").read_text()
    for _, path in PUBLIC:
        assert f'@app.route("/{path}", methods=["GET"])' in app


def test_the_functions_run_in_iam_mode_without_an_api_token() -> None:
    with (FUNCTIONS / "main.tf").open() as handle:
        environment = next(b["environment"] for b in hcl2.load(handle)["locals"] if "environment" in b)
    assert re.search(r"""['"]?CONTROL_API_AUTH['"]?\s*[:=]\s*['"]+iam['"]+""", str(environment)), environment
    example = (REPO / "terraform" / "envs" / "example" / "main.tf").read_text()
    assert "CONTROL_API_TOKEN" not in example and "api_token" not in example
    variables = (FUNCTIONS / "variables.tf").read_text()
    assert '["CONTROL_API_TOKEN", "CONTROL_API_AUTH"]' in variables, "the module must refuse a token from outside"


@pytest.fixture
def iam_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Client]:
    from app import app
    from chalicelib import runtime

    for name, value in (BASE_ENV | {"CONTROL_API_AUTH": "iam", "CONTROL_API_TOKEN": ""}).items():
        monkeypatch.setenv(name, value)
    runtime.use_platform(None)
    with Client(app) as client:
        yield client
    runtime.use_platform(None)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/models"), ("GET", "/training-runs"), ("GET", "/deployments"), ("POST", "/deployments/x/rollback")],
)
def test_the_app_refuses_an_unsigned_request_in_iam_mode(iam_app: Client, method: str, path: str) -> None:
    # A bearer token is no substitute for the identity API Gateway adds after checking SigV4.
    response = iam_app.http.request(method, path, headers={"Authorization": "Bearer anything"}, body=b"{}")
    assert response.status_code == 401, response.body
    assert json.loads(response.body)["error"] == "Unauthorized"


def test_the_public_routes_answer_in_iam_mode(iam_app: Client) -> None:
    assert iam_app.http.get("/healthz").status_code == 200
    assert iam_app.http.get("/openapi.json").status_code == 200


@functools.cache
def gateway_event(user_arn: str | None) -> dict[str, Any]:
    """The proxy event API Gateway sends for a GET /models (identity filled only when SigV4 passed)."""
    identity = {"sourceIp": "203.0.113.7", "userArn": user_arn, "caller": "AROAEXAMPLE:alice" if user_arn else None}
    return {
        "resource": "/models",
        "path": "/models",
        "httpMethod": "GET",
        "headers": {"Host": "abc.execute-api.eu-west-1.amazonaws.com"},
        "multiValueHeaders": {"Host": ["abc.execute-api.eu-west-1.amazonaws.com"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {"resourcePath": "/models", "httpMethod": "GET", "stage": "api", "identity": identity},
        "body": None,
        "isBase64Encoded": False,
    }


def test_the_actor_is_the_callers_arn_and_a_missing_identity_is_refused() -> None:
    from chalicelib.runtime import authorize

    iam = Settings.from_env(BASE_ENV | {"CONTROL_API_AUTH": "iam"})
    assert authorize(Request(gateway_event(CALLER)), iam) == CALLER
    with pytest.raises(Unauthorized, match="SigV4"):
        authorize(Request(gateway_event(None)), iam)
    token = Settings.from_env(BASE_ENV | {"CONTROL_API_TOKEN": "s3cret"})
    with pytest.raises(Unauthorized):
        authorize(Request(gateway_event(CALLER)), token)  # locally, an identity is no token
    # token mode with no token configured refuses too (never an open API)
    with pytest.raises(Unauthorized):
        authorize(Request(gateway_event(None)), Settings.from_env(BASE_ENV))


def test_the_cli_signs_with_sigv4_when_it_has_no_token(monkeypatch: pytest.MonkeyPatch) -> None:
    import requests

    from control.cli.api_client import ApiClient
    from control.cli.config import ClientConfig
    from control.cli.signing import BearerAuth, SigV4Auth

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    aws = ApiClient(ClientConfig(api_url="https://abc.execute-api.eu-west-1.amazonaws.com/api", region="eu-west-1"))
    assert isinstance(aws.auth, SigV4Auth)
    signed = aws.auth(requests.Request("GET", "https://abc.execute-api.eu-west-1.amazonaws.com/api/models").prepare())
    assert "/eu-west-1/execute-api/aws4_request" in signed.headers["Authorization"]
    local = ApiClient(ClientConfig(api_url="http://127.0.0.1:1", api_token="t"))
    assert isinstance(local.auth, BearerAuth)


def test_the_readme_tells_the_same_story() -> None:
    readme = " ".join((REPO / "README.md").read_text().split())
    assert (
        "In AWS, API Gateway authenticates every route but `GET /healthz` and `GET /openapi.json` with IAM (SigV4"
        in readme
    )
    assert "there is no API token" in readme and "`CONTROL_API_AUTH=iam`" in readme
    contracts = (REPO / "docs" / "contracts.md").read_text()
    assert "`CONTROL_API_AUTH` (`iam` in AWS" in contracts
