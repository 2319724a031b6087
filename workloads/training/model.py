"""The classifier: a small MLP, and its exported form with the feature normalisation inside."""

from __future__ import annotations

import hashlib
import io
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from torch import nn


class MLP(nn.Module):
    """Two hidden ReLU layers; takes normalised features, returns class logits."""

    def __init__(self, features: int, classes: int, hidden_units: int) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(features, hidden_units),
            nn.ReLU(),
            nn.Linear(hidden_units, hidden_units),
            nn.ReLU(),
            nn.Linear(hidden_units, classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class Normaliser(nn.Module):
    """(x - mean) / std with the training split's statistics as buffers (saved with the model)."""

    if TYPE_CHECKING:  # the registered buffers' type, for mypy only: TorchScript cannot read
        mean: torch.Tensor  # string annotations on a module's class (this file's __future__ import)
        std: torch.Tensor

    def __init__(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("mean", mean.detach().clone().float())
        self.register_buffer("std", std.detach().clone().float())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    @classmethod
    def fit(cls, features: np.ndarray) -> Normaliser:
        mean = features.mean(axis=0, dtype=np.float64)
        std = features.std(axis=0, dtype=np.float64)
        std[std < 1e-12] = 1.0  # a constant column stays constant instead of dividing by zero
        return cls(torch.from_numpy(mean), torch.from_numpy(std))


class RawFeatureClassifier(nn.Module):
    """What is exported: raw feature rows [N, F] (any float dtype) in, class logits [N, K] out."""

    def __init__(self, normaliser: Normaliser, mlp: MLP) -> None:
        super().__init__()
        self.normaliser = normaliser
        self.mlp = mlp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(self.normaliser(x.float()))


def export_torchscript(normaliser: Normaliser, mlp: MLP) -> bytes:
    """TorchScript bytes of the model in eval mode on the CPU (loadable without this code)."""
    normaliser_cpu = Normaliser(normaliser.mean.cpu(), normaliser.std.cpu())
    first, last = cast(nn.Linear, mlp.layers[0]), cast(nn.Linear, mlp.layers[-1])  # as MLP builds them
    mlp_cpu = MLP(first.in_features, last.out_features, first.out_features)
    mlp_cpu.load_state_dict({name: tensor.detach().cpu() for name, tensor in mlp.state_dict().items()})
    scripted = torch.jit.script(RawFeatureClassifier(normaliser_cpu, mlp_cpu).eval())
    buffer = io.BytesIO()
    torch.jit.save(scripted, buffer)
    return buffer.getvalue()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parameters_digest(module: nn.Module) -> str:
    """A short digest of the parameters: equal on every rank when training is in sync."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]
