# The two set-up commands of the README:
#   make demo   create the environment (first time) and run the whole pipeline on the synthetic set
#   make test   create the environment (first time) and run the fast test suite
# Both are idempotent and work offline once the environment exists.

PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo_out

.PHONY: env demo test test-slow lint clean-env

env: $(STAMP)

$(STAMP): requirements.txt .ci/constraints.txt setup.cfg pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, got " + sys.version' \
	  || { echo "Set PYTHON=/path/to/python3.11"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=24"
	$(PY) -m pip install --quiet -r requirements.txt -c .ci/constraints.txt
	$(PY) -m pip install --quiet --no-deps -e .
	$(PY) -m pip check
	touch $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(VENV))/bin:$$PATH" bash tools/demo.sh $(DEMO_OUT)

test: $(STAMP)
	$(PY) -m pytest

test-slow: $(STAMP)
	$(PY) -m pytest -m slow

lint: $(STAMP)
	$(PY) -m flake8 data fakeout_jax inconsistency_jax avdf tests benchmarks tools

clean-env:
	rm -rf $(VENV)
