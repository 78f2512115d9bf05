//! `migrate` beyond one repository and one uninterrupted run, and the engine pull of an image
//! that only a Notary Project signature signs:
//! - `migrate REGISTRY --all` through the catalog of a registry this test starts for itself (so
//!   the catalog holds exactly the repositories the test made);
//! - `migrate` killed while it signs, through a proxy in front of the stack's registry that
//!   holds one referrers-index write unanswered, then a rerun that signs only the rest;
//! - `pull --policy notation|either|dct` of an image with no DCT data at all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::harness::*;
use crate::notation_sign::{generate, independent_verify, json, notation_env, tags};

/// A distribution registry of this test's own (`docker-registry`, as scripts/stack.sh runs
/// it), killed when dropped.
struct OwnRegistry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl OwnRegistry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("docker-registry (installed with the stack)");
        let registry = OwnRegistry {
            child,
            addr,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Command::new("curl")
                .args(["-sf", "-o", "/dev/null"])
                .arg(format!("http://{}/v2/", registry.addr))
                .status()
                .is_ok_and(|s| s.success());
            if up {
                break registry;
            }
            assert!(
                Instant::now() < deadline,
                "the test's registry did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for OwnRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Pushes `n` images with distinct content as `repo:t0..` and signs them all with DCT.
fn dct_signed_tags(env: &TestEnv, repo: &str, n: usize) -> Vec<String> {
    let refs: Vec<String> = (0..n).map(|i| format!("{repo}:t{i}")).collect();
    for r in &refs {
        docker_push(env, r, &format!("content of {r}"));
    }
    assert_success(
        &run(env.plugin().arg("sign").args(&refs)),
        "DCT sign of the tags",
    );
    refs
}

fn migrate(env: &TestEnv, args: &[&str]) -> Value {
    let out = run(env
        .plugin()
        .arg("migrate")
        .args(args)
        .args(["--format", "json"]));
    assert_success(&out, &format!("migrate {args:?}"));
    json(&out)
}

/// The `sha256-<hex>` referrers indexes of `repo` and how many signature manifests each lists.
fn referrers_indexes(env: &TestEnv, repo: &str) -> Vec<(String, usize)> {
    let (host, path) = repo.split_once('/').unwrap();
    tags(env, repo)
        .into_iter()
        .filter(|t| t.starts_with("sha256-"))
        .map(|t| {
            let out = run(env.cmd("curl").args([
                "-sf",
                "-H",
                "Accept: application/vnd.oci.image.index.v1+json",
                &format!("http://{host}/v2/{path}/manifests/{t}"),
            ]));
            assert_success(&out, "GET the referrers index");
            let n = json(&out)["manifests"].as_array().unwrap().len();
            (t, n)
        })
        .collect()
}

#[test]
fn migrate_all_brings_every_dct_repository_of_the_catalog_to_parity_and_a_rerun_signs_nothing() {
    let registry = OwnRegistry::start();
    let env = notation_env();
    let cert = generate(&env, "catalog");
    // Unique names: the stack's notary-server keeps the trust data of earlier runs, whose
    // registry may have had the same port.
    let repos: Vec<String> = ["web", "api", "tools"]
        .iter()
        .map(|r| unique_repo(&registry.addr, r))
        .collect();
    for r in &repos {
        dct_signed_tags(&env, r, 3);
    }
    // In the catalog too: a repository never signed with DCT, which has nothing to move.
    let unsigned = unique_repo(&registry.addr, "unsigned");
    docker_push(&env, &format!("{unsigned}:v1"), "never signed");

    let v = migrate(&env, &[&registry.addr, "--all", "--dry-run"]);
    assert_eq!(v["tags"], 9, "{v}");
    assert_eq!(v["notation_signed"], 0, "{v}");
    assert_eq!(v["parity"], false, "{v}");

    let v = migrate(&env, &[&registry.addr, "--all"]);
    assert_eq!(v["tags"], 9, "{v}");
    assert_eq!(v["new_signatures"], 9, "{v}");
    assert_eq!(v["parity"], true, "{v}");
    assert_eq!(v["without_dct"], serde_json::json!([unsigned]), "{v}");
    // Parity per repository: each has its three tags, each signed by this run.
    for r in &repos {
        let rows: Vec<&Value> = v["rows"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|row| row["repository"] == r.as_str())
            .collect();
        assert_eq!(rows.len(), 3, "{r}: {v}");
        assert!(rows.iter().all(|row| row["notation"] == "signed"), "{v}");
        let (ok, out) = independent_verify(&env, &format!("{r}:t1"), &[&cert]);
        assert!(ok, "{out}");
        assert_eq!(referrers_indexes(&env, r).len(), 3, "{r}");
    }
    assert!(referrers_indexes(&env, &unsigned).is_empty());

    // Second run, text form: nothing new, parity said, the unsigned repository named.
    let out = run(env.plugin().args(["migrate", &registry.addr, "--all"]));
    assert_success(&out, "second migrate --all");
    let text = stdout(&out);
    assert!(text.contains("9/9 tags; 0 new signature(s)"), "{text}");
    assert!(text.contains("Parity complete"), "{text}");
    assert!(
        text.contains(&format!(
            "{unsigned}: no Docker Content Trust data; nothing to co-sign"
        )),
        "{text}"
    );
    assert!(!text.contains("signed (new)"), "{text}");
}

/// A plain-HTTP forwarding proxy in front of the stack's registry, one request per
/// connection. Once armed with `hold_after(k)`, it forwards `k` referrers-index writes
/// (`PUT …/manifests/sha256-…`) and holds the next one unanswered, telling the test.
struct HoldingProxy {
    addr: String,
    stop: Arc<AtomicBool>,
    hold_after: Arc<Mutex<Option<usize>>>,
    held: mpsc::Receiver<()>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl HoldingProxy {
    fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let hold_after: Arc<Mutex<Option<usize>>> = Arc::new(Mutex::new(None));
        let (tell, held) = mpsc::channel();
        let (s, h) = (stop.clone(), hold_after.clone());
        let handle = std::thread::spawn(move || {
            let passed = Arc::new(Mutex::new(0usize));
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, h, passed, tell, upstream) = (
                    s.clone(),
                    h.clone(),
                    passed.clone(),
                    tell.clone(),
                    upstream.clone(),
                );
                std::thread::spawn(move || {
                    proxy_one(conn, &upstream, &s, &h, &passed, &tell);
                });
            }
        });
        HoldingProxy {
            addr,
            stop,
            hold_after,
            held,
            handle: Some(handle),
        }
    }

    fn hold_after(&self, k: Option<usize>) {
        *self.hold_after.lock().unwrap() = k;
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

fn proxy_one(
    mut conn: TcpStream,
    upstream: &str,
    stop: &AtomicBool,
    hold_after: &Mutex<Option<usize>>,
    passed: &Mutex<usize>,
    tell: &mpsc::Sender<()>,
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut peek = [0u8; 1];
    if conn.peek(&mut peek).is_err() || peek[0] == 0x16 {
        return; // TLS: close, the client falls back to plain HTTP on loopback
    }
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut head = Vec::new();
    let mut length = 0usize;
    let mut first = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if first.is_empty() {
            first = line.clone();
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the proxy forwards only Content-Length bodies: {line}"
        );
        if !lower.starts_with("connection:") {
            head.extend_from_slice(line.as_bytes());
        }
    }
    head.extend_from_slice(b"Connection: close\r\n\r\n");
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let index_write = first.starts_with("PUT ") && first.contains("/manifests/sha256-");
    if index_write {
        let mut n = passed.lock().unwrap();
        if hold_after.lock().unwrap().is_some_and(|k| *n >= k) {
            drop(n);
            let _ = tell.send(());
            // Unanswered until the proxy stops: the client is killed meanwhile.
            while !stop.load(Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(20));
            }
            return;
        }
        *n += 1;
    }
    let Ok(mut up) = TcpStream::connect(upstream) else {
        return;
    };
    if up.write_all(&head).is_err() || up.write_all(&body).is_err() {
        return;
    }
    let mut response = Vec::new();
    let _ = up.read_to_end(&mut response);
    let _ = conn.write_all(&response);
}

