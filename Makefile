# ddlkit: set-up, course, tests.
#   make lab     set up .venv on first use, then open the course in JupyterLab
#   make test    type-check ddlkit, run the pytest suite, then every notebook with nbval
#   make test-portable  the engine's core tests as macOS and Windows run them, and the wheel
#   make demo    a short sync run with 2 workers; the record goes to runs/demo
#
# torch is installed on its own, before anything else, from an exact pin: a loose
# `torch` would let pip fetch the multi-GB CUDA build. Override the pin with
#   make lab TORCH_SPEC=torch==2.x.y
# If .venv already has a torch (for example a CPU wheel you installed from PyTorch's
# CPU index), the set-up keeps it and TORCH_SPEC is not used.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

TORCH_SPEC ?= torch==2.13.0
WHEELS_DIR ?= /opt/wheels
FIND_LINKS := $(if $(wildcard $(WHEELS_DIR)),--find-links $(WHEELS_DIR))
PIP_QUIET ?= --quiet
PIP_INSTALL := $(PY) -m pip install $(PIP_QUIET) --disable-pip-version-check $(FIND_LINKS)

LAB_ARGS ?=
ALLOW_ROOT := $(if $(filter 0,$(shell id -u)),--allow-root)

NOTEBOOK_DIR := notebooks
# every notebook nbval runs: the course, and both sides of the exercises
NBVAL_DIRS := notebooks solutions exercises
NBVAL_ARGS := --nbval-lax --nbval-current-env --nbval-cell-timeout=120 -p no:randomly
DEMO_OUT ?= runs/demo

.DEFAULT_GOAL := help
.PHONY: help install lab test test-portable soak chaos fuzz demo lint typecheck clean distclean \
  exercises bench

help:
	@echo "make lab        open the course in JupyterLab (sets up .venv on first use)"
	@echo "make test       type-check, run every test, then every notebook in $(NBVAL_DIRS)"
	@echo "make test-portable  core tests without pidfd and under spawn (as macOS and"
	@echo "                    Windows run), then the pip-installed course from a wheel"
	@echo "make soak       100 back-to-back runs: nothing may leak"
	@echo "make chaos      $(CHAOS_RUNS) seeded runs, a rank killed or stopped from outside in each:"
	@echo "                no hang, no wrong blame, no leak (one run again: make chaos SEED=n)"
	@echo "make fuzz       corrupt and hostile files, $(FUZZ_EXAMPLES) examples a test (a few minutes)"
	@echo "make demo       a 2-worker sync run on digits; record in $(DEMO_OUT)"
	@echo "make lint       ruff check ddlkit tests"
	@echo "make typecheck  mypy ddlkit (settings in pyproject.toml)"
	@echo "make install    only set up .venv"
	@echo "make clean      remove caches, build files and runs/ (keeps .venv)"
	@echo "make distclean  clean, and remove .venv"

install: $(STAMP)

# The stamp is rebuilt when pyproject.toml changes. pip is not upgraded: the one
# that comes with the venv can install an editable pyproject package.
$(STAMP): pyproject.toml
	@test -x $(PY) || { echo "creating $(VENV) with $(PYTHON)"; $(PYTHON) -m venv $(VENV); }
	@if $(PY) -c 'import torch' 2>/dev/null; then \
	  echo "torch $$($(PY) -c 'import torch; print(torch.__version__)') is already in $(VENV); keeping it"; \
	else \
	  echo "installing $(TORCH_SPEC)"; \
	  $(PIP_INSTALL) '$(TORCH_SPEC)'; \
	fi
	@echo "installing ddlkit (editable) with its dev tools"
	@$(PIP_INSTALL) -e '.[dev]'
	@touch $@
	@echo "$(VENV) is ready"

# The whole repository is served (learners need notebooks/ and exercises/); the lab
# opens on the welcome notebook. It listens on 127.0.0.1 only.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 $(ALLOW_ROOT) \
	  --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/$(NOTEBOOK_DIR)/00_welcome.ipynb \
	  $(LAB_ARGS)

