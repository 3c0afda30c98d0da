# Two entry points for a fresh machine: `make demo` (the main job, no cluster) and `make test`.
PYTHON ?= python3
# Development: the package editable, with the test extra (kmock, pytest-asyncio, ruff, mypy, ...).
VENV := .venv
BIN := $(VENV)/bin
# Like the runner image: the lock's runtime dependencies and the package, no extra. Users' suites
# run here (`make demo`), never next to the development plugins, which would load into their pytest.
RUN_VENV := .venv-run
RUN_BIN := $(RUN_VENV)/bin
# Pinned versions of every runtime dependency, used by both images and $(RUN_VENV); `make lock`.
LOCK := requirements.lock
PACKAGE_FILES := $(shell find operator/tep_operator runner-image/tep_runner -type f -not -path '*/__pycache__/*')

.PHONY: demo test lint install lock run-venv

$(BIN)/tep: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

install: $(BIN)/tep

# Made afresh when the lock changes, so nothing from an older lock stays behind.
$(RUN_VENV)/lock.txt: $(LOCK)
	rm -rf $(RUN_VENV)
	$(PYTHON) -m venv $(RUN_VENV)
	$(RUN_BIN)/pip install --quiet --disable-pip-version-check -r $(LOCK)
	cp $(LOCK) $@

# A regular (not editable) install, as in the images; the build backend is pinned by the lock too.
# (build/ goes first: setuptools would put files of deleted modules from an older build in the wheel.)
$(RUN_BIN)/tep: $(RUN_VENV)/lock.txt pyproject.toml $(PACKAGE_FILES)
	rm -rf build
	PIP_CONSTRAINT=$(CURDIR)/$(LOCK) $(RUN_BIN)/pip install --quiet --disable-pip-version-check \
	  --no-deps --force-reinstall .
	$(RUN_BIN)/python -m tep_runner.precompile  # as the image does: pytest's rewritten plugins, cached
	touch $@

run-venv: $(RUN_BIN)/tep

.tools/bin/helm: $(BIN)/tep
	PYTHON=$(BIN)/python bash scripts/install-helm.sh .tools/bin

# The example plan exactly as a runner pod runs it, then its results in the report browser
# (`tep serve` in the foreground until Ctrl-C).
DEMO_REPORTS ?= tep-reports
DEMO_PORT ?= 8000
demo: $(RUN_BIN)/tep
	$(RUN_BIN)/tep run --local -f examples/smoke/plan.yaml --reports $(DEMO_REPORTS)
	$(RUN_BIN)/tep serve --reports $(DEMO_REPORTS) --port $(DEMO_PORT)

# Resolves pyproject.toml's runtime dependencies and build backend for every platform and every
# Python of requires-python (--universal); uv comes with the test extra.
lock: $(BIN)/tep
	$(BIN)/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"], sep="\n")' \
	  | $(BIN)/uv pip compile --quiet --universal --custom-compile-command 'make lock' \
	      pyproject.toml - -o $(LOCK)

lint: $(BIN)/tep
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(BIN)/tep $(RUN_BIN)/tep .tools/bin/helm
	$(BIN)/ruff check .
	$(BIN)/mypy --strict
	PATH="$(CURDIR)/$(BIN):$(CURDIR)/.tools/bin:$$PATH" $(BIN)/python -m pytest
