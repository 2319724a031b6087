"""One lock (requirements.txt, compiled from requirements.in by scripts/lock.sh) for set-up, the
Lambda package and CI: complete, hashed, installed exactly, and the only source of the versions
that scripts/package_functions.sh ships."""

import importlib.metadata as md
import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (REPO / "scripts" / "package_functions.sh").read_text()
# The app's lock and one per tool virtualenv whose pins clash with it (requirements/*.in -> *.txt).
TOOL_LOCKS = sorted((REPO / "requirements").glob("*.txt"))
LOCKS = [REPO / "requirements.txt", *TOOL_LOCKS]
ENTRY = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]*)==(\S+)", re.M)


def lock_entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile lock."""
    entries: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", path.read_text()):
        match = ENTRY.match(block)
        if match:
            entries[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=(sha256:[0-9a-f]{64})", block))
    return entries


def shipped_names() -> list[str]:
    block = re.search(r"^DEPENDENCIES=\(\n(.*?)^\)", SCRIPT, re.S | re.M)
    assert block, "DEPENDENCIES=( ... ) not found in scripts/package_functions.sh"
    names = [n for line in block.group(1).splitlines() for n in line.split("#")[0].split()]
    chalice = re.search(r"^CHALICE=(\S+)", SCRIPT, re.M)
    assert chalice, "CHALICE=<name> not found"
    return [canonicalize_name(n) for n in [*names, chalice[1]]]


def test_the_package_ships_the_functions_runtime_dependencies_only():
    names = shipped_names()
    for name in ("chalice", "aws-lambda-powertools", "boto3", "botocore", "kubernetes", "pyyaml", "requests"):
        assert name in names, f"{name} is not shipped in the package"
    for name in ("torch", "moto", "numpy", "matplotlib", "rich"):
        assert name not in names, f"{name} must not be shipped to Lambda"


def test_the_package_takes_its_versions_from_the_lock():
    assert "==" not in SCRIPT.split("DEPENDENCIES=(", 1)[1].split("\n)", 1)[0], "versions belong in the lock"
    assert "--require-hashes" in SCRIPT and "requirements.txt" in SCRIPT
    lock = lock_entries(REPO / "requirements.txt")
    missing = [name for name in shipped_names() if name not in lock]
    assert not missing, f"shipped but not in requirements.txt: {missing}"


def test_every_lock_pins_every_package_with_hashes_and_no_machine_paths():
    for path in LOCKS:
        text = path.read_text()
        entries = lock_entries(path)
        assert entries, f"{path.name}: no pins"
        unhashed = [name for name, (_, hashes) in entries.items() if not hashes]
        assert not unhashed, f"{path.name}: pins without a hash: {unhashed}"
        options = [line for line in text.splitlines() if line.startswith("-")]
        assert not options, f"{path.name}: index/find-links options in the lock: {options}"
        assert "/opt/" not in text and "file://" not in text, f"{path.name} names a path of this machine"
        assert "scripts/lock.sh" in text, f"{path.name} was not written by scripts/lock.sh"


def test_the_lock_keeps_every_direct_pin_of_requirements_in():
    lock = lock_entries(REPO / "requirements.txt")
    assert {p.stem for p in TOOL_LOCKS} == {p.stem for p in (REPO / "requirements").glob("*.in")}, (
        "an .in without its lock"
    )
    for source, target in [("requirements.in", "requirements.txt")] + [
        (f"requirements/{lock.stem}.in", f"requirements/{lock.name}") for lock in TOOL_LOCKS
    ]:
        locked = lock if target == "requirements.txt" else lock_entries(REPO / target)
        for line in (REPO / source).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            requirement = Requirement(line)
            assert requirement.specifier and all(s.operator == "==" for s in requirement.specifier), (
                f"{source}: {line} is not pinned with =="
            )
            name = canonicalize_name(requirement.name)
            assert name in locked, f"{source}: {name} is missing from {target}: run scripts/lock.sh"
            assert requirement.specifier.contains(locked[name][0], prereleases=True), (
                f"{target} has {name}=={locked[name][0]}, {source} says {line}: run scripts/lock.sh"
            )


def test_every_lock_pin_is_the_version_the_tests_run_against():
    mismatched = {}
    for name, (version, _) in lock_entries(REPO / "requirements.txt").items():
        try:
            installed = md.version(name)
        except md.PackageNotFoundError:
            installed = None
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched, f"lock != installed (locked, installed); run scripts/setup.sh: {mismatched}"


def test_set_up_installs_every_tool_lock():
    setup = (REPO / "scripts" / "setup.sh").read_text()
    for lock in TOOL_LOCKS:
        assert re.search(
            rf"^\s*locked_venv \.venv-{re.escape(lock.stem.removeprefix('bench-'))} requirements/{lock.name}$",
            setup,
            re.M,
        ), f"scripts/setup.sh does not install {lock.name}"
