"""Model server benchmark: our server vs the stock sagemaker-inference toolkit server (Multi Model
Server) and vs LitServe, same TorchScript model, same worker count, same machine, one run (issues 3
and 15, "Model server").

For each server: start it on 127.0.0.1, wait until it answers an invocation (MMS loads its model
on the first request), warm up with wrk (>= 5 s), then measure requests/s and p50/p99 latency at
concurrency 1, 8 and 32 with `wrk` (a Lua script makes the POST). Levels are interleaved between
the servers and repeated (--rounds); the table shows medians. Finally the RSS of one worker process
with the model loaded, and of each server's whole process tree.

Worker count: --workers (default: one per CPU, MMS's own default), for all three servers: ours as
MLCP_WORKERS processes on one port (SO_REUSEPORT), MMS as SAGEMAKER_MODEL_SERVER_WORKERS, LitServe as
workers_per_device with as many API servers.

Needs `make bench-peers` once: `wrk`, Java (MMS's frontend), and MMS and LitServe in virtualenvs of
their own (.venv-mms, .venv-litserve) installed from their locks (requirements/bench-*.txt).
A peer that is not installed is left out, and the benchmark says why.

    .venv/bin/python benchmarks/model_server.py [--duration 8] [--rounds 3] [--pin-wrk CPU] [--json out.json]

Default run: about 5 minutes on 2 cores. wrk shares the machine's cores with the server under test
and every server pays the same tax; --pin-wrk 1 confines wrk to CPU 1 (taskset) so that its share
is the same whatever the server's scheduling.

Where one request's CPU goes (data path, metrics, uvicorn's HTTP cycle, the kernel) and what each
change gave, before/after: benchmarks/README.md, "Model server".
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

from benchmarks import model_server_litserve as litserve  # noqa: E402
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


def run_wrk(url: str, lua: Path, concurrency: int, seconds: float, pin: str | None = None) -> WrkResult:
    command = [
        *(["taskset", "-c", pin] if pin else []),
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


def start_ours(artifact: Path, sha256: str, port: int, scratch: Path, workers: int) -> subprocess.Popen[bytes]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("MLCP_", "MODEL_", "SAGEMAKER_"))},
        "MODEL_URI": str(artifact),
        "MODEL_SHA256": sha256,
        "MODEL_NAME": "bench",
        "MODEL_VERSION": "1",
        "SAGEMAKER_BIND_TO_PORT": str(port),
        "MLCP_BIND_HOST": "127.0.0.1",
        "MLCP_LOG_LEVEL": "WARNING",
        "MLCP_WORKERS": str(workers),
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
        process.send_signal(signal.SIGTERM)  # the supervisor drains its workers
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def fmt(value: float, digits: int = 2) -> str:
    return "n/a" if value != value else f"{value:.{digits}f}"  # NaN check


TARGET_RATIO = 3.0  # issue 15: >= 3x MMS's requests/s at every level, with a lower p99


def print_table(runs: list[ServerRun], args: argparse.Namespace, load: tuple[str, str]) -> None:
    ours, peers = runs[0], runs[1:]
    mms_run = next((run for run in peers if run.name == "MMS"), None)
    print()
    print(
        f"Model server benchmark: 127.0.0.1, {os.cpu_count()} CPUs, {args.workers} worker(s) each, 1 row x "
        f"{N_FEATURES} features JSON per request, wrk -t1{f' pinned to CPU {args.pin_wrk}' if args.pin_wrk else ''}, "
        f"{args.rounds} rounds x {args.duration:g} s per level (medians), warm-up {args.warmup:g} s"
    )
    print(f"load average before: {load[0]}; after: {load[1]}")
    columns: list[tuple[str, str]] = [
        ("req/s", "rps"),
        ("p50 ms", "p50_ms"),
        ("p99 ms", "p99_ms"),
        ("CPU us/req", "cpu_us"),
    ]
    header = ["c"]
    for title, _ in columns:
        header += [f"{run.name} {title}" for run in runs]
        if title == "req/s":
            header += [f"x{peer.name}" for peer in peers]
    if mms_run:
        header.append("target")
    header.append("errors")
    rows = []
    for c in CONCURRENCY:
        row = [str(c)]
        for _title, name in columns:
            values = [run.levels[c].median(name) for run in runs]
            row += [fmt(v, 0 if name in ("rps", "cpu_us") else 2) for v in values]
            if name == "rps":
                row += [fmt(values[0] / v, 2) + "x" if v else "n/a" for v in values[1:]]
        if mms_run:
            a, b = ours.levels[c], mms_run.levels[c]
            met = a.median("rps") >= TARGET_RATIO * b.median("rps") and a.median("p99_ms") < b.median("p99_ms")
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
        f"xPEER: ours/PEER req/s. target: >= {TARGET_RATIO:g}x MMS req/s and a lower p99 than MMS. "
        "CPU us/req: CPU time of all the server's processes per request served, "
        "the figure least disturbed by other load on a shared machine."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement (default 8)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per level and server (default 3)")
    parser.add_argument("--warmup", type=float, default=6.0, help="warm-up seconds per server, >= 5 (default 6)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="worker processes per server")
    parser.add_argument("--pin-wrk", metavar="CPU", help="run wrk under `taskset -c CPU`")
    parser.add_argument("--skip-mms", action="store_true", help="leave MMS out")
    parser.add_argument("--skip-litserve", action="store_true", help="leave LitServe out")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.warmup < 5:
        parser.error("--warmup must be at least 5 s")
    if shutil.which("wrk") is None:
        print("wrk is not installed (`make bench-peers` installs it)", file=sys.stderr)
        return 2
    why_no_mms = "skipped (--skip-mms)" if args.skip_mms else mms.mms_available()
    why_no_litserve = "skipped (--skip-litserve)" if args.skip_litserve else litserve.litserve_available()
    for name, why in (("MMS", why_no_mms), ("LitServe", why_no_litserve)):
        if why:
            print(f"{name} not run: {why}", file=sys.stderr)

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
        processes["ours"] = start_ours(artifact, sha256, ours_port, scratch, args.workers)
        runs[0].startup_s = wait_serving(runs[0].url, 120, processes["ours"])
        if not why_no_mms:
            mms_port = free_port_pair()
            runs.append(ServerRun("MMS", f"http://127.0.0.1:{mms_port}", {c: Level(c) for c in CONCURRENCY}))
            processes["MMS"] = mms.start_mms(artifact, scratch / "mms", mms_port, args.workers)
            runs[-1].startup_s = wait_serving(runs[-1].url, 180, processes["MMS"])
        if not why_no_litserve:
            lit_port = free_port()
            runs.append(ServerRun("LitServe", f"http://127.0.0.1:{lit_port}", {c: Level(c) for c in CONCURRENCY}))
            processes["LitServe"] = litserve.start_litserve(artifact, lit_port, args.workers, scratch / "litserve.log")
            runs[-1].startup_s = wait_serving(runs[-1].url, 180, processes["LitServe"])
        for run in runs:
            print(f"warming up {run.name} for {args.warmup:g} s", file=sys.stderr)
            run_wrk(run.url, lua, 8, args.warmup, args.pin_wrk)
        pids = {name: mms.mms_processes(process) for name, process in processes.items()}  # each leads a session
        for round_ in range(1, args.rounds + 1):
            for c in CONCURRENCY:
                for run in runs:
                    cpu_before = cpu_seconds(pids[run.name])
                    result = run_wrk(run.url, lua, c, args.duration, args.pin_wrk)
                    cpu_us = (cpu_seconds(pids[run.name]) - cpu_before) / max(1, result.requests) * 1e6
                    level = run.levels[c]
                    level.rps.append(result.rps)
                    level.p50_ms.append(result.p50_ms)
                    level.p99_ms.append(result.p99_ms)
                    level.cpu_us.append(cpu_us)
                    level.errors += result.errors
                    print(
                        f"round {round_} c={c:<2} {run.name:>8}: {result.rps:8.0f} req/s  p50 {result.p50_ms:7.2f} ms  "
                        f"p99 {result.p99_ms:7.2f} ms  server CPU {cpu_us:6.0f} us/request  errors {result.errors}",
                        file=sys.stderr,
                    )
        for run in runs:
            tree = {pid: _cmd_rss(pid) for pid in pids[run.name]}
            total = sum(rss for _, rss in tree.values())
            if run.name == "MMS":
                workers = [rss for cmd, rss in tree.values() if "model_service_worker" in cmd]
                java = sum(rss for cmd, rss in tree.values() if "java" in cmd)
                run.rss_note = (
                    f"(one Python worker with the model; whole tree {total:.0f} MiB, Java frontend {java:.0f} MiB)"
                )
            else:
                workers = [rss for _, rss in tree.values()]
                run.rss_note = f"(the largest of its {len(tree)} processes; whole tree {total:.0f} MiB)"
            run.rss_mib = max(workers) if workers else float("nan")
    finally:
        if "ours" in processes:
            stop_ours(processes["ours"])
        if "MMS" in processes:
            mms.stop_mms(processes["MMS"])
        if "LitServe" in processes:
            litserve.stop_session(processes["LitServe"])
    print_table(runs, args, (load_before, _load_average()))
    for name, why in (("MMS", why_no_mms), ("LitServe", why_no_litserve)):
        if why:
            print(f"{name} not run: {why}")
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
