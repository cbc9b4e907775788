# edge-action: the two commands a newcomer needs are `make demo` and `make test`.
PY      := .venv/bin/python
VENV_BIN:= .venv/bin
WORK    ?= work
DEVICE  ?= x86-cpu
RUN     ?= $(WORK)/runs/lrcn-edge
BUNDLE  ?= $(WORK)/bundles/lrcn-edge
PYTEST_ARGS ?=

.PHONY: help setup test test-all demo data quantize bench clean

help:            ## list the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

setup:           ## install system packages + .venv (idempotent, fast when nothing is missing)
	@bash scripts/setup.sh

test: setup      ## run the default test suite (what CI runs)
	$(PY) -m pytest $(PYTEST_ARGS)

test-all: setup  ## include slow tests (real-data training, soak)
	$(PY) -m pytest -m '' $(PYTEST_ARGS)

clean:           ## remove generated work (data, runs, bundles, reports)
	rm -rf $(WORK)
