# Coordina: `make run` serves a demo at http://127.0.0.1:5000, `make test` runs every test, `make lint` checks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app webapp

.PHONY: run test lint venv

# Create the virtualenv once; reinstall whenever pyproject.toml is newer than the stamp.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

run: venv
	$(FLASK) db upgrade
	$(FLASK) processes deploy --comment "despliegue inicial"
	$(FLASK) demo seed
	$(FLASK) run --host 127.0.0.1 --port 5000

test: venv
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
