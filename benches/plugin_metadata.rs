//! How long the docker CLI waits for our metadata answer, which it asks for on every
//! `docker --help` and before every `docker trustacr` call. Goal: median under 2 ms.
//!
//! `cargo bench --bench plugin_metadata` prints the median and 90th percentile of N runs of
//! `docker-trustacr docker-cli-plugin-metadata`, next to `/bin/true` as the cost of a bare
//! process start on this machine.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 300;

fn measure(program: &str, args: &[&str]) -> (Duration, Duration) {
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let status = Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run the benchmark subject");
        times.push(start.elapsed());
        assert!(status.success(), "{program} failed");
    }
    times.sort();
    (times[RUNS / 2], times[RUNS * 9 / 10])
}

fn main() {
    let bin = env!("CARGO_BIN_EXE_docker-trustacr");
    let (m, p90) = measure(bin, &["docker-cli-plugin-metadata"]);
    let (tm, tp90) = measure("/bin/true", &[]);
    println!("plugin metadata call ({RUNS} runs):");
    println!(
        "  docker-trustacr docker-cli-plugin-metadata  median {:>7.3} ms  p90 {:>7.3} ms  (goal: median < 2 ms)",
        m.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3
    );
    println!(
        "  /bin/true (process start baseline)          median {:>7.3} ms  p90 {:>7.3} ms",
        tm.as_secs_f64() * 1e3,
        tp90.as_secs_f64() * 1e3
    );
}
