# Kassa: `make run` and `make test` are the two commands a new machine needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(sort $(wildcard plugins/*/pyproject.toml))
PLUGIN_DIRS := $(patsubst %/pyproject.toml,%,$(PLUGINS))
STAMP := $(VENV)/.installed
PORT ?= 5000

.PHONY: install run test bench clean peers

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when a pyproject changed.
$(STAMP): $(BIN)/python pyproject.toml $(PLUGINS)
	$(BIN)/pip install --quiet -e ".[test]" $(foreach p,$(PLUGIN_DIRS),-e "$(p)[test]")
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/kassa db upgrade heads
	$(BIN)/kassa demo
	KASSA_TEST_CLOCK=1 PORT=$(PORT) $(BIN)/kassa serve

# Prism (the vendors' API contracts for the gateway tests) comes from npm; without npm
# those tests skip with the reason (and fail under CI=true).
peers:
	@command -v npm >/dev/null 2>&1 && bash .ci/install-peers.sh || echo "make: npm not found; gateway contract tests will skip"

test: install peers
	$(BIN)/python -m pytest

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) instance test-artifacts
