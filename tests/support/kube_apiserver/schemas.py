"""The schemas a real API server validates against, for the Kubernetes version Terraform targets.

Built-in kinds: the strict JSON schemas of that version shipped in `kubernetes-validate`
(generated from the official OpenAPI; they keep `x-kubernetes-patch-merge-key/strategy`).
Custom resources: the `openAPIV3Schema` of the vendored CRDs in workloads/k8s/crds/.

`SchemaNode` walks either kind of schema by field, resolving `$ref`, so the validator (unknown
fields) and the strategic merge patch (merge keys and strategies) read the same source.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hcl2
import jsonschema
import kubernetes_validate
import yaml
from referencing import Registry, Resource

REPO = Path(__file__).resolve().parents[3]
CRDS = REPO / "workloads" / "k8s" / "crds"
SCHEMA_ROOT = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"


@functools.cache
def target_kubernetes_version() -> str:
    """The minor version the example environment deploys (terraform/envs/example/variables.tf)."""
    doc = hcl2.load((REPO / "terraform" / "envs" / "example" / "variables.tf").open())
    for block in doc["variable"]:
        for name, body in block.items():
            if name.strip('"') == "kubernetes_version":
                return str(body["default"]).strip('"')
    raise LookupError("terraform/envs/example/variables.tf declares no kubernetes_version")


@dataclass(frozen=True)
class FieldError:
    """One schema violation: `field` is the path a real API server names (spec.template.spec.x)."""

    field: str
    reason: str  # FieldValueInvalid, FieldValueRequired, FieldValueNotSupported, FieldValueUnknown
    message: str


class SchemaNode:
    """A position in a schema; `child(name)` and `item()` step into fields and list items."""

    def __init__(self, schema: dict[str, Any] | bool | None, defs: dict[str, Any]) -> None:
        self._defs = defs
        self.schema: dict[str, Any] = self._resolve(schema)

    def _resolve(self, schema: dict[str, Any] | bool | None) -> dict[str, Any]:
        if not isinstance(schema, dict):
            return {}
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            merged = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**self._defs[name], **merged}
        return schema

    @property
    def open(self) -> bool:
        """True where any field is accepted (free-form maps, preserved unknown fields, no schema)."""
        s = self.schema
        if not s or s.get("x-kubernetes-preserve-unknown-fields"):
            return True
        if "properties" in s:
            return False
        extra = s.get("additionalProperties")
        return extra is None and s.get("type") in (None, "object", ["object", "null"])

    def child(self, name: str) -> SchemaNode | None:
        """The schema of field `name`, or None where the schema does not declare it."""
        props = self.schema.get("properties")
        if props is not None and name in props:
            return SchemaNode(props[name], self._defs)
        extra = self.schema.get("additionalProperties")
        if isinstance(extra, dict):
            return SchemaNode(extra, self._defs)
        if self.open:
            return SchemaNode(None, self._defs)
        return None

    def item(self) -> SchemaNode:
        return SchemaNode(self.schema.get("items"), self._defs)

    @property
    def patch_strategy(self) -> str:
        return str(self.schema.get("x-kubernetes-patch-strategy", ""))

    @property
    def patch_merge_key(self) -> str | None:
        return self.schema.get("x-kubernetes-patch-merge-key")


def _path(parts: Iterator[str | int] | list[str | int]) -> str:
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def unknown_fields(node: SchemaNode, value: Any, at: list[str | int]) -> list[str]:
    """Paths of the fields `value` holds that the schema does not declare, as a strict decoder sees them."""
    found: list[str] = []
    if isinstance(value, dict) and not node.open:
        for name, sub in value.items():
            child = node.child(name)
            if child is None:
                found.append(_path([*at, name]))
            else:
                found += unknown_fields(child, sub, [*at, name])
    elif isinstance(value, dict):
        for name, sub in value.items():
            child = node.child(name)
            if child is not None and child.schema:
                found += unknown_fields(child, sub, [*at, name])
    elif isinstance(value, list):
        item = node.item()
        for index, sub in enumerate(value):
            found += unknown_fields(item, sub, [*at, index])
    return found


_REASONS = {"required": "FieldValueRequired", "enum": "FieldValueNotSupported"}


def _value_errors(validator: jsonschema.protocols.Validator, obj: dict[str, Any]) -> list[FieldError]:
    errors = []
    for error in validator.iter_errors(obj):
        if error.validator == "additionalProperties":
            continue  # reported by unknown_fields, with the path a strict decoder names
        parts = list(error.absolute_path)
        if error.validator == "required":
            missing = re.findall(r"'([^']+)' is a required property", error.message)
            parts += missing[:1]
            message = "Required value"
        else:
            message = f"Invalid value: {json.dumps(error.instance)[:80]}: {error.message}"
        errors.append(FieldError(_path(parts), _REASONS.get(str(error.validator), "FieldValueInvalid"), message))
    return errors


@dataclass(frozen=True)
class KindSchema:
    kind: str
    api_version: str
    root: SchemaNode
    validator: jsonschema.protocols.Validator
    custom: bool

    def unknown_fields(self, obj: dict[str, Any]) -> list[str]:
        return unknown_fields(self.root, obj, [])

    def value_errors(self, obj: dict[str, Any]) -> list[FieldError]:
        return _value_errors(self.validator, obj)


class Schemas:
    """Schemas by (apiVersion, kind) for one Kubernetes minor version, loaded on first use."""

    def __init__(self, kubernetes_version: str | None = None) -> None:
        self.kubernetes_version = kubernetes_version or target_kubernetes_version()
        folder = SCHEMA_ROOT / f"v{self.kubernetes_version}.0-local-strict"
        if not folder.is_dir():
            raise LookupError(f"kubernetes-validate ships no strict schemas for Kubernetes {self.kubernetes_version}")
        self._folder = folder
        definitions = json.loads((folder / "_definitions.json").read_text())
        self._defs: dict[str, Any] = definitions["$defs"]
        self._registry: Registry[Any] = Resource.from_contents(definitions) @ Registry()

    @functools.cache  # noqa: B019 (one Schemas per server; they live as long as the test session)
    def for_kind(self, api_version: str, kind: str) -> KindSchema | None:
        custom = _crd_schema(api_version, kind)
        if custom is not None:
            schema = dict(custom)
            # A CRD's schema leaves metadata open; the API server checks it as ObjectMeta.
            schema["properties"] = {**schema.get("properties", {}), "metadata": {"$ref": f"#/$defs/{OBJECT_META}"}}
            validator = jsonschema.Draft7Validator({**schema, "$defs": self._defs})
            return KindSchema(kind, api_version, SchemaNode(schema, self._defs), validator, custom=True)
        group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
        path = self._folder / f"{kind.lower()}-{group_version}.json"
        if not path.exists():
            return None
        schema = json.loads(path.read_text())
        validator = jsonschema.Draft202012Validator(schema, registry=self._registry)
        return KindSchema(kind, api_version, SchemaNode(schema, self._defs), validator, custom=False)


@functools.cache
def _crd_documents() -> list[dict[str, Any]]:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [doc for path in sorted(CRDS.glob("*.yaml")) for doc in yaml.load_all(path.read_text(), Loader=loader)]


def _served_versions() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for crd in _crd_documents():
        if crd and crd.get("kind") == "CustomResourceDefinition":
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    yield crd["spec"], version


@functools.cache
def _crds() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (f"{spec['group']}/{version['name']}", spec["names"]["kind"]): version["schema"]["openAPIV3Schema"]
        for spec, version in _served_versions()
    }


@functools.cache
def schemas_for(kubernetes_version: str | None = None) -> Schemas:
    """One loaded set of schemas per version, shared by every server of the test session."""
    return Schemas(kubernetes_version)


def _crd_schema(api_version: str, kind: str) -> dict[str, Any] | None:
    return _crds().get((api_version, kind))


@functools.cache
def crd_plurals() -> dict[tuple[str, str], tuple[str, str]]:
    """(apiVersion, plural) of every vendored CRD's served versions → (kind, scope)."""
    return {
        (f"{spec['group']}/{version['name']}", spec["names"]["plural"]): (spec["names"]["kind"], spec["scope"])
        for spec, version in _served_versions()
    }


def prune(node: SchemaNode, value: Any) -> Any:
    """`value` without the fields the schema does not declare (what a non-strict decoder keeps)."""
    if isinstance(value, dict):
        out = {}
        for name, sub in value.items():
            child = node.child(name)
            if child is not None:
                out[name] = prune(child, sub)
        return out
    if isinstance(value, list):
        item = node.item()
        return [prune(item, sub) for sub in value]
    return value
