# The two commands a newcomer needs: `make demo` and `make test`.
SWIFT ?= swift
CONFIG ?= release
BIN = .build/release/slmrec

.PHONY: deps build test demo bench clean

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

clean:
	rm -rf .build
