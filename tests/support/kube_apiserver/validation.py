"""The checks kube-apiserver makes beyond the OpenAPI schema that a rendering bug can trip: object
names (DNS-1123 / DNS-1035), label keys and values, the size of annotations, resource quantities.
Messages and regexes are the API server's (k8s.io/apimachinery/pkg/util/validation)."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.support.kube_apiserver.schemas import FieldError

DNS1123_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN = rf"{DNS1123_LABEL}(\.{DNS1123_LABEL})*"
DNS1035_LABEL = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
QUANTITY = r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?[0-9]+))?"
TOTAL_ANNOTATION_BYTES = 256 * 1024

_NAME_RULES = {
    "Service": (DNS1035_LABEL, 63, "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character"),
    "Namespace": (DNS1123_LABEL, 63, "a lowercase RFC 1123 label must consist of lower case alphanumeric "
                  "characters or '-', and must start and end with an alphanumeric character"),
}  # fmt: skip
_SUBDOMAIN_RULE = (
    DNS1123_SUBDOMAIN,
    253,
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character",
)


def _invalid(field: str, value: Any, detail: str) -> FieldError:
    return FieldError(field, "FieldValueInvalid", f"Invalid value: {json.dumps(value)}: {detail}")


def name_errors(kind: str, name: str) -> list[FieldError]:
    regex, limit, detail = _NAME_RULES.get(kind, _SUBDOMAIN_RULE)
    if len(name) > limit:
        return [_invalid("metadata.name", name, f"must be no more than {limit} characters")]
    if not re.fullmatch(regex, name):
        return [_invalid("metadata.name", name, f"{detail} (regex used for validation is '{regex}')")]
    return []


def label_errors(labels: Any, field: str) -> list[FieldError]:
    errors: list[FieldError] = []
    for key, value in (labels or {}).items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not re.fullmatch(DNS1123_SUBDOMAIN, prefix)):
            errors.append(_invalid(field, key, "prefix part must be a lowercase RFC 1123 subdomain"))
        if len(name) > 63 or not re.fullmatch(QUALIFIED_NAME, name):
            errors.append(
                _invalid(
                    field,
                    key,
                    "name part must consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character (at most 63)",
                )  # fmt: skip
            )
        if not isinstance(value, str) or len(value) > 63 or not re.fullmatch(LABEL_VALUE, value):
            errors.append(
                _invalid(
                    field,
                    value,
                    "a valid label must be an empty string or consist of alphanumeric characters, "
                    "'-', '_' or '.', and must start and end with an alphanumeric character (at most 63)",
                )  # fmt: skip
            )
    return errors


def _containers(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(field path, container) of every pod template in the object (Deployments, Jobs, MPIJobs, Pods)."""
    found = []

    def visit(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for kind in ("containers", "initContainers"):
                items = value.get(kind)
                if isinstance(items, list):
                    found.extend((f"{path}.{kind}[{i}]", c) for i, c in enumerate(items) if isinstance(c, dict))
            for key, sub in value.items():
                if key not in ("containers", "initContainers", "status", "metadata"):
                    visit(sub, f"{path}.{key}" if path else key)

    visit(obj, "")
    return found


def object_errors(kind: str, obj: dict[str, Any]) -> list[FieldError]:
    metadata = obj.get("metadata") or {}
    errors = name_errors(kind, metadata["name"]) if metadata.get("name") else []
    errors += label_errors(metadata.get("labels"), "metadata.labels")
    template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
    errors += label_errors(template.get("labels"), "spec.template.metadata.labels")
    annotations = metadata.get("annotations") or {}
    if sum(len(k) + len(str(v)) for k, v in annotations.items()) > TOTAL_ANNOTATION_BYTES:
        errors.append(
            FieldError("metadata.annotations", "FieldValueTooLong", "Too long: must have at most 262144 bytes")
        )
    for path, container in _containers(obj):
        for section in ("limits", "requests"):
            for resource, quantity in ((container.get("resources") or {}).get(section) or {}).items():
                if not re.fullmatch(QUANTITY, str(quantity)):
                    errors.append(
                        _invalid(
                            f"{path}.resources.{section}[{resource}]",
                            quantity,
                            "quantities must match the regular expression "
                            "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
                        )  # fmt: skip
                    )
    return errors
