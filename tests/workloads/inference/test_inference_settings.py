"""Settings from the environment, and the error -> HTTP status table."""

from __future__ import annotations

import pytest
from sagemaker_inference.errors import UnsupportedFormatError

from workloads.inference import errors
from workloads.inference.errors import ConfigurationError, http_status
from workloads.inference.settings import ServerSettings


def test_defaults_follow_the_sagemaker_contract() -> None:
    settings = ServerSettings.from_env({})
    assert settings.port == 8080
    assert settings.model_uri == "/opt/ml/model"
    assert settings.model_sha256 is None
    assert settings.fault_injection_enabled is False
    assert settings.admin_host == "127.0.0.1"
    assert settings.drain_timeout_s < 30


def test_reads_the_registry_and_sagemaker_variables() -> None:
    settings = ServerSettings.from_env(
        {
            "MODEL_URI": "s3://artifacts/models/iris/runs/r1/",
            "MODEL_SHA256": "AB" * 32,
            "MODEL_NAME": "iris",
            "MODEL_VERSION": "3",
            "SAGEMAKER_BIND_TO_PORT": "9090",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "1",
            "MLCP_ENABLE_FAULT_INJECTION": "true",
            "MLCP_ADMIN_PORT": "9091",
        }
    )
    assert settings.model_sha256 == "ab" * 32
    assert (settings.model_name, settings.model_version, settings.port) == ("iris", "3", 9090)
    assert settings.max_body_bytes == 2**20
    assert settings.fault_injection_enabled and settings.admin_port == 9091


@pytest.mark.parametrize(
    "env",
    [
        {"MODEL_SHA256": "not-a-digest"},
        {"SAGEMAKER_BIND_TO_PORT": "http"},
        {"SAGEMAKER_BIND_TO_PORT": "70000"},
        {"MLCP_ENABLE_FAULT_INJECTION": "maybe"},
        {"MLCP_FAULT_ERROR_RATIO": "1.5"},
        {"MLCP_ENABLE_FAULT_INJECTION": "1", "SAGEMAKER_BIND_TO_PORT": "8081"},
        {"MLCP_WORKERS": "0"},
        {"MLCP_WORKERS": "two"},
        {"MLCP_ENABLE_FAULT_INJECTION": "1", "MLCP_WORKERS": "2"},
        {"MLCP_BATCH_MAX_WAIT_MS": "5"},
        {"MLCP_BATCH_MAX_ROWS": "0"},
    ],
)
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        ServerSettings.from_env(env)
    assert any(name in str(caught.value) for name in env)


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.BadRequestBody("x"), 400),
        (errors.RouteNotFound("x"), 404),
        (errors.MethodNotAllowed("x"), 405),
        (errors.NotAcceptable("x"), 406),
        (errors.PayloadTooLarge("x"), 413),
        (errors.UnsupportedContentType("x"), 415),
        (UnsupportedFormatError("text/plain"), 415),
        (errors.InjectedFault("x"), 500),
        (errors.ModelNotReady("x"), 503),
        (errors.ArtifactIntegrityError("x"), 500),
        (KeyError("a bug"), 500),
    ],
)
def test_one_table_maps_errors_to_status(error: Exception, status: int) -> None:
    assert http_status(error) == status
