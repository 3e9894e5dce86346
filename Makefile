# Coordina: `make run` serves a demo at http://127.0.0.1:5000, `make test` runs every test, `make lint` checks.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
FLASK := $(BIN)/flask --app webapp

NODE_STAMP := node_modules/.package-lock.json
CATALOG := webapp/translations/en/LC_MESSAGES/messages

.PHONY: run test lint venv diagrams translations

# Create the virtualenv once; reinstall whenever pyproject.toml is newer than the stamp.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

# npm packages (bpmn-js, playwright-core) exactly as package-lock.json pins them.
$(NODE_STAMP): package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

# Compiled translations are built from the committed .po file, never committed themselves.
$(CATALOG).mo: $(CATALOG).po | $(STAMP)
	$(BIN)/pybabel compile -d webapp/translations

# Extract the Spanish strings and merge them into the English catalogue (then translate the new ones).
translations: venv
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext -o webapp/translations/messages.pot .
	$(BIN)/pybabel update -N --ignore-obsolete -i webapp/translations/messages.pot -d webapp/translations

run: venv $(NODE_STAMP) $(CATALOG).mo
	$(FLASK) db upgrade
	$(FLASK) processes deploy --comment "despliegue inicial"
	$(FLASK) demo seed
	$(FLASK) demo generate --cases 40 --days 120 --seed 7
	COORDINA_INSECURE_COOKIES=1 FLASK="$(FLASK)" scripts/run-dev.sh  # the server and the deadline worker

# Two test processes by default (CI has 2 cores); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2
test: venv $(NODE_STAMP) $(CATALOG).mo
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal

# Lay out the BPMN diagrams, render their pictures and rewrite processes/README.md's tables.
diagrams: venv $(NODE_STAMP)
	$(BIN)/python -m tools.bpmn_layout processes/*.bpmn
	npm run diagrams
	$(BIN)/python -m tools.process_docs

lint: venv
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m tools.structure  # the structural figures (commits in webapp/, module sizes, layers, repeats)
