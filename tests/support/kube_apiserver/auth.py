"""Authentication and authorization as EKS does them.

Authentication: the bearer token `k8s-aws-v1.<base64url presigned STS GetCallerIdentity URL>`.
aws-iam-authenticator checks the URL's shape (STS host, GetCallerIdentity, SigV4 query auth that
signs the `x-k8s-aws-id` header) and age (X-Amz-Date within 15 minutes), then lets STS verify the
signature. Here the SigV4 signature is recomputed with the secret of the access key the test
registered (`Identities`), bound to this cluster's name, which is what STS would do.

The caller's role is mapped to a user and groups through the EKS access entries Terraform
creates (terraform/modules/eks/main.tf), and each request is authorized against the RBAC objects
the mlcp-platform chart renders (Roles, ClusterRoles and their bindings), as the RBAC authorizer does.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import hcl2

TOKEN_PREFIX = "k8s-aws-v1."
TOKEN_LIFETIME = timedelta(minutes=15)
CLOCK_SKEW = timedelta(minutes=5)
STS_HOST = re.compile(r"^sts(\.[a-z0-9-]+)?\.amazonaws\.com(\.cn)?$")
ASSUMED_ROLE = re.compile(r"^arn:(?P<p>aws[a-z-]*):sts::(?P<acct>\d{12}):assumed-role/(?P<role>[^/]+)/(?P<session>.+)$")
CLUSTER_ADMIN_POLICY = "AmazonEKSClusterAdminPolicy"


class Unauthenticated(Exception):
    """The token is missing, malformed, expired or not signed for this cluster: 401."""


@dataclass(frozen=True)
class Caller:
    arn: str  # the STS identity, e.g. arn:aws:sts::123456789012:assumed-role/r/session


@dataclass
class Identities:
    """What STS knows: access key id → (secret, caller ARN). Tests register their sessions here."""

    keys: dict[str, tuple[str, str]] = field(default_factory=dict)

    def register(self, access_key: str, secret: str, arn: str) -> None:
        self.keys[access_key] = (secret, arn)


def _sign(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def authenticate(header: str | None, cluster_name: str, identities: Identities, now: datetime) -> Caller:
    if not header or not header.startswith("Bearer "):
        raise Unauthenticated("no bearer token")
    token = header.removeprefix("Bearer ").strip()
    if not token.startswith(TOKEN_PREFIX):
        raise Unauthenticated("token is not a k8s-aws-v1 token")
    encoded = token.removeprefix(TOKEN_PREFIX)
    if "=" in encoded:
        raise Unauthenticated("token is padded base64 (aws-iam-authenticator sends it unpadded)")
    try:
        url = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except ValueError as exc:
        raise Unauthenticated("token is not base64url") from exc
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "https" or not STS_HOST.match(parts.netloc) or parts.path not in ("", "/"):
        raise Unauthenticated(f"unexpected STS endpoint {parts.scheme}://{parts.netloc}{parts.path}")
    query = dict(urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    if query.get("Action") != "GetCallerIdentity" or query.get("Version") != "2011-06-15":
        raise Unauthenticated("the presigned request is not GetCallerIdentity")
    if query.get("X-Amz-Algorithm") != "AWS4-HMAC-SHA256":
        raise Unauthenticated("not a SigV4 presigned URL")
    signed_headers = query.get("X-Amz-SignedHeaders", "").split(";")
    if "x-k8s-aws-id" not in signed_headers:
        raise Unauthenticated("the x-k8s-aws-id header is not signed: the token is not bound to a cluster")
    try:
        issued = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires = int(query["X-Amz-Expires"])
    except (KeyError, ValueError) as exc:
        raise Unauthenticated("X-Amz-Date or X-Amz-Expires missing or malformed") from exc
    if not 0 < expires <= TOKEN_LIFETIME.total_seconds():
        raise Unauthenticated(f"X-Amz-Expires {expires} is out of range")
    if now > issued + TOKEN_LIFETIME:
        raise Unauthenticated("X-Amz-Date parameter is expired (15 minute expiration)")
    if issued > now + CLOCK_SKEW:
        raise Unauthenticated("X-Amz-Date parameter is in the future")
    access_key, _, scope = query.get("X-Amz-Credential", "").partition("/")
    if access_key not in identities.keys:
        raise Unauthenticated("STS: the security token included in the request is invalid")
    secret, arn = identities.keys[access_key]
    date, region, service, terminator = (scope.split("/") + ["", "", "", ""])[:4]
    if service != "sts" or terminator != "aws4_request" or date != query["X-Amz-Date"][:8]:
        raise Unauthenticated("credential scope is not sts/aws4_request of the signing date")
    canonical_query = "&".join(
        sorted(pair for pair in parts.query.split("&") if not pair.startswith("X-Amz-Signature="))
    )
    header_values = {"host": parts.netloc, "x-k8s-aws-id": cluster_name}
    if any(h not in header_values for h in signed_headers):
        raise Unauthenticated(f"unexpected signed headers {signed_headers}")
    canonical_headers = "".join(f"{h}:{header_values[h]}\n" for h in signed_headers)
    canonical = "\n".join(
        ["GET", "/", canonical_query, canonical_headers, ";".join(signed_headers), hashlib.sha256(b"").hexdigest()]
    )
    digest = hashlib.sha256(canonical.encode()).hexdigest()
    to_sign = "\n".join(["AWS4-HMAC-SHA256", query["X-Amz-Date"], scope, digest])
    key = _sign(_sign(_sign(_sign(f"AWS4{secret}".encode(), date), region), service), terminator)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, query.get("X-Amz-Signature", "")):
        raise Unauthenticated("STS: signature does not match (wrong secret, or a token for another cluster)")
    return Caller(arn)


# -- who the caller is in Kubernetes: the EKS access entries -----------------------------------


@dataclass(frozen=True)
class AccessEntry:
    principal_arn: str
    groups: tuple[str, ...]
    cluster_admin: bool = False


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...]
    cluster_admin: bool = False


def _unquote(value: Any) -> Any:
    return value[1:-1] if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"' else value


def _variable_defaults(module: Path) -> dict[str, Any]:
    doc = hcl2.load((module / "variables.tf").open())
    return {
        _unquote(name): _unquote(body.get("default"))
        for block in doc.get("variable", [])
        for name, body in block.items()
    }


def _evaluate(expression: Any, variables: dict[str, Any], each: str | None = None) -> Any:
    expression = _unquote(expression)
    if isinstance(expression, list):
        return [_evaluate(x, variables, each) for x in expression]
    if not isinstance(expression, str):
        return expression
    match = re.fullmatch(r"\$\{(?:toset\()?var\.([a-z0-9_]+)\)?\}", expression)
    if match:
        if variables.get(match.group(1)) is None:
            raise KeyError(f"Terraform variable {match.group(1)} has no value: pass it to access_entries()")
        return variables[match.group(1)]
    if expression == "${each.value}" and each is not None:
        return each
    return expression


def access_entries(module: Path, variables: dict[str, Any]) -> list[AccessEntry]:
    """The aws_eks_access_entry resources of the EKS module, with `variables` over the defaults."""
    values = {**_variable_defaults(module), **variables}
    doc = hcl2.load((module / "main.tf").open())
    resources = [
        (_unquote(kind), _unquote(name), body)
        for block in doc["resource"]
        for kind, items in block.items()
        for name, body in items.items()
    ]
    admin_principals = {
        principal
        for kind, _, body in resources
        if kind == "aws_eks_access_policy_association" and CLUSTER_ADMIN_POLICY in str(body.get("policy_arn"))
        for principal in _principals(body, values)
    }
    entries = []
    for kind, _, body in resources:
        if kind != "aws_eks_access_entry":
            continue
        for principal in _principals(body, values):
            groups = tuple(_evaluate(body.get("kubernetes_groups", []), values))
            groups = tuple(g for group in groups for g in (group if isinstance(group, list) else [group]))
            entries.append(AccessEntry(principal, groups, principal in admin_principals))
    return entries


def _principals(body: dict[str, Any], values: dict[str, Any]) -> list[str]:
    if "for_each" in body:
        return [str(_evaluate(body["principal_arn"], values, each)) for each in _evaluate(body["for_each"], values)]
    return [str(_evaluate(body["principal_arn"], values))]


def map_caller(caller: Caller, entries: Iterable[AccessEntry]) -> User:
    """The Kubernetes user an access entry gives an assumed role (EKS's default username)."""
    match = ASSUMED_ROLE.match(caller.arn)
    role_arn = f"arn:{match['p']}:iam::{match['acct']}:role/{match['role']}" if match else caller.arn
    for entry in entries:
        if entry.principal_arn == role_arn:
            return User(caller.arn, (*entry.groups, "system:authenticated"), entry.cluster_admin)
    raise Unauthenticated(f"{role_arn} has no access entry on this cluster")


# -- what the user may do: RBAC ------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    verb: str
    api_group: str
    resource: str  # with its subresource: deployments/scale
    namespace: str | None
    name: str | None


class Rbac:
    def __init__(self, documents: Iterable[dict[str, Any]]) -> None:
        docs = [d for d in documents if d and d.get("apiVersion") == "rbac.authorization.k8s.io/v1"]
        self.roles = {(d["metadata"].get("namespace"), d["metadata"]["name"]): d for d in docs if d["kind"] == "Role"}
        self.cluster_roles = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ClusterRole"}
        self.bindings = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")]

    @staticmethod
    def _subject_matches(subject: dict[str, Any], user: User) -> bool:
        if subject.get("kind") == "User":
            return bool(subject.get("name") == user.name)
        if subject.get("kind") == "Group":
            return subject.get("name") in user.groups
        return False

    @staticmethod
    def _rule_allows(rule: dict[str, Any], request: Request) -> bool:
        def has(values: list[str] | None, wanted: str) -> bool:
            return bool(values) and ("*" in values or wanted in values)  # type: ignore[operator]

        names = rule.get("resourceNames") or []
        return (
            has(rule.get("apiGroups"), request.api_group)
            and has(rule.get("resources"), request.resource)
            and has(rule.get("verbs"), request.verb)
            and (not names or request.name in names)
        )

    def allows(self, user: User, request: Request) -> bool:
        if user.cluster_admin:
            return True
        for binding in self.bindings:
            if not any(self._subject_matches(s, user) for s in binding.get("subjects") or []):
                continue
            namespace = binding["metadata"].get("namespace")
            if binding["kind"] == "RoleBinding" and namespace != request.namespace:
                continue
            ref = binding["roleRef"]
            if ref["kind"] == "Role":
                role = self.roles.get((namespace, ref["name"]))
            else:
                role = self.cluster_roles.get(ref["name"])
            if role and any(self._rule_allows(rule, request) for rule in role.get("rules") or []):
                return True
        return False
