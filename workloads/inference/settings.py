"""The model server's settings, read from the environment in one place (the composition root).

Names follow the SageMaker container contract where one exists (`SAGEMAKER_BIND_TO_PORT`,
`SAGEMAKER_MAX_PAYLOAD_IN_MB`, the model under `/opt/ml/model` by default); the rest are this
platform's (`MODEL_*` from the registry, `MLCP_*` for the server's own knobs).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from workloads.inference.errors import ConfigurationError

SAGEMAKER_MODEL_DIR = "/opt/ml/model"
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ServerSettings:
    model_uri: str = SAGEMAKER_MODEL_DIR
    model_sha256: str | None = None
    model_name: str = "model"
    model_version: str = "0"
    host: str = "0.0.0.0"  # the data port serves the pod network; admin stays on loopback
    port: int = 8080
    # Fault injection: off unless asked for; its endpoint listens on loopback only, on its own port.
    fault_injection_enabled: bool = False
    admin_host: str = "127.0.0.1"
    admin_port: int = 8081
    initial_error_ratio: float = 0.0
    initial_latency_ms: float = 0.0
    # Just under Kubernetes' default terminationGracePeriodSeconds (30).
    drain_timeout_s: float = 25.0
    max_body_bytes: int = 6 * 1024 * 1024
    # Invocations answered at once; the next gets 429 + Retry-After (0: no limit). /ping, /metrics
    # never wait behind them. 100 is MMS's default job queue size.
    max_concurrent_invocations: int = 100
    torch_threads: int = 1
    # 0: predict on the event loop (fastest for small models); N: a pool of N threads.
    inference_threads: int = 0
    # Micro-batching (batching.py): rows one forward pass may hold (1: off), and how long a request
    # may wait for others in progress to join (0: to the end of the event loop's turn; at most 2 ms).
    batch_max_rows: int = 64
    batch_max_wait_s: float = 0.0
    # Server processes on the port (SO_REUSEPORT); the 429 limit is split across them. 1: no supervisor.
    workers: int = 1
    # Set (by the supervisor) when several workers share their metrics: prometheus_client's multiprocess mode.
    metrics_dir: str | None = None
    model_load_attempts: int = 5
    model_load_backoff_s: float = 1.0
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if environ is None else environ
        sha = env.get("MODEL_SHA256", "").strip().lower() or None
        if sha is not None and (len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha)):
            raise ConfigurationError(f"MODEL_SHA256 must be 64 hex digits, not {sha!r}")
        settings = cls(
            model_uri=env.get("MODEL_URI", "").strip() or SAGEMAKER_MODEL_DIR,
            model_sha256=sha,
            model_name=env.get("MODEL_NAME", "").strip() or "model",
            model_version=env.get("MODEL_VERSION", "").strip() or "0",
            host=env.get("MLCP_BIND_HOST", "").strip() or "0.0.0.0",
            port=_int(env, "SAGEMAKER_BIND_TO_PORT", 8080, low=0, high=65535),
            fault_injection_enabled=_bool(env, "MLCP_ENABLE_FAULT_INJECTION"),
            admin_port=_int(env, "MLCP_ADMIN_PORT", 8081, low=0, high=65535),
            initial_error_ratio=_float(env, "MLCP_FAULT_ERROR_RATIO", 0.0, low=0.0, high=1.0),
            initial_latency_ms=_float(env, "MLCP_FAULT_LATENCY_MS", 0.0, low=0.0, high=60_000.0),
            drain_timeout_s=_float(env, "MLCP_DRAIN_TIMEOUT_S", 25.0, low=0.0, high=3600.0),
            max_body_bytes=int(_float(env, "SAGEMAKER_MAX_PAYLOAD_IN_MB", 6.0, low=0.001, high=1024.0) * 2**20),
            max_concurrent_invocations=_int(env, "MLCP_MAX_CONCURRENT_INVOCATIONS", 100, low=0, high=100_000),
            torch_threads=_int(env, "MLCP_TORCH_THREADS", 1, low=1, high=256),
            inference_threads=_int(env, "MLCP_INFERENCE_THREADS", 0, low=0, high=256),
            batch_max_rows=_int(env, "MLCP_BATCH_MAX_ROWS", 64, low=1, high=100_000),
            batch_max_wait_s=_float(env, "MLCP_BATCH_MAX_WAIT_MS", 0.0, low=0.0, high=2.0) / 1000,
            workers=_int(env, "MLCP_WORKERS", 1, low=1, high=64),
            metrics_dir=env.get("PROMETHEUS_MULTIPROC_DIR", "").strip() or None,
            model_load_attempts=_int(env, "MLCP_MODEL_LOAD_ATTEMPTS", 5, low=1, high=1000),
            model_load_backoff_s=_float(env, "MLCP_MODEL_LOAD_BACKOFF_S", 1.0, low=0.0, high=600.0),
            log_level=(env.get("MLCP_LOG_LEVEL", "").strip() or "INFO").upper(),
        )
        if settings.fault_injection_enabled and settings.admin_port == settings.port and settings.port != 0:
            raise ConfigurationError("MLCP_ADMIN_PORT must differ from SAGEMAKER_BIND_TO_PORT")
        if settings.fault_injection_enabled and settings.workers > 1:
            raise ConfigurationError(
                "MLCP_ENABLE_FAULT_INJECTION needs MLCP_WORKERS=1: the admin endpoint changes one process's faults"
            )
        return settings


def _bool(env: Mapping[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ConfigurationError(f"{name} must be 1/0 or true/false, not {raw!r}")


def _int(env: Mapping[str, str], name: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be an integer, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, not {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, *, low: float, high: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    if not low <= value <= high:
        raise ConfigurationError(f"{name} must be between {low} and {high}, not {value}")
    return value
