"""The PromQL that measures training workers on EKS, evaluated by the real promtool on cAdvisor-shaped
series (what kube-prometheus-stack scrapes from each kubelet)."""

from __future__ import annotations

import yaml

from control.adapters.prometheus_usage import worker_usage_queries
from tests.support.tools import require_binary, run_tool

SELECTOR = 'namespace="ml-training",pod="iris-r1-worker-0",container="worker"'


def test_the_usage_queries_give_cpu_percentiles_and_the_memory_peak_of_one_worker_pod(tmp_path) -> None:
    promtool = require_binary("promtool")
    queries = worker_usage_queries("ml-training", "iris-r1-worker-0", 600)
    # 15 s scrapes for 10 minutes: 1.5 cores, then 3 cores in the last minute; memory climbs to 2 GiB and falls.
    cpu = "0+22.5x36 855+45x3"
    memory = " ".join(str(v * 2**20) for v in [*range(500, 2048, 100), 2048, *range(1900, 1000, -100), 1000])
    others = 'namespace="ml-training",pod="iris-r1-worker-1",container="worker"'  # not this pod's
    tests = {
        "rule_files": [],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": f"container_cpu_usage_seconds_total{{{SELECTOR}}}", "values": cpu},
                    {"series": f"container_memory_working_set_bytes{{{SELECTOR}}}", "values": memory},
                    {"series": f"container_memory_working_set_bytes{{{others}}}", "values": "9e12x40"},
                ],
                # quantile_over_time interpolates: p90 of 41 rates, 37 of them 1.5 cores, is 1.5375.
                "promql_expr_test": [
                    {"expr": queries["cpu_max_cores"], "eval_time": "10m", "exp_samples": [{"value": 3}]},
                    {
                        "expr": f"round({queries['cpu_p90_cores']} * 10000)",
                        "eval_time": "10m",
                        "exp_samples": [{"value": 15375}],
                    },
                    {"expr": queries["memory_peak_bytes"], "eval_time": "10m", "exp_samples": [{"value": 2**31}]},
                ],
            }
        ],
    }
    test_file = tmp_path / "usage_test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = run_tool(promtool, "test", "rules", test_file)
    assert result.returncode == 0, result.stdout + result.stderr
