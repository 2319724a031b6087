"""The entrypoint as the launchers run it: a script, its arguments, its exit code and its stderr."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from workloads.training.train import EXIT_BAD_INPUT, main

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "workloads" / "training" / "train.py"


def test_bad_arguments_exit_2_with_one_line(capsys, tmp_path):
    code = main(["--dataset-uri", "x", "--output-uri", "y", "--checkpoint-dir", str(tmp_path),
                 "--model-name", "m", "--run-id", "r", "--epochs", "0"])  # fmt: skip
    assert code == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: --epochs must be >= 1\n"
    assert main(["--dataset-uri", "x"]) == EXIT_BAD_INPUT
    assert "the following arguments are required: --output-uri" in capsys.readouterr().err


def test_bad_data_as_a_script_exits_2_with_the_reason_as_the_only_stderr_line(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b,label\n" + "".join(f"{i},x{i},{i % 2}\n" for i in range(12)))
    finished = subprocess.run(
        [sys.executable, str(TRAIN), "--dataset-uri", str(data), "--output-uri", str(tmp_path / "out"),
         "--checkpoint-dir", str(tmp_path / "ckpt"), "--model-name", "m", "--run-id", "r"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )  # fmt: skip
    assert finished.returncode == EXIT_BAD_INPUT
    assert finished.stderr == f"error: {data}: line 2, column 'b': 'x0' is not a number\n"
    assert not (tmp_path / "out").exists()


def test_the_image_layout_imports_its_package(tmp_path):
    """/opt/training/train.py next to /opt/training/workloads/training/ (the Dockerfile's COPYs)."""
    opt = tmp_path / "opt" / "training"
    shutil.copytree(ROOT / "workloads" / "training", opt / "workloads" / "training",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    shutil.copy(ROOT / "workloads" / "__init__.py", opt / "workloads" / "__init__.py")
    shutil.copy(TRAIN, opt / "train.py")
    finished = subprocess.run(
        [sys.executable, "-I", str(opt / "train.py"), "--help"], capture_output=True, text=True, timeout=60,
        cwd=tmp_path, check=False,
    )  # fmt: skip
    assert finished.returncode == 0, finished.stderr
    assert "--checkpoint-dir" in finished.stdout
