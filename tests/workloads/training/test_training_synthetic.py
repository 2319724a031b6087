from __future__ import annotations

import numpy as np

from workloads.training.synthetic import main, make_blobs, synthetic_csv


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not():
    assert synthetic_csv(500, seed=7) == synthetic_csv(500, seed=7)
    assert synthetic_csv(500, seed=7) != synthetic_csv(500, seed=8)


def test_shape_header_and_every_class_present():
    text = synthetic_csv(30, features=8, classes=3, seed=1)
    lines = text.splitlines()
    assert lines[0] == "f0,f1,f2,f3,f4,f5,f6,f7,label"
    assert len(lines) == 31
    features, labels = make_blobs(30, features=8, classes=3, seed=1)
    assert features.shape == (30, 8)
    assert sorted(set(labels.tolist())) == [0, 1, 2]
    assert np.bincount(labels).tolist() == [10, 10, 10]


def test_cli_writes_the_file(tmp_path):
    out = tmp_path / "sub" / "data.csv"
    assert main(["--rows", "20", "--seed", "3", "--out", str(out)]) == 0
    assert out.read_text() == synthetic_csv(20, seed=3)
