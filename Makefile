# Fresh-machine entry points. `make demo` and `make test` create .venv when it is missing.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
# CPU wheel of PyTorch. Override on a CUDA machine, e.g. `make demo TORCH_SPEC="torch>=2.2"`.
TORCH_SPEC ?= torch==2.13.0
OUT    ?= runs/demo
PRESET ?= quick
JOBS   ?= 2
PYTEST_WORKERS ?= 2

.PHONY: demo test test-slow bench install install-test clean docs lint tutorials mutants mutants-ci mutants-sample mutants-hand

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install -q -e ".[test]"
	touch $@

$(VENV)/.installed-mutation: $(VENV)/.installed-test
	$(PIP) install -q -e ".[test,mutation]"
	touch $@

$(VENV)/.installed-docs: $(VENV)/.installed
	$(PIP) install -q -e ".[docs]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

demo: $(VENV)/.installed
	$(VENV)/bin/smoothscore reproduce --preset $(PRESET) --jobs $(JOBS) --out $(OUT)
	@echo "Report: $(OUT)/report.html"

test: $(VENV)/.installed-test
	$(PY) -m pytest -m "not slow" -n $(PYTEST_WORKERS) -q

test-slow: $(VENV)/.installed-test
	$(PY) -m pytest -m slow -n $(PYTEST_WORKERS) -q

bench: $(VENV)/.installed
	$(PY) benchmarks/run_all.py

# mutation testing (docs/mutation.md): every mutant of the core modules against its module's tests; writes
# build/mutants/kill_rates.md (the table of docs/mutation.md) and build/mutants/survivors.md. Hours on 2 cores.
mutants: $(VENV)/.installed-mutation
	$(PY) mutation/run.py --jobs $(PYTEST_WORKERS)

# CI's bounded share: a deterministic sample of MUTANTS_CI mutants over all core modules, fails below 90% killed
MUTANTS_CI ?= 24
mutants-ci: $(VENV)/.installed-mutation
	$(PY) mutation/run.py --total $(MUTANTS_CI) --jobs $(PYTEST_WORKERS) --timeout 240

# the per-module estimate of docs/mutation.md: MUTANTS_PER_MODULE mutants drawn (seed MUTANTS_SEED) in every core
# module, one at a time, niced; writes build/mutants/sample_kill_rates.md and sample_survivors.md
MUTANTS_PER_MODULE ?= 3
MUTANTS_SEED ?= 1
mutants-sample: $(VENV)/.installed-mutation
	nice -n 19 $(PY) mutation/run.py --per-module $(MUTANTS_PER_MODULE) --seed $(MUTANTS_SEED) --jobs 1 --timeout 150

# the hand mutants of issue 18, each against the test written to kill it
mutants-hand: $(VENV)/.installed-test
	$(PY) mutation/hand_mutants.py --jobs $(PYTEST_WORKERS)

# the documentation site (mkdocs-material + mkdocstrings), warnings as errors, into site/
docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

# ruff lint and format check (configured in pyproject.toml)
lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# re-execute the tutorials and rewrite the figures and outputs shown in the site (docs/tutorials/figures)
tutorials: $(VENV)/.installed
	$(PY) tutorials/run_all.py docs/tutorials/figures

clean:
	rm -rf $(VENV) runs build site *.egg-info src/*.egg-info
