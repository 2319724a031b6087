"""The API server's request handling, apart from HTTP: authenticate, authorize, decode strictly,
admit, validate, store. Each answer is what kube-apiserver answers, Status bodies included."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tests.support.kube_apiserver import patches
from tests.support.kube_apiserver.auth import (
    AccessEntry,
    Identities,
    Rbac,
    Request,
    Unauthenticated,
    User,
    authenticate,
    map_caller,
)
from tests.support.kube_apiserver.resources import ResourceType, served_resources
from tests.support.kube_apiserver.schemas import FieldError, KindSchema, Schemas, prune, schemas_for
from tests.support.kube_apiserver.store import Change, Key, Store
from tests.support.kube_apiserver.validation import object_errors

PATH = re.compile(
    r"^/(?:api/(?P<core>v1)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))"
    r"(?:/namespaces/(?P<ns>[^/]+))?/(?P<plural>[^/]+)(?:/(?P<name>[^/]+))?(?:/(?P<sub>[^/]+))?$"
)
VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass
class Response:
    status: int
    body: Any  # a dict sent as JSON, text, or a Watch streamed as JSON lines
    headers: dict[str, str] = field(default_factory=dict)


def status_body(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }
    if details:
        body["details"] = details
    return body


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.response = Response(code, status_body(code, reason, message, details))


class Watch:
    """A watch's stream of events (`{"type": ADDED|MODIFIED|DELETED, "object": ...}`) from the
    resourceVersion asked for (or now), until timeoutSeconds or `stop` is set."""

    def __init__(self, api: KubeApi, target: Target, query: dict[str, str]) -> None:
        self.api, self.target = api, target
        self.selector = query.get("labelSelector", "")
        self.deadline = time.monotonic() + float(query.get("timeoutSeconds") or 1800)
        asked = query.get("resourceVersion") or "0"
        with api.store.lock:  # without a version: the current objects as ADDED first, then changes
            self.since = int(asked) if asked != "0" else api.store.resource_version
            self.initial = (
                [] if asked != "0" else api.store.list(target.type.group, target.type.plural, target.namespace)
            )

    def _wanted(self, change: Change) -> bool:
        group, plural, namespace, _ = change.key
        return (
            (group, plural) == (self.target.type.group, self.target.type.plural)
            and (self.target.namespace is None or namespace == self.target.namespace)
            and _matches(change.object["metadata"].get("labels") or {}, self.selector)
        )

    def events(self, stop: threading.Event) -> Iterator[dict[str, Any]]:
        store = self.api.store
        for obj in self.initial:
            if _matches(obj["metadata"].get("labels") or {}, self.selector):
                yield {"type": "ADDED", "object": obj}
        while not stop.is_set() and time.monotonic() < self.deadline:
            with store.changed:
                changes = store.changes_since(self.since)
                if not changes:
                    store.changed.wait(timeout=min(0.2, max(0.0, self.deadline - time.monotonic())))
                    continue
            self.since = changes[-1].resource_version
            for change in changes:
                if self._wanted(change):
                    yield {"type": change.type, "object": change.object}


@dataclass(frozen=True)
class Target:
    type: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None

    @property
    def key(self) -> Key:
        return (self.type.group, self.type.plural, self.namespace, self.name or "")

    def details(self, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.type.plural}
        if self.type.group:
            out["group"] = self.type.group
        return {**out, **extra}


def _dig(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if labels.get(k.strip()) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if labels.get(k.strip()) != v.strip():
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class KubeApi:
    """One cluster's API. `now` is read for token expiry; tests move it to expire tokens."""

    def __init__(
        self,
        *,
        cluster_name: str,
        identities: Identities,
        access_entries: Sequence[AccessEntry],
        rbac: Rbac,
        schemas: Schemas | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.cluster_name = cluster_name
        self.identities = identities
        self.access_entries = access_entries
        self.rbac = rbac
        self.schemas = schemas or schemas_for()
        self.now = now
        self.store = Store()
        self.crds_installed = True
        self._allocated_ips = 0
        self.authorizations: list[tuple[Request, bool]] = []  # every request's authorization decision

    # -- routing, authentication, authorization ------------------------------------------------

    def _target(self, path: str) -> Target | None:
        match = PATH.match(path)
        if not match:
            return None
        group = match["group"] or ""
        version = match["core"] or match["version"]
        table = served_resources(with_crds=self.crds_installed)
        rtype = table.get((group, version, match["plural"]))
        if rtype is None or (rtype.namespaced != (match["ns"] is not None) and rtype.plural != "namespaces"):
            return None
        sub = match["sub"]
        if sub is not None and sub not in ("status", "scale") or (sub == "scale" and not rtype.scale):
            return None
        return Target(rtype, match["ns"], match["name"], sub)

    def user_for(self, authorization: str | None) -> User:
        caller = authenticate(authorization, self.cluster_name, self.identities, self.now())
        return map_caller(caller, self.access_entries)

    @staticmethod
    def verb(method: str, target: Target, query: dict[str, str]) -> str:
        if method == "GET":
            if target.name is None:
                return "watch" if query.get("watch", "").lower() in ("true", "1") else "list"
            return "get"
        if method == "DELETE":
            return "delete" if target.name else "deletecollection"
        return VERBS.get(method, method.lower())

    def handle(self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes) -> Response:
        target = self._target(path)
        if target is None:
            return Response(404, "404 page not found\n")
        try:
            user = self.user_for(headers.get("authorization"))
        except Unauthenticated:
            return Response(401, status_body(401, "Unauthorized", "Unauthorized"))
        verb = self.verb(method, target, query)
        resource = target.type.plural + (f"/{target.subresource}" if target.subresource else "")
        request = Request(verb, target.type.group, resource, target.namespace, target.name)
        allowed = self.rbac.allows(user, request)
        self.authorizations.append((request, allowed))
        if not allowed:
            where = f' in the namespace "{target.namespace}"' if target.namespace else " at the cluster scope"
            named = f'{target.type.qualified} "{target.name}" is' if target.name else f"{target.type.qualified} is"
            message = (
                f'{named} forbidden: User "{user.name}" cannot {verb} resource "{resource}" '
                f'in API group "{target.type.group}"{where}'
            )
            return Response(403, status_body(403, "Forbidden", message, target.details()))
        try:
            return self._dispatch(method, target, query, headers, body)
        except ApiError as error:
            return error.response

    def _dispatch(
        self, method: str, target: Target, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Response:
        if method == "GET" and target.name is None and query.get("watch", "").lower() in ("true", "1"):
            return Response(200, Watch(self, target, query))
        if method == "GET" and target.name is None:
            return self._list(target, query)
        if method == "GET":
            return Response(200, self._present(target, self._existing(target)))
        if method == "POST" and target.name is None:
            return self._create(target, query, self._decode(body))
        if method == "DELETE" and target.name is not None:
            return self._delete(target)
        if method == "PUT" and target.name is not None:
            return self._update(target, query, lambda current: self._decode(body))
        if method == "PATCH" and target.name is not None:
            content_type = headers.get("content-type", "").split(";")[0].strip()
            return self._update(target, query, lambda current: self._patch(target, current, content_type, body))
        raise ApiError(405, "MethodNotAllowed", "the server does not allow this method on the requested resource")

    # -- reading ---------------------------------------------------------------------------------

    def _existing(self, target: Target) -> dict[str, Any]:
        obj = self.store.get(target.key)
        if obj is None:
            raise ApiError(404, "NotFound", f'{target.type.qualified} "{target.name}" not found', target.details())
        return obj

    def _present(self, target: Target, obj: dict[str, Any]) -> dict[str, Any]:
        return self._as_scale(obj) if target.subresource == "scale" else obj

    @staticmethod
    def _as_scale(obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")},
            "spec": {"replicas": obj["spec"].get("replicas", 1)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": ",".join(f"{k}={v}" for k, v in sorted(selector.items())),
            },
        }

    def _list(self, target: Target, query: dict[str, str]) -> Response:
        items = self.store.list(target.type.group, target.type.plural, target.namespace)
        selector = query.get("labelSelector", "")
        items = [i for i in items if _matches(i["metadata"].get("labels") or {}, selector)]
        body = {
            "kind": f"{target.type.kind}List",
            "apiVersion": target.type.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": items,
        }
        return Response(200, body)

    # -- writing ---------------------------------------------------------------------------------

    @staticmethod
    def _decode(body: bytes) -> Any:
        try:
            return json.loads(body or b"null")
        except ValueError as exc:
            raise ApiError(400, "BadRequest", f"the body of the request could not be decoded: {exc}") from exc

    def _schema(self, target: Target) -> KindSchema:
        schema = self.schemas.for_kind(target.type.api_version, target.type.kind)
        if schema is None:
            raise LookupError(f"no schema for {target.type.api_version} {target.type.kind}")
        return schema

    def _strict_decode(
        self, target: Target, obj: Any, query: dict[str, str], headers: dict[str, str]
    ) -> dict[str, Any]:
        """What the API server's decoder does with the body, by the request's fieldValidation."""
        kind, api_version = target.type.kind, target.type.api_version
        if not isinstance(obj, dict):
            raise ApiError(400, "BadRequest", f"{kind} in version {target.type.version!r} cannot be handled")
        if obj.get("apiVersion") != api_version or obj.get("kind") != kind:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({obj.get('apiVersion')}) does not match the expected API version "
                f"({api_version}), or the kind ({obj.get('kind')}) is not {kind}",
            )
        schema = self._schema(target)
        unknown = schema.unknown_fields(obj)
        mode = query.get("fieldValidation", "Warn")
        if unknown and mode == "Strict":
            fields = ", ".join(f'unknown field "{f}"' for f in unknown)
            raise ApiError(
                400,
                "BadRequest",
                f'{kind} in version "{target.type.version}" cannot be handled as a {kind}: '
                f"strict decoding error: {fields}",
            )
        if unknown:
            if mode == "Warn":
                headers["warning"] = ", ".join(f'299 - "unknown field \\"{f}\\""' for f in unknown)
            obj = prune(schema.root, obj)
        return obj

    def _invalid(self, target: Target, name: str | None, errors: list[FieldError]) -> ApiError:
        listed = [f"{e.field}: {e.message}" for e in errors]
        summary = listed[0] if len(listed) == 1 else "[" + ", ".join(listed) + "]"
        kind = f"{target.type.kind}.{target.type.group}" if target.type.group else target.type.kind
        details: dict[str, Any] = {"name": name, "kind": target.type.kind}
        if target.type.group:
            details["group"] = target.type.group
        details["causes"] = [{"reason": e.reason, "message": e.message, "field": e.field} for e in errors]
        return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {summary}', details)

    def _validate(self, target: Target, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        name = obj["metadata"].get("name")
        errors = [] if name else [FieldError("metadata.name", "FieldValueRequired", "Required value: name is required")]
        errors += self._schema(target).value_errors(obj)
        errors += object_errors(target.type.kind, obj)
        if old is not None:
            for path in target.type.immutable:
                if _dig(obj, path) != _dig(old, path):
                    errors.append(FieldError(path, "FieldValueInvalid", "field is immutable"))
        if errors:
            raise self._invalid(target, name, errors)

    @staticmethod
    def _default(target: Target, obj: dict[str, Any]) -> None:
        """The few defaults a controller or the adapters read back (a real server sets many more)."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if target.type.kind in ("Deployment", "ReplicaSet"):
            spec.setdefault("replicas", 1)
        if target.type.kind == "Service":
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))

    def _create(self, target: Target, query: dict[str, str], obj: Any) -> Response:
        headers: dict[str, str] = {}
        obj = self._strict_decode(target, obj, query, headers)
        meta = obj.setdefault("metadata", {})
        if target.type.namespaced and meta.setdefault("namespace", target.namespace) != target.namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on the request",
            )
        for server_field in ("resourceVersion", "uid", "creationTimestamp", "generation", "deletionTimestamp"):
            meta.pop(server_field, None)
        name = meta.get("name")
        target = Target(target.type, target.namespace, name, None)
        with self.store.lock:
            if target.namespace and self.store.get(("", "namespaces", None, target.namespace)) is None:
                raise ApiError(
                    404,
                    "NotFound",
                    f'namespaces "{target.namespace}" not found',
                    {"name": target.namespace, "kind": "namespaces"},
                )
            self._default(target, obj)
            self._validate(target, obj, None)
            if name and self.store.get(target.key) is not None:
                raise ApiError(
                    409, "AlreadyExists", f'{target.type.qualified} "{name}" already exists', target.details()
                )
            obj.pop("status", None)
            if target.type.kind == "Service" and obj["spec"].get("type") != "ExternalName":
                self._allocated_ips += 1
                ip = f"172.20.{self._allocated_ips // 250}.{self._allocated_ips % 250 + 1}"
                obj["spec"].setdefault("clusterIP", ip)
                obj["spec"].setdefault("clusterIPs", [obj["spec"]["clusterIP"]])
            if "spec" in obj:
                meta["generation"] = 1
            if query.get("dryRun") == "All":
                return Response(201, obj, headers)
            return Response(201, self.store.create(target.key, obj), headers)

    def _patch(self, target: Target, current: dict[str, Any], content_type: str, body: bytes) -> Any:
        base = self._as_scale(current) if target.subresource == "scale" else current
        patch = self._decode(body)
        try:
            if content_type == patches.STRATEGIC:
                if target.type.custom:
                    raise ApiError(
                        415,
                        "UnsupportedMediaType",
                        f"the body of the request was in an unknown format - accepted media types include: "
                        f"{patches.JSON_PATCH}, {patches.MERGE}, {patches.APPLY}",
                    )
                schema = self.schemas.for_kind(base["apiVersion"], base["kind"])
                assert schema is not None
                return patches.strategic_merge(base, patch, schema.root)
            if content_type == patches.MERGE:
                return patches.json_merge(base, patch)
            if content_type == patches.JSON_PATCH:
                return patches.json_patch(base, patch)
        except patches.PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{patches.JSON_PATCH}, {patches.MERGE}, {patches.STRATEGIC}",
        )

    def _update(self, target: Target, query: dict[str, str], new_body: Callable[[dict[str, Any]], Any]) -> Response:
        headers: dict[str, str] = {}
        with self.store.lock:
            current = self._existing(target)
            wanted = new_body(current)
            if target.subresource == "scale":
                return self._update_scale(target, current, wanted, query, headers)
            decoded_target = Target(target.type, target.namespace, target.name, None)
            obj = self._strict_decode(decoded_target, wanted, query, headers)
            meta = obj.setdefault("metadata", {})
            if meta.get("name", target.name) != target.name:
                raise ApiError(
                    400, "BadRequest", f"the name of the object ({meta.get('name')}) does not match the name on the URL"
                )
            sent_version = meta.get("resourceVersion")
            if sent_version is None and target.type.custom:
                raise self._invalid(
                    target,
                    target.name,
                    [FieldError("metadata.resourceVersion", "FieldValueInvalid", "must be specified for an update")],
                )
            if sent_version is not None and sent_version != current["metadata"]["resourceVersion"]:
                raise ApiError(
                    409,
                    "Conflict",
                    f'Operation cannot be fulfilled on {target.type.qualified} "{target.name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    target.details(),
                )
            for server_field in ("uid", "creationTimestamp", "namespace", "name", "resourceVersion", "generation"):
                if server_field in current["metadata"]:
                    meta[server_field] = current["metadata"][server_field]
            if target.subresource == "status":
                obj = {**current, "status": obj.get("status")}
            elif "status" in current:
                obj["status"] = current["status"]
            else:
                obj.pop("status", None)
            if target.type.kind == "Service":  # an update without them keeps the allocated IPs (1.20+)
                for allocated in ("clusterIP", "clusterIPs"):
                    if allocated in (current.get("spec") or {}):
                        obj.setdefault("spec", {}).setdefault(allocated, current["spec"][allocated])
            self._default(target, obj)
            self._validate(target, obj, current)
            return self._store_if_changed(target, current, obj, query, headers)

    def _update_scale(
        self, target: Target, current: dict[str, Any], scale: Any, query: dict[str, str], headers: dict[str, str]
    ) -> Response:
        scale_type = ResourceType("autoscaling", "v1", "scale", "Scale")
        scale = self._strict_decode(Target(scale_type, target.namespace, target.name, None), scale, query, headers)
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or replicas < 0:
            raise self._invalid(
                target,
                target.name,
                [FieldError("spec.replicas", "FieldValueInvalid", "must be greater than or equal to 0")],
            )
        sent_version = (scale.get("metadata") or {}).get("resourceVersion")
        if sent_version is not None and sent_version != current["metadata"]["resourceVersion"]:
            raise ApiError(409, "Conflict", f'Operation cannot be fulfilled on {target.type.qualified} "{target.name}"')
        obj = copy.deepcopy(current)
        obj["spec"]["replicas"] = replicas
        response = self._store_if_changed(target, current, obj, query, headers)
        return Response(response.status, self._as_scale(response.body), response.headers)

    def _store_if_changed(
        self,
        target: Target,
        current: dict[str, Any],
        obj: dict[str, Any],
        query: dict[str, str],
        headers: dict[str, str],
    ) -> Response:
        if obj == current:
            return Response(200, current, headers)  # a no-op write keeps the resourceVersion
        generation = current["metadata"].get("generation")
        if generation is not None:
            unchanged = {k: v for k, v in obj.items() if k not in ("metadata", "status")} == {
                k: v for k, v in current.items() if k not in ("metadata", "status")
            }
            obj["metadata"]["generation"] = generation if unchanged else generation + 1
        if query.get("dryRun") == "All":
            return Response(200, obj, headers)
        key = Target(target.type, target.namespace, target.name, None).key
        return Response(200, self.store.put(key, obj), headers)

    def _delete(self, target: Target) -> Response:
        with self.store.lock:
            obj = self._existing(target)
            self.store.delete(target.key)
        details = {**target.details(), "uid": obj["metadata"]["uid"]}
        return Response(
            200, {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}
        )

    # -- what controllers (and tests standing in for them) write ---------------------------------

    def seed(self, obj: dict[str, Any]) -> dict[str, Any]:
        """Store an object as a cluster administrator would apply it (no authorization)."""
        api_version, kind = obj["apiVersion"], obj["kind"]
        rtype = next(r for r in served_resources().values() if r.api_version == api_version and r.kind == kind)
        target = Target(rtype, obj["metadata"].get("namespace"), None, None)
        response = self._create(target, {"fieldValidation": "Strict"}, copy.deepcopy(obj))
        return dict(response.body)

    def set_status(self, key: Key, status: dict[str, Any]) -> dict[str, Any]:
        """Write an object's status as its controller would (no spec change, a new resourceVersion)."""
        with self.store.lock:
            obj = self.store.get(key)
            if obj is None:
                raise KeyError(key)
            obj["status"] = status
            return self.store.put(key, obj)
