"""Entrypoint of the training job (docs/contracts.md, "Training job").

The same command runs locally and on EKS; only the launcher differs:

    horovodrun -np 2 -H localhost:2 --gloo python workloads/training/train.py \\
        --dataset-uri s3://data/datasets/iris/v1/ --output-uri s3://artifacts/models/iris/runs/r1/ \\
        --checkpoint-dir /tmp/ckpt/r1 --model-name iris --run-id r1 --epochs 5

Progress goes to stdout as JSON lines (rank 0; every rank logs "done"). On failure the last line on
stderr is the one-line reason, and the exit code is non-zero: 2 for bad input (data, arguments,
checkpoint), 1 for anything else. Exit code 0 only after metadata.json is written.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Any

EXIT_BAD_INPUT = 2
EXIT_FAILURE = 1


def _make_package_importable() -> None:
    """Run as a script (`python .../train.py`), the folder holding `workloads` is not on sys.path."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "workloads" / "training" / "__init__.py").is_file():
            if str(folder) not in sys.path:
                sys.path.insert(0, str(folder))
            return


def main(argv: list[str] | None = None) -> int:
    _make_package_importable()
    from workloads.training.config import parse_config
    from workloads.training.errors import CheckpointError, ConfigError, DataError, StorageError

    try:
        config = parse_config(argv)
        return run(config)
    except (ConfigError, DataError, CheckpointError) as exc:
        _fail(str(exc))
        return EXIT_BAD_INPUT
    except StorageError as exc:
        _fail(str(exc))
        return EXIT_FAILURE
    except Exception as exc:  # the reason must still reach the launcher as one line
        traceback.print_exc()
        _fail(f"training failed: {type(exc).__name__}: {exc}")
        return EXIT_FAILURE


def run(config: Any) -> int:
    import horovod
    import horovod.torch as hvd
    import torch

    from workloads.training.artifact import SAMPLE_ROWS, RunSummary, write_artifact
    from workloads.training.data import split_indices
    from workloads.training.loop import train
    from workloads.training.metrics import TrainingMetrics
    from workloads.training.model import export_torchscript
    from workloads.training.shards import load_shard
    from workloads.training.storage import Storage

    hvd.init()
    rank, size = hvd.rank(), hvd.size()
    if config.scratch_dir:
        _use_scratch(Path(config.scratch_dir) / f"rank-{rank}")
    log = _logger(rank)
    device = _pick_device(hvd, torch)
    log("started", workers=size, device=str(device), threads=torch.get_num_threads(), config=config.as_dict())

    metrics = None
    if rank == 0 and config.metrics_port:
        metrics = TrainingMetrics(model=config.model_name, run_id=config.run_id)
        metrics.serve(config.metrics_port)

    pinned = {config.dataset_uri: config.dataset_version_id} if config.dataset_version_id else {}
    # Each rank reads only its shard (of the staged copy on EFS, or of the S3 object).
    dataset = load_shard(config.dataset_uri, hvd, Storage(pinned=pinned))
    _emit({"event": "shard", "rank": rank, "first_row": dataset.first_row, "rows": dataset.rows})
    log("dataset", rows=dataset.dataset_rows, features=len(dataset.feature_names), classes=len(dataset.classes))
    result = train(config, dataset, hvd, metrics=metrics, log=log, device=device)

    error = None
    if rank == 0:
        try:
            summary = RunSummary(
                model_name=config.model_name,
                run_id=config.run_id,
                feature_names=dataset.feature_names,
                classes=dataset.classes,
                hyperparameters=config.hyperparameters(),
                workers=size,
                torch_version=torch.__version__,
                horovod_version=horovod.__version__,
            )
            model_bytes = export_torchscript(result.normaliser, result.model)
            held_out = dataset.owned(split_indices(dataset.dataset_rows, seed=config.seed)[1])[:SAMPLE_ROWS]
            sample_rows = dataset.features[held_out].tolist()
            metadata = write_artifact(config.output_uri, model_bytes, summary, result.history, sample_rows=sample_rows)
            log(
                "artifact",
                output_uri=config.output_uri,
                sha256=metadata["sha256"],
                metrics=metadata["metrics"],
            )
        except Exception as exc:
            error = exc
    # Every rank exits with the same outcome: none reports success before metadata.json exists.
    # Named: an unnamed broadcast_object is named after the object's type, so rank 0's error (a str)
    # and the others' None would be two different collectives and the job would hang, not fail.
    outcome = hvd.broadcast_object(
        None if error is None else f"{type(error).__name__}: {error}", root_rank=0, name="artifact.outcome"
    )
    if error is not None:
        raise error
    if outcome is not None:
        raise RuntimeError(f"rank 0 could not write the artifact ({outcome})")
    _emit({"event": "done", "rank": rank, "digest": result.digest, "metrics": result.history[-1]})
    hvd.shutdown()
    return 0


def _use_scratch(folder: Path) -> None:
    """Temporary files of this rank (what torch, numpy and tempfile unpack) go to the worker's
    scratch volume, not the container's root file system; the volume goes with the pod."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)


def _pick_device(hvd: Any, torch: Any) -> Any:
    if torch.cuda.is_available():
        torch.cuda.set_device(hvd.local_rank())
        return torch.device("cuda", hvd.local_rank())
    if "OMP_NUM_THREADS" not in os.environ:
        # One thread per worker, Horovod's CPU convention (scale out with -np = cores): on this small
        # model, intra-op threads cost more in synchronisation than they give (measured ~8x slower
        # with 2 threads than 1 on a 2-core host; benchmarks/training_scaling.py).
        torch.set_num_threads(1)
    return torch.device("cpu")


def _logger(rank: int) -> Any:
    def log(event: str, **fields: Any) -> None:
        if rank == 0:
            _emit({"event": event, "time": time.time(), **fields})

    return log


def _emit(record: dict[str, Any]) -> None:
    print(json.dumps(record, default=str), flush=True)


def _fail(reason: str) -> None:
    print(f"error: {' '.join(reason.split())}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
