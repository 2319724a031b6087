"""The CLI's API client at its HTTP boundary: SigV4 for API Gateway, errors as exit codes, settings.

A transport adapter stands in for the network: these are the requests and answers AWS would see.
"""

from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner

from control.cli import main
from control.cli.api_client import ApiClient
from control.cli.config import ClientConfig, load_client_config
from control.cli.errors import ClientError, ExitCode

API_GATEWAY = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod"


class Recorder(requests.adapters.BaseAdapter):
    """Answers every request with one canned response and keeps what was sent."""

    def __init__(self, status: int, body: object, content_type: str = "application/json") -> None:
        super().__init__()
        self.status, self.body, self.content_type = status, body, content_type
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, **kwargs):  # type: ignore[no-untyped-def]
        self.sent.append(request)
        response = requests.Response()
        response.status_code = self.status
        response.headers["Content-Type"] = self.content_type
        text = self.body if isinstance(self.body, str) else json.dumps(self.body)
        response._content = text.encode()
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        return None


def client_answering(status: int, body: object, settings: ClientConfig, **kwargs) -> tuple[ApiClient, Recorder]:
    recorder = Recorder(status, body, **kwargs)
    session = requests.Session()
    session.mount("https://", recorder)
    session.mount("http://", recorder)
    return ApiClient(settings, session=session), recorder


@pytest.fixture
def aws_credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_without_a_token_requests_are_signed_with_sigv4_for_execute_api(aws_credentials):
    settings = load_client_config(environ={"MLCP_API_URL": API_GATEWAY})
    assert settings.region == "eu-west-1"  # from the execute-api host
    api, recorder = client_answering(202, {"deployment": "churn-api", "status": {}}, settings)

    api.start_rollout("churn-api", {"model": "churn", "version": 3})

    sent = recorder.sent[0]
    assert sent.url == f"{API_GATEWAY}/deployments/churn-api/rollouts"
    authorization = sent.headers["Authorization"]
    assert authorization.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/aws4_request" in authorization
    assert "X-Amz-Date" in sent.headers
    assert json.loads(sent.body) == {"model": "churn", "version": 3}


def test_with_a_token_requests_carry_it_and_are_not_signed():
    api, recorder = client_answering(200, {"models": []}, ClientConfig(api_url="http://127.0.0.1:1", api_token="t0k"))
    assert api.list_models() == []
    assert recorder.sent[0].headers["Authorization"] == "Bearer t0k"


@pytest.mark.parametrize(
    ("status", "body", "exit_code", "message"),
    [
        (403, {"message": "Missing Authentication Token"}, ExitCode.UNAUTHORIZED, "Missing Authentication Token"),
        (409, {"error": "Conflict", "message": "x is rolling out", "field": "deployment"}, ExitCode.CONFLICT, "x is"),
        (502, "<html>Bad Gateway</html>", ExitCode.UNAVAILABLE, "Bad Gateway"),
        (503, {"error": "TransientError", "message": "DynamoDB throttled"}, ExitCode.UNAVAILABLE, "throttled"),
        (413, {"error": "PayloadTooLarge", "message": "too big"}, ExitCode.INVALID, "too big"),
    ],
)
def test_api_errors_become_exit_codes_with_the_apis_message(status, body, exit_code, message):
    content_type = "text/html" if isinstance(body, str) else "application/json"
    api, _ = client_answering(
        status, body, ClientConfig(api_url="http://127.0.0.1:1", api_token="t"), content_type=content_type
    )
    with pytest.raises(ClientError) as raised:
        api.list_deployments()
    assert raised.value.exit_code == exit_code
    assert message in raised.value.message
    assert raised.value.status == status


def test_missing_aws_credentials_say_how_to_provide_them(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    result = CliRunner().invoke(main, ["models", "list"], env={"MLCP_ENDPOINTS": "", "MLCP_API_URL": API_GATEWAY})
    assert result.exit_code == ExitCode.UNAUTHORIZED
    assert "no AWS credentials" in result.stderr and "MLCP_API_TOKEN" in result.stderr


def test_the_endpoints_file_wins_over_the_environment(tmp_path):
    path = tmp_path / "endpoints.json"
    path.write_text(
        json.dumps(
            {
                "api_url": "http://127.0.0.1:8000/",
                "api_token": "abc",
                "region": "us-east-1",
                "aws_endpoint_url": "http://127.0.0.1:5000",
                "prometheus_url": "http://127.0.0.1:9090",
            }
        )
    )
    settings = load_client_config(environ={"MLCP_ENDPOINTS": str(path), "MLCP_API_URL": API_GATEWAY})
    assert (settings.api_url, settings.api_token, settings.aws_endpoint_url, settings.prometheus_url) == (
        "http://127.0.0.1:8000",
        "abc",
        "http://127.0.0.1:5000",
        "http://127.0.0.1:9090",
    )
    assert settings.is_local

    with pytest.raises(ClientError) as broken:
        path.write_text("{not json")
        load_client_config(path)
    assert broken.value.exit_code == ExitCode.INVALID
