# The two commands of the README: `make demo` and `make test`. Everything they need is
# installed from this repository's own files (apt packages via scripts/install-system-deps.sh,
# Python packages into .venv).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint bench clean

$(STAMP): pyproject.toml setup.cfg scripts/install-system-deps.sh
	bash scripts/install-system-deps.sh
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

setup: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	$(PY) -m ruff check itops
	$(PY) -m mypy itops
	$(PY) -m pytest -q

lint: $(STAMP)
	$(PY) -m ruff check itops checks tests
	$(PY) -m mypy itops

bench: $(STAMP)
	$(PY) bench/fleet.py --hosts 10 50

clean:
	rm -rf $(VENV) .lab build *.egg-info
