#!/usr/bin/env bash
# Runs every check and test on a fresh Debian machine (root): installs the stack's packages,
# checks formatting and lints, then runs all tests against a real stack that is stopped
# afterwards, whatever happened. This is the command .ci/run calls.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

scripts/stack.sh install
cargo fmt --all -- --check
cargo clippy --locked --workspace --all-targets -- -D warnings
# Build first, so the stack does not idle through compilation (the ACR emulator included,
# which the stack runs).
cargo test --locked --workspace --lib --bins --tests --no-run
cargo build --locked -p acr-emulator
rc=0
results=$(mktemp)
scripts/stack.sh run cargo test --locked --workspace --lib --bins --tests 2>&1 | tee "$results" || rc=$?

# The README's install command, for real (release build), into a throw-away HOME.
smoke=$(mktemp -d)
rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
if HOME=$smoke RUSTUP_HOME=$rustup_home CARGO_HOME=$cargo_home \
    ./install.sh >"$smoke/install.log" 2>&1 \
    && HOME=$smoke docker --help | grep -q '^  trustacr\*' \
    && HOME=$smoke docker trustacr --help | grep -q 'Usage: docker trustacr'; then
    echo "install smoke: ./install.sh installed a plugin that docker lists and runs"
else
    echo "install smoke: FAILED" >&2
    cat "$smoke/install.log" >&2
    rc=1
fi
rm -rf "$smoke"

# Every server the tests started must be gone now.
leftovers=$(pgrep -af 'trustacr-(test-)?stack' | grep -v pgrep || true)
if [ -n "$leftovers" ]; then
    echo "test.sh: servers left running after the tests:" >&2
    echo "$leftovers" >&2
    rc=1
fi
passed=$(grep -oE '^test result: .* ([0-9]+) passed' "$results" | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -oE '^test result: .* ([0-9]+) failed' "$results" | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
rm -f "$results"
[ "$rc" = 0 ] || [ "$failed" != 0 ] || failed=1
echo "$passed passed, $failed failed"
exit $rc
