# The two commands a newcomer needs: `make demo` and `make test`.
SWIFT ?= swift
CONFIG ?= release
BIN = .build/release/slmrec

.PHONY: deps build test demo bench bench-compare clean

# Installs what a fresh Debian machine lacks (only if missing).
deps:
	@bash scripts/install-deps

build: deps
	$(SWIFT) build -c release --product slmrec

# Whole test suite. Tests that run the CLI use the debug binary built alongside.
test: deps
	$(SWIFT) build --product slmrec
	$(SWIFT) test --disable-swift-testing

# The main job on the bundled data: prepare MovieLens, SASRec item table, quickstart recipe, report.
demo: build
	bash scripts/demo

bench: build
	$(BIN) bench --config small
	$(BIN) bench --config medium

# slmrec against PyTorch, both measured here in one command: a ratio means something only
# when both sides ran on the same machine in the same run. For each config, our fp32 rows,
# PyTorch's, our int8 row, PyTorch's (interleaved, so a change in the machine's load falls on
# both), then the safetensors I/O rows; PyTorch gets the thread count our run reported.
# scripts/bench-pytorch.py installs pinned torch/transformers/peft into its own venv
# (~/.cache/slmrec/bench-venv, once); the JSON stays in $(BENCH_OUT) for provenance, with
# the load average before the runs: on a 2-core machine any other job skews both sides.
PYTHON ?= python3
BENCH_OUT ?= out/bench-compare
BENCH_SECONDS ?= 4
BENCH_CONFIGS ?= small medium
THREADS_OF = $(PYTHON) -c 'import json, sys; print(json.load(open(sys.argv[1]))["threads"])'

bench-compare: build
	$(PYTHON) scripts/bench-pytorch.py --setup
	@mkdir -p $(BENCH_OUT) && rm -f $(BENCH_OUT)/*.json $(BENCH_OUT)/loadavg.txt
	@cat /proc/loadavg > $(BENCH_OUT)/loadavg.txt 2>/dev/null || true
	@set -e; for c in $(BENCH_CONFIGS); do \
	  echo "== $$c: slmrec fp32, PyTorch fp32, slmrec int8, PyTorch int8" >&2; \
	  $(BIN) bench --config $$c --seconds $(BENCH_SECONDS) --json > $(BENCH_OUT)/slmrec-$$c.json; \
	  t=$$($(THREADS_OF) $(BENCH_OUT)/slmrec-$$c.json); \
	  $(PYTHON) scripts/bench-pytorch.py --config $$c --seconds $(BENCH_SECONDS) --threads $$t --json > $(BENCH_OUT)/pytorch-$$c.json; \
	  $(BIN) bench --config $$c --int8 --seconds $(BENCH_SECONDS) --json > $(BENCH_OUT)/slmrec-$$c-int8.json; \
	  $(PYTHON) scripts/bench-pytorch.py --config $$c --int8 --seconds $(BENCH_SECONDS) --threads $$t --json > $(BENCH_OUT)/pytorch-$$c-int8.json; \
	done; \
	echo "== safetensors I/O" >&2; \
	$(BIN) bench --io --seconds $(BENCH_SECONDS) --json > $(BENCH_OUT)/slmrec-io.json; \
	$(PYTHON) scripts/bench-pytorch.py --io --seconds $(BENCH_SECONDS) --threads $$($(THREADS_OF) $(BENCH_OUT)/slmrec-io.json) --json > $(BENCH_OUT)/pytorch-io.json
	@echo
	@$(PYTHON) scripts/bench-ratios.py $(BENCH_OUT) | tee $(BENCH_OUT)/ratios.txt

clean:
	rm -rf .build
