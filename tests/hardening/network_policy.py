"""A small evaluator of networking.k8s.io/v1 NetworkPolicies: is a connection allowed?

The semantics of the API (kubernetes.io/docs/concepts/services-networking/network-policies):

- A pod is isolated for ingress (egress) when at least one policy in its namespace selects it
  (`spec.podSelector`) with that type in `policyTypes`. `policyTypes` left out means Ingress,
  plus Egress when the policy has an `egress` section. A pod no policy isolates allows all.
- An isolated pod allows what the union of its policies' rules allows. A rule allows a peer
  when it matches one of its `from`/`to` peers (none listed: every peer) and one of its `ports`
  (none listed: every port). Protocol defaults to TCP; `port` may name a container port of the
  destination pod; `endPort` makes a range.
- A peer: `podSelector` alone (pods of the policy's namespace), `namespaceSelector` alone (every
  pod of the selected namespaces), both (the selected pods of the selected namespaces), or
  `ipBlock` (`cidr` minus `except`).
- A connection is allowed when the source's egress allows it AND the destination's ingress
  allows it; replies of an allowed connection are always allowed.

The API leaves open whether `ipBlock` also matches pod addresses. On EKS the VPC CNI gives pods
addresses in the VPC, and its network policy agent matches `ipBlock` by address whoever holds it:
so does this evaluator (a pod whose address lies in a CIDR is matched by that ipBlock).
Connections from a pod's own node (kubelet probes) are always allowed and not modelled here.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

Policy = Mapping[str, Any]


@dataclass(frozen=True)
class Endpoint:
    """One end of a connection: a pod (with a namespace) or an address outside the cluster."""

    name: str
    ip: str
    namespace: str | None = None  # None: not a pod (a load balancer, an AWS service, the internet)
    labels: Mapping[str, str] = field(default_factory=dict)
    named_ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)  # name → (port, protocol)

    @property
    def is_pod(self) -> bool:
        return self.namespace is not None


def selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector: matchLabels and matchExpressions all hold; {} matches everything."""
    selector = selector or {}
    if any(labels.get(key) != value for key, value in (selector.get("matchLabels") or {}).items()):
        return False
    for expression in selector.get("matchExpressions") or []:
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        present = key in labels
        holds = {
            "In": present and labels.get(key) in values,
            "NotIn": not present or labels.get(key) not in values,
            "Exists": present,
            "DoesNotExist": not present,
        }[operator]
        if not holds:
            return False
    return True


def in_ip_block(ip: str, block: Mapping[str, Any]) -> bool:
    address = ipaddress.ip_address(ip)
    if address not in ipaddress.ip_network(block["cidr"]):
        return False
    return not any(address in ipaddress.ip_network(cidr) for cidr in block.get("except") or [])


class Cluster:
    """Policies plus the labels of every namespace (kubernetes.io/metadata.name is implied)."""

    def __init__(self, policies: Iterable[Policy], namespaces: Mapping[str, Mapping[str, str]]) -> None:
        self.policies = [p for p in policies if p.get("kind") == "NetworkPolicy"]
        self.namespace_labels = {
            name: {**labels, "kubernetes.io/metadata.name": name} for name, labels in namespaces.items()
        }

    # -- which policies isolate a pod ---------------------------------------------------------------

    @staticmethod
    def policy_types(policy: Policy) -> set[str]:
        spec = policy["spec"]
        if "policyTypes" in spec:
            return set(spec["policyTypes"])
        return {"Ingress", "Egress"} if "egress" in spec else {"Ingress"}

    def isolating(self, pod: Endpoint, direction: str) -> list[Policy]:
        return [
            p
            for p in self.policies
            if p["metadata"].get("namespace", "default") == pod.namespace
            and selector_matches(p["spec"].get("podSelector"), pod.labels)
            and direction in self.policy_types(p)
        ]

    # -- rules --------------------------------------------------------------------------------------

    def peer_matches(self, peer: Mapping[str, Any], policy_namespace: str, other: Endpoint) -> bool:
        if "ipBlock" in peer:
            return in_ip_block(other.ip, peer["ipBlock"])
        if not other.is_pod:
            return False
        if "namespaceSelector" in peer:
            namespace_ok = selector_matches(peer["namespaceSelector"], self.namespace_labels.get(other.namespace, {}))
        else:
            namespace_ok = other.namespace == policy_namespace
        return namespace_ok and selector_matches(peer.get("podSelector"), other.labels)

    @staticmethod
    def port_matches(ports: list[Mapping[str, Any]] | None, destination: Endpoint, port: int, protocol: str) -> bool:
        if not ports:
            return True
        for item in ports:
            if item.get("protocol", "TCP") != protocol:
                continue
            wanted = item.get("port")
            if wanted is None:
                return True
            if isinstance(wanted, str):
                if destination.named_ports.get(wanted) == (port, protocol):
                    return True
                continue
            if wanted <= port <= item.get("endPort", wanted):
                return True
        return False

    def rule_allows(
        self, rule: Mapping[str, Any], peers_key: str, policy_namespace: str, peer: Endpoint, dst: Endpoint, port: int,
        protocol: str,
    ) -> bool:  # fmt: skip
        peers = rule.get(peers_key)
        peer_ok = not peers or any(self.peer_matches(p, policy_namespace, peer) for p in peers)
        return peer_ok and self.port_matches(rule.get("ports"), dst, port, protocol)

    def direction_allows(
        self, pod: Endpoint, peer: Endpoint, dst: Endpoint, port: int, protocol: str, kind: str
    ) -> bool:
        """Whether `pod`'s policies of `kind` (Ingress or Egress) allow the connection to/from `peer`."""
        policies = self.isolating(pod, kind)
        if not policies:
            return True
        rules_key, peers_key = ("ingress", "from") if kind == "Ingress" else ("egress", "to")
        return any(
            self.rule_allows(rule, peers_key, p["metadata"].get("namespace", "default"), peer, dst, port, protocol)
            for p in policies
            for rule in p["spec"].get(rules_key) or []
        )

    def allows(self, src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        """Whether `src` may open a connection to `dst` on `port`/`protocol`."""
        egress = not src.is_pod or self.direction_allows(src, dst, dst, port, protocol, "Egress")
        ingress = not dst.is_pod or self.direction_allows(dst, src, dst, port, protocol, "Ingress")
        return egress and ingress
