"""Copy the Lambdas' own code into a folder, laid out as /var/task: functions/app.py and
functions/chalicelib/ (the handlers), and exactly the control/ modules they import.

"Import" is the static closure from app.py: every `import` and `from ... import` in every module
reached, those inside functions included (the composition root imports the Kubernetes and
Prometheus adapters lazily), following control and chalicelib only. So the CLI, the demo, its
report and the local runtime stay out unless a handler comes to import them (import-linter
forbids that too).

    python scripts/lambda_sources.py OUT_DIR      # prints the files copied, one a line
"""

from __future__ import annotations

import ast
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FUNCTIONS = REPO / "functions"
FIRST_PARTY = ("control", "chalicelib")


def module_file(name: str) -> Path | None:
    """The source file of a first-party module or package, or None (a name imported from a module)."""
    root = FUNCTIONS if name.split(".")[0] == "chalicelib" else REPO
    base = root.joinpath(*name.split("."))
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    return None


def module_name(path: Path) -> str:
    relative = path.relative_to(FUNCTIONS if path.is_relative_to(FUNCTIONS) else REPO).with_suffix("")
    parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
    return ".".join(parts)


def imported_names(path: Path) -> set[str]:
    """Every module name `path` may import: `a.b` for `import a.b`, `a.b` and `a.b.c` for `from a.b import c`."""
    names: set[str] = set()
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(max(node.level - 1, 0)):
                base = base.rpartition(".")[0]
            base = (f"{base}.{node.module}" if node.level else node.module) if node.module else base
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def closure(entry: Path) -> list[Path]:
    """`entry` and every first-party module it reaches, with the packages above each."""
    seen = {entry}
    todo = [entry]
    while todo:
        for name in imported_names(todo.pop()):
            parts = name.split(".")
            if parts[0] not in FIRST_PARTY:
                continue
            for depth in range(1, len(parts) + 1):
                found = module_file(".".join(parts[:depth]))
                if found is not None and found not in seen:
                    seen.add(found)
                    todo.append(found)
    return sorted(seen)


def shipped_files() -> list[tuple[Path, str]]:
    """(source, path in the package): app.py, all of chalicelib/ (with openapi.json), control's closure."""
    handlers = [FUNCTIONS / "app.py"] + sorted(
        p for p in (FUNCTIONS / "chalicelib").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    )
    control = [p for p in closure(FUNCTIONS / "app.py") if p.is_relative_to(REPO / "control")]
    return [(p, p.relative_to(FUNCTIONS).as_posix()) for p in handlers] + [
        (p, p.relative_to(REPO).as_posix()) for p in control
    ]


def main(out: Path) -> None:
    for source, target in shipped_files():
        destination = out / target
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)
        print(target)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
