# The two commands of the README:  make demo  and  make test.
# Both create .venv on a fresh machine and install exactly what requirements/*.lock pins (with
# hashes); an install is redone only when its lock (or pyproject.toml) changed. `make lock`
# recompiles the locks from pyproject.toml (docs/development.md).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/facebank-uv/bin/uv
export VENV PYTHON
export NO_MKDOCS_2_WARNING := 1

# the platform the locks are for (CI and the project's machines)
LOCK_FOR := --python-version 3.11 --python-platform x86_64-manylinux_2_28
COMPILE   = $(UV) pip compile --quiet --generate-hashes $(LOCK_FOR) --custom-compile-command 'make lock' \
            $(if $(UPGRADE),--upgrade)


.PHONY: demo test test-fast install install-runtime install-test lint typecheck docs lock clean system-deps

install-runtime:
	bash scripts/install-locked.sh runtime

install-test:
	bash scripts/install-locked.sh test

install: install-test

system-deps:
	bash scripts/system-deps.sh

demo: install-runtime
	$(VENV)/bin/facebank demo

test: install-test system-deps
	$(PY) -m pytest --durations=25

# for working: no browser, no PostgreSQL, no long end-to-end runs (a few minutes)
test-fast: install-test
	$(PY) -m pytest -m "not browser and not postgres and not slow" --durations=10

lint: install-test
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet --site-dir site

# also part of lint
typecheck: install-test
	$(VENV)/bin/mypy

docs: install-test
	$(VENV)/bin/mkdocs serve

# Recompile every lock from pyproject.toml (new dependencies are added, the other pins are kept;
# `make lock UPGRADE=1` moves everything to the newest releases).
lock:
	test -x $(UV) || bash scripts/install-locked.sh bootstrap-only
	$(COMPILE) requirements/bootstrap.in -o requirements/bootstrap.txt
	$(COMPILE) requirements/build.in -o requirements/build.lock
	$(COMPILE) pyproject.toml -o requirements/runtime.lock
	$(COMPILE) pyproject.toml --extra test -o requirements/test.lock

clean:
	rm -rf $(VENV) facebank-demo .pytest_cache site
