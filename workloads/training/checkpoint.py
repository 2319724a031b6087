"""Per-epoch checkpoints in a shared folder (EFS on EKS), written atomically, read back on restart.

One file, `checkpoint.pt`, replaced after every epoch through a temp file and a rename: a worker
killed mid-write leaves the previous checkpoint whole. It holds everything needed to continue
exactly where the run stopped: completed epochs, model and optimizer state, every rank's RNG
state, the per-epoch metrics so far, and a fingerprint of the settings it was made with.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from workloads.training.errors import CheckpointError
from workloads.training.storage import atomic_write

__all__ = ["Checkpoint", "CheckpointError", "checkpoint_path", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_NAME = "checkpoint.pt"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    epoch: int  # epochs completed
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    rng_states: list[torch.Tensor]  # index = rank at save time
    history: list[dict[str, float]]
    fingerprint: dict[str, Any]


def checkpoint_path(directory: str | Path) -> Path:
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(directory: str | Path, checkpoint: Checkpoint) -> Path:
    payload = {
        "format": FORMAT_VERSION,
        "epoch": checkpoint.epoch,
        "model": checkpoint.model,
        "optimizer": checkpoint.optimizer,
        "rng_states": checkpoint.rng_states,
        "history": checkpoint.history,
        "fingerprint": checkpoint.fingerprint,
    }
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path = checkpoint_path(directory)
    atomic_write(path, buffer.getvalue())
    return path


def load_checkpoint(directory: str | Path, fingerprint: dict[str, Any]) -> Checkpoint | None:
    """The last checkpoint in `directory`, None when there is none; refuses one made with other settings."""
    path = checkpoint_path(directory)
    if not path.exists():
        return None
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: {exc})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a checkpoint of format {FORMAT_VERSION}")
    saved = payload["fingerprint"]
    changed = sorted(key for key in fingerprint.keys() | saved.keys() if fingerprint.get(key) != saved.get(key))
    if changed:
        details = "; ".join(f"{key}: {saved.get(key)!r} -> {fingerprint.get(key)!r}" for key in changed)
        raise CheckpointError(
            f"{path}: made with other settings ({details}); use a new --checkpoint-dir or the same settings"
        )
    return Checkpoint(
        epoch=int(payload["epoch"]),
        model=payload["model"],
        optimizer=payload["optimizer"],
        rng_states=list(payload["rng_states"]),
        history=list(payload["history"]),
        fingerprint=saved,
    )
