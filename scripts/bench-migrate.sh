#!/usr/bin/env bash
# `migrate` benchmark on the real stack: a repository with N DCT-signed tags (N distinct
# manifests, pushed straight to the registry), co-signed with Notary Project signatures, then a
# second run that finds them all and signs nothing. Then the added time of `pull --policy
# either` over `pull --policy dct`: one small image signed with both kinds, pulled through the
# engine PULLS times under each policy, interleaved, medians printed. Prints figures; asserts
# only that the runs succeed (the goal, under 10 s for 100 tags, is in the README).
#
#   scripts/bench-migrate.sh              builds the release binary, starts a stack, runs, stops it
#   TAGS=200 scripts/bench-migrate.sh     another repository size (default 100)
#   PULLS=11 scripts/bench-migrate.sh     pulls per policy (default 7)
#   BIN=target/debug/docker-trustacr TRUSTACR_STACK_ENV=… scripts/bench-migrate.sh
#                                          against a running stack with a given binary
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

if [ -z "${TRUSTACR_STACK_ENV:-}" ]; then
    cargo build --release --locked --bin docker-trustacr >&2
    exec scripts/stack.sh run "$0" "$@"
fi
set -a
# shellcheck disable=SC1090
. "$TRUSTACR_STACK_ENV"
set +a

TAGS=${TAGS:-100}
B=${BIN:-$PWD/target/release/docker-trustacr}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
export HOME=$W/home DOCKER_CONFIG=$W/home/.docker
export DOCKER_CONTENT_TRUST_SERVER=$TRUSTACR_NOTARY_URL DOCKER_HOST=$TRUSTACR_DOCKER_HOST
export TRUSTACR_KEYRING_SERVICE=docker-trustacr-bench-migrate-$$
export NOTATION_CONFIG=$W/notation
mkdir -p "$DOCKER_CONFIG"
REG=$TRUSTACR_REGISTRY
REPO=bench/migrate-$$

# Pushes one small image manifest (a distinct config blob, no layers) as REPO:TAG.
push_manifest() {
    local tag=$1 cfg digest size loc manifest
    cfg=$(printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{"Labels":{"bench":"%s-%s"}}}' "$$" "$tag")
    digest=sha256:$(printf '%s' "$cfg" | sha256sum | cut -d' ' -f1)
    size=${#cfg}
    loc=$(curl -sfi -X POST "http://$REG/v2/$REPO/blobs/uploads/" | tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    case $loc in http*) ;; *) loc="http://$REG$loc" ;; esac
    curl -sf -X PUT -H 'Content-Type: application/octet-stream' --data-binary "$cfg" "$loc&digest=$digest" >/dev/null
    manifest=$(printf '{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","size":%d,"digest":"%s"},"layers":[]}' "$size" "$digest")
    curl -sf -X PUT -H 'Content-Type: application/vnd.docker.distribution.manifest.v2+json' \
        --data-binary "$manifest" "http://$REG/v2/$REPO/manifests/$tag" >/dev/null
}

ms() { echo $(( ($2 - $1) / 1000000 )); }

echo "bench-migrate: $TAGS tags in $REG/$REPO" >&2
refs=()
for i in $(seq 1 "$TAGS"); do
    push_manifest "t$i"
    refs+=("$REG/$REPO:t$i")
done
"$B" sign "${refs[@]}" >/dev/null
"$B" key generate --notation bench --dir "$W" >/dev/null

s=$(date +%s%N)
"$B" migrate "$REG/$REPO" --format json >"$W/first.json"
e=$(date +%s%N)
s2=$(date +%s%N)
"$B" migrate "$REG/$REPO" --format json >"$W/second.json"
e2=$(date +%s%N)

python3 - "$W/first.json" "$W/second.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:])
assert a["parity"] and b["parity"], "parity not reached"
print("migrate first run : %d tags, %d new signatures" % (a["tags"], a["new_signatures"]))
print("migrate second run: %d tags, %d new signatures" % (b["tags"], b["new_signatures"]))
EOF
echo "migrate of $TAGS DCT-signed tags (sign all): $(ms "$s" "$e") ms (goal: < 10000 ms for 100)"
echo "migrate again (finds and verifies all, signs none): $(ms "$s2" "$e2") ms"

# pull --policy either over DCT only, on an image the engine can pull (one file layer).
PULLS=${PULLS:-7}
IMG=$REG/$REPO-pull:v1
mkdir -p "$W/img"
echo "bench $$" >"$W/img/f"
tar -C "$W/img" -cf "$W/img.tar" f
docker import "$W/img.tar" "$IMG" >/dev/null
docker push "$IMG" >/dev/null
"$B" sign "$IMG" >/dev/null
"$B" sign --notation "$IMG" >/dev/null
"$B" policy init "$REG/$REPO-pull" --cert "$W/bench.crt" >/dev/null
: >"$W/pulls"
for _ in $(seq 1 "$PULLS"); do
    for policy in dct either; do
        docker rmi "$IMG" >/dev/null
        s=$(date +%s%N)
        "$B" pull --policy "$policy" "$IMG" >"$W/pull.out" 2>&1
        e=$(date +%s%N)
        echo "$policy $(ms "$s" "$e")" >>"$W/pulls"
    done
done
grep -q 'Notary Project' "$W/pull.out" || { echo "pull --policy either did not verify the Notary Project signature" >&2; exit 1; }
python3 - "$W/pulls" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    policy, ms = line.split()
    runs.setdefault(policy, []).append(int(ms))
dct, either = (statistics.median(runs[p]) for p in ("dct", "either"))
print("pull --policy dct   : median %d ms of %d" % (dct, len(runs["dct"])))
print("pull --policy either: median %d ms of %d (both kinds verified)" % (either, len(runs["either"])))
print("added by either over DCT only: %d ms" % (either - dct))
EOF
