"""The Lambda package ships exactly what the handlers import: the tree scripts/package_functions.sh
zips (its first-party part, built by scripts/lambda_sources.py) holds no operator tooling, and
Python's own modulefinder, run over that tree alone, finds no first-party module missing."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from modulefinder import ModuleFinder
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
OPERATOR_TOOLING = ("control/cli", "control/demo", "control/local", "control/__main__.py")
NOT_FOR_LAMBDA = ("rich", "matplotlib", "click", "moto", "torch")


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lambda-task")
    subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lambda_sources.py"), str(out)], check=True, stdout=subprocess.DEVNULL
    )
    return out


def shipped(tree: Path) -> set[str]:
    return {p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def finder(tree: Path) -> ModuleFinder:
    """Every import of app.py and what it reaches, looked up in the tree and the standard library only
    (third-party dependencies are pip-installed beside it; they show up as not found)."""
    stdlib = [sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["platstdlib"]]
    finder = ModuleFinder(path=[str(tree), *stdlib, str(Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload")])
    finder.run_script(str(tree / "app.py"))
    return finder


def test_the_package_ships_no_cli_demo_report_or_local_runtime(tree: Path) -> None:
    files = shipped(tree)
    leaked = sorted(f for f in files if f.startswith(OPERATOR_TOOLING))
    assert not leaked, f"operator tooling in the Lambda package: {leaked[:5]}"
    assert {"app.py", "chalicelib/openapi.json", "control/composition.py", "control/usecases/rollouts.py"} <= files


def test_no_module_a_handler_imports_is_missing_from_the_package(finder: ModuleFinder) -> None:
    missing = sorted(name for name in finder.badmodules if name.split(".")[0] in ("control", "chalicelib", "app"))
    assert not missing, f"imported by the handlers but not shipped: {missing}"
    # the lazy imports (inside functions) are found too: the EKS and Prometheus adapters
    assert {"control.adapters.kubernetes_cluster", "control.adapters.prometheus"} <= set(finder.modules)


def test_nothing_the_package_runs_imports_rich_matplotlib_or_the_cli(tree: Path, finder: ModuleFinder) -> None:
    wanted = {name.split(".")[0] for name in finder.badmodules} | {name.split(".")[0] for name in finder.modules}
    assert not wanted & set(NOT_FOR_LAMBDA), f"the handlers import {sorted(wanted & set(NOT_FOR_LAMBDA))}"
    shipped_control = {name for name in finder.modules if name.startswith("control.")}
    unused = sorted(
        f for f in shipped(tree) if f.startswith("control/") and _module(f) not in shipped_control | {"control"}
    )
    assert not unused, f"shipped but imported by no handler: {unused}"


def _module(path: str) -> str:
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
