# eportal: the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# every plugin distribution under plugins/ (each has its own setup.py or pyproject.toml)
PLUGIN_DIRS := $(sort $(dir $(wildcard plugins/*/setup.py plugins/*/pyproject.toml)))
PLUGIN_FILES := $(wildcard plugins/*/setup.py plugins/*/pyproject.toml)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run install test test-deps lint clean demo

run: install
	$(BIN)/eportal init
	$(BIN)/eportal serve --host $(HOST) --port $(PORT)

# a living console in a fresh data dir of its own (patchsets, feeds, keys, a fleet, a patch source)
DEMO_DIR ?= var-demo
demo: install test-deps
	rm -rf $(DEMO_DIR)
	EPORTAL_DATA_DIR=$(abspath $(DEMO_DIR)) $(BIN)/python scripts/demo.py
	EPORTAL_DATA_DIR=$(abspath $(DEMO_DIR)) $(BIN)/eportal serve --host $(HOST) --port $(PORT)

install: $(VENV)/.installed

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# re-installs only when a setup file changed (editable installs pick up code changes by themselves)
$(VENV)/.installed: $(BIN)/python setup.py $(PLUGIN_FILES)
	$(PIP) install -e . $(foreach p,$(PLUGIN_DIRS),-e $(p)) 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import eportal_core" && touch $@

test-deps: $(VENV)/.test-installed

$(VENV)/.test-installed: $(VENV)/.installed setup.py
	$(PIP) install -e '.[test]' 2>&1 | grep -v "is ignored: it is neither" || true
	$(BIN)/python -c "import pytest, webtest, playwright" && touch $@

test: install test-deps
	scripts/install-system-deps.sh
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: test-deps
	$(BIN)/ruff check src plugins tests

clean:
	rm -rf $(VENV) build src/*.egg-info plugins/*/*.egg-info
