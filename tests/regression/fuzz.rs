//! Findings of the fuzz campaign (issue #12 item 1): each crash or broken invariant a target in
//! `fuzz/` found, as a library-level test that failed before its fix. `scripts/fuzz.sh` runs
//! the targets; README.md "Fuzzing" records the executions per target.
