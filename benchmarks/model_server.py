"""Model server benchmark: our server vs the stock sagemaker-inference toolkit server (Multi Model
Server), same TorchScript model, same handler, same machine, one run (issue 3, "Model server").

For each server: start it on 127.0.0.1, wait until it answers an invocation (MMS loads its model
on the first request), warm up with wrk (>= 5 s), then measure requests/s and p50/p99 latency at
concurrency 1, 8 and 32 with `wrk` (a Lua script makes the POST). Levels are interleaved between
the two servers and repeated (--rounds); the table shows medians. Finally the RSS of one server
process with the model loaded (ours: the only process; MMS: a Python worker, plus the whole tree).

Needs: `wrk` (Debian package `wrk`); MMS in its own virtualenv at .venv-mms:
  python3 -m venv .venv-mms && .venv-mms/bin/pip install torch==2.13.0 numpy==2.4.6 \
      setuptools==80.9.0 multi-model-server==1.1.11 sagemaker-inference==1.10.1
and Java (MMS's frontend). Without MMS the benchmark runs ours alone and says why.

    .venv/bin/python benchmarks/model_server.py [--duration 8] [--rounds 3] [--json out.json]

Default run: about 3 minutes on 2 cores. Note that wrk shares the machine's cores with the server
under test; both servers pay the same tax.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks import model_server_mms as mms  # noqa: E402
from control.local.processes import free_port  # noqa: E402

CONCURRENCY = (1, 8, 32)
N_FEATURES = 8
PAYLOAD = json.dumps({"instances": [[0.5, -1.2, 3.3, 0.0, 2.1, -0.7, 1.5, 0.25]]})
LUA = f"""wrk.method = "POST"
wrk.body = '{PAYLOAD}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass
class Level:
    concurrency: int
    rps: list[float] = field(default_factory=list)
    p50_ms: list[float] = field(default_factory=list)
    p99_ms: list[float] = field(default_factory=list)
    cpu_us: list[float] = field(default_factory=list)  # server CPU time per request, all its processes
    errors: int = 0

    def median(self, name: str) -> float:
        values = getattr(self, name)
        return statistics.median(values) if values else float("nan")


@dataclass
class ServerRun:
    name: str
    url: str
    levels: dict[int, Level]
    rss_mib: float = float("nan")
    rss_note: str = ""
    startup_s: float = float("nan")


def free_port_pair() -> int:
    """A port p with p+1 free too (MMS binds its management API there), below 32767: MMS rejects
    larger ones ("Invalid port number"), and the kernel's ephemeral ports start above that."""
    import random

    for _ in range(200):
        port = random.randrange(20000, 32000)
        try:
            with socket.socket() as first, socket.socket() as second:
                first.bind(("127.0.0.1", port))
                second.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError("no free pair of ports below 32000")


