#!/usr/bin/env bash
# The performance report: measures, then writes docs/performance.md, its SVG
# plots and docs/performance/data.json (tools/benchreport).
#
#   scripts/bench-report.sh            # make bench-report: the full run (~55 min here)
#   QUICK=1 scripts/bench-report.sh    # a short run (~5 min)
#
# Builds bin/kecis and bin/kecis-demo, and bin/kecis-boring with
# GOEXPERIMENT=boringcrypto when cgo and a C compiler are there (else the
# page says the BoringCrypto comparison was not made), then runs
# tools/benchreport from the repository's root. docs/performance.md, "Running
# it", says what each part measures and how long it takes.
#
# Env:
#   QUICK=1          fewer and shorter rounds, 2,000 approvals of history
#   HISTORY=N        approvals pushed through each demo (ECDSA, RSA) before its after-history runs
#                    (default 100000, quick 2000)
#   ROUNDS=N         interleaved rounds of the closed-loop load tests (default 3, quick 1)
#   RUN_DURATION=D   each load test run (default 20s, quick 6s)
#   PEERS=skip       leave out the libxmlsec1 comparison (default: run it when libxmlsec1-dev is installed)
#   REPLICAS=LIST    numbers of hub replicas on PostgreSQL to measure throughput against (default 1,2,3; "" none)
#   POSTGRES=DSN     the PostgreSQL server of those runs (default KECIS_TEST_POSTGRES_DSN, else the local
#                    test server postgres://postgres@127.0.0.1:5432/test); a schema of the run's own is
#                    created there and dropped
#   KEEP=1           keep the scratch directory (the demo's logs and databases)
#   BENCH_REPORT_ARGS  more tools/benchreport flags
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

log() { printf 'bench-report: %s\n' "$*" >&2; }

mkdir -p bin
log "building bin/kecis and bin/kecis-demo"
go build -o bin/kecis ./cmd/kecis
go build -o bin/kecis-demo ./cmd/kecis-demo

args=(-kecis bin/kecis -kecis-demo bin/kecis-demo)
if [[ $(go env CGO_ENABLED) == 1 ]] && command -v "$(go env CC)" >/dev/null &&
    GOEXPERIMENT=boringcrypto go build -o bin/kecis-boring ./cmd/kecis; then
    log "built bin/kecis-boring (GOEXPERIMENT=boringcrypto)"
    args+=(-kecis-boring bin/kecis-boring)
else
    log "no BoringCrypto build (needs cgo and a C compiler): that comparison is left out"
fi
[[ ${QUICK:-0} == 1 ]] && args+=(-quick)
[[ -n ${HISTORY:-} ]] && args+=(-history "$HISTORY")
[[ -n ${ROUNDS:-} ]] && args+=(-rounds "$ROUNDS")
[[ -n ${RUN_DURATION:-} ]] && args+=(-run-duration "$RUN_DURATION")
[[ -n ${PEERS:-} ]] && args+=(-peers "$PEERS")
[[ -n ${REPLICAS+set} ]] && args+=(-replicas "$REPLICAS")
[[ -n ${POSTGRES:-} ]] && args+=(-postgres "$POSTGRES")
[[ ${KEEP:-0} == 1 ]] && args+=(-keep)
# shellcheck disable=SC2206 # extra flags are meant to be split
[[ -n ${BENCH_REPORT_ARGS:-} ]] && args+=($BENCH_REPORT_ARGS)

go build -o bin/benchreport ./tools/benchreport
exec bin/benchreport "${args[@]}"
