#!/usr/bin/env bash
# Peer comparison: KECIS envelope operations against the C reference
# implementation libxmlsec1 (OpenSSL backend), on the KECIS wire profile.
#
#   scripts/bench-peers.sh
#
# Builds bin/xmlsec_bench (tools/benchpeers/xmlsec_bench.c) and bin/kecis,
# self-tests the harness against the xmlsec1 CLI, then runs ROUNDS interleaved
# rounds (xmlsec harness, then `kecis envelope bench`), each pinned to one CPU.
# Prints a table of per-op medians and the ratios the project targets, plus
# machine-readable lines:
#   RATIO <name> <value> <floor> PASS|FAIL
# Ratios are ratios of medians. Progress goes to stderr.
#
# Env:
#   ROUNDS=5            interleaved rounds
#   DURATION=2s         per op and implementation (N, Ns or Nms)
#   PIN_CPU=1           CPU both sides are pinned to (taskset -c)
#   STRICT=0            1: exit 1 if a ratio is below its floor
#   SELFTEST=1          0: skip tools/benchpeers/selftest.sh
#   XMLSEC_KEY_LOOKUP=no-x509
#                       how xmlsec finds the verify/decrypt key, see
#                       xmlsec_bench.c: no-x509 (keys manager, KeyInfo/X509Data
#                       ignored), x509-untrusted (what `xmlsec1 --verify
#                       --pubkey-cert-pem` does: a failed chain check of the
#                       embedded cert per message, much slower), x509-trusted
#   XMLSEC_SIGN_INPUT=encrypted
#                       what xmlsec signs (and so verifies): encrypted = the
#                       request with Card already encrypted, as on the wire and
#                       as `kecis envelope bench` signs it; plain = the
#                       unsigned request as given
#   KECIS_BENCH_CMD     command (path, or an exported shell function) used
#                       instead of building bin/kecis; gets the
#                       `envelope bench ...` arguments
#   RESULTS_FILE        also keep the raw per-round results here
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-2s}
PIN_CPU=${PIN_CPU:-1}
STRICT=${STRICT:-0}
SELFTEST=${SELFTEST:-1}
XMLSEC_KEY_LOOKUP=${XMLSEC_KEY_LOOKUP:-no-x509}
XMLSEC_SIGN_INPUT=${XMLSEC_SIGN_INPUT:-encrypted}

log() { printf 'bench-peers: %s\n' "$*" >&2; }
die() { printf 'bench-peers: error: %s\n' "$*" >&2; exit 1; }

