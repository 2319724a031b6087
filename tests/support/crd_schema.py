"""Custom resources checked against the openAPIV3Schema of their vendored CRD (workloads/k8s/crds/)."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import yaml

from tests.support.tools import CRDS

VPA_CRD_FILE = CRDS / "verticalpodautoscalers.autoscaling.k8s.io-chart-0.11.0.yaml"


def strict(schema: Any) -> Any:
    """Forbid properties the schema does not name (what pruning would drop)."""
    if isinstance(schema, dict):
        schema = {key: strict(value) for key, value in schema.items()}
        if (
            "properties" in schema
            and "additionalProperties" not in schema
            and not schema.get("x-kubernetes-preserve-unknown-fields")
        ):
            schema["additionalProperties"] = False
        return schema
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    return schema


@functools.cache
def vpa_validator() -> jsonschema.protocols.Validator:
    """VerticalPodAutoscaler autoscaling.k8s.io/v1 as the VPA chart the add-ons install ships it."""
    documents = yaml.safe_load_all(VPA_CRD_FILE.read_text())
    crd = next(d for d in documents if d and d["metadata"]["name"] == "verticalpodautoscalers.autoscaling.k8s.io")
    version = next(v for v in crd["spec"]["versions"] if v["name"] == "v1")
    return jsonschema.Draft7Validator(strict(version["schema"]["openAPIV3Schema"]))
