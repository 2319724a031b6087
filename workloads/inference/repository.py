"""Model repository: fetch a training run's artifact, verify it, load it.

The artifact is what the training job writes under its output URI (docs/contracts.md):
`metadata.json` (written last, it marks the run complete) and the TorchScript file it names
(`model.pt`). Both come from `s3://bucket/prefix/` or a local folder. The model file's sha256 must
equal `MODEL_SHA256` when the registry gives one, and always the digest metadata.json recorded:
a server whose artifact fails either check never becomes ready.

Loading is the only place that touches storage; nothing here knows about HTTP.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from workloads.inference.errors import (
    ArtifactError,
    ArtifactIntegrityError,
    ArtifactInvalid,
    ArtifactNotFound,
    ArtifactUnavailable,
)

METADATA_FILE = "metadata.json"
DEFAULT_MODEL_FILE = "model.pt"
_MAX_METADATA_BYTES = 1 * 2**20

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    module: torch.jit.ScriptModule
    metadata: Mapping[str, Any]
    feature_names: tuple[str, ...]
    classes: tuple[Any, ...]
    sha256: str

    @property
    def n_features(self) -> int:
        return len(self.feature_names)


class ArtifactStore(Protocol):
    """Where an artifact's files are: one primitive, read a file by name."""

    location: str

    def read(self, name: str) -> bytes: ...


class LocalArtifactStore:
    def __init__(self, root: str) -> None:
        self.location = root
        self._root = root

    def read(self, name: str) -> bytes:
        path = os.path.join(self._root, name)
        try:
            with open(path, "rb") as handle:
                return handle.read()
        except FileNotFoundError as exc:
            raise ArtifactNotFound(f"{path} does not exist") from exc
        except OSError as exc:
            raise ArtifactUnavailable(f"cannot read {path}: {exc}") from exc


