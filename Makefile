# Quick start: `make report` then `make test`. Everything runs in .venv (created if missing).
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
AS_OF  ?= 2026-10-31
DATA   ?= data/sample

.PHONY: install report test bench lab clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test,bench]"
	@rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

## The main job on the embedded sample data: every report notebook → reports/*.html; prints where they are.
report: $(STAMP)
	$(VENV)/bin/subs-model replay $(DATA) --as-of $(AS_OF)
	$(VENV)/bin/subs-model report -p data $(abspath $(DATA)) -p as_of $(AS_OF)

## The test suite (the command CI runs).
test: $(STAMP)
	$(PY) -m pytest

## Speed against peers (not part of the tests).
bench: $(STAMP)
	$(PY) benchmarks/bench_replay.py
	$(PY) benchmarks/bench_simulate.py
	$(PY) benchmarks/bench_metrics.py
	$(PY) benchmarks/bench_reports.py
	$(PY) benchmarks/bench_ingest.py
	$(PY) benchmarks/bench_whatif.py

## JupyterLab for people (kept out of the test and report environment).
lab: $(STAMP)
	$(PY) -m pip install --quiet -e ".[lab]"
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .hypothesis
