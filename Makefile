# vecfmt: the two set-up commands are `make demo` and `make test`; both install what they need.
SHELL := /bin/bash
CARGO ?= cargo
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := target/release/vecfmt
DEMO := target/demo

.PHONY: demo test lint check fmt deps venv bench bench-report stress clean

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

## The main job on the sample data in testdata/: count word co-occurrences of a 4 MB corpus
## under an 8 MB memory budget (small enough that the cache evicts and reloads chunks), then
## inspect, verify and query the result, and draw it (target/demo/cooc.png).
demo: deps
	$(CARGO) build --release --locked -p vecfmt-cli
	@mkdir -p $(DEMO)
	@rm -f $(DEMO)/cooc.vfm
	@echo "== vecfmt cooccur testdata/sample/corpus.txt -o $(DEMO)/cooc.vfm --window 10 --min-count 2 --memory 8M"
	$(BIN) cooccur testdata/sample/corpus.txt -o $(DEMO)/cooc.vfm --window 10 --min-count 2 --memory 8M --checkpoint 0.5s
	@echo; echo "== vecfmt inspect $(DEMO)/cooc.vfm"
	$(BIN) inspect $(DEMO)/cooc.vfm
	@echo; echo "== vecfmt verify $(DEMO)/cooc.vfm"
	$(BIN) verify $(DEMO)/cooc.vfm
	@for w in cat mouse wolf; do \
	  echo; echo "== vecfmt get $(DEMO)/cooc.vfm --label $$w --top 8"; \
	  $(BIN) get $(DEMO)/cooc.vfm --label $$w --top 8 || exit 1; \
	done
	@echo; echo "== vecfmt plot $(DEMO)/cooc.vfm -o $(DEMO)/cooc.png"
	$(BIN) plot $(DEMO)/cooc.vfm -o $(DEMO)/cooc.png --force

## Every test: unit, integration, property, bad-file, fixture, CLI and doc tests, then the
## Python interop suite (tests/python) against the real numpy, scipy, h5py, PyTables,
## pandas, pyarrow and anndata pinned in tests/python/requirements.txt.
test: deps venv
	$(CARGO) test --workspace --locked
	$(CARGO) build --locked -p vecfmt-cli
	$(MAKE) python-dev
	VECFMT_BIN=$(CURDIR)/target/debug/vecfmt $(PY) -m pytest -q -p no:cacheprovider tests/python
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules --pyargs vecfmt

## The Python package (python/, PyO3 + maturin) into the test venv. `python-dev` builds the
## extension with the dev profile, sharing the test build's artifacts (the tests don't time
## anything); `python-release` is what `pip install ./python` gives a user, for benchmarks.
.PHONY: python-dev python-release
python-dev: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" MATURIN_PEP517_ARGS="--profile dev" $(PY) -m pip install --quiet --no-build-isolation --no-deps --force-reinstall ./python
python-release: venv
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(PY) -m pip install --quiet --no-build-isolation --no-deps --force-reinstall ./python

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

## The issue-4 conversion benchmark: `vecfmt convert` and the Python way (scipy, anndata,
## pandas/pyarrow) side by side on M1 as .npz, .h5ad, Parquet and .vfm (see BENCHMARKS.md).
.PHONY: bench-convert
bench-convert: deps venv
	$(CARGO) build --release --locked -p vecfmt-cli
	$(CARGO) run --release --locked -p vecfmt-benches --bin convert_report -- --breakdown --memory-check

## Durability under stress (issue 5): the SIGKILL crash loop with 20,000 trials (`make test`
## runs 1,000), `cooccur` killed and resumed 1,000 times (issue 19; `make test`: 50), simulated
## power loss with 64 crash images per cut point (`make test`: 8), and
## 2,000 truncations and rewrites under a reader (`make test`: 100; .npy: 40).
stress: deps
	VECFMT_CRASH_TRIALS=20000 $(CARGO) test --release --locked -p vecfmt-cli --test crash -- --nocapture
	VECFMT_RESUME_TRIALS=1000 $(CARGO) test --release --locked -p vecfmt-cli --test resume_crash -- --nocapture
	VECFMT_POWER_SEEDS=64 $(CARGO) test --release --locked -p vecfmt --test power_loss -- --nocapture
	VECFMT_TRUNCATE_TRIALS=2000 $(CARGO) test --release --locked -p vecfmt --test truncate_under_reader -- --nocapture
	VECFMT_TRUNCATE_TRIALS=500 $(CARGO) test --release --locked -p vecfmt-npy --test truncate_under_reader -- --nocapture

