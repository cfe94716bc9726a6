# vecfmt: the two set-up commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := target/release/vecfmt
DEMO := target/demo

.PHONY: demo test lint check fmt deps venv bench bench-report clean

deps:
	@scripts/ensure-deps.sh

# The Python environment of the benchmark peers (and, later, the interop tests), pinned.
venv: $(VENV)/.installed
$(VENV)/.installed: tests/python/requirements.txt
	@scripts/ensure-deps.sh --python
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r tests/python/requirements.txt
	touch $@

## The main job on the sample data in testdata/.
demo: deps
	$(CARGO) build --release -p vecfmt-cli
	$(CARGO) build --release -p vecfmt --example word_vectors
	@mkdir -p $(DEMO)
	@echo "== build word vectors of testdata/sample/corpus.txt (2 MB) into $(DEMO)/words.vfm"
	target/release/examples/word_vectors testdata/sample/corpus.txt $(DEMO)/words.vfm
	@echo; echo "== vecfmt inspect $(DEMO)/words.vfm"
	$(BIN) inspect $(DEMO)/words.vfm
	@echo; echo "== vecfmt verify $(DEMO)/words.vfm"
	$(BIN) verify $(DEMO)/words.vfm
	@for w in cat mouse wolf; do \
	  echo; echo "== vecfmt get $(DEMO)/words.vfm --label $$w --top 6"; \
	  $(BIN) get $(DEMO)/words.vfm --label $$w --top 6 || exit 1; \
	done

## Every test: unit, integration, property, bad-file, fixture, CLI and doc tests, then the
## Python interop suite (tests/python) against the real numpy, scipy, h5py, PyTables,
## pandas, pyarrow and anndata pinned in tests/python/requirements.txt.
test: deps venv
	$(CARGO) test --workspace --locked
	$(CARGO) build --locked -p vecfmt-cli
	VECFMT_BIN=$(CURDIR)/target/debug/vecfmt $(PY) -m pytest -q -p no:cacheprovider tests/python

lint: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

## What CI does.
check: lint test

fmt:
	$(CARGO) fmt --all

## Criterion micro-benchmarks (a few minutes).
bench: deps
	$(CARGO) bench -p vecfmt-benches

## The M1 side-by-side report against scipy and h5py (see BENCHMARKS.md).
bench-report: deps venv
	$(CARGO) run --release -p vecfmt-benches --bin m1_report

clean:
	$(CARGO) clean
	rm -rf $(VENV)
