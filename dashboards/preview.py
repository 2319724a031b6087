"""PNG previews of the dashboards, drawn from a live Prometheus (Grafana cannot run here).

    .venv/bin/python -m dashboards.preview --prometheus http://127.0.0.1:9090 --out build/previews \
        [--range 15m] [--step 5s] [--rate-interval 1m] [--var deployment=iris]

Each timeseries/stat panel's queries run as range queries (template variables replaced: the ones
given with --var, the rest match anything) and are drawn in the panel's place order, one PNG per
dashboard. Panels without data say so, so a preview also shows what a setup does not export.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from dashboards.generate import GRAFANA_DIR

DRAWN_TYPES = ("timeseries", "stat")


@dataclass(frozen=True)
class PanelResult:
    title: str
    series: list[tuple[str, list[float], list[float]]]
    error: str | None = None


def substitute(expr: str, variables: dict[str, str], rate_interval: str) -> str:
    expr = re.sub(r"\$__(rate_interval|interval|range)|\$\{__(rate_interval|interval|range)\}", rate_interval, expr)
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ".*"), expr)


def legend(template: str, metric: dict[str, str]) -> str:
    if not template:
        return ",".join(f"{k}={v}" for k, v in sorted(metric.items()) if k != "__name__") or "value"
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), template)


def query_range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
    params: dict[str, str | float] = {"query": expr, "start": start, "end": end, "step": step}
    response = requests.get(f"{prometheus.rstrip('/')}/api/v1/query_range", params=params, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(body.get("error", response.text))
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def collect(
    dashboard: dict[str, Any],
    prometheus: str,
    start: float,
    end: float,
    step: float,
    variables: dict[str, str],
    rate_interval: str,
) -> list[PanelResult]:
    results = []
    for panel in dashboard["panels"]:
        if panel["type"] not in DRAWN_TYPES:
            continue
        series: list[tuple[str, list[float], list[float]]] = []
        error = None
        for target in panel.get("targets", []):
            try:
                expr = substitute(target["expr"], variables, rate_interval)
                for item in query_range(prometheus, expr, start, end, step):
                    points = [(float(t), float(v)) for t, v in item["values"]]
                    series.append(
                        (
                            legend(target.get("legendFormat", ""), item["metric"]),
                            [t - end for t, _ in points],
                            [v for _, v in points],
                        )
                    )
            except (RuntimeError, requests.RequestException) as exc:
                error = str(exc)
        results.append(PanelResult(panel["title"], series, error))
    return results


def draw(title: str, panels: list[PanelResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = 3
    rows = max(1, math.ceil(len(panels) / columns))
    figure, axes = plt.subplots(rows, columns, figsize=(6 * columns, 3.2 * rows), squeeze=False)
    figure.suptitle(title, fontsize=14)
    for index, ax in enumerate(axes.flat):
        if index >= len(panels):
            ax.axis("off")
            continue
        panel = panels[index]
        ax.set_title(panel.title, fontsize=9)
        ax.tick_params(labelsize=7)
        if panel.error:
            ax.text(0.5, 0.5, f"query error:\n{panel.error[:120]}", ha="center", va="center", fontsize=7, color="red")
        elif not panel.series:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", fontsize=9, color="grey")
        for label, times, values in panel.series[:12]:
            ax.plot(times, values, label=label[:40], linewidth=1)
        if panel.series:
            ax.set_xlabel("seconds before now", fontsize=7)
            ax.legend(fontsize=6, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def render_previews(
    prometheus: str,
    out_dir: Path,
    range_seconds: float = 900,
    step: float = 5,
    variables: dict[str, str] | None = None,
    rate_interval: str = "1m",
    now: float | None = None,
) -> dict[str, list[PanelResult]]:
    """Draw every dashboard in dashboards/grafana/ into out_dir/<name>.png; return what was drawn."""
    end = time.time() if now is None else now
    drawn = {}
    for path in sorted(GRAFANA_DIR.glob("*.json")):
        dashboard = json.loads(path.read_text())
        panels = collect(dashboard, prometheus, end - range_seconds, end, step, variables or {}, rate_interval)
        draw(dashboard["title"], panels, out_dir / f"{path.stem}.png")
        drawn[path.stem] = panels
    return drawn


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--out", type=Path, default=Path("build/previews"))
    parser.add_argument("--range", default="15m", help="how far back (s, m, h)")
    parser.add_argument("--step", default="5s")
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval becomes")
    parser.add_argument("--var", action="append", default=[], help="NAME=REGEX for a template variable")
    args = parser.parse_args(argv)
    variables = dict(item.split("=", 1) for item in args.var)
    drawn = render_previews(
        args.prometheus, args.out, _seconds(args.range), _seconds(args.step), variables, args.rate_interval
    )
    for name, panels in drawn.items():
        with_data = sum(1 for p in panels if p.series)
        print(f"{args.out / (name + '.png')}: {with_data}/{len(panels)} panels with data")
    return 0


if __name__ == "__main__":
    sys.exit(main())
