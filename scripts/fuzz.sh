#!/usr/bin/env bash
# Runs every fuzz target of the module for a short time each. New corpus
# entries that find failures land in testdata/fuzz/ and must be committed.
# A failing target does not stop the run: every target runs, the failures
# are listed at the end, and the exit status is 1 if there was any.
set -euo pipefail
fuzztime="${1:-10s}"
failed=()
for pkg in $(go list ./...); do
  dir=$(go list -f '{{.Dir}}' "$pkg")
  for f in $(grep -hoE '^func (Fuzz[A-Za-z0-9_]+)\(' "$dir"/*_test.go 2>/dev/null | sed -E 's/^func (Fuzz[A-Za-z0-9_]+)\(/\1/' | sort -u); do
    echo "fuzz: $pkg $f ($fuzztime)"
    start=$SECONDS
    if go test -run "^$" -fuzz "^${f}\$" -fuzztime "$fuzztime" -fuzzminimizetime 5s "$pkg"; then
      echo "fuzz: $pkg $f passed in $((SECONDS - start))s"
    else
      echo "fuzz: $pkg $f FAILED after $((SECONDS - start))s"
      failed+=("$pkg $f")
    fi
  done
done
if ((${#failed[@]})); then
  printf 'fuzz: failed: %s\n' "${failed[@]}" >&2
  exit 1
fi