# All three steps (mypy, pytest, nbval) always run; the target fails if any failed.
# nbval's exit code 5 ("no tests collected") is not a failure.
# Tests run in a private temp folder, removed afterwards: nbval and the browser test end
# their kernels abruptly, which would otherwise leave multiprocessing's pymp-* folders.
test: $(STAMP)
	@status=0; tmp=$$(mktemp -d); export TMPDIR=$$tmp; \
	$(PY) -m mypy ddlkit || status=$$?; \
	$(PY) -m pytest tests --ignore=tests/soak --ignore=tests/chaos --ignore=tests/portable \
	  || status=$$?; \
	if find $(NBVAL_DIRS) -name '*.ipynb' -not -path '*/.ipynb_checkpoints/*' 2>/dev/null | grep -q .; then \
	  rc=0; \
	  $(PY) -m pytest $(NBVAL_ARGS) $(NBVAL_DIRS) || rc=$$?; \
	  if [ $$rc -ne 0 ] && [ $$rc -ne 5 ]; then status=$$rc; fi; \
	else \
	  echo "make test: no notebooks in $(NBVAL_DIRS) yet; nbval step skipped"; \
	fi; \
	rm -rf $$tmp; \
	exit $$status

# The engine's core tests (marker `portable`) as other platforms run them, on this machine:
# without os.pidfd_open (macOS, Windows, Linux < 5.3: tests/portable/nopidfd/sitecustomize.py
# removes it in every process), with the spawn start method (Windows, macOS), and with both.
# Then the welcome notebook in a real kernel under spawn without pidfd, and tests/portable:
# the wheel installed outside the repo serves and grades the course.
# Each condition runs in its own temp folder, which must be empty afterwards, except for
# torch's own compile cache (torchinductor_<user>, made when a torch.optim optimiser is built).
PORTABLE_CONDITIONS := nopidfd spawn nopidfd+spawn
NOPIDFD := $(CURDIR)/tests/portable/nopidfd
test-portable: $(STAMP)
	@status=0; \
	for cond in $(PORTABLE_CONDITIONS); do \
	  tmp=$$(mktemp -d); env=(TMPDIR=$$tmp); \
	  case $$cond in *nopidfd*) env+=(PYTHONPATH=$(NOPIDFD)$${PYTHONPATH:+:$$PYTHONPATH});; esac; \
	  case $$cond in *spawn*) env+=(DDLKIT_START_METHOD=spawn);; esac; \
	  echo "== make test-portable: $$cond"; \
	  env "$${env[@]}" $(PY) -m pytest -m portable tests --ignore=tests/soak \
	    --ignore=tests/chaos --ignore=tests/portable -p no:cacheprovider \
	    --basetemp=$$tmp/pytest || status=$$?; \
	  rm -rf $$tmp/pytest $$tmp/torchinductor_*; left=$$(ls -A $$tmp); rm -rf $$tmp; \
	  if [ -n "$$left" ]; then echo "make test-portable ($$cond): left behind: $$left"; status=1; fi; \
	done; \
	echo "== make test-portable: the welcome notebook in a kernel, spawn and no pidfd"; \
	tmp=$$(mktemp -d); TMPDIR=$$tmp DDLKIT_START_METHOD=spawn PYTHONPATH=$(NOPIDFD) \
	  $(PY) -m pytest $(NBVAL_ARGS) -p no:cacheprovider $(NOTEBOOK_DIR)/00_welcome.ipynb \
	  || status=$$?; rm -rf $$tmp; \
	echo "== make test-portable: the wheel"; \
	tmp=$$(mktemp -d); TMPDIR=$$tmp $(PY) -m pytest tests/portable -p no:cacheprovider \
	  --basetemp=$$tmp/pytest || status=$$?; rm -rf $$tmp; \
	exit $$status