def invoke(url: str, timeout: float = 5.0) -> int:
    request = urllib.request.Request(
        url + "/invocations", data=PAYLOAD.encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return 0


def wait_serving(url: str, deadline_s: float, process: subprocess.Popen[bytes]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < deadline_s:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        if invoke(url, timeout=30.0) == 200:
            return time.monotonic() - started
        time.sleep(0.25)
    raise RuntimeError(f"{url}: not serving after {deadline_s:.0f} s")


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class WrkResult:
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def run_wrk(url: str, lua: Path, concurrency: int, seconds: float) -> WrkResult:
    command = [
        "wrk",
        "-t1",
        f"-c{concurrency}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(lua),
        url + "/invocations",
    ]
    out = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30, check=True).stdout
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if non_2xx:
        errors += int(non_2xx.group(1))
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if sockets:
        errors += sum(int(n) for n in sockets.groups())
    return WrkResult(requests, rps, p50, p99, errors)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
        except psutil.Error:
            continue
    return total


def rss_mib(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 2**20


def start_ours(artifact: Path, sha256: str, port: int, scratch: Path) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLCP_", "MODEL_", "SAGEMAKER_"))},
        "MODEL_URI": str(artifact),
        "MODEL_SHA256": sha256,
        "MODEL_NAME": "bench",
        "MODEL_VERSION": "1",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "MLCP_BIND_HOST": "127.0.0.1",
        "MLCP_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.Popen(
        [sys.executable, "-m", "workloads.inference.serve"],
        env=env,
        cwd=str(REPO),
        stdout=open(scratch / "ours.log", "wb"),  # noqa: SIM115 - lives as long as the server
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_ours(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check


def print_table(runs: list[ServerRun], args: argparse.Namespace, load: tuple[str, str]) -> None:
    ours, base = runs[0], (runs[1] if len(runs) > 1 else None)
    print()
    print(
        f"Model server benchmark: 127.0.0.1, {os.cpu_count()} CPUs, 1 row x {N_FEATURES} features JSON per request, "
        f"wrk -t1, {args.rounds} rounds x {args.duration:g} s per level (medians), warm-up {args.warmup:g} s"
    )
    print(f"load average before: {load[0]}; after: {load[1]}")
    columns: list[tuple[str, str]] = [
        ("req/s", "rps"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("CPU us/req", "cpu_us"),
    ]
    header = ["concurrency"]
    for title, _ in columns:
        header += [f"{run.name} {title}" for run in runs]
        if base and title in ("req/s", "CPU us/req"):
            header.append("ratio")
    if base:
        header.append("target")
    header.append("errors")
    rows = []
    for c in CONCURRENCY:
        row = [str(c)]
        for _title, name in columns:
            values = [run.levels[c].median(name) for run in runs]
            row += [fmt(v, 0 if name in ("rps", "cpu_us") else 2) for v in values]
            if base and name == "rps":
                row.append(fmt(values[0] / values[1], 2) + "x" if values[1] else "n/a")
            if base and name == "cpu_us":
                row.append(fmt(values[1] / values[0], 2) + "x" if values[0] else "n/a")
        if base:
            a, b = ours.levels[c], base.levels[c]
            met = a.median("rps") >= 2.0 * b.median("rps") and a.median("p99_ms") < b.median("p99_ms")
            row.append("met" if met else "MISSED")
        row.append(" / ".join(str(run.levels[c].errors) for run in runs))
        rows.append(row)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    print("  ".join(h.rjust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(v.rjust(w) for v, w in zip(r, widths, strict=True)))
    print()
    for run in runs:
        ready = fmt(run.startup_s, 1)
        print(f"RSS {run.name}: {fmt(run.rss_mib, 1)} MiB {run.rss_note}; first answer after {ready} s")
    print(
        "ratios: ours/MMS for req/s, MMS/ours for CPU per request (both: higher is better for ours). "
        "target: >= 2x MMS req/s and a lower p99. CPU us/req: CPU time of all the server's processes per request "
        "served, the figure least disturbed by other load on a shared machine."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per level and server (default 3)")
    parser.add_argument("--warmup", type=float, default=6.0, help="warm-up seconds per server, >= 5 (default 6)")
    parser.add_argument("--mms-workers", type=int, default=0, help="MMS workers (default: the toolkit's, 1 per CPU)")
    parser.add_argument("--skip-mms", action="store_true", help="measure our server alone")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.warmup < 5:
        parser.error("--warmup must be at least 5 s")
    if shutil.which("wrk") is None:
        print("wrk is not installed (Debian: apt-get install wrk)", file=sys.stderr)
        return 2
    why_no_mms = "skipped (--skip-mms)" if args.skip_mms else mms.mms_available()
    if why_no_mms:
        print(f"MMS baseline not run: {why_no_mms}", file=sys.stderr)

    scratch = Path(tempfile.mkdtemp(prefix="mlcp-model-server-bench-"))
    artifact = scratch / "model"
    sha256 = mms.build_artifact(artifact, n_features=N_FEATURES)
    lua = scratch / "post.lua"
    lua.write_text(LUA)

    load_before = _load_average()
    ours_port = free_port()
    runs = [ServerRun("ours", f"http://127.0.0.1:{ours_port}", {c: Level(c) for c in CONCURRENCY})]
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        processes["ours"] = start_ours(artifact, sha256, ours_port, scratch)
        runs[0].startup_s = wait_serving(runs[0].url, 120, processes["ours"])
        if not why_no_mms:
            mms_port = free_port_pair()
            runs.append(ServerRun("MMS", f"http://127.0.0.1:{mms_port}", {c: Level(c) for c in CONCURRENCY}))
            processes["MMS"] = mms.start_mms(artifact, scratch / "mms", mms_port, args.mms_workers or None)
            runs[1].startup_s = wait_serving(runs[1].url, 180, processes["MMS"])
        for run in runs:
            print(f"warming up {run.name} for {args.warmup:g} s", file=sys.stderr)
            run_wrk(run.url, lua, 8, args.warmup)
        pids = {"ours": [processes["ours"].pid]}
        if "MMS" in processes:
            pids["MMS"] = mms.mms_processes(processes["MMS"])
        for round_ in range(1, args.rounds + 1):
            for c in CONCURRENCY:
                for run in runs:
                    cpu_before = cpu_seconds(pids[run.name])
                    result = run_wrk(run.url, lua, c, args.duration)
                    cpu_us = (cpu_seconds(pids[run.name]) - cpu_before) / max(1, result.requests) * 1e6
                    level = run.levels[c]
                    level.rps.append(result.rps)
                    level.p50_ms.append(result.p50_ms)
                    level.p99_ms.append(result.p99_ms)
                    level.cpu_us.append(cpu_us)
                    level.errors += result.errors
                    print(
                        f"round {round_} c={c:<2} {run.name:>4}: {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                        f"p99 {result.p99_ms:7.2f} ms  server CPU {cpu_us:6.0f} us/request  errors {result.errors}",
                        file=sys.stderr,
                    )
        runs[0].rss_mib = rss_mib(processes["ours"].pid)
        runs[0].rss_note = "(the server's only process)"
        if len(runs) > 1:
            tree = {pid: _cmd_rss(pid) for pid in mms.mms_processes(processes["MMS"])}
            workers = [rss for cmd, rss in tree.values() if "model_service_worker" in cmd]
            java = [rss for cmd, rss in tree.values() if "java" in cmd]
            runs[1].rss_mib = max(workers) if workers else float("nan")
            runs[1].rss_note = (
                f"(one Python worker with the model; whole MMS tree {sum(r for _, r in tree.values()):.0f} MiB: "
                f"Java frontend {sum(java):.0f} MiB + {len(workers)} worker process(es))"
            )
    finally:
        if "ours" in processes:
            stop_ours(processes["ours"])
        if "MMS" in processes:
            mms.stop_mms(processes["MMS"])
    print_table(runs, args, (load_before, _load_average()))
    if why_no_mms:
        print(f"MMS baseline not run: {why_no_mms}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=2, default=str))
    shutil.rmtree(scratch, ignore_errors=True)
    return 0


def _load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def _cmd_rss(pid: int) -> tuple[str, float]:
    import psutil

    try:
        process = psutil.Process(pid)
        return " ".join(process.cmdline()), process.memory_info().rss / 2**20
    except psutil.Error:
        return "", 0.0


if __name__ == "__main__":
    sys.exit(main())
