"""The image's recipe, checked without a Docker engine: non-root, port 8080, `serve`, pinned."""

from __future__ import annotations

import os
import re
from pathlib import Path

from workloads.inference import serve

REPO = Path(__file__).resolve().parents[3]
FOLDER = REPO / "workloads" / "inference"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip().removesuffix("\\").strip()  # the lock: `name==version \`
        if line and not line.startswith("-"):
            name, _, version = line.partition("==")
            found[re.sub(r"\[.*\]", "", name).lower()] = version
    return found


def test_the_dockerfile_runs_serve_as_a_non_root_user_on_8080() -> None:
    dockerfile = (FOLDER / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.M)
    assert users and users[-1].split(":")[0] not in ("0", "root")
    assert re.search(r"^EXPOSE\s+8080\s*$", dockerfile, flags=re.M)
    assert re.search(r'^ENTRYPOINT\s+\["serve"\]\s*$', dockerfile, flags=re.M)
    assert "SAGEMAKER_BIND_TO_PORT=8080" in dockerfile
    assert os.access(FOLDER / "serve", os.X_OK)
    assert "workloads.inference.serve" in (FOLDER / "serve").read_text()


def test_every_image_requirement_is_pinned_and_agrees_with_the_repository() -> None:
    image = pins(FOLDER / "requirements.txt")
    assert image and all(image.values()), image
    repository = pins(REPO / "requirements.txt")
    disagree = {
        name: (v, repository[name]) for name, v in image.items() if name in repository and repository[name] != v
    }
    assert not disagree


def test_the_entrypoint_accepts_sagemakers_serve_argument_only(capsys) -> None:
    assert serve.main(["train"]) == 2
    assert "usage" in capsys.readouterr().err


def test_bad_settings_stop_the_entrypoint_with_a_message(monkeypatch, capsys) -> None:
    monkeypatch.setenv("SAGEMAKER_BIND_TO_PORT", "eighty")
    assert serve.main(["serve"]) == 2
    assert "SAGEMAKER_BIND_TO_PORT" in capsys.readouterr().err
