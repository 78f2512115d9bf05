//! Regression tests: see main.rs.