[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer, got '$ROUNDS'"

# DURATION -> seconds for the C harness, Go duration string for kecis.
if [[ $DURATION =~ ^([0-9]+(\.[0-9]+)?)(s|ms)?$ ]]; then
    if [[ ${BASH_REMATCH[3]} == ms ]]; then
        dur_c=$(awk -v v="${BASH_REMATCH[1]}" 'BEGIN { printf "%.3f", v / 1000 }')
        dur_go=${BASH_REMATCH[1]}ms
    else
        dur_c=${BASH_REMATCH[1]}
        dur_go=${BASH_REMATCH[1]}s
    fi
else
    die "DURATION must look like 2, 2s, 1.5s or 500ms, got '$DURATION'"
fi
awk -v v="$dur_c" 'BEGIN { exit !(v > 0) }' || die "DURATION must be > 0"

in=saml/testdata/bench/approve-request.xml
keys=saml/testdata/keys
rsa_key=$keys/merchant-rsa.key.pem   rsa_cert=$keys/merchant-rsa.cert.pem
ec_key=$keys/merchant-ec.key.pem     ec_cert=$keys/merchant-ec.cert.pem
rcpt_key=$keys/issuer-rsa.key.pem    rcpt_cert=$keys/issuer-rsa.cert.pem
for f in "$in" $rsa_key $rsa_cert $ec_key $ec_cert $rcpt_key $rcpt_cert; do
    [[ -r $f ]] || die "missing input $f"
done

# Ops each side must report, in table order.
xmlsec_ops=(rsa-sha256-sign ecdsa-sha256-sign rsa-sha256-verify ecdsa-sha256-verify
    xmlenc-gcm256-oaep-encrypt xmlenc-gcm256-oaep-decrypt)
kecis_ops=("${xmlsec_ops[@]}" raw-rsa2048-sign raw-rsa2048-oaep-decrypt
    raw-ecdsa-p256-sign raw-ecdsa-p256-verify)

# ---- build ---------------------------------------------------------------
mkdir -p bin
command -v pkg-config >/dev/null || die "pkg-config missing (apt-get install -y pkg-config)"
pkg-config --exists xmlsec1-openssl || die "xmlsec1-openssl not found (apt-get install -y libxmlsec1-dev)"
log "building bin/xmlsec_bench"
# shellcheck disable=SC2046 # pkg-config output is meant to be split
cc -O2 -Wall -Wextra -o bin/xmlsec_bench tools/benchpeers/xmlsec_bench.c \
    $(pkg-config --cflags --libs xmlsec1-openssl)

if [[ -n ${KECIS_BENCH_CMD:-} ]]; then
    read -r -a kecis_cmd <<<"$KECIS_BENCH_CMD"
    log "using KECIS_BENCH_CMD=${KECIS_BENCH_CMD} (bin/kecis not built)"
else
    log "building bin/kecis"
    go build -o bin/kecis ./cmd/kecis
    kecis_cmd=(bin/kecis)
fi

if [[ $SELFTEST == 1 ]]; then
    log "self-testing the harness against the xmlsec1 CLI"
    if command -v xmlsec1 >/dev/null; then
        BENCH_BIN=bin/xmlsec_bench KEY_LOOKUP=$XMLSEC_KEY_LOOKUP SIGN_INPUT=$XMLSEC_SIGN_INPUT \
            tools/benchpeers/selftest.sh
    else
        log "warning: xmlsec1 CLI missing (apt-get install -y xmlsec1): self-test skipped"
    fi
fi

# ---- pinning ---------------------------------------------------------------
pin=1
if ! command -v taskset >/dev/null; then
    log "warning: taskset not found (util-linux): running unpinned"
    pin=0
elif ! taskset -c "$PIN_CPU" true 2>/dev/null; then
    log "warning: cannot pin to CPU $PIN_CPU (nproc=$(nproc)): running unpinned"
    pin=0
fi

run_pinned() {
    if [[ $pin == 0 ]]; then
        "$@"
    elif [[ $(type -t "$1") == function ]]; then
        # a shell function cannot be exec'd by taskset: pin this subshell
        (taskset -p -c "$PIN_CPU" "$BASHPID" >/dev/null && "$@")
    else
        taskset -c "$PIN_CPU" "$@"
    fi
}

# ---- rounds ---------------------------------------------------------------
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
results=$work/results   # lines: <round> <impl> <op> <ops_per_sec>
: >"$results"

collect() { # round impl outfile expected-ops...
    local round=$1 impl=$2 out=$3 op n
    shift 3
    for op in "$@"; do
        n=$(awk -v impl="$impl" -v op="$op" \
            '$1 == "RESULT" && $2 == impl && $3 == op && $4 ~ /^[0-9]+(\.[0-9]+)?$/' "$out" | wc -l)
        [[ $n == 1 ]] || die "round $round: $impl printed $n valid 'RESULT $impl $op' lines (want 1); its output:
$(cat "$out")"
    done
    awk -v r="$round" -v impl="$impl" '$1 == "RESULT" && $2 == impl { print r, $2, $3, $4 }' \
        "$out" >>"$results"
}

log "$ROUNDS rounds, $dur_go per op, pinned to CPU ${PIN_CPU} ($([[ $pin == 1 ]] && echo yes || echo NO)), xmlsec key lookup $XMLSEC_KEY_LOOKUP, sign input $XMLSEC_SIGN_INPUT"
for ((r = 1; r <= ROUNDS; r++)); do
    log "round $r/$ROUNDS: xmlsec"
    run_pinned bin/xmlsec_bench --in "$in" \
        --rsa-key "$rsa_key" --rsa-cert "$rsa_cert" \
        --ec-key "$ec_key" --ec-cert "$ec_cert" \
        --recipient-key "$rcpt_key" --recipient-cert "$rcpt_cert" \
        --key-lookup "$XMLSEC_KEY_LOOKUP" --sign-input "$XMLSEC_SIGN_INPUT" \
        --duration "$dur_c" \
        >"$work/xmlsec.$r" 2>"$work/xmlsec.$r.err" ||
        die "round $r: xmlsec harness failed: $(cat "$work/xmlsec.$r.err")"
    collect "$r" xmlsec "$work/xmlsec.$r" "${xmlsec_ops[@]}"

    log "round $r/$ROUNDS: kecis"
    run_pinned "${kecis_cmd[@]}" envelope bench --in "$in" \
        --key "$rsa_key" --cert "$rsa_cert" \
        --ec-key "$ec_key" --ec-cert "$ec_cert" \
        --recipient-cert "$rcpt_cert" --recipient-key "$rcpt_key" \
        --duration "$dur_go" \
        >"$work/kecis.$r" 2>"$work/kecis.$r.err" ||
        die "round $r: kecis envelope bench failed: $(cat "$work/kecis.$r.err")"
    collect "$r" kecis "$work/kecis.$r" "${kecis_ops[@]}"
done
if [[ -n ${RESULTS_FILE:-} ]]; then
    cp "$results" "$RESULTS_FILE"
    log "raw results in $RESULTS_FILE"
fi

# ---- report ----------------------------------------------------------------
# median / min / max of impl's op over all rounds ("" if absent)
stat() { # impl op what
    awk -v impl="$1" -v op="$2" '$2 == impl && $3 == op { print $4 }' "$results" |
        sort -g | awk -v what="$3" '
            { v[NR] = $1 }
            END {
                if (NR == 0) exit
                if (what == "min") x = v[1]
                else if (what == "max") x = v[NR]
                else x = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
                printf "%.1f\n", x
            }'
}
div() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "NA"; else printf "%.3f\n", a / b }'; }

