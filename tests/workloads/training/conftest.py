from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from workloads.training.synthetic import synthetic_csv


@pytest.fixture
def blobs_csv(tmp_path: Path) -> Callable[..., Path]:
    """Writes a synthetic dataset as <tmp>/<name>/data.csv and returns the file's path."""

    def write(rows: int = 300, *, name: str = "dataset", seed: int = 0, classes: int = 3) -> Path:
        path = tmp_path / name / "data.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(synthetic_csv(rows, seed=seed, classes=classes))
        return path

    return write
