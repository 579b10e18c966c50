# KECIS hub — developer entry points. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin/kecis
DEMO_BIN  ?= bin/kecis-demo
FUZZTIME  ?= 10s
BENCHTIME ?= 1s

.PHONY: help run build test bench bench-peers lint fuzz clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the kecis binary into bin/
	$(GO) build -o $(BIN) ./cmd/kecis

run: ## build and start the demo federation, bin/kecis-demo (docs/demo.md)
	$(GO) build -o $(DEMO_BIN) ./cmd/kecis-demo
	./$(DEMO_BIN)

test: ## lint, then every test (CI runs exactly this)
	$(MAKE) lint
	./scripts/test.sh $(PKGS)

bench: ## benchmarks, machine-readable (go test -bench output; RESULT lines from kecis envelope bench)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

bench-peers: ## kecis vs libxmlsec1 (C) on one pinned core, interleaved rounds: medians and ratios (needs libxmlsec1-dev)
	./scripts/bench-peers.sh

lint: ## gofmt check and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	 if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

fuzz: ## a short run of every fuzz target (FUZZTIME each)
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
