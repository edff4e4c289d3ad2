# Two commands do all set-up on a fresh machine with Python 3.11+: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
RUN ?= runs/lorenz-512

.PHONY: venv demo test lint docs bench bench-full notebooks clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,docs]"
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/ddm-jax train lorenz --out $(RUN) --overwrite
	$(VENV)/bin/ddm-jax evaluate $(RUN)
	$(VENV)/bin/ddm-jax export $(RUN) --format npz

test: $(STAMP)
	JAX_PLATFORMS=cpu $(PY) -m pytest -q -n 2 --dist loadgroup tests

lint: $(STAMP)
	$(VENV)/bin/ruff check ddm_jax tests benchmarks
	$(VENV)/bin/ruff format --check ddm_jax tests benchmarks

docs: $(STAMP)
	$(VENV)/bin/mkdocs build --strict

notebooks: $(STAMP)
	$(PY) notebooks/execute.py

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

bench-full: $(STAMP)
	$(PY) benchmarks/run_all.py --full

clean:
	rm -rf runs site .cache .pytest_cache .ruff_cache
