"""Deterministic synthetic classification data (Gaussian blobs) for demos, tests and benchmarks.

Nothing is downloaded: the same (rows, features, classes, seed) always gives the same bytes.

    python -m workloads.training.synthetic --rows 2000 --out /tmp/blobs/data.csv
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import numpy as np

DEFAULT_FEATURES = 8
DEFAULT_CLASSES = 3


def make_blobs(
    rows: int,
    *,
    features: int = DEFAULT_FEATURES,
    classes: int = DEFAULT_CLASSES,
    seed: int = 0,
    spread: float = 1.5,
) -> tuple[np.ndarray, np.ndarray]:
    """Returns (features [rows, features] float64, labels [rows] int64), classes 0..classes-1.

    Every class gets at least one row when rows >= classes. The features have different scales and
    offsets on purpose, so that a model that forgets its normalisation does visibly worse.
    """
    if rows < 1 or features < 1 or classes < 2:
        raise ValueError("rows >= 1, features >= 1 and classes >= 2 are required")
    rng = np.random.default_rng(seed)
    centres = rng.normal(0.0, 3.0, size=(classes, features))
    labels = np.arange(rows, dtype=np.int64) % classes
    rng.shuffle(labels)
    points = centres[labels] + rng.normal(0.0, spread, size=(rows, features))
    scales = np.logspace(-1, 2, features)
    offsets = np.linspace(-50.0, 50.0, features)
    return points * scales + offsets, labels


def to_csv(features: np.ndarray, labels: np.ndarray) -> str:
    names = [f"f{i}" for i in range(features.shape[1])]
    buffer = io.StringIO()
    buffer.write(",".join([*names, "label"]) + "\n")
    table = np.column_stack([features, labels])
    formats = ["%.6f"] * features.shape[1] + ["%d"]
    np.savetxt(buffer, table, fmt=formats, delimiter=",")
    return buffer.getvalue()


def synthetic_csv(
    rows: int,
    *,
    features: int = DEFAULT_FEATURES,
    classes: int = DEFAULT_CLASSES,
    seed: int = 0,
) -> str:
    return to_csv(*make_blobs(rows, features=features, classes=classes, seed=seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--features", type=int, default=DEFAULT_FEATURES)
    parser.add_argument("--classes", type=int, default=DEFAULT_CLASSES)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="file to write (default: stdout)")
    args = parser.parse_args(argv)
    text = synthetic_csv(args.rows, features=args.features, classes=args.classes, seed=args.seed)
    if args.out is None:
        sys.stdout.write(text)
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
