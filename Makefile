# Two entry points (see README.md):
#   make lab    set everything up and open the series in JupyterLab
#   make test   set everything up and run the whole test suite
#
# Both create a virtual environment in $(VENV) (default .venv) with the
# Python 3.11+ found as $(PYTHON), and install this package with its
# dependencies from pyproject.toml.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The tests also need the instructors' tools (nbgrader) and Keras's other two backends
# (JAX, PyTorch); the learner's install does not.
INSTRUCTOR_STAMP := $(VENV)/.installed-instructor
# Test processes (pytest-xdist). Each test file runs whole in one of them, so a
# notebook's cells stay in order; they take the files in the order conftest.py gives
# (the longest first), not xdist's own (the files with most tests first). Three keep
# two cores busy: a worker waiting on a kernel, a browser or a sandboxed learner leaves
# its core to the others (the same tree, one run after the other: 532 s with two, 422 s
# with three, the cores 98% busy).
TEST_WORKERS ?= 3

# The tests read data offline. ../shared/data (the course's offline copy) is
# used when it exists and TUTORIAL_DATA_DIR is unset; otherwise the tests read
# the Keras cache, filled once by `python -m tutorial_lib download`.
ifeq ($(origin TUTORIAL_DATA_DIR), undefined)
ifneq ($(wildcard ../shared/data/mnist),)
export TUTORIAL_DATA_DIR := $(abspath ../shared/data)
endif
endif

.PHONY: setup instructor lab test slides lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is needed, found " + sys.version.split()[0]'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,slides,browser]"
	touch $(STAMP)

$(INSTRUCTOR_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,slides,browser,instructor,backends]"
	touch $(INSTRUCTOR_STAMP)

setup: $(STAMP)

instructor: $(INSTRUCTOR_STAMP)

# `make lab` listens on this machine only; `make lab LAB_IP=0.0.0.0` on every
# network interface. LAB_PORT is the first port tried.
LAB_IP ?= 127.0.0.1
LAB_PORT ?= 8888

lab: $(STAMP)
	$(BIN)/python -m tutorial_lib info
	$(BIN)/python scripts/lab.py --ip $(LAB_IP) --port $(LAB_PORT) notebooks/00_setup.ipynb

test: $(INSTRUCTOR_STAMP)
	@if [ -z "$$TUTORIAL_DATA_DIR" ]; then $(BIN)/python -m tutorial_lib download; fi
	TUTORIAL_PROFILE=fast $(BIN)/python -m pytest --run-browser -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

slides: $(STAMP)
	$(BIN)/python -m tutorial_lib slides --profile $${TUTORIAL_PROFILE:-cpu} --out slides

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format:
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) runs build *.egg-info
