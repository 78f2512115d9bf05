#!/usr/bin/env bash
# Counts a cargo test run against what the test binaries say they hold:
#   scripts/test-summary.sh LISTING RESULTS
# LISTING is the output of `cargo test … -- --list --format terse` (one `name: test` line per
# test), RESULTS the output of the run itself. Prints `N passed, M failed, K ignored, L not run`
# and exits 1 when a test failed or did not run: a test binary that crashed, or never started
# because the build or an earlier binary stopped cargo, has no `test result:` line, and its
# tests show up as "not run" instead of vanishing from the count.
set -euo pipefail
listing=$1 results=$2

expected=$(grep -cE ': test$' "$listing" || true)
read -r passed failed ignored < <(awk '
    /^test result: / {
        for (i = 2; i <= NF; i++) {
            if ($i ~ /^passed;?$/) p += $(i - 1)
            if ($i ~ /^failed;?$/) f += $(i - 1)
            if ($i ~ /^ignored;?$/) g += $(i - 1)
        }
    }
    END { print p + 0, f + 0, g + 0 }' "$results")
not_run=$((expected - passed - failed - ignored))
echo "$passed passed, $failed failed, $ignored ignored, $not_run not run"
if [ "$expected" -eq 0 ]; then
    echo "test-summary: the listing holds no test; nothing was checked" >&2
    exit 1
fi
[ "$failed" -eq 0 ] && [ "$not_run" -eq 0 ]
