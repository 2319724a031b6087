# The two commands of the README: `make demo` (the main job) and `make test`.
PY := .venv/bin/python

.PHONY: setup demo test lint

setup:
	bash scripts/setup.sh

demo: setup
	$(PY) -m control demo

test: setup
	$(PY) -m ruff check .
	PYTHONPATH=functions .venv/bin/lint-imports
	$(PY) -m mypy
	$(PY) -m pytest -q

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	PYTHONPATH=functions .venv/bin/lint-imports
	$(PY) -m mypy
