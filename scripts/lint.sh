#!/usr/bin/env bash
# make lint: the checks a Go project is expected to pass, each timed. Every
# check runs even when an earlier one fails; the failures are listed at the end
# and the exit status is 1 if there was any.
#
#   gofmt         `gofmt -l` prints nothing (tracked and new, not ignored, .go files)
#   go vet        the packages
#   staticcheck   a pinned version, built by `go run` from the module proxy; the
#                 binary is cached in the Go build cache and the analysis in
#                 staticcheck's own cache, so a second run takes seconds
#   tidy          `go mod tidy -diff`: go.mod and go.sum are exactly what the code needs
#
# A deliberate finding is marked on its line with `//lint:ignore CHECK reason`
# (the conformance suite's forged attacks call deprecated weak crypto on purpose).
# STATICCHECK overrides the staticcheck command, e.g. STATICCHECK=staticcheck to use
# an installed binary offline (it must be the version below).
set -euo pipefail
cd "$(dirname "$0")/.."

# staticcheck 2026.2.2; a staticcheck release supports the Go versions released
# before it: raise it with the go line of go.mod.
STATICCHECK_VERSION=v0.8.2
STATICCHECK="${STATICCHECK:-go run honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}}"

pkgs=("$@"); [ "${#pkgs[@]}" -gt 0 ] || pkgs=(./...)
failed=()
total=$SECONDS

step() { # name command...
  local name=$1 start=$SECONDS
  shift
  if "$@"; then
    echo "lint: $name ok ($((SECONDS - start))s)"
  else
    echo "lint: $name FAILED ($((SECONDS - start))s)"
    failed+=("$name")
  fi
}

gofmt_check() {
  local files=() f out
  while IFS= read -r f; do
    [ -f "$f" ] && files+=("$f") # not a file deleted from the work tree
  done < <(git ls-files -co --exclude-standard -- '*.go' 2>/dev/null || find . -name '*.go' -not -path './.git/*')
  out=$(gofmt -l "${files[@]}")
  [ -z "$out" ] && return 0
  echo "gofmt needed (gofmt -w FILE):"
  echo "$out"
  return 1
}

step gofmt gofmt_check
step vet go vet "${pkgs[@]}"
# shellcheck disable=SC2086 # STATICCHECK is a command line
step "staticcheck $STATICCHECK_VERSION" $STATICCHECK "${pkgs[@]}"
step "go mod tidy -diff" go mod tidy -diff

if ((${#failed[@]})); then
  echo "lint: failed: ${failed[*]} ($((SECONDS - total))s)" >&2
  exit 1
fi
echo "lint: all checks passed in $((SECONDS - total))s"