host_cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
printf 'peer benchmark: %s rounds x %s per op, ops/sec, medians (min-max); host: %s, %s vCPU; pinned: %s\n' \
    "$ROUNDS" "$dur_go" "${host_cpu:-unknown}" "$(nproc)" \
    "$([[ $pin == 1 ]] && echo "CPU $PIN_CPU" || echo no)"
printf 'xmlsec: %s (key lookup %s, sign input %s); kecis: %s\n\n' \
    "$(pkg-config --modversion xmlsec1-openssl 2>/dev/null || echo '?')" \
    "$XMLSEC_KEY_LOOKUP" "$XMLSEC_SIGN_INPUT" \
    "${kecis_cmd[*]}"
printf '%-28s %26s %26s %13s\n' op xmlsec kecis kecis/xmlsec
cell() { # impl op
    local m
    m=$(stat "$1" "$2" median)
    if [[ -z $m ]]; then echo -; else echo "$m ($(stat "$1" "$2" min)-$(stat "$1" "$2" max))"; fi
}
for op in "${kecis_ops[@]}"; do
    printf '%-28s %26s %26s %13s\n' "$op" "$(cell xmlsec "$op")" "$(cell kecis "$op")" \
        "$(div "$(stat kecis "$op" median)" "$(stat xmlsec "$op" median)")"
done
echo

failed=0
ratio() { # name numerator-impl numerator-op denominator-impl denominator-op floor
    local v verdict
    v=$(div "$(stat "$2" "$3" median)" "$(stat "$4" "$5" median)")
    if [[ $v != NA ]] && awk -v v="$v" -v f="$6" 'BEGIN { exit !(v >= f) }'; then
        verdict=PASS
    else
        verdict=FAIL
        failed=1
    fi
    printf '%-86s %7s  floor %-5s %s\n' "$1: $2 $3 / $4 $5" "$v" "$6" "$verdict"
    printf 'RATIO %s %s %s %s\n' "$1" "$v" "$6" "$verdict" >>"$work/ratios"
}
: >"$work/ratios"
ratio rsa-verify-vs-xmlsec   kecis rsa-sha256-verify          xmlsec rsa-sha256-verify        0.4
ratio ecdsa-verify-vs-xmlsec kecis ecdsa-sha256-verify        xmlsec ecdsa-sha256-verify      0.4
ratio rsa-sign-vs-raw        kecis rsa-sha256-sign            kecis raw-rsa2048-sign          0.65
ratio decrypt-vs-raw         kecis xmlenc-gcm256-oaep-decrypt kecis raw-rsa2048-oaep-decrypt  0.75
ratio ecdsa-sign-vs-xmlsec   kecis ecdsa-sha256-sign          xmlsec ecdsa-sha256-sign        0.5
echo
cat "$work/ratios"

if [[ $failed == 1 ]]; then
    if [[ $STRICT == 1 ]]; then
        log "a ratio is below its floor (STRICT=1)"
        exit 1
    fi
    log "a ratio is below its floor (exit 0; set STRICT=1 to fail)"
fi
