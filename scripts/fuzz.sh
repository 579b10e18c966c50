#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each. New corpus
# entries that find failures land in testdata/fuzz/ and must be committed.
set -euo pipefail
fuzztime="${1:-10s}"
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
    echo "fuzz: $pkg $f ($fuzztime)"
    go test -run "^$" -fuzz "^${f}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg"
  done
done
