"""The distributed training loop (Horovod), with per-epoch checkpoints and resume.

`hvd` is the `horovod.torch` module, passed in so this module imports without Horovod. Every rank
holds only its own shard of the dataset (workloads/training/shards.py) and trains on the training
rows in it, shuffled by seed + epoch and padded (by repeating) to the largest shard's count, so
every rank takes the same number of steps. The split, the normalisation statistics and the
metrics are the whole dataset's (allreduced). Gradients are averaged by
`hvd.DistributedOptimizer`; the learning rate is the one-worker rate times the world size.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F  # noqa: N812

from workloads.training.checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from workloads.training.config import TrainingConfig
from workloads.training.data import Dataset, split_indices
from workloads.training.errors import DataError
from workloads.training.metrics import TrainingMetrics
from workloads.training.model import MLP, Normaliser, parameters_digest

MOMENTUM = 0.9
EVAL_BATCH = 8192

Log = Callable[..., None]


@dataclass
class TrainingResult:
    normaliser: Normaliser
    model: MLP
    history: list[dict[str, float]]
    resumed_from_epoch: int  # 0 = fresh start
    digest: str  # of the final parameters; equal on every rank


def epoch_order(indices: np.ndarray, *, epoch: int, seed: int, rank: int, pad_to: int) -> torch.Tensor:
    """This rank's local training indices for an epoch: shuffled, repeated up to `pad_to`."""
    generator = torch.Generator().manual_seed(seed + epoch + 1_000_003 * rank)
    order = torch.randperm(len(indices), generator=generator)
    padding = pad_to - len(order)
    if padding > 0:
        order = torch.cat([order, order.repeat(-(-padding // len(order)))[:padding]])
    return torch.from_numpy(indices)[order]


def fit_normaliser(hvd: Any, features: np.ndarray) -> Normaliser:
    """Mean and standard deviation of the training rows of every shard (two allreduced passes)."""
    rows = torch.tensor([float(len(features))], dtype=torch.float64)
    total = torch.from_numpy(features.sum(axis=0, dtype=np.float64))
    count = float(hvd.allreduce(rows, op=hvd.Sum, name="normaliser.rows")[0])
    mean = hvd.allreduce(total, op=hvd.Sum, name="normaliser.sum") / count
    centred = torch.from_numpy(features.astype(np.float64)) - mean
    variance = hvd.allreduce((centred * centred).sum(0), op=hvd.Sum, name="normaliser.squares") / count
    std = variance.sqrt()
    std[std < 1e-12] = 1.0  # a constant column stays constant instead of dividing by zero
    return Normaliser(mean, std)


def fingerprint(config: TrainingConfig, dataset: Dataset) -> dict[str, Any]:
    """What a checkpoint must match to be resumed (the world size and --epochs may change)."""
    return {
        "feature_names": dataset.feature_names,
        "classes": dataset.classes,
        "rows": dataset.dataset_rows,
        "hidden_units": config.hidden_units,
        "batch_size": config.batch_size,
        "learning_rate": config.learning_rate,
        "seed": config.seed,
    }


def train(
    config: TrainingConfig,
    dataset: Dataset,
    hvd: Any,
    *,
    metrics: TrainingMetrics | None = None,
    log: Log | None = None,
    device: torch.device | None = None,
) -> TrainingResult:
    log = log or (lambda event, **fields: None)
    device = device or torch.device("cpu")
    rank, size = hvd.rank(), hvd.size()

    torch.manual_seed(config.seed)  # same initial weights everywhere (rank 0's are broadcast anyway)
    train_rows, val_rows = (dataset.owned(rows) for rows in split_indices(dataset.dataset_rows, seed=config.seed))
    counts = hvd.allgather_object(len(train_rows), name="shard.train_rows")
    if min(counts) == 0:
        raise DataError(f"{dataset.dataset_rows} rows are too few for {size} workers: a worker has no training rows")
    normaliser = fit_normaliser(hvd, dataset.features[train_rows])
    with torch.no_grad():
        features = normaliser(torch.from_numpy(dataset.features)).to(device)
    labels = torch.from_numpy(dataset.labels).to(device)

    model = MLP(len(dataset.feature_names), len(dataset.classes), config.hidden_units).to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=config.learning_rate * size, momentum=MOMENTUM)
    optimizer = hvd.DistributedOptimizer(optimizer, named_parameters=model.named_parameters())

    start_epoch, history = _resume(config, dataset, hvd, model, optimizer, log)
    hvd.broadcast_parameters(model.state_dict(), root_rank=0)
    hvd.broadcast_optimizer_state(optimizer, root_rank=0)

    first_step_logged = False
    for epoch in range(start_epoch + 1, config.epochs + 1):
        started = time.perf_counter()
        model.train()
        shard = epoch_order(train_rows, epoch=epoch, seed=config.seed, rank=rank, pad_to=max(counts)).to(device)
        totals = torch.zeros(3, dtype=torch.float64, device=device)  # loss sum, correct, samples
        steps = 0
        for batch in torch.split(shard, config.batch_size):
            x, y = features[batch], labels[batch]
            optimizer.zero_grad()
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            steps += 1
            with torch.no_grad():  # accumulated on the device: no host sync per step
                totals[0] += loss.detach().double() * len(y)
                totals[1] += (logits.argmax(1) == y).sum()
                totals[2] += len(y)
            if not first_step_logged:
                first_step_logged = True
                log("first_step", epoch=epoch)
        train_totals = hvd.allreduce(totals.cpu(), op=hvd.Sum, name=f"train_totals.{epoch}")
        epoch_seconds = time.perf_counter() - started
        val_loss, val_accuracy = _evaluate(model, features, labels, val_rows, hvd, epoch)
        record = {
            "epoch": epoch,
            "train_loss": float(train_totals[0] / train_totals[2]),
            "train_accuracy": float(train_totals[1] / train_totals[2]),
            "val_loss": val_loss,
            "val_accuracy": val_accuracy,
            "samples": float(train_totals[2]),
            "epoch_seconds": epoch_seconds,
            "samples_per_second": float(train_totals[2]) / epoch_seconds,
            "steps": float(steps),
        }
        history.append(record)
        rng_states = hvd.allgather_object(torch.get_rng_state())
        if rank == 0:
            save_checkpoint(
                config.checkpoint_dir,
                Checkpoint(
                    epoch=epoch,
                    model=model.state_dict(),
                    optimizer=optimizer.state_dict(),
                    rng_states=rng_states,
                    history=history,
                    fingerprint=fingerprint(config, dataset),
                ),
            )
            if metrics is not None:
                metrics.steps_taken(steps)
                metrics.epoch_finished(record)
            log("epoch", **record)

    return TrainingResult(normaliser, model, history, start_epoch, parameters_digest(model))


def _resume(
    config: TrainingConfig, dataset: Dataset, hvd: Any, model: MLP, optimizer: Any, log: Log
) -> tuple[int, list[dict[str, float]]]:
    """Rank 0 reads the last checkpoint and shares what it found; every rank fails alike if unusable."""
    found: dict[str, Any] = {"epoch": 0, "history": [], "rng_states": None, "error": None}
    if hvd.rank() == 0:
        try:
            checkpoint = load_checkpoint(config.checkpoint_dir, fingerprint(config, dataset))
        except CheckpointError as exc:
            found["error"] = str(exc)
        else:
            if checkpoint is not None:
                model.load_state_dict(checkpoint.model)
                optimizer.load_state_dict(checkpoint.optimizer)
                for group in optimizer.param_groups:  # the saved lr was scaled for the old world size
                    group["lr"] = config.learning_rate * hvd.size()
                found.update(epoch=checkpoint.epoch, history=checkpoint.history, rng_states=checkpoint.rng_states)
    found = hvd.broadcast_object(found, root_rank=0, name="resume")
    if found["error"]:
        raise CheckpointError(found["error"])
    rng_states = found["rng_states"]
    if rng_states is not None and len(rng_states) == hvd.size():
        torch.set_rng_state(rng_states[hvd.rank()])
    elif rng_states is not None:  # world size changed: a fresh but still deterministic stream per rank
        torch.manual_seed(config.seed + 1_000_003 * found["epoch"] + hvd.rank())
    if found["epoch"]:
        log("resumed", from_epoch=found["epoch"], next_epoch=found["epoch"] + 1, epochs=config.epochs)
    return int(found["epoch"]), list(found["history"])


def _evaluate(
    model: MLP, features: torch.Tensor, labels: torch.Tensor, rows: np.ndarray, hvd: Any, epoch: int
) -> tuple[float, float]:
    model.eval()
    totals = torch.zeros(3, dtype=torch.float64)
    index = torch.from_numpy(rows).to(features.device)
    with torch.no_grad():
        for batch in torch.split(index, EVAL_BATCH):
            logits = model(features[batch])
            y = labels[batch]
            totals += torch.tensor(
                [
                    F.cross_entropy(logits, y, reduction="sum").item(),
                    (logits.argmax(1) == y).sum().item(),
                    len(y),
                ],
                dtype=torch.float64,
            )
    totals = hvd.allreduce(totals, op=hvd.Sum, name=f"val_totals.{epoch}")
    return float(totals[0] / totals[2]), float(totals[1] / totals[2])
