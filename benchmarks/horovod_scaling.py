"""Horovod scaling where compute dominates: a small CNN on synthetic images, 1 vs 2 workers.

The training job's own model (an MLP on a few features) spends each step in the allreduce, so
its 2-worker figure says nothing about the platform. Here each rank trains a small CNN
(2 conv layers + a linear head, 60 k parameters) on synthetic 3×32×32 images, with a fixed
number of threads per rank, under the launcher the local cluster uses (`python -m
control.local.horovod_launch -np N -H localhost:N --gloo`, horovodrun's own code). It prints, side
by side, in one run:

- weak scaling: the same batch per rank on 1 and 2 workers; efficiency = images/s(2) / (2 × images/s(1));
- strong scaling: the same global batch split over 1 and 2 workers; efficiency =
  step time(1) / (2 × step time(2));
- the host's ceiling: the same 2 ranks' work as 2 independent processes with no Horovod and no
  allreduce. On a VM whose 2 vCPUs are shared, two compute-bound processes together do not run at
  2× one alone; the weak-scaling figure is also shown as a fraction of that ceiling, which is the
  part Horovod is answerable for;
- for 2 workers, Tensor Fusion on/off (HOROVOD_FUSION_THRESHOLD 64 MiB / 0) × fp16 gradient
  compression on/off (hvd.Compression.fp16 / none);
- launch → first step with 2 workers: from just before the launcher starts to the end of rank
  0's first optimizer step (target ≤ 10 s), with the local cluster's launcher
  (control/local/horovod_launch.py: horovodrun without its build pre-check) beside stock `horovodrun`.

Each configuration runs `--repeats` times, interleaved, and the medians are shown. The host is
shared: the load average before and after is printed with the figures.

    nice -n 10 .venv/bin/python benchmarks/horovod_scaling.py [--steps 30 --batch 32 --threads 1 --repeats 2]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIRST_STEP_TARGET_S = 10.0
WEAK_SCALING_TARGET = 0.85
WARMUP_STEPS = 3


# -- the worker: one rank ----------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    launched = float(os.environ["BENCH_LAUNCHED_AT"])
    started_at = time.time()
    import torch
    import torch.nn.functional as F  # noqa: N812
    from torch import nn

    hvd = None if args.solo else importlib.import_module("horovod.torch")
    imported_at = time.time()
    torch.set_num_threads(args.threads)
    if hvd is None:  # the host's ceiling: the same rank's work, alone, with no one to talk to
        rank, size = int(os.environ["BENCH_RANK"]), 1
    else:
        hvd.init()
        rank, size = hvd.rank(), hvd.size()
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 8 * 8, 10),
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01 * size, momentum=0.9)
    if hvd is not None:
        optimizer = hvd.DistributedOptimizer(
            optimizer,
            named_parameters=model.named_parameters(),
            compression=hvd.Compression.fp16 if args.fp16 else hvd.Compression.none,
        )
        hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    generator = torch.Generator().manual_seed(rank)
    images = torch.randn(args.batch, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (args.batch,), generator=generator)
    times, waits, cpu, first_step_at = [], [], [], 0.0
    for step in range(args.steps + WARMUP_STEPS):
        started, cpu_started = time.perf_counter(), time.process_time()
        optimizer.zero_grad()
        loss = F.cross_entropy(model(images), labels)
        loss.backward()  # the allreduces start here, gradient by gradient (or fused)
        computed = time.perf_counter()
        optimizer.step()  # waits for the averaged gradients: the allreduce time compute did not hide
        if step == 0:
            first_step_at = time.time()
        if step >= WARMUP_STEPS:
            times.append(time.perf_counter() - started)
            waits.append(time.perf_counter() - computed)
            cpu.append(time.process_time() - cpu_started)  # every thread of the rank, Horovod's too
    medians = (statistics.median(times), statistics.median(waits), statistics.median(cpu))
    gathered = [medians] if hvd is None else hvd.allgather_object(medians, name="step_times")
    if rank == 0 or hvd is None:
        parameters = sum(p.numel() for p in model.parameters())
        print(
            json.dumps(
                {
                    "step_s": max(t for t, _, _ in gathered),  # the slowest rank sets the pace
                    "exposed_allreduce_s": max(w for _, w, _ in gathered),
                    "cpu_step_s": max(c for _, _, c in gathered),
                    "worker_up_s": started_at - launched,
                    "imported_s": imported_at - launched,
                    "first_step_s": first_step_at - launched,
                    "parameters": parameters,
                }
            ),
            flush=True,
        )
    if hvd is not None:
        hvd.shutdown()


# -- the driver: every configuration, repeated, side by side -----------------------------------


@dataclass(frozen=True)
class Config:
    workers: int
    batch: int  # per rank
    fusion: bool = True
    fp16: bool = False
    stock_horovodrun: bool = False  # the baseline launcher; else the local cluster's (no build pre-check)
    horovod: bool = True  # False: the host's ceiling, `workers` independent processes with no allreduce

    @property
    def label(self) -> str:
        if not self.horovod:
            return f"{self.workers} processes, batch {self.batch} each, no Horovod (host ceiling)"
        return (
            f"{self.workers} worker{'s' if self.workers > 1 else ''}, batch {self.batch}/rank, "
            f"fusion {'on' if self.fusion else 'off'}, fp16 {'on' if self.fp16 else 'off'}"
        ) + (", stock horovodrun" if self.stock_horovodrun else "")


def run_once(config: Config, args: argparse.Namespace) -> dict[str, float]:
    if not config.horovod:
        return run_independent(config, args)
    horovodrun = [str(Path(sys.executable).parent / "horovodrun")]
    launcher = horovodrun if config.stock_horovodrun else [sys.executable, "-m", "control.local.horovod_launch"]
    command = [
        *launcher, "-np", str(config.workers), "-H", f"localhost:{config.workers}", "--gloo",
        sys.executable, str(Path(__file__).resolve()), "--worker",
        "--steps", str(args.steps), "--batch", str(config.batch), "--threads", str(args.threads),
    ] + (["--fp16"] if config.fp16 else [])  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT))
    env["HOROVOD_FUSION_THRESHOLD"] = str(64 * 1024 * 1024 if config.fusion else 0)
    env["BENCH_LAUNCHED_AT"] = repr(time.time())
    finished = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, check=False)
    if finished.returncode != 0:
        raise SystemExit(f"{config.label} failed ({finished.returncode}):\n{finished.stderr[-3000:]}")
    for line in finished.stdout.splitlines():
        if "{" in line:
            result: dict[str, float] = json.loads(line[line.index("{") :])
            return result
    raise SystemExit(f"{config.label}: no result line\n{finished.stdout[-2000:]}")


def run_independent(config: Config, args: argparse.Namespace) -> dict[str, float]:
    """The same ranks' work as `workers` processes started together, with no communication at all: what
    two compute-bound processes get from this host (shared cores, caches, memory bandwidth)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", "--solo",
               "--steps", str(args.steps), "--batch", str(config.batch), "--threads", str(args.threads)]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), PYTHONPATH=str(ROOT), BENCH_LAUNCHED_AT=repr(time.time()))
    ranks = [
        subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=dict(env, BENCH_RANK=str(rank)))
        for rank in range(config.workers)
    ]
    outputs = [rank.communicate(timeout=600)[0] for rank in ranks]
    if any(rank.returncode for rank in ranks):
        raise SystemExit(f"{config.label} failed: {[rank.returncode for rank in ranks]}")
    results = [json.loads(line[line.index("{") :]) for out in outputs for line in out.splitlines() if "{" in line]
    return {field: max(result[field] for result in results) for field in results[0]}  # the slowest sets the pace


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--fp16", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--solo", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=30, help="timed steps per run (after 3 warm-up steps)")
    parser.add_argument("--batch", type=int, default=32, help="images per rank per step (weak scaling)")
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads per rank (torch, OpenMP)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    if args.worker:
        worker(args)
        return 0

    one = Config(1, args.batch)
    one_strong = Config(1, 2 * args.batch)
    two = [Config(2, args.batch, fusion, fp16) for fusion in (True, False) for fp16 in (False, True)]
    baseline_launch = Config(2, args.batch, stock_horovodrun=True)
    ceiling = Config(2, args.batch, horovod=False)
    configs = [one, ceiling, one_strong, *two, baseline_launch]
    load_before = load()
    results: dict[Config, list[dict[str, float]]] = {config: [] for config in configs}
    for _ in range(args.repeats):
        for config in configs:
            results[config].append(run_once(config, args))
    load_after = load()

    def median(config: Config, field: str) -> float:
        return statistics.median(run[field] for run in results[config])

    cores = len(os.sched_getaffinity(0))
    parameters = int(results[one][0]["parameters"])
    print(
        f"Horovod scaling, CNN ({parameters} parameters) on synthetic 3x32x32 images, {cores} cores, "
        f"{args.threads} thread(s) per rank, Gloo, {args.steps} timed steps, {args.repeats} repeats (medians); "
        f"load average {load_before} before, {load_after} after"
    )
    print(
        f"{'configuration':56}{'step ms':>9}{'wait ms':>9}{'CPU ms':>8}{'images/s':>10}"
        f"{'up s':>7}{'imports s':>11}{'1st step s':>12}"
    )
    for config in configs:
        step = median(config, "step_s")
        images = config.workers * config.batch / step
        print(
            f"{config.label:56}{step * 1000:9.1f}{median(config, 'exposed_allreduce_s') * 1000:9.1f}"
            f"{median(config, 'cpu_step_s') * 1000:8.1f}{images:10.1f}"
            f"{median(config, 'worker_up_s'):7.2f}{median(config, 'imported_s'):11.2f}"
            f"{median(config, 'first_step_s'):12.2f}"
        )
    print(
        "wait ms: time in optimizer.step() after backward, the allreduce compute did not hide; CPU ms: CPU "
        "time of the slowest rank per step, all its threads (Gloo polls while it waits: a rank waiting for a "
        "slower one burns CPU the other could use); "
        "up / imports / 1st step: seconds from launch to the rank's code running, to torch + horovod "
        "imported, to its first step done"
    )
    base = median(one, "step_s")
    figures: dict[str, dict[str, float]] = {}
    host = base / median(ceiling, "step_s")
    figures["host ceiling"] = {"weak_efficiency": host}
    print(
        f"\nhost ceiling: 2 independent processes run at {host:.2f} of 1 alone (no Horovod; what sharing this "
        "host's cores, caches and memory bandwidth costs); 'of ceiling' = weak / that"
    )
    target = f"(target: weak ≥ {WEAK_SCALING_TARGET:.2f})"
    print(f"{'2 workers vs 1':38}{'weak':>8}{'strong':>8}{'of ceiling':>12}   {target}")
    for config in two:
        step = median(config, "step_s")
        weak = base / step  # images/s(2) / (2 × images/s(1)) with the same batch per rank
        strong = median(one_strong, "step_s") / (2 * step)  # the same 2×batch global step, split
        figures[config.label] = {"weak_efficiency": weak, "strong_efficiency": strong}
        print(f"{'fusion ' + ('on ' if config.fusion else 'off') + ', fp16 ' + ('on' if config.fp16 else 'off'):38}"
              f"{weak:8.2f}{strong:8.2f}{weak / host:12.2f}")  # fmt: skip
    first_step = median(two[0], "first_step_s")
    verdict = "meets" if first_step <= FIRST_STEP_TARGET_S else "MISSES"
    print(
        f"launch → first step, 2 workers: {first_step:.2f} s with the local cluster's launcher "
        f"({verdict} the ≤ {FIRST_STEP_TARGET_S:.0f} s target), {median(baseline_launch, 'first_step_s'):.2f} s "
        "with stock horovodrun (its Gloo build check imports torch once more before the ranks start)"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "settings": {k: v for k, v in vars(args).items() if k not in ("json", "worker", "fp16")},
                    "cores": cores,
                    "load_before": load_before,
                    "load_after": load_after,
                    "runs": {config.label: runs for config, runs in results.items()},
                    "efficiency": figures,
                    "launch_to_first_step_s": first_step,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