#[test]
fn a_migrate_killed_midway_is_finished_by_a_rerun_that_signs_only_the_rest_once_each() {
    let proxy = HoldingProxy::start(stack().registry.clone());
    let env = notation_env();
    let cert = generate(&env, "resume");
    let path = unique_repo("x", "nresume")
        .split_once('/')
        .unwrap()
        .1
        .to_string();
    // The engine pushes straight to the registry; the plugin reaches the same repository
    // through the proxy, so its GUN (and DCT data) is the proxy's name for it.
    for i in 0..8 {
        docker_push(
            &env,
            &format!("{}/{path}:t{i}", stack().registry),
            &format!("resume {i}"),
        );
    }
    let repo = format!("{}/{path}", proxy.addr);
    let refs: Vec<String> = (0..8).map(|i| format!("{repo}:t{i}")).collect();
    assert_success(&run(env.plugin().arg("sign").args(&refs)), "DCT sign");

    // One digest at a time, so three are complete when the fourth index write is held.
    proxy.hold_after(Some(3));
    let mut child = KillOnDrop(
        env.plugin()
            .args(["migrate", &repo, "--jobs", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    proxy
        .held
        .recv_timeout(Duration::from_secs(120))
        .expect("migrate never reached its fourth signature");
    child.0.kill().unwrap();
    let status = child.0.wait().unwrap();
    assert!(!status.success());
    let direct = format!("{}/{path}", stack().registry);
    let before = referrers_indexes(&env, &direct);
    assert_eq!(before.len(), 3, "{before:?}");

    proxy.hold_after(None);
    let v = migrate(&env, &[&repo, "--jobs", "1"]);
    assert_eq!(v["tags"], 8, "{v}");
    assert_eq!(v["new_signatures"], 5, "{v}");
    assert_eq!(v["parity"], true, "{v}");
    let present = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["notation"] == "present")
        .count();
    assert_eq!(present, 3, "{v}");
    // One signature per digest: the interrupted one was signed again, not twice.
    let after = referrers_indexes(&env, &direct);
    assert_eq!(after.len(), 8, "{after:?}");
    assert!(after.iter().all(|(_, n)| *n == 1), "{after:?}");
    let (ok, out) = independent_verify(&env, &format!("{direct}:t3"), &[&cert]);
    assert!(ok, "{out}");

    let v = migrate(&env, &[&repo]);
    assert_eq!(v["new_signatures"], 0, "{v}");
    assert_eq!(v["parity"], true, "{v}");
}

/// Kills the child when dropped (a failed assertion must not leave it running).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn an_image_signed_only_with_notary_project_is_pulled_under_notation_and_either_not_under_dct() {
    let mut env = notation_env();
    env.set(
        "NOTATION_CONFIG",
        env.home.join("notation").display().to_string(),
    );
    let repo = unique_repo(&stack().registry, "nonly");
    let reference = format!("{repo}:v1");
    let cert: PathBuf = generate(&env, "only");
    let (digest, _) = docker_push(&env, &reference, "notation only");
    assert_success(
        &run(env.plugin().args(["sign", "--notation", &reference])),
        "sign --notation",
    );
    assert_success(
        &run(env
            .plugin()
            .args(["policy", "init", &repo, "--cert"])
            .arg(&cert)),
        "policy init",
    );
    let rmi = || assert_success(&run(env.docker().args(["rmi", &reference])), "docker rmi");
    let engine_digests = || {
        let out = run(env.docker().args([
            "image",
            "inspect",
            "--format",
            "{{json .RepoDigests}}",
            &reference,
        ]));
        out.status
            .success()
            .then(|| serde_json::from_str::<Vec<String>>(stdout(&out).trim()).unwrap())
    };
    rmi();
    assert!(engine_digests().is_none());

    for policy in ["notation", "either"] {
        let out = run(env.plugin().args(["pull", "--policy", policy, &reference]));
        assert_success(&out, &format!("pull --policy {policy}"));
        assert!(
            stdout(&out).contains(&format!("Verified {reference}: Notary Project")),
            "{}",
            stdout(&out)
        );
        assert_eq!(
            engine_digests(),
            Some(vec![format!("{repo}@{digest}")]),
            "policy {policy}"
        );
        rmi();
    }

    let out = run(env.plugin().args(["pull", "--policy", "dct", &reference]));
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("trust data does not exist"),
        "{}",
        stderr(&out)
    );
    assert!(engine_digests().is_none(), "pulled without DCT data");
}
