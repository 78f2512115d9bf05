#!/usr/bin/env bash
# Runs every cargo-fuzz target for N minutes each (default 5), two at a time, one job each,
# and prints executions and crashes per target. Not part of CI or scripts/test.sh.
#
#   scripts/fuzz.sh 5            # all targets, 5 minutes each
#   scripts/fuzz.sh 1 cjson keys # only these
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). Seed corpora are
# copied from tests/data and ../shared/vectors beside the checkout (or $TRUSTACR_VECTORS) into fuzz/corpus/,
# which is not committed; a crash is written to fuzz/artifacts/<target>/ and must become a
# regression test in tests/regression/fuzz.rs. Exit status is 1 if any target crashed.
set -euo pipefail

minutes=${1:-5}
shift || true
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root/fuzz"
all=(argv reference cjson tuf_verify keys jwt_claims www_authenticate notation_envelope)
if [ $# -gt 0 ]; then targets=("$@"); else targets=("${all[@]}"); fi
vectors=${TRUSTACR_VECTORS:-$root/../shared/vectors}
sources=("$root/tests/data")
[ -d "$vectors" ] && sources+=("$vectors")

# Copies each file matching $2 under the sources into corpus $1, with the prefix bytes $3
# (the targets that start with a mode byte), named by content so reruns do not duplicate.
seed() {
    local dir=corpus/$1 pattern=$2 prefix=${3:-}
    mkdir -p "$dir"
    find "${sources[@]}" -type f -name "$pattern" -size -256k -print0 |
        while IFS= read -r -d '' f; do
            local tmp
            tmp=$(mktemp)
            { printf "$prefix"; cat "$f"; } >"$tmp"
            mv "$tmp" "$dir/seed-$(sha256sum "$tmp" | cut -c1-16)"
        done
}

seed_all() {
    seed cjson '*.json'
    # tuf_verify: mode byte, repository/file byte, then the file.
    for mode in '\x00' '\x01' '\x03' '\x04' '\x05' '\x06'; do
        for pick in '\x00' '\x01' '\x02' '\x05' '\x81'; do
            seed tuf_verify '*.json' "$mode$pick"
        done
    done
    # notation_envelope: mode byte 0 = JWS, 1 = COSE (3: COSE with a tsa store).
    for mode in '\x00' '\x01' '\x03'; do
        seed notation_envelope '*.sig' "$mode"
    done
    seed keys '*.key' '\x06'
    seed keys '*.pem' '\x06'
    seed keys '*.crt' '\x03'
    seed keys '*.pem' '\x03'
    mkdir -p corpus/jwt_claims corpus/www_authenticate corpus/reference corpus/argv
    # A token shaped like Entra's: header.payload.signature, base64url without padding.
    printf '%s' 'eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0aWQiOiI3MmY5ODhiZi04NmYxLTQxYWYtOTFhYi0yZDdjZDAxMWRiNDciLCJleHAiOjE3OTUzOTIwMDAsIm9pZCI6ImFiYyJ9.c2ln' \
        >corpus/jwt_claims/seed-entra
    printf '%s' 'Bearer realm="https://x.azurecr.io/oauth2/token",service="x.azurecr.io",scope="repository:a/b:pull,push"' \
        >corpus/www_authenticate/seed-acr
    printf '%s' 'Basic realm="Registry Realm"' >corpus/www_authenticate/seed-basic
    printf '%s' 'Bearer realm="https://notary.example/token\"x",service=notary' >corpus/www_authenticate/seed-escape
    printf '%s' 'myregistry.azurecr.io/team/app:v1' >corpus/reference/seed-acr
    printf '%s' 'localhost:5000/a/b@sha256:0000000000000000000000000000000000000000000000000000000000000000' \
        >corpus/reference/seed-digest
    printf '\x01trustacr\0pull\0myregistry.azurecr.io/app:v1' >corpus/argv/seed-pull
}

run_one() {
    local t=$1 log=$2
    mkdir -p "corpus/$t" "artifacts/$t"
    # -jobs is not used: one process per target; two targets share the machine's cores.
    cargo +nightly fuzz run -O --debug-assertions "$t" "corpus/$t" -- \
        -max_total_time=$((minutes * 60)) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || true
}

seed_all
cargo +nightly fuzz build -O --debug-assertions
logs=$(mktemp -d)
i=0
for t in "${targets[@]}"; do
    # Made first: under pipefail a missing directory would end the script here.
    mkdir -p "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "$before" >"$logs/$t.before"
    run_one "$t" "$logs/$t.log" &
    i=$((i + 1))
    if [ $((i % 2)) -eq 0 ]; then wait; fi
done
wait

status=0
printf '%-18s %14s %8s  %s\n' target executions crashes artifacts
for t in "${targets[@]}"; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -n1)
    before=$(cat "$logs/$t.before")
    after=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    crashes=$((after - before))
    [ "$crashes" -gt 0 ] && status=1
    printf '%-18s %14s %8s  %s\n' "$t" "${execs:-?}" "$crashes" "fuzz/artifacts/$t"
    if [ -z "$execs" ]; then
        echo "  $t did not finish; its log: $logs/$t.log" >&2
        status=1
    fi
done
echo "logs: $logs"
exit "$status"
