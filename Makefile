# KECIS hub — developer entry points. `make help` lists them.
GO        ?= go
PKGS      ?= ./...
BIN       ?= bin/kecis
DEMO_BIN  ?= bin/kecis-demo
# The demo's directory: kecis-demo's --dir default, where `make run` keeps its state.
DEMO_DIR  ?= .kecis-dev
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# Build tags for every go command make runs (build, run, vet, staticcheck, test, fuzz), passed
# through GOFLAGS so that what is linted and tested is what is built. nomsgpack leaves out gin's
# msgpack codec, which nothing in KECIS speaks (docs/development.md, "Build tags").
GO_TAGS   ?= nomsgpack
GOFLAGS_ := $(shell $(GO) env GOFLAGS)
export GOFLAGS := $(strip $(GOFLAGS_) $(if $(GO_TAGS),$(if $(filter -tags=$(GO_TAGS),$(GOFLAGS_)),,-tags=$(GO_TAGS))))

.PHONY: help run build test bench bench-peers bench-report lint fuzz clean conformance

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the kecis binary into bin/
	$(GO) build -o $(BIN) ./cmd/kecis

run: ## build and start the demo federation, bin/kecis-demo (docs/demo.md)
	$(GO) build -o $(DEMO_BIN) ./cmd/kecis-demo
	./$(DEMO_BIN)

conformance: ## run every conformance plan against the demo `make run` started (DEMO_DIR); reports in DEMO_DIR/conformance-report/
	$(GO) build -o $(BIN) ./cmd/kecis
	$(GO) build -o $(DEMO_BIN) ./cmd/kecis-demo
	./$(DEMO_BIN) --conformance --dir $(DEMO_DIR) --kecis $(BIN)

test: ## lint, then every test (CI runs exactly this)
	$(MAKE) lint
	./scripts/test.sh $(PKGS)

bench: ## benchmarks, machine-readable (go test -bench output; RESULT lines from kecis envelope bench)
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) $(PKGS)

bench-peers: ## kecis vs libxmlsec1 (C) on one pinned core, interleaved rounds: medians and ratios (needs libxmlsec1-dev)
	./scripts/bench-peers.sh

bench-report: ## measure and write docs/performance.md with its plots (~55 min; QUICK=1 ~5 min; scripts/bench-report.sh)
	./scripts/bench-report.sh

lint: ## gofmt, go vet, staticcheck (pinned) and go mod tidy -diff (scripts/lint.sh)
	./scripts/lint.sh $(PKGS)

fuzz: ## a short run of every fuzz target (FUZZTIME each)
	./scripts/fuzz.sh $(FUZZTIME)

clean:
	rm -rf bin