class S3ArtifactStore:
    """Reads objects into memory: nothing is written to disk (read-only root filesystem)."""

    def __init__(self, bucket: str, prefix: str, client_factory: Callable[[], Any] | None = None) -> None:
        self.location = f"s3://{bucket}/{prefix}"
        self._bucket = bucket
        self._prefix = prefix
        self._client_factory = client_factory or _default_s3_client
        self._client: Any = None

    def read(self, name: str) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        key = self._prefix + name
        try:
            if self._client is None:
                self._client = self._client_factory()
            response = self._client.get_object(Bucket=self._bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
                raise ArtifactNotFound(f"s3://{self._bucket}/{key} does not exist") from exc
            # Access denied is retried too: a new pod's web identity can take a moment to work.
            raise ArtifactUnavailable(f"s3://{self._bucket}/{key}: {code or exc}") from exc
        except BotoCoreError as exc:
            raise ArtifactUnavailable(f"s3://{self._bucket}/{key}: {exc}") from exc


def _default_s3_client() -> Any:
    import boto3

    # boto3 itself honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_S3); passing it keeps that explicit.
    return boto3.client("s3", endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None)


def open_store(uri: str, s3_client_factory: Callable[[], Any] | None = None) -> ArtifactStore:
    """`s3://bucket/prefix/`, `file:///path` or a plain path, each naming the run's folder."""
    if uri.startswith("s3://"):
        bucket, _, prefix = uri[len("s3://") :].partition("/")
        if not bucket:
            raise ArtifactNotFound(f"no bucket in {uri!r}")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        return S3ArtifactStore(bucket, prefix, s3_client_factory)
    if uri.startswith("file://"):
        uri = uri[len("file://") :]
    if "://" in uri:
        raise ArtifactNotFound(f"unsupported model URI {uri!r}: use s3://bucket/prefix/ or a path")
    return LocalArtifactStore(uri)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class ModelRepository:
    """Loads and verifies one artifact. `expected_sha256` comes from the registry."""

    def __init__(self, store: ArtifactStore, expected_sha256: str | None = None) -> None:
        self._store = store
        self._expected_sha256 = expected_sha256.lower() if expected_sha256 else None

    @property
    def location(self) -> str:
        return self._store.location

    def load(self) -> LoadedModel:
        metadata = self._read_metadata()
        artifact = metadata.get("artifact") or DEFAULT_MODEL_FILE
        if not isinstance(artifact, str) or "/" in artifact or "\\" in artifact or artifact in (".", ".."):
            raise ArtifactInvalid(f"metadata.json names an unusable artifact {artifact!r}")
        model_bytes = self._store.read(artifact)
        digest = sha256_hex(model_bytes)
        if self._expected_sha256 is not None and digest != self._expected_sha256:
            raise ArtifactIntegrityError(
                f"sha256 of {self.location}{artifact} is {digest}, the registry expects {self._expected_sha256}"
            )
        recorded = metadata.get("sha256")
        if recorded and str(recorded).lower() != digest:
            raise ArtifactIntegrityError(
                f"sha256 of {self.location}{artifact} is {digest}, metadata.json records {recorded}"
            )
        feature_names = metadata["feature_names"]
        classes = metadata["classes"]
        module = _load_torchscript(model_bytes, f"{self.location}{artifact}")
        _check_shapes(module, len(feature_names), len(classes), f"{self.location}{artifact}")
        return LoadedModel(
            module=module,
            metadata=metadata,
            feature_names=tuple(feature_names),
            classes=tuple(classes),
            sha256=digest,
        )

    def _read_metadata(self) -> dict[str, Any]:
        raw = self._store.read(METADATA_FILE)
        if len(raw) > _MAX_METADATA_BYTES:
            raise ArtifactInvalid(f"{self.location}{METADATA_FILE} is larger than {_MAX_METADATA_BYTES} bytes")
        try:
            metadata = json.loads(raw)
        except ValueError as exc:
            raise ArtifactInvalid(f"{self.location}{METADATA_FILE} is not JSON: {exc}") from exc
        if not isinstance(metadata, dict):
            raise ArtifactInvalid(f"{self.location}{METADATA_FILE} is not a JSON object")
        features = metadata.get("feature_names")
        classes = metadata.get("classes")
        if not isinstance(features, list) or not features or not all(isinstance(name, str) for name in features):
            raise ArtifactInvalid(f"{self.location}{METADATA_FILE}: feature_names must be a non-empty list of names")
        if not _non_empty_list(classes):
            raise ArtifactInvalid(f"{self.location}{METADATA_FILE}: classes must be a non-empty list")
        return metadata


def _non_empty_list(value: Any) -> bool:
    return isinstance(value, list) and len(value) > 0


def _load_torchscript(model_bytes: bytes, where: str) -> torch.jit.ScriptModule:
    try:
        module = torch.jit.load(io.BytesIO(model_bytes), map_location="cpu")
    except Exception as exc:  # torch raises RuntimeError, ValueError, zipfile errors... for bad bytes
        raise ArtifactInvalid(f"{where} is not a loadable TorchScript model: {_first_line(exc)}") from exc
    module.eval()
    return _optimized_for_inference(module)


def _optimized_for_inference(module: torch.jit.ScriptModule) -> torch.jit.ScriptModule:
    """Frozen (weights inlined as constants) and optimised for inference: ~5 us less per forward
    of a small model, and no autograd bookkeeping. A model torch cannot freeze is served as it is."""
    try:
        return torch.jit.optimize_for_inference(torch.jit.freeze(module))
    except Exception as exc:  # freezing is an optimisation: whatever torch objects to, serve the original
        log.info("serving the model unfrozen (torch.jit.freeze: %s)", _first_line(exc))
        return module


def _check_shapes(module: torch.jit.ScriptModule, n_features: int, n_classes: int, where: str) -> None:
    """Runs the model a few times on zeros: the shapes must match metadata.json, and the first calls
    (when TorchScript's profiling executor optimises the graph) are paid before the server is ready."""
    probe = torch.zeros((2, n_features), dtype=torch.float32)
    try:
        with torch.inference_mode():
            for _ in range(3):
                logits = module(probe)
    except Exception as exc:
        raise ArtifactInvalid(f"{where} fails on a [2, {n_features}] input: {_first_line(exc)}") from exc
    if not isinstance(logits, torch.Tensor) or tuple(logits.shape) != (2, n_classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ArtifactInvalid(f"{where} returns {shape} for [2, {n_features}], expected (2, {n_classes})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def load_with_retries(
    repository: ModelRepository,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], object] = time.sleep,
    should_stop: Callable[[], bool] = lambda: False,
) -> LoadedModel:
    """Retries only what may pass (storage hiccups), with exponential backoff; a bad artifact fails at once."""
    last: ArtifactError | None = None
    for attempt in range(1, attempts + 1):
        try:
            return repository.load()
        except ArtifactError as exc:
            last = exc
            if not exc.retryable or attempt == attempts or should_stop():
                raise
            delay = backoff_s * (2 ** (attempt - 1))
            log.warning(
                "model load attempt %d/%d from %s failed (%s), retrying in %.1fs",
                attempt,
                attempts,
                repository.location,
                exc,
                delay,
            )
            sleep(delay)
    assert last is not None
    raise last


def describe(model: LoadedModel) -> Sequence[str]:
    meta = model.metadata
    return (
        f"run_id={meta.get('run_id', '?')}",
        f"features={model.n_features}",
        f"classes={len(model.classes)}",
        f"sha256={model.sha256[:12]}",
    )