## The issue-3 accumulation benchmarks side by side in one run (see BENCHMARKS.md): cooccur on
## C1 at --memory 1G and 256M, -j 2 and -j 1, LRU against the default eviction, end to end,
## build from text and binary triplets, shards + merge. Generates C1 first (8 s for 1 GB).
## On C1-1GB this takes SEVERAL MINUTES PER RUN (about an hour in all at today's speed);
## `make bench-accum ACCUM_SIZE=100M` is the quicker run (3 repetitions, about 20 minutes).
ACCUM_SIZE ?= 1G
.PHONY: bench-accum
bench-accum: deps
	$(CARGO) build --release --locked -p vecfmt-cli
	$(CARGO) run --release --locked -p vecfmt-benches --bin c1_gen -- --bytes $(ACCUM_SIZE)
	$(CARGO) run --release --locked -p vecfmt-benches --bin accum_report -- --no-build --size $(ACCUM_SIZE) $(ACCUM_ARGS)

## Issue 19's scale run (BENCHMARKS.md, issue 19): cooccur on C1-5GB and C1-1GB at --memory
## 2G -j 2, side by side, with wall, CPU, peak RSS and peak scratch. Generates C1 first. About
## 10 minutes at today's speed, and 30 GB of free disk beside target/bench-data.
.PHONY: bench-scale
bench-scale: deps
	$(CARGO) build --release --locked -p vecfmt-cli
	$(CARGO) run --release --locked -p vecfmt-benches --bin c1_gen -- --bytes 5G
	$(CARGO) run --release --locked -p vecfmt-benches --bin c1_gen -- --bytes 1G
	$(CARGO) run --release --locked -p vecfmt-benches --bin scale_report -- --corpus target/bench-data/c1-5g.txt --corpus target/bench-data/c1-1g.txt --memory 2G --threads 2

clean:
	$(CARGO) clean
	rm -rf $(VENV)

## Fuzzing (issue 5): the cargo-fuzz targets in fuzz/, built on the stable toolchain with
## RUSTC_BOOTSTRAP=1 (libFuzzer and the sanitizer need -Z flags); cargo-fuzz is installed
## when missing. fuzz-smoke replays the committed corpus (as `make test` does), then fuzzes
## each target for FUZZ_SECONDS under an RSS limit. New inputs go to target/fuzz-corpus/,
## logs to target/fuzz-logs/, crashing inputs to fuzz/artifacts/<target>/ (add them to
## fuzz/corpus/<target>/ as crash-<what> once fixed). `make fuzz` runs each target longer.
## accumulate runs without LeakSanitizer: the 32-byte records glibc keeps for thread-local
## destructors of the accumulator's threads show up as leaks.
FUZZ_SECONDS ?= 60
FUZZ_LONG_SECONDS ?= 1800
FUZZ_RSS_MB ?= 2048
# Seconds one input may take before it counts as a crash (a CPU bomb: Parquet had one).
FUZZ_TIMEOUT ?= 20
FUZZ_TARGETS := vfm_meta vfm_chunk vfm_scan npy_header npz_member parquet_import mtx_parse accumulate
FUZZ_ENV := RUSTC_BOOTSTRAP=1
.PHONY: fuzz-build fuzz-smoke fuzz
fuzz-build: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install --locked cargo-fuzz
	$(FUZZ_ENV) $(CARGO) fuzz build
fuzz-smoke: fuzz-build
	$(CARGO) test --locked -p vecfmt-hostile --test fuzz_corpus
	@mkdir -p target/fuzz-logs; fail=0; \
	for t in $(FUZZ_TARGETS); do \
	  mkdir -p target/fuzz-corpus/$$t; \
	  echo "== $$t: $(FUZZ_SECONDS) s, -rss_limit_mb=$(FUZZ_RSS_MB) -timeout=$(FUZZ_TIMEOUT)"; \
	  extra=""; asan=""; [ $$t = accumulate ] && extra="-detect_leaks=0" && asan="detect_leaks=0"; \
	  ASAN_OPTIONS=$$asan $(FUZZ_ENV) $(CARGO) fuzz run $$t $(CURDIR)/target/fuzz-corpus/$$t $(CURDIR)/fuzz/corpus/$$t -- \
	    -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=$(FUZZ_RSS_MB) -timeout=$(FUZZ_TIMEOUT) -print_final_stats=1 $$extra \
	    > target/fuzz-logs/$$t.log 2>&1 || { echo "$$t: CRASH, see target/fuzz-logs/$$t.log and fuzz/artifacts/$$t/"; fail=1; }; \
	  grep -E "^stat::number_of_executed_units|^stat::new_units_added|^stat::peak_rss_mb" target/fuzz-logs/$$t.log | tr '\n' ' '; echo; \
	done; exit $$fail
fuzz:
	$(MAKE) fuzz-smoke FUZZ_SECONDS=$(FUZZ_LONG_SECONDS)
