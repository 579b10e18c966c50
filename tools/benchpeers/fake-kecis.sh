#!/usr/bin/env bash
# Stand-in for `kecis envelope bench` while the real command is written:
#   KECIS_BENCH_CMD=tools/benchpeers/fake-kecis.sh scripts/bench-peers.sh
# Checks the arguments bench-peers.sh passes, sleeps for --duration (so the
# rounds interleave in real time), prints plausible, made-up figures.
set -euo pipefail
[[ ${1:-} == envelope && ${2:-} == bench ]] || { echo "fake-kecis: want 'envelope bench'" >&2; exit 2; }
shift 2
declare -A seen=()
dur=
while (($#)); do
    case $1 in
    --in | --key | --cert | --ec-key | --ec-cert | --recipient-cert | --recipient-key)
        [[ -r ${2:-} ]] || { echo "fake-kecis: $1: unreadable '${2:-}'" >&2; exit 2; }
        seen[$1]=1
        shift 2 ;;
    --duration)
        [[ ${2:-} =~ ^[0-9.]+(s|ms)$ ]] || { echo "fake-kecis: bad --duration '${2:-}'" >&2; exit 2; }
        dur=$2
        shift 2 ;;
    *) echo "fake-kecis: unknown flag $1" >&2; exit 2 ;;
    esac
done
((${#seen[@]} == 7)) && [[ -n $dur ]] || { echo "fake-kecis: missing flags" >&2; exit 2; }
[[ $dur == *ms ]] && secs=$(awk -v v="${dur%ms}" 'BEGIN { print v / 1000 }') || secs=${dur%s}
sleep "$(awk -v v="$secs" 'BEGIN { print v / 10 }')" # a tenth: keep the demo quick
jitter() { awk -v b="$1" -v r="$RANDOM" 'BEGIN { printf "%.1f", b * (0.9 + 0.2 * r / 32767) }'; }
while read -r op base; do
    echo "RESULT kecis $op $(jitter "$base")"
done <<'EOF'
rsa-sha256-sign 1100
ecdsa-sha256-sign 2600
rsa-sha256-verify 5200
ecdsa-sha256-verify 2300
xmlenc-gcm256-oaep-encrypt 4000
xmlenc-gcm256-oaep-decrypt 1100
raw-rsa2048-sign 1500
raw-rsa2048-oaep-decrypt 1450
raw-ecdsa-p256-sign 30000
raw-ecdsa-p256-verify 11000
EOF
