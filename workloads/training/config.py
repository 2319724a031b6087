"""The job's arguments (docs/contracts.md, "Training job") as one validated, frozen value."""

from __future__ import annotations

import argparse
import re
from dataclasses import asdict, dataclass
from typing import Any

from workloads.training.errors import ConfigError

__all__ = ["ConfigError", "TrainingConfig", "build_parser", "parse_config"]

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


@dataclass(frozen=True)
class TrainingConfig:
    dataset_uri: str
    output_uri: str
    checkpoint_dir: str
    model_name: str
    run_id: str
    epochs: int = 10
    batch_size: int = 64  # per worker
    learning_rate: float = 0.05  # for one worker; multiplied by the number of workers
    hidden_units: int = 64
    seed: int = 42
    metrics_port: int = 0  # 0 = off
    dataset_version_id: str = ""  # the S3 object version of --dataset-uri to read ("" = latest)
    scratch_dir: str = ""  # the worker's own scratch volume (EBS on EKS): temporary files of the ranks

    def __post_init__(self) -> None:
        checks = [
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (0 < self.learning_rate <= 10, "--learning-rate must be in (0, 10]"),
            (1 <= self.hidden_units <= 65536, "--hidden-units must be in 1..65536"),
            (0 <= self.seed < 2**32, "--seed must be in 0..2**32-1"),
            (0 <= self.metrics_port <= 65535, "--metrics-port must be in 0..65535 (0 = off)"),
            (
                bool(NAME_PATTERN.fullmatch(self.model_name)),
                f"--model-name {self.model_name!r} is not a valid name",
            ),
            (bool(NAME_PATTERN.fullmatch(self.run_id)), f"--run-id {self.run_id!r} is not a valid name"),
            (bool(self.dataset_uri), "--dataset-uri is empty"),
            (bool(self.output_uri), "--output-uri is empty"),
            (bool(self.checkpoint_dir), "--checkpoint-dir is empty"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message)

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "batch_size": self.batch_size,
            "learning_rate": self.learning_rate,
            "hidden_units": self.hidden_units,
            "seed": self.seed,
        }

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ConfigError(message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(description="Distributed (Horovod) training of an MLP classifier on a CSV dataset.")
    defaults = TrainingConfig.__dataclass_fields__
    parser.add_argument("--dataset-uri", required=True, help="s3://bucket/prefix[/data.csv|/_manifest.json] or a path")
    parser.add_argument(
        "--output-uri", required=True, help="s3://<artifacts>/models/<model>/runs/<run-id>/ or a folder"
    )
    parser.add_argument("--checkpoint-dir", required=True, help="shared folder (EFS on EKS) for per-epoch checkpoints")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--run-id", required=True)
    parser.add_argument("--epochs", type=int, default=defaults["epochs"].default)
    parser.add_argument("--batch-size", type=int, default=defaults["batch_size"].default, help="per worker")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=defaults["learning_rate"].default,
        help="for one worker; scaled by the number of workers",
    )
    parser.add_argument("--hidden-units", type=int, default=defaults["hidden_units"].default)
    parser.add_argument("--seed", type=int, default=defaults["seed"].default)
    parser.add_argument("--metrics-port", type=int, default=defaults["metrics_port"].default, help="0 = off")
    parser.add_argument("--dataset-version-id", default="", help="S3 version of --dataset-uri (default: latest)")
    parser.add_argument("--scratch-dir", default="", help="the worker's scratch volume for temporary files")
    return parser


def parse_config(argv: list[str] | None) -> TrainingConfig:
    args = build_parser().parse_args(argv)
    return TrainingConfig(**{name.replace("-", "_"): value for name, value in vars(args).items()})
