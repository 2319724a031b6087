"""The committed OpenAPI document is valid and describes exactly the routes the app serves."""

import json
import re
from pathlib import Path

from openapi_spec_validator import validate

REPO = Path(__file__).resolve().parents[2]
DOCUMENT = json.loads((REPO / "functions" / "chalicelib" / "openapi.json").read_text())


def test_the_document_is_valid_openapi():
    validate(DOCUMENT)


def test_every_route_is_documented_and_every_documented_route_exists():
    import app

    served = {(path, method.lower()) for path, methods in app.app.routes.items() for method in methods}
    documented = {(path, method) for path, item in DOCUMENT["paths"].items() for method in item}
    assert served == documented


def test_path_parameters_are_declared():
    for path, item in DOCUMENT["paths"].items():
        names = set(re.findall(r"\{(\w+)\}", path))
        for operation in item.values():
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (path, declared, names)
