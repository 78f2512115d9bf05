#!/usr/bin/env bash
# Runs every cargo-fuzz target for N minutes each (default 5), one after the other, one
# process each, and prints executions, exec/s and crashes per target. Not part of CI or
# scripts/test.sh.
#
#   scripts/fuzz.sh 5                              # all targets, 5 minutes each
#   scripts/fuzz.sh 1 cjson keys                   # only these
#   FUZZ_SANITIZER=address scripts/fuzz.sh 1 keys  # with AddressSanitizer (default: none)
#
# The build is optimised with debug assertions and overflow checks (-O -a) and, by default,
# without a sanitizer: the product forbids unsafe code (src/lib.rs), and AddressSanitizer made
# the signature-checking targets several times slower (README "Fuzzing").
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
all=(argv reference cjson tuf_verify tuf_update keys jwt_claims www_authenticate notation_envelope)
sanitizer=${FUZZ_SANITIZER:-none}
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

# tuf_update: each file the update reads, in its own slot, downloaded and cached. The pick
# byte is the one fuzz/fuzz_targets/tuf_update.rs decodes: bit 0 the repository, bits 1..=6
# the file among the repository's files in byte order without the older versions
# (`<n>.root`), bit 7 cached.
seed_update() {
    local r=0 dir i name pick
    mkdir -p corpus/tuf_update
    for dir in example.com_test_repo1 example.com_test_deleg; do
        i=0
        while IFS= read -r name; do
            for pick in $(((i << 1) | r)) $(((i << 1) | r | 128)); do
                local tmp
                tmp=$(mktemp)
                { printf "\\$(printf '%03o' "$pick")"; cat "$root/tests/data/notary-v1/$dir/$name.json"; } >"$tmp"
                mv "$tmp" "corpus/tuf_update/seed-$(sha256sum "$tmp" | cut -c1-16)"
            done
            i=$((i + 1))
        done < <(cd "$root/tests/data/notary-v1/$dir" && find . -name '*.json' | sed 's|^\./||; s|\.json$||' |
            grep -Ev '^[0-9]+\.' | LC_ALL=C sort)
        r=$((r + 1))
    done
}

seed_all() {
    seed cjson '*.json'
    # tuf_verify: mode byte (entry point), repository byte, then the file.
    for mode in '\x00' '\x01' '\x02' '\x03' '\x04' '\x05'; do
        for pick in '\x00' '\x01'; do
            seed tuf_verify '*.json' "$mode$pick"
        done
    done
    seed_update
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
    # One process, one target at a time: a second one would only share the same cores.
    cargo +nightly fuzz run -O --debug-assertions -s "$sanitizer" "$t" "corpus/$t" -- \
        -max_total_time=$((minutes * 60)) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$log" 2>&1 || true
}

seed_all
cargo +nightly fuzz build -O --debug-assertions -s "$sanitizer"
logs=$(mktemp -d)
for t in "${targets[@]}"; do
    # Made first: under pipefail a missing directory would end the script here.
    mkdir -p "artifacts/$t"
    before=$(find "artifacts/$t" -type f | wc -l)
    echo "$before" >"$logs/$t.before"
    run_one "$t" "$logs/$t.log"
done

status=0
printf '%-18s %14s %8s %8s  %s\n' target executions exec/s crashes artifacts
for t in "${targets[@]}"; do
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -n1)
    rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' | tail -n1)
    before=$(cat "$logs/$t.before")
    after=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    crashes=$((after - before))
    [ "$crashes" -gt 0 ] && status=1
    printf '%-18s %14s %8s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$crashes" "fuzz/artifacts/$t"
    if [ -z "$execs" ]; then
        echo "  $t did not finish; its log: $logs/$t.log" >&2
        status=1
    fi
done
echo "logs: $logs"
exit "$status"
