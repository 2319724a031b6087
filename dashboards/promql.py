"""Small PromQL helpers: the metric names an expression reads, and Grafana variables removed.

Parsing (is the expression valid?) is promtool's job; this only has to find metric names in
expressions promtool accepts. It skips strings, label matchers, range/offset durations, label
lists of by/without/on/ignoring/group_left/group_right, and names called as functions.
"""

from __future__ import annotations

import re

_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "offset",
    "and",
    "or",
    "unless",
    "atan2",
    "inf",
    "nan",
    "start",
    "end",
    # aggregation operators (always followed by a parenthesis or by/without, but be safe)
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
}
_LABEL_LIST_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")
_NUMBER = re.compile(r"(0x[0-9a-fA-F]+|[0-9]*\.?[0-9]+([eE][-+]?[0-9]+)?[a-zA-Z0-9]*)")

# Grafana's built-in and template variables, replaced by values promtool accepts.
_GRAFANA_RANGE_VARIABLES = re.compile(r"\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}")
_GRAFANA_VARIABLE = re.compile(r"\$\{(\w+)(:\w+)?\}|\$(\w+)")


def substitute_grafana_variables(expr: str) -> str:
    """Make a dashboard query plain PromQL: range variables → 5m, other variables → ``.*``.

    Template variables only appear inside label matcher strings in these dashboards
    (``{model=~"$model"}``), where ``.*`` keeps the expression valid.
    """
    expr = _GRAFANA_RANGE_VARIABLES.sub("5m", expr)
    return _GRAFANA_VARIABLE.sub(".*", expr)


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects (including recording-rule names)."""
    names: set[str] = set()
    i, n = 0, len(expr)
    while i < n:
        c = expr[i]
        if c in "\"'`":
            i = _skip_string(expr, i)
        elif c == "#":
            newline = expr.find("\n", i)
            i = n if newline < 0 else newline
        elif c == "{":
            i = _skip_until(expr, i, "}")
        elif c == "[":
            i = _skip_until(expr, i, "]")
        elif c == "$":
            match = re.compile(r"\$\{?\w+(:\w+)?\}?").match(expr, i)
            i = match.end() if match else i + 1
        elif c.isdigit() or (c == "." and i + 1 < n and expr[i + 1].isdigit()):
            match = _NUMBER.match(expr, i)
            i = match.end() if match else i + 1
        elif c.isalpha() or c in "_:":
            match = _IDENT.match(expr, i)
            assert match is not None
            word = match.group(0)
            i = match.end()
            following = _next_non_space(expr, i)
            lowered = word.lower()
            if lowered in _LABEL_LIST_KEYWORDS:
                if following < n and expr[following] == "(":
                    i = _skip_until(expr, following, ")")
            elif lowered in _KEYWORDS:
                pass
            elif following < n and expr[following] == "(":
                pass  # a function call
            else:
                names.add(word)
        else:
            i += 1
    return names


def _skip_string(expr: str, i: int) -> int:
    quote = expr[i]
    i += 1
    while i < len(expr) and expr[i] != quote:
        i += 2 if expr[i] == "\\" and quote != "`" else 1
    return i + 1


def _skip_until(expr: str, i: int, closing: str) -> int:
    i += 1
    while i < len(expr) and expr[i] != closing:
        i = _skip_string(expr, i) if expr[i] in "\"'`" else i + 1
    return i + 1


def _next_non_space(expr: str, i: int) -> int:
    while i < len(expr) and expr[i].isspace():
        i += 1
    return i
