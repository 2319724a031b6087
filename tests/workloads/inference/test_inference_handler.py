"""The SageMaker handler functions: decoding each content type, predicting, encoding."""

from __future__ import annotations

import io
import json
import os

import numpy as np
import pytest
import torch

from tests.support.inference_artifact import Artifact, reference_logits
from workloads.inference.errors import BadRequestBody, NotAcceptable, UnsupportedContentType, http_status
from workloads.inference.handler import ModelHandler, media_type
from workloads.inference.repository import LoadedModel

ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture
def handler() -> ModelHandler:
    return ModelHandler()


@pytest.fixture
def model(handler: ModelHandler, artifact: Artifact) -> LoadedModel:
    return handler.default_model_fn(str(artifact.folder))


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (json.dumps({"instances": ROWS}).encode(), "application/json"),
        (json.dumps(ROWS).encode(), "application/json"),
        (json.dumps(ROWS), "Application/JSON; charset=utf-8"),  # MMS hands over text for UTF-8 types
        (b"5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n", "text/csv"),
        (npy(np.array(ROWS, dtype=np.float64)), "application/x-npy"),
        (bytearray(npy(np.array(ROWS, dtype=np.float32))), "application/x-npy"),
    ],
)
def test_each_content_type_decodes_to_float32_rows(handler: ModelHandler, body, content_type) -> None:
    rows = handler.default_input_fn(body, content_type)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(rows, np.array(ROWS, dtype=np.float32))


def test_a_single_row_is_one_instance(handler: ModelHandler) -> None:
    assert handler.default_input_fn(b"[1, 2, 3, 4]", "application/json").shape == (1, 4)
    assert handler.default_input_fn(b"1,2,3,4", "text/csv").shape == (1, 4)


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-npz", "image/png"])
def test_unsupported_content_type_is_415(handler: ModelHandler, content_type: str) -> None:
    with pytest.raises(UnsupportedContentType) as caught:
        handler.default_input_fn(b"[[1,2,3,4]]", content_type)
    assert http_status(caught.value) == 415


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"", "application/json"),
        (b"{not json", "application/json"),
        (b'{"rows": [[1, 2, 3, 4]]}', "application/json"),
        (b"[[1, 2], [3]]", "application/json"),
        (b'[["a", "b", "c", "d"]]', "application/json"),
        (b"[[NaN, 1, 2, 3]]", "application/json"),
        (b"[]", "application/json"),
        (b"7", "application/json"),
        (b"1,2,x,4\n", "text/csv"),
        (b"1,2,,4\n", "text/csv"),
        (b"1,2,3,4\n1,2\n", "text/csv"),
        (b"\n\n", "text/csv"),
        (b"\xff\xfe", "text/csv"),
        (b"not an npy file", "application/x-npy"),
        (npy(np.array(["a", "b"])), "application/x-npy"),
    ],
)
def test_bad_bodies_are_400(handler: ModelHandler, body: bytes, content_type: str) -> None:
    with pytest.raises(BadRequestBody) as caught:
        handler.default_input_fn(body, content_type)
    assert http_status(caught.value) == 400


class _Boom:
    def __reduce__(self):  # what an attacker would put in an object array
        return (eval, ("__import__('os').environ.__setitem__('MLCP_PWNED', '1')",))


def test_npy_object_arrays_are_refused_never_unpickled(handler: ModelHandler, monkeypatch) -> None:
    monkeypatch.delenv("MLCP_PWNED", raising=False)
    array = np.empty(1, dtype=object)
    array[0] = _Boom()
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=True)
    with pytest.raises(BadRequestBody):
        handler.default_input_fn(buffer.getvalue(), "application/x-npy")
    # The stock toolkit decoder (np.load(..., allow_pickle=True)) would have run the payload.
    assert "MLCP_PWNED" not in os.environ


def test_predict_matches_the_model_and_names_classes(
    handler: ModelHandler, model: LoadedModel, artifact: Artifact
) -> None:
    prediction = handler.default_predict_fn(np.array(ROWS, dtype=np.float32), model)
    logits = reference_logits(artifact.model_pt, ROWS)
    expected = torch.softmax(logits, dim=1).numpy()
    np.testing.assert_allclose(prediction.probabilities, expected, rtol=1e-5)
    assert prediction.labels == [model.classes[i] for i in expected.argmax(axis=1)]
    np.testing.assert_allclose(prediction.probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_wrong_number_of_features_is_400(handler: ModelHandler, model: LoadedModel) -> None:
    with pytest.raises(BadRequestBody, match="needs 4 features"):
        handler.default_predict_fn(np.zeros((1, 3), dtype=np.float32), model)


def test_output_is_the_contract_json(handler: ModelHandler, model: LoadedModel) -> None:
    prediction = handler.default_predict_fn(np.array(ROWS, dtype=np.float32), model)
    for accept in ("", "*/*", "application/json", "text/html, application/json;q=0.9"):
        body, content_type = handler.default_output_fn(prediction, accept)
        assert content_type == "application/json"
        document = json.loads(body)
        assert set(document) == {"predictions", "probabilities"}
        assert document["predictions"] == prediction.labels
        assert len(document["probabilities"]) == 2 and len(document["probabilities"][0]) == 3


def test_unsupported_accept_is_406(handler: ModelHandler, model: LoadedModel) -> None:
    prediction = handler.default_predict_fn(np.array(ROWS, dtype=np.float32), model)
    with pytest.raises(NotAcceptable) as caught:
        handler.default_output_fn(prediction, "text/csv")
    assert http_status(caught.value) == 406


def test_media_type_drops_parameters_and_case() -> None:
    assert media_type("Text/CSV; charset=utf-8") == "text/csv"
    assert media_type(None) == ""
