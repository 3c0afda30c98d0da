# Two entry points for a fresh machine: `make demo` (the main job, no cluster) and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test lint install

$(BIN)/tep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/tep

.tools/bin/helm: $(BIN)/tep
	PYTHON=$(BIN)/python bash scripts/install-helm.sh .tools/bin

demo: $(BIN)/tep
	$(BIN)/tep run --local -f examples/smoke/plan.yaml

lint: $(BIN)/tep
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(BIN)/tep .tools/bin/helm
	$(BIN)/ruff check .
	$(BIN)/mypy --strict
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/.tools/bin:$$PATH" $(BIN)/python -m pytest
