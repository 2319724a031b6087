"""The SageMaker inference handler: model_fn, input_fn, predict_fn, output_fn.

It follows sagemaker-inference's `DefaultInferenceHandler` conventions and uses the toolkit's
decoders/encoders, so the very same handler runs under this server and under the toolkit's own
Multi Model Server (the benchmark's baseline does exactly that).

Two deliberate departures, both on untrusted request bodies:
- NPY: the toolkit decodes with `np.load(..., allow_pickle=True)`, which unpickles object arrays —
  code execution from a request body. Decoded here with `allow_pickle=False`.
- CSV: the toolkit's `np.genfromtxt(dtype=None)` infers a type per column and turns an empty
  field into 0 — a silently wrong prediction. Decoded here with `np.loadtxt(dtype=float32)`,
  which rejects it (400), and is faster.
JSON: the toolkit's decoder is `np.array(json.loads(text))` and its encoder `json.dumps`; both are
called here directly, without the detour through an object array, to the same result (the model
server spends its CPU per request on little else: see benchmarks/model_server.py).
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sagemaker_inference import content_types
from sagemaker_inference.default_inference_handler import DefaultInferenceHandler

from workloads.inference.errors import BadRequestBody, NotAcceptable, PredictionFailed, UnsupportedContentType
from workloads.inference.repository import LoadedModel, ModelRepository, open_store

SUPPORTED_INPUT_TYPES = (content_types.JSON, content_types.CSV, content_types.NPY)
OUTPUT_TYPE = content_types.JSON
_ACCEPTABLE = {content_types.JSON, content_types.ANY, "application/*"}


@dataclass(frozen=True)
class Prediction:
    class_indices: np.ndarray  # [N] int64, index into the model's classes
    probabilities: np.ndarray  # [N, K] float32
    labels: list[Any]  # the classes themselves, as metadata.json names them

    def part(self, start: int, stop: int) -> Prediction:
        """Rows start..stop: one request's share of a batched prediction."""
        return Prediction(self.class_indices[start:stop], self.probabilities[start:stop], self.labels[start:stop])


def media_type(header: str | None) -> str:
    """`Application/JSON; charset=utf-8` -> `application/json`."""
    return (header or "").split(";", 1)[0].strip().lower()


class ModelHandler(DefaultInferenceHandler):
    def default_model_fn(self, model_dir: str, context: Any = None) -> LoadedModel:
        """SageMaker's model_fn: the artifact in `model_dir` (the toolkit's /opt/ml/model)."""
        return ModelRepository(open_store(model_dir), os.environ.get("MODEL_SHA256") or None).load()

    def default_input_fn(self, input_data: Any, content_type: str, context: Any = None) -> np.ndarray:
        """Request body -> float32 rows [N, F]. Raises UnsupportedContentType or BadRequestBody."""
        kind = media_type(content_type)
        if kind not in SUPPORTED_INPUT_TYPES:
            raise UnsupportedContentType(
                f"content type {content_type or '(none)'!r} is not supported; "
                f"use one of {', '.join(SUPPORTED_INPUT_TYPES)}"
            )
        if not input_data:
            raise BadRequestBody("the request body is empty")
        if kind == content_types.NPY:
            return _rows(_decode_npy(_as_bytes(input_data)))
        if kind == content_types.CSV:
            text = _as_text(input_data)
            if not text.strip():
                raise BadRequestBody("the request body is empty")
            return _rows(_decode_csv(text))
        try:
            document = json.loads(input_data)
        except ValueError as exc:  # json.JSONDecodeError, and UnicodeDecodeError for bytes that are not UTF-8
            if isinstance(input_data, (bytes, bytearray)) and not bytes(input_data).strip():
                raise BadRequestBody("the request body is empty") from exc
            raise BadRequestBody(f"cannot parse the {kind} body: {exc}") from exc
        return _rows(_json_instances(document))

    def check_rows(self, data: np.ndarray, model: LoadedModel) -> None:
        """Raises BadRequestBody unless the rows fit the model (checked before a request joins a batch)."""
        if data.shape[1] != model.n_features:
            raise BadRequestBody(
                f"each row needs {model.n_features} features ({', '.join(model.feature_names)}), got {data.shape[1]}"
            )

    def default_predict_fn(self, data: np.ndarray, model: LoadedModel, context: Any = None) -> Prediction:
        self.check_rows(data, model)
        try:
            # The script method itself: nn.Module.__call__'s hook handling costs ~4 µs a call, and a
            # TorchScript module has no Python hooks to run.
            forward = model.module.forward
            if torch.is_inference_mode_enabled():  # the server's event loop thread runs in it for good
                probabilities = torch.softmax(forward(torch.from_numpy(data)), dim=1).numpy()
            else:
                with torch.inference_mode():
                    probabilities = torch.softmax(forward(torch.from_numpy(data)), dim=1).numpy()
        except Exception as exc:
            raise PredictionFailed(f"the model failed on a batch of {data.shape[0]}: {exc}") from exc
        index_array = probabilities.argmax(axis=1)
        classes = model.classes
        return Prediction(
            class_indices=index_array,
            probabilities=probabilities,
            labels=[classes[i] for i in index_array.tolist()],
        )

    def default_output_fn(self, prediction: Prediction, accept: str, context: Any = None) -> tuple[bytes, str]:
        """The contract's JSON: {"predictions": [class, ...], "probabilities": [[...], ...]}."""
        wanted = {media_type(part) for part in (accept or content_types.ANY).split(",")}
        if not wanted & _ACCEPTABLE:
            raise NotAcceptable(f"accept {accept!r} is not supported; this server answers {OUTPUT_TYPE}")
        document = {"predictions": prediction.labels, "probabilities": prediction.probabilities.tolist()}
        return json.dumps(document).encode(), OUTPUT_TYPE


def _as_bytes(data: Any) -> bytes:
    return bytes(data) if isinstance(data, (bytearray, memoryview)) else data


def _as_text(data: Any) -> str:
    if isinstance(data, str):
        return data
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadRequestBody(f"the body is not UTF-8: {exc}") from exc


def _decode_npy(data: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise BadRequestBody(f"cannot read the NPY body: {exc}") from exc
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "biuf":
        raise BadRequestBody("the NPY body must hold a numeric array")
    return array


def _decode_csv(text: str) -> np.ndarray:
    try:
        return np.loadtxt(io.StringIO(text), dtype=np.float32, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise BadRequestBody(f"cannot parse the text/csv body (numbers only, no header): {exc}") from exc


def _json_instances(document: Any) -> Any:
    """`{"instances": rows}` or the rows themselves."""
    if isinstance(document, dict):
        if "instances" not in document:
            raise BadRequestBody('a JSON object body needs an "instances" list')
        return document["instances"]
    return document


def _rows(value: Any) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (ValueError, TypeError) as exc:
        raise BadRequestBody(f"the rows must be equal-length lists of numbers: {exc}") from exc
    if array.ndim == 1:
        array = array.reshape(1, -1)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise BadRequestBody(f"expected a non-empty list of rows, got an array of shape {tuple(array.shape)}")
    if not np.isfinite(array).all():
        raise BadRequestBody("every feature must be a finite number (no NaN, infinity or empty fields)")
    return np.ascontiguousarray(array)
