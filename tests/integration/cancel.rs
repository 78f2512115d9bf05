//! Cancellation: Ctrl-C on a standalone run, and the docker CLI closing the plugin socket when
//! it is interrupted with its output not on a terminal. Both must stop the command promptly with
//! a non-zero exit, instead of waiting for an engine that never answers.

use std::os::unix::net::UnixListener;
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::harness::*;

/// A unix socket that accepts connections and never answers, like a wedged dockerd.
/// Returns its `unix://` address and a receiver that fires on the first connection.
fn silent_engine(env: &TestEnv) -> (String, mpsc::Receiver<()>) {
    let path = env.home.join("silent.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming().flatten() {
            held.push(conn);
            let _ = tx.send(());
        }
    });
    (format!("unix://{}", path.display()), rx)
}

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Waits for exit; the deadline only turns a hang into a failure instead of a stuck test run.
fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("process did not stop within {within:?} after cancellation");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn processes_mentioning(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let text = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if text.contains(needle) && text.contains("info") {
                found.push(text);
            }
        }
    }
    found
}

#[test]
fn sigint_stops_a_standalone_command_waiting_on_the_engine() {
    let env = TestEnv::new();
    let (host, connected) = silent_engine(&env);
    let mut child = env
        .plugin()
        .args(["-H", &host, "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    connected
        .recv_timeout(Duration::from_secs(30))
        .expect("the plugin never connected to the engine socket");
    signal(child.id(), "-INT");
    let status = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(130));
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(err.contains("interrupted"), "{err}");
    assert!(stdout(&out).is_empty(), "a cancelled info prints no report");
}

#[test]
fn docker_cli_interrupt_closes_the_plugin_socket_and_the_plugin_stops() {
    let env = TestEnv::new();
    env.install();
    let (host, connected) = silent_engine(&env);
    // stdout is a pipe, not a terminal: the CLI forwards the interrupt through the socket.
    let mut docker = env
        .docker()
        .args(["-H", &host, "trustacr", "info"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    connected
        .recv_timeout(Duration::from_secs(30))
        .expect("the plugin never connected to the engine socket");
    signal(docker.id(), "-INT");
    let status = wait_exit(&mut docker, Duration::from_secs(20));
    assert!(!status.success());
    let out = docker.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(err.contains("cancelled by the docker CLI"), "{err}");
    assert!(
        processes_mentioning(&host).is_empty(),
        "plugin still running"
    );
}
