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
cargo_test=(cargo test --locked --workspace --lib --bins --tests)
"${cargo_test[@]}" --no-run
cargo build --locked -p acr-emulator
# What the test binaries hold, so that a binary that never ran counts as "not run".
listing=$(mktemp) results=$(mktemp)
"${cargo_test[@]}" -- --list --format terse >"$listing"

# The keyring and its bus carry no stack path on their command lines: tell leftovers from
# what ran before by process id.
keyring_procs() { { pgrep gnome-keyring-d || true; pgrep dbus-daemon || true; } | sort; }
before=$(keyring_procs)

rc=0 problems=()
# --no-fail-fast: a failing binary must not keep the others from running.
scripts/stack.sh run "${cargo_test[@]}" --no-fail-fast 2>&1 | tee "$results" || rc=$?

# The README's install command, for real (release build), into a throw-away HOME.
# (grep's output goes to /dev/null rather than -q: an early exit of grep -q would kill docker
# with SIGPIPE, and pipefail would report that as a failed smoke test.)
smoke=$(mktemp -d)
rustup_home=${RUSTUP_HOME:-$HOME/.rustup} cargo_home=${CARGO_HOME:-$HOME/.cargo}
if HOME=$smoke RUSTUP_HOME=$rustup_home CARGO_HOME=$cargo_home \
    ./install.sh >"$smoke/install.log" 2>&1 \
    && HOME=$smoke docker --help | grep '^  trustacr\*' >/dev/null \
    && HOME=$smoke docker trustacr --help | grep 'Usage: docker trustacr' >/dev/null; then
    echo "install smoke: ./install.sh installed a plugin that docker lists and runs"
else
    cat "$smoke/install.log" >&2
    problems+=("install smoke: FAILED (install.sh, or docker does not list or run the plugin)")
fi
rm -rf "$smoke"

# Every server the tests started must be gone now.
leftovers=$(pgrep -af 'trustacr-(test-)?stack' | grep -v pgrep || true)
new_keyring=$(comm -13 <(echo "$before") <(keyring_procs) | sed '/^$/d')
if [ -n "$new_keyring" ]; then
    leftovers+=$'\n'$(ps -o pid=,args= -p "$(echo "$new_keyring" | paste -sd,)" || true)
fi
leftovers=$(echo "$leftovers" | sed '/^$/d')
if [ -n "$leftovers" ]; then
    echo "$leftovers" >&2
    problems+=("leftover processes: FAILED (servers still running after the tests, listed above)")
fi

scripts/test-summary.sh "$listing" "$results" || rc=1
rm -f "$listing" "$results"
for p in "${problems[@]}"; do
    echo "$p"
    rc=1
done
exit $rc
