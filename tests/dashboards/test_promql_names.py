"""The metric-name extractor the inventory test relies on."""

from __future__ import annotations

import pytest

from dashboards.promql import metric_names, substitute_grafana_variables


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('sum by (le, version) (rate(x_bucket{code=~"5..", a="by(z)"}[5m] offset 1h))', {"x_bucket"}),
        ("a / on (deployment) group_left (model) b > bool 0.5", {"a", "b"}),
        ("sum(c) without (pod) unless ignoring (x) d", {"c", "d"}),
        ('label_replace(vector(1), "dst", "$1", "src", "(.*)") * 1e3 + 0x1f', set()),
        ("mlcp:node_pool * on (instance_type) group_left mlcp:price", {"mlcp:node_pool", "mlcp:price"}),
        ('rate(m_total{model=~"$model"}[$__rate_interval]) # trailing comment with fake_metric', {"m_total"}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[1m]))) and on() vector(1)", {"h_bucket"}),
    ],
)
def test_metric_names(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_grafana_variables_become_valid_promql() -> None:
    assert (
        substitute_grafana_variables('rate(x{a=~"$a", b=~"${b}"}[$__rate_interval])') == 'rate(x{a=~".*", b=~".*"}[5m])'
    )
