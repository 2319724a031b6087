"""The Lambda package's pins (scripts/package_functions.sh) agree with requirements.txt and with the
environment the tests run in, so that the zip ships the versions the code was tested against."""

import importlib.metadata as md
import re
from pathlib import Path

from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
SCRIPT = (REPO / "scripts" / "package_functions.sh").read_text()
PIN = re.compile(r"^\s*([A-Za-z0-9_.-]+)==(\S+)")


def script_pins() -> dict[str, str]:
    block = re.search(r"^DEPENDENCIES=\(\n(.*?)^\)", SCRIPT, re.S | re.M)
    assert block, "DEPENDENCIES=( ... ) not found in scripts/package_functions.sh"
    pins = {}
    for line in block.group(1).splitlines():
        match = PIN.match(line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    chalice = re.search(r"^CHALICE=chalice==(\S+)", SCRIPT, re.M)
    assert chalice, "CHALICE=chalice==<version> not found"
    pins["chalice"] = chalice[1]
    return pins


def requirements_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO / "requirements.txt").read_text().splitlines():
        match = PIN.match(line.split("#")[0])
        if match:
            pins[canonicalize_name(match[1].split("[")[0])] = match[2]
    return pins


def test_the_package_pins_the_functions_runtime_dependencies():
    pins = script_pins()
    for name in ("chalice", "aws-lambda-powertools", "boto3", "botocore", "kubernetes", "pyyaml", "requests"):
        assert name in pins, f"{name} is not pinned in the package"
    for name in ("torch", "moto", "numpy", "matplotlib", "rich"):
        assert name not in pins, f"{name} must not be shipped to Lambda"


def test_pins_agree_with_requirements_txt():
    required = requirements_pins()
    mismatched = {
        name: (version, required[name])
        for name, version in script_pins().items()
        if name in required and required[name] != version
    }
    assert not mismatched, f"package pin != requirements.txt: {mismatched}"


def test_pins_are_the_versions_the_tests_run_against():
    mismatched = {}
    for name, version in script_pins().items():
        installed = md.version(name)
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched, f"package pin != installed (pinned, installed): {mismatched}"
