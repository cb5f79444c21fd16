# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from this repository's own files (apt packages via scripts/install-system-deps.sh,
# Python packages into .venv).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

LOCK   := requirements/test.lock
# The uv release `make lock` uses; a lock is reproducible only with the same resolver.
UV_VERSION ?= 0.13.9

.PHONY: setup demo test test-latest lint lock bench clean

# Every package comes from the lock, checked against its hashes; itops itself is then installed
# without dependencies (and without build isolation, so the build's setuptools is the locked one).
$(STAMP): pyproject.toml setup.cfg lab/pyproject.toml $(LOCK) scripts/install-system-deps.sh tests/plugins/itops_test_plugin/pyproject.toml
	bash scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m pip install -q --no-deps --no-build-isolation -e lab
	# a third-party plugin for the tests (a report format and a backup kind), see docs/plugins.md
	$(PY) -m pip install -q --no-deps --no-build-isolation -e tests/plugins/itops_test_plugin
	$(PY) -m pip check
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m ruff format --check itops lab checks tests bench scripts
	$(PY) -m ruff check itops lab checks tests bench scripts
	$(PY) -m mypy
	$(PY) -m pytest -q

# The suite against the newest versions pyproject allows (no lock), in a venv of its own: drift in
# moto, boto3, paramiko... shows up here on purpose, not on a fresh machine. Not part of .ci/run.
test-latest:
	bash scripts/install-system-deps.sh
	test -x .venv-latest/bin/python || $(PYTHON) -m venv .venv-latest
	.venv-latest/bin/python -m pip install -q --upgrade pip
	.venv-latest/bin/python -m pip install -q --upgrade --upgrade-strategy eager -e '.[test]'
	.venv-latest/bin/python -m pip install -q --no-deps --no-build-isolation -e lab
	.venv-latest/bin/python -m pip list --format=freeze > .venv-latest/versions.txt
	.venv-latest/bin/python -m pytest -q

# Regenerate the lock from pyproject's ranges after changing a dependency (pins that still fit are
# kept); `make lock LOCK_FLAGS=--upgrade` takes the newest allowed versions of everything. Then run
# `make test` and commit the lock with the change that needed it.
LOCK_FLAGS ?=
lock:
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q 'uv==$(UV_VERSION)'
	$(PY) -m uv pip compile pyproject.toml --extra test --generate-hashes --universal \
		--python-version 3.11 $(LOCK_FLAGS) -o $(LOCK)

# The formatter and the linter applied (make test only checks them)
lint: $(STAMP)
	$(PY) -m ruff format itops lab checks tests bench scripts
	$(PY) -m ruff check --fix itops lab checks tests bench scripts
	$(PY) -m mypy

bench: $(STAMP)
	$(PY) bench/fleet.py --hosts 10 50

clean:
	rm -rf $(VENV) .venv-latest .lab build *.egg-info
