"""Training benchmark: samples/s with 1 vs 2 Horovod workers on this host, and launch → first step.

Runs the real entrypoint under `horovodrun -np N -H localhost:N --gloo` on a synthetic dataset,
alternating 1 and 2 workers `--repeats` times, and prints the medians side by side:

- samples/s: training samples over all workers per second, median over the epochs after the first
  (the first carries warm-up), then median over repeats;
- scaling efficiency: samples/s(2) / (2 × samples/s(1));
- launch → first step: from just before `horovodrun` is started to rank 0's first optimizer step
  (target ≤ 10 s), with the part spent before the workers' Python code runs shown separately.

    .venv/bin/python benchmarks/training_scaling.py [--rows 60000 --epochs 4 --batch-size 1024 --repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workloads.training.synthetic import synthetic_csv  # noqa: E402

FIRST_STEP_TARGET_S = 10.0


@dataclass
class Run:
    workers: int
    samples_per_second: float
    launch_to_first_step_s: float
    launch_to_started_s: float
    wall_s: float
    val_accuracy: float


def run_once(workers: int, data: Path, work: Path, args: argparse.Namespace) -> Run:
    horovodrun = Path(sys.executable).parent / "horovodrun"
    name = f"np{workers}-{time.monotonic_ns()}"
    command = [
        str(horovodrun), "-np", str(workers), "-H", f"localhost:{workers}", "--gloo",
        sys.executable, str(ROOT / "workloads/training/train.py"),
        "--dataset-uri", str(data), "--output-uri", str(work / name / "out"),
        "--checkpoint-dir", str(work / name / "ckpt"), "--model-name", "bench", "--run-id", name,
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
        "--hidden-units", str(args.hidden_units),
    ]  # fmt: skip
    env = dict(os.environ)
    if args.threads_per_worker:
        env["OMP_NUM_THREADS"] = str(args.threads_per_worker)
    launched = time.time()
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    wall = time.time() - launched
    if finished.returncode != 0:
        tail = finished.stderr[-3000:]
        raise SystemExit(f"horovodrun -np {workers} failed ({finished.returncode}):\n{tail}")
    events = [_event(line) for line in finished.stdout.splitlines()]
    events = [event for event in events if event]
    by_name = {event["event"]: event for event in events if event["event"] != "epoch"}
    epochs = [event for event in events if event["event"] == "epoch"]
    steady = [event["samples_per_second"] for event in epochs[1:]] or [epochs[0]["samples_per_second"]]
    return Run(
        workers=workers,
        samples_per_second=statistics.median(steady),
        launch_to_first_step_s=by_name["first_step"]["time"] - launched,
        launch_to_started_s=by_name["started"]["time"] - launched,
        wall_s=wall,
        val_accuracy=epochs[-1]["val_accuracy"],
    )


def _event(line: str) -> dict | None:
    """horovodrun prefixes each line with `[rank]<stdout>:`; the JSON starts at the first brace."""
    start = line.find("{")
    if start < 0:
        return None
    try:
        event = json.loads(line[start:])
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=1024, help="per worker")
    parser.add_argument("--hidden-units", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--threads-per-worker", type=int, default=0,
        help="OMP_NUM_THREADS for each worker (default: the job's own rule, 1 thread per worker on CPU)",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="training-bench-") as folder:
        work = Path(folder)
        data = work / "data" / "data.csv"
        data.parent.mkdir()
        data.write_text(synthetic_csv(args.rows, seed=0))
        runs: dict[int, list[Run]] = {1: [], 2: []}
        for _ in range(args.repeats):
            for workers in (1, 2):
                runs[workers].append(run_once(workers, data.parent, work, args))

    def median(workers: int, field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs[workers])

    sps1, sps2 = median(1, "samples_per_second"), median(2, "samples_per_second")
    efficiency = sps2 / (2 * sps1)
    first_step = max(median(1, "launch_to_first_step_s"), median(2, "launch_to_first_step_s"))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"Training scaling on this host ({cores} cores), {args.rows} rows, {args.epochs} epochs, "
        f"batch {args.batch_size}/worker, {args.repeats} repeats (medians)"
    )
    print(f"{'':34}{'1 worker':>12}{'2 workers':>12}")
    rows = [
        ("samples/s (steady epochs)", "samples_per_second", "{:12.0f}"),
        ("launch → first step (s)", "launch_to_first_step_s", "{:12.2f}"),
        ("  of which launch → worker up (s)", "launch_to_started_s", "{:12.2f}"),
        ("whole run, wall (s)", "wall_s", "{:12.2f}"),
        ("final val accuracy", "val_accuracy", "{:12.3f}"),
    ]
    for label, field, fmt in rows:
        print(f"{label:34}" + fmt.format(median(1, field)) + fmt.format(median(2, field)))
    print(f"scaling efficiency (2 workers): {efficiency:.2f}  (speed-up {sps2 / sps1:.2f}x)")
    verdict = "meets" if first_step <= FIRST_STEP_TARGET_S else "MISSES"
    print(f"launch → first step: {first_step:.2f} s, {verdict} the ≤ {FIRST_STEP_TARGET_S:.0f} s target")
    if args.json:
        figures = {
            "settings": vars(args) | {"json": None, "cores": cores},
            "runs": {str(k): [vars(run) for run in v] for k, v in runs.items()},
            "samples_per_second": {"1": sps1, "2": sps2},
            "scaling_efficiency": efficiency,
            "launch_to_first_step_s": first_step,
        }
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
