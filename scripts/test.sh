#!/usr/bin/env bash
# Runs every test once and prints per-package wall time (the issue notes
# record these figures). Fails if any package fails.
#
# The tests run with the build tag kecis_capture (added to GOFLAGS' -tags,
# e.g. -tags=nomsgpack,kecis_capture): every message the saml package signs
# and every metadata document it serialises is written to a temporary
# capture directory (saml/capture.go). Then tools/schemacheck validates
# each captured document against docs/spec/schema with xmllint and the
# JDK's validator, and fails on an invalid document or a root kind with no
# schema. Without xmllint it says so and passes, except under CI=true. When
# it fails, the capture directory is kept for a look.
set -euo pipefail
pkgs=("$@"); [ "${#pkgs[@]}" -gt 0 ] || pkgs=(./...)
start=$(date +%s)

# GOFLAGS with kecis_capture in its -tags (one -tags flag: a second would
# replace the first).
goflags=$(go env GOFLAGS)
capflags=""
tagged=""
for f in $goflags; do
	case "$f" in
	-tags=* | --tags=*)
		tags=${f#*=}
		case ",$tags," in *,kecis_capture,*) ;; *) tags="${tags:+$tags,}kecis_capture" ;; esac
		f="-tags=$tags"
		tagged=1
		;;
	esac
	capflags="${capflags:+$capflags }$f"
done
[ -n "$tagged" ] || capflags="${capflags:+$capflags }-tags=kecis_capture"

capture=$(mktemp -d "${TMPDIR:-/tmp}/kecis-capture.XXXXXX")
keep=""
trap '[ -n "$keep" ] || rm -rf "$capture"' EXIT

# The schema check runs even when a test failed: what was captured is
# checked either way, and the run fails if either did.
status=0
GOFLAGS="$capflags" KECIS_CAPTURE_DIR="$capture" go test -count=1 -timeout 15m "${pkgs[@]}" || status=$?
[ "$status" -ne 0 ] || echo "make test: all packages passed in $(( $(date +%s) - start ))s"

check=$(date +%s)
if GOFLAGS="$goflags" go run ./tools/schemacheck "$capture"; then
	echo "make test: schemacheck passed in $(( $(date +%s) - check ))s"
else
	keep=1
	status=1
	echo "make test: schemacheck failed; the captured documents are in $capture" >&2
fi
exit "$status"
