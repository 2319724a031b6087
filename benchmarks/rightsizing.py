"""Right-sizing benchmark: an over-provisioned training run, and the request the next run gets.

Real `horovodrun -np 2` training jobs on the local cluster (the rendered MPIJob, as the embedded
platform runs it), with the job runner sampling each rank's CPU and memory:

1. a calibration run at the default requests measures what a worker uses (peak memory P0);
2. the over-provisioned run requests 4 × P0 per worker, and is measured again (peak P1);
3. its recommendation (control/domain/rightsizing.py: VPA's rules, capped at a g5.2xlarge's
   allocatable) is what the model's next run requests: the MPIJob rendered for run 3 carries it,
   and run 3's own peak must fit under it.

Target: run 3's memory request within 30 % of P1 plus VPA's 15 % margin.

    nice -n 10 .venv/bin/python benchmarks/rightsizing.py [--rows 20000 --epochs 2]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from control.domain.rightsizing import MIB, SAFETY_MARGIN, NodeCapacity, WorkerUsage, recommend  # noqa: E402
from control.domain.training import Hyperparameters, TrainingJobSpec, WorkerResources  # noqa: E402
from control.local.cluster import LocalCluster  # noqa: E402
from control.local.node_capacity import training_node  # noqa: E402
from control.local.usage import LocalWorkerUsage  # noqa: E402
from control.manifests.config import ManifestConfig  # noqa: E402
from control.manifests.training import render_mpijob, worker_resources  # noqa: E402
from workloads.training.synthetic import synthetic_csv  # noqa: E402

TARGET = 0.30


def run_job(cluster: LocalCluster, name: str, data: Path, out: Path, resources: WorkerResources, epochs: int) -> dict:
    spec = TrainingJobSpec(
        run_id=name,
        model_name="rightsizing",
        dataset_uri=str(data),
        output_uri=str(out / name),
        hyperparameters=Hyperparameters(epochs=epochs, batch_size=256, hidden_units=64),
        workers=2,
        resources=resources,
    )
    manifest = render_mpijob(spec, ManifestConfig())
    since = datetime.now(UTC)
    cluster.submit_training_job(manifest)
    while not (status := cluster.training_job_status(name)).state.finished:
        time.sleep(0.5)
    if status.state.value != "SUCCEEDED":
        raise SystemExit(f"{name} failed: {status.reason}: {status.message}")
    usage = LocalWorkerUsage(cluster.jobs_dir).worker_usage(name, workers=2, since=since, now=datetime.now(UTC))
    if not usage:
        raise SystemExit(f"{name}: nothing was measured")
    return {"requests": worker_resources(spec)["requests"], "usage": usage}


def peak_mib(usage: list[WorkerUsage]) -> float:
    return max(worker.memory_peak_bytes for worker in usage) / MIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    bound = NodeCapacity.parse(training_node()).allocatable()

    with tempfile.TemporaryDirectory(prefix="rightsizing-bench-") as folder:
        work = Path(folder)
        data = work / "data" / "data.csv"
        data.parent.mkdir()
        data.write_text(synthetic_csv(args.rows, seed=0))
        cluster = LocalCluster(work / "cluster", repo_root=ROOT)
        calibration = run_job(cluster, "calibrate", data, work / "out", WorkerResources(), args.epochs)
        p0 = peak_mib(calibration["usage"])
        over = WorkerResources(cpu_millicores=2000, memory_mib=math.ceil(4 * p0))
        first = run_job(cluster, "over-provisioned", data, work / "out", over, args.epochs)
        p1 = peak_mib(first["usage"])
        recommendation = recommend(first["usage"], bound)
        second = run_job(cluster, "right-sized", data, work / "out", recommendation.resources(), args.epochs)
        p2 = peak_mib(second["usage"])

    requested = int(second["requests"]["memory"].removesuffix("Mi"))
    wanted = p1 * (1 + SAFETY_MARGIN)
    deviation = abs(requested - wanted) / wanted
    print(f"Right-sizing, 2 workers, {args.rows} rows, {args.epochs} epochs (memory per worker, MiB)")
    print(f"{'run':20}{'requested':>11}{'peak used':>11}{'requested / peak':>18}{'CPU p90 (cores)':>17}")
    for name, run, peak in (
        ("calibration", calibration, p0),
        ("over-provisioned", first, p1),
        ("right-sized", second, p2),
    ):
        asked = int(run["requests"]["memory"].removesuffix("Mi"))
        cpu = max(worker.cpu_p90_cores for worker in run["usage"])
        print(f"{name:20}{asked:11d}{peak:11.0f}{asked / peak:18.2f}{cpu:17.2f}")
    print(
        f"recommendation from the over-provisioned run: {recommendation.cpu_millicores}m CPU, "
        f"{recommendation.memory_mib} MiB (peak {p1:.0f} MiB + {SAFETY_MARGIN:.0%} = {wanted:.0f} MiB; "
        f"cap {bound.memory_mib} MiB, capped: {recommendation.capped or 'no'})"
    )
    verdict = "meets" if deviation <= TARGET else "MISSES"
    fits = "fits" if p2 <= requested else "does NOT fit"
    print(
        f"next run's request is {deviation:.1%} from peak + margin ({verdict} the ≤ {TARGET:.0%} target); "
        f"its own peak {p2:.0f} MiB {fits} under it; the 4x request shrank {over.memory_mib / requested:.1f}x"
    )
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "peaks_mib": {"calibration": p0, "over_provisioned": p1, "right_sized": p2},
                    "requests_mib": {"over_provisioned": over.memory_mib, "right_sized": requested},
                    "recommendation": recommendation.to_dict(),
                    "deviation": deviation,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
