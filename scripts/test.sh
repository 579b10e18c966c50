#!/usr/bin/env bash
# Runs every test once and prints per-package wall time (the issue notes
# record these figures). Fails if any package fails.
set -euo pipefail
pkgs=("$@"); [ "${#pkgs[@]}" -gt 0 ] || pkgs=(./...)
start=$(date +%s)
go test -count=1 -timeout 15m "${pkgs[@]}"
echo "make test: all packages passed in $(( $(date +%s) - start ))s"
