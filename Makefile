# The two commands of the README: `make demo` (the main job) and `make test`.
# `make setup` is cheap once done: apt only for a missing binary, each virtualenv only when its lock
# (and, for .venv, scripts/install_horovod.sh) changed since its stamp, npm only without its validator.
PY := .venv/bin/python
UNIT := tests/unit tests/contract

.PHONY: setup demo test unit lint bench-peers

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m control demo

test: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	PYTHONPATH=functions .venv/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest -q

# The fast loop: unit and contract tests, no services (no embedded platform, no model server).
unit: setup
	$(PY) -m pytest -q $(UNIT)

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	PYTHONPATH=functions .venv/bin/lint-imports
	$(PY) -m mypy

# What benchmarks/model_server.py compares against (wrk, Java, MMS, LitServe); not needed by demo or test.
bench-peers:
	bash scripts/setup.sh bench-peers