# 100 back-to-back runs in one process: no leaked process, file descriptor or temp file.
# It gets a temp folder of its own, so other programs' temp files cannot confuse it.
soak: $(STAMP)
	@tmp=$$(mktemp -d); status=0; \
	TMPDIR=$$tmp $(PY) -m pytest tests/soak -s -p no:cacheprovider --basetemp=$$tmp.pytest || status=$$?; \
	left=$$(ls -A $$tmp); rm -rf $$tmp $$tmp.pytest; \
	if [ -n "$$left" ]; then echo "make soak: left in its temp folder: $$left"; status=1; fi; \
	exit $$status

# Chaos soak (tests/chaos): CHAOS_RUNS seeded runs over every mode in ddlkit.MODES, some cold
# in a fresh Python, each with one rank killed (SIGKILL) or stopped (SIGSTOP) from outside at
# a random moment, start-up included. Fails on any hang, wrong blame or wrong outcome, slow
# detection, missing record or leak. Each run prints its seed; `make chaos SEED=n` (or
# CHAOS_ONLY=n,m) makes only those runs again. The summary goes to CHAOS_OUT as JSON. It runs
# in a temp folder of its own, which must be empty afterwards except for torch's compile cache.
CHAOS_RUNS ?= 200
CHAOS_OUT ?= $(CURDIR)/test-artifacts/chaos-summary.json
chaos: $(STAMP)
	@tmp=$$(mktemp -d); status=0; \
	TMPDIR=$$tmp CHAOS_RUNS=$(CHAOS_RUNS) CHAOS_ONLY=$(or $(SEED),$(CHAOS_ONLY)) \
	  CHAOS_OUT=$(CHAOS_OUT) $(PY) -m pytest tests/chaos -s -p no:cacheprovider \
	  --basetemp=$$tmp.pytest || status=$$?; \
	rm -rf $$tmp/torchinductor_*; left=$$(ls -A $$tmp); rm -rf $$tmp $$tmp.pytest; \
	if [ -n "$$left" ]; then echo "make chaos: left in its temp folder: $$left"; status=1; fi; \
	exit $$status

# The hypothesis tests of tests/test_hostile_files.py (records, checkpoints, exercise builds,
# store reports) with many more examples than make test gives them (DDLKIT_FUZZ_EXAMPLES).
FUZZ_EXAMPLES ?= 3000
fuzz: $(STAMP)
	DDLKIT_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PY) -m pytest tests/test_hostile_files.py -k fuzz \
	  -p no:cacheprovider --hypothesis-show-statistics

demo: $(STAMP)
	$(PY) -m ddlkit run --mode sync --workers 2 --dataset digits --steps 100 --out $(DEMO_OUT)
	@echo "make demo: run record in $(DEMO_OUT)/"

# Benchmarks against torch DDP, raw gloo and a Ray parameter server: prints one table and
# writes benchmarks/RESULTS.md. QUICK=1 is a smoke test of the suite (under a minute:
# one repetition of tiny sizes, no notebooks, no Ray). Ray is optional: pip install -e '.[bench]'
bench: $(STAMP)
	$(PY) benchmarks/run_all.py $(if $(QUICK),--quick)

lint: $(STAMP)
	$(PY) -m ruff check ddlkit tests

# Settings in pyproject.toml ([tool.mypy]); `make test` runs it too.
typecheck: $(STAMP)
	$(PY) -m mypy ddlkit

# Regenerate exercises/ from solutions/ (stubs every solution region). A generated file
# changed since (a learner's work) is kept; the target then fails and says which.
exercises: $(STAMP)
	$(PY) -m ddlkit exercises build --source solutions --out exercises

clean:
	rm -rf build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache .hypothesis runs \
	  test-artifacts
	find . -path ./$(VENV) -prune -o \
	  \( -name __pycache__ -o -name .ipynb_checkpoints \) -type d -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
