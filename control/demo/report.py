"""The demo's report: a timeline, the training loss curves, and request success and latency
across the rollout and the rollback, as an HTML page with PNG charts."""

from __future__ import annotations

import html
import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from control.local.loadgen import Sample, summarize  # noqa: E402


@dataclass(frozen=True)
class Event:
    at: datetime
    what: str
    detail: str = ""


@dataclass
class DemoReport:
    title: str
    events: list[Event] = field(default_factory=list)
    loss_curves: dict[str, Sequence[Mapping[str, float]]] = field(default_factory=dict)  # label → epoch records
    samples: list[Sample] = field(default_factory=list)  # requests to the active endpoint
    markers: dict[str, float] = field(default_factory=dict)  # label → epoch seconds
    figures: dict[str, float] = field(default_factory=dict)
    previews: dict[str, str] = field(default_factory=dict)  # dashboard → PNG drawn from live Prometheus
    weights: list[tuple[float, str]] = field(default_factory=list)  # a canary's weight changes: (epoch s, reason)

    def add(self, at: datetime, what: str, detail: str = "") -> None:
        self.events.append(Event(at, what, detail))


def write_report(report: DemoReport, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    charts = []
    if report.loss_curves:
        charts.append(("Training loss by epoch", _loss_chart(report.loss_curves, out_dir / "training-loss.png")))
    if report.samples:
        charts.append(
            (
                "Requests to the deployment across the rollouts, the rollback and the canary: who served them, "
                "the canary's weight, and where the failed requests went",
                _traffic_chart(report.samples, report.markers, out_dir / "traffic.png", report.weights),
            )
        )
    charts += [(f"Dashboard preview: {name}", src) for name, src in report.previews.items()]
    page = out_dir / "index.html"
    page.write_text(_html(report, charts))
    return page


def _loss_chart(curves: Mapping[str, Sequence[Mapping[str, float]]], path: Path) -> str:
    figure, axis = plt.subplots(figsize=(7, 3.6))
    for label, records in curves.items():
        epochs = [r["epoch"] for r in records]
        axis.plot(epochs, [r["train_loss"] for r in records], marker="o", label=f"{label} train")
        axis.plot(epochs, [r["val_loss"] for r in records], marker="s", linestyle="--", label=f"{label} validation")
    axis.set_xlabel("epoch")
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.set_ylabel("cross-entropy loss")
    axis.set_yscale("log")
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def _canary_weight(reason: str) -> int | None:
    """The weight a recorded weight change set: "... 10% → 50% (...)" or "... set to 0% at once: ..."."""
    match = re.search(r"(?:→|set to) (\d+)%", reason)
    return int(match.group(1)) if match else None


def _traffic_chart(
    samples: Sequence[Sample], markers: Mapping[str, float], path: Path, weights: Sequence[tuple[float, str]] = ()
) -> str:
    start = min(s.at for s in samples)
    seconds: dict[int, list[Sample]] = defaultdict(list)
    for sample in samples:
        seconds[int(sample.at - start)].append(sample)
    xs = sorted(seconds)
    success = [100 * sum(s.status == 200 for s in seconds[x]) / len(seconds[x]) for x in xs]
    p50 = [_quantile([s.latency for s in seconds[x]], 0.5) * 1000 for x in xs]
    p99 = [_quantile([s.latency for s in seconds[x]], 0.99) * 1000 for x in xs]
    versions = sorted({s.version for s in samples if s.version})
    share = {v: [100 * sum(s.version == v for s in seconds[x]) / len(seconds[x]) for x in xs] for v in versions}

    failed = {
        v: [sum((s.version or "?") == v and s.status != 200 for s in seconds[x]) for x in xs]
        for v in sorted({s.version or "?" for s in samples if s.status != 200})
    }
    colour = {v: f"C{index}" for index, v in enumerate(versions)} | {"?": "grey"}  # one colour per version

    figure, (top, middle, bottom, failures) = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    top.step(xs, success, where="post", color="tab:green")
    top.set_ylabel("success %")
    top.set_ylim(0, 105)
    middle.plot(xs, p50, label="p50")
    middle.plot(xs, p99, label="p99")
    middle.set_ylabel("latency (ms)")
    middle.legend(fontsize=8)
    bottom.stackplot(xs, *share.values(), labels=[f"v{v}" for v in share], colors=[colour[v] for v in share], alpha=0.8)
    steps = [(at - start, weight) for at, reason in weights if (weight := _canary_weight(reason)) is not None]
    if steps:
        bottom.step(
            [x for x, _ in steps] + [xs[-1]],
            [w for _, w in steps] + [steps[-1][1]],
            where="post",
            color="black",
            linestyle="--",
            label="canary weight %",
        )
    bottom.set_ylabel("served by %")
    bottom.legend(fontsize=8, loc="lower left")
    for version, counts in failed.items():
        label = f"failed, served by v{version}" if version != "?" else "failed, no answer"
        failures.bar(xs, counts, width=1.0, alpha=0.7, color=colour.get(version, "grey"), label=label)
    failures.set_ylabel("failed requests/s")
    failures.set_xlabel("seconds since the load started")
    if failed:
        failures.legend(fontsize=8, loc="upper left")
    for axis in (top, middle, bottom, failures):
        axis.grid(alpha=0.3)
        for at in markers.values():
            axis.axvline(at - start, color="grey", linestyle=":")
    for label, at in markers.items():
        top.annotate(label, (at - start, 102), fontsize=7, rotation=20, ha="left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path.name


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


def _html(report: DemoReport, charts: Sequence[tuple[str, str]]) -> str:
    events = sorted(report.events, key=lambda e: e.at)
    start = events[0].at if events else None
    rows = "".join(
        f"<tr><td>{(e.at - start).total_seconds():7.1f}</td><td>{e.at:%H:%M:%S}</td>"
        f"<td>{html.escape(e.what)}</td><td>{html.escape(e.detail)}</td></tr>"
        for e in events
        if start is not None
    )
    stats = summarize(list(report.samples))
    figures = {**report.figures, **{f"requests {k}": v for k, v in stats.items()}}
    figure_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>"
        if isinstance(v, float)
        else f"<tr><td>{html.escape(k)}</td><td>{v}</td></tr>"
        for k, v in figures.items()
    )
    images = "".join(f"<h2>{html.escape(t)}</h2><img src='{src}' alt='{html.escape(t)}'>" for t, src in charts)
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{html.escape(report.title)}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}td{{padding:2px 10px}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f3f3f3}}img{{max-width:100%}}</style></head>
<body><h1>{html.escape(report.title)}</h1><h2>Timeline</h2>
<table><tr><th>t+ (s)</th><th>time</th><th>step</th><th>detail</th></tr>{rows}</table>
<h2>Figures</h2><table>{figure_rows}</table>{images}</body></html>
"""
