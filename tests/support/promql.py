"""The PromQL the alert rules and the Grafana dashboards hold, and the metrics it reads."""

from __future__ import annotations

import functools

from dashboards.generate import DASHBOARDS
from dashboards.promql import metric_names
from dashboards.rules import load_rules


def recorded() -> set[str]:
    return {rule["record"] for group in load_rules() for rule in group["rules"] if "record" in rule}


@functools.cache
def expressions() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and every dashboard query, annotation and variable."""
    found = [
        (f"rule {rule.get('alert') or rule.get('record')}", rule["expr"])
        for group in load_rules()
        for rule in group["rules"]
    ]
    for name, build in DASHBOARDS.items():
        dashboard = build()
        exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
        exprs += [a["expr"] for a in dashboard["annotations"]["list"] if "expr" in a]
        # label_values(<selector>, <label>): the selector names the metric.
        exprs += [
            v["query"].removeprefix("label_values(").rsplit(",", 1)[0]
            for v in dashboard["templating"]["list"]
            if v["type"] == "query"
        ]
        found += [(f"dashboard {name}", expr) for expr in exprs]
    return found


def used_metrics() -> dict[str, set[str]]:
    used: dict[str, set[str]] = {}
    for where, expr in expressions():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    return used
