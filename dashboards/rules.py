"""The alert and recording rules, for every runtime that needs them.

dashboards/rules/*.yml are the single source (plain Prometheus rule files, checked by promtool).
The local runtime loads them with ``load_rules(local=True)``: the same expressions and labels, with
``for:`` shortened, the short rate windows narrowed and the group intervals dropped, so that a
fault shows as a firing alert within seconds at the local scrape/evaluation interval (``LOCAL_INTERVAL``). The
PrometheusRule for kube-prometheus-stack is rendered from the same files (``prometheus_rule``).
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

RULES_DIR = Path(__file__).resolve().parent / "rules"

LOCAL_FOR = "5s"
# Scrape and evaluation interval of the local Prometheus (control/local/observability.py). AWS keeps
# kube-prometheus-stack's. Half a second: a fault is seen at most 0.5 s after it starts scraping,
# and a firing alert leaves on the evaluation that fires it.
LOCAL_INTERVAL = "500ms"
# The error ratio passes 5 % once failures are 5 % of the window's requests: ~0.5 s of a 50 % fault
# in a 5 s window (1 s in a 10 s one). Ten scrapes per window keep rate() steady.
LOCAL_WINDOW = "5s"
# Only the one-minute windows of the fast paths (error ratio, latency) are narrowed locally;
# the long windows of drift, training and infrastructure rules keep their meaning.
_SHORT_WINDOW = re.compile(r"\[1m\]")


def rule_files() -> list[Path]:
    return sorted(RULES_DIR.glob("*.yml"))


def load_rules(
    local: bool = False, *, local_for: str = LOCAL_FOR, local_window: str | None = LOCAL_WINDOW
) -> list[dict[str, Any]]:
    """Return the rule groups of every rule file, in file order.

    local: shorten every non-zero ``for`` to ``local_for``, rewrite ``[1m]`` windows to
    ``[local_window]`` (None keeps them) and drop group ``interval`` so the global evaluation
    interval applies. Recording rule names keep their ``1m`` suffix.
    """
    groups: list[dict[str, Any]] = []
    for path in rule_files():
        document = yaml.safe_load(path.read_text())
        groups.extend(document["groups"])
    if not local:
        return groups
    return [_localise(group, local_for, local_window) for group in groups]


def _localise(group: dict[str, Any], local_for: str, local_window: str | None) -> dict[str, Any]:
    group = copy.deepcopy(group)
    group.pop("interval", None)
    for rule in group["rules"]:
        if local_window is not None:
            rule["expr"] = _SHORT_WINDOW.sub(f"[{local_window}]", rule["expr"])
        if "for" in rule and rule["for"] not in ("0", "0s"):
            rule["for"] = local_for
    return group


def render_rules(local: bool = False, **kwargs: Any) -> str:
    """One rule file (YAML text) holding every group, as Prometheus reads it."""
    return dump_yaml({"groups": load_rules(local, **kwargs)})


def prometheus_rule(
    name: str = "mlcp", namespace: str = "monitoring", release: str = "kube-prometheus-stack"
) -> dict[str, Any]:
    """The same groups as a PrometheusRule (monitoring.coreos.com/v1).

    The ``release`` label is what kube-prometheus-stack's default ruleSelector matches.
    """
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/name": "mlcp",
                "app.kubernetes.io/component": "monitoring",
                "release": release,
            },
        },
        "spec": {"groups": load_rules()},
    }


class _BlockStyleDumper(yaml.SafeDumper):
    pass


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockStyleDumper.add_representer(str, _represent_str)


def dump_yaml(document: Any) -> str:
    """YAML with multi-line strings (PromQL) kept as literal blocks, keys in their given order."""
    return yaml.dump(document, Dumper=_BlockStyleDumper, sort_keys=False, width=200, allow_unicode=True)
