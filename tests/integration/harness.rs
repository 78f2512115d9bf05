//! The shared test harness: the real stack (dockerd, registry, notary-server, keyring, and the
//! ACR emulator with its token-auth registry and notary-server) and a fresh docker config per
//! test.
//!
//! With `TRUSTACR_STACK_ENV` set (by `scripts/stack.sh run` or `up`), tests use that running
//! stack. Otherwise the first test that needs it starts one with `scripts/stack.sh serve`,
//! holding the script's stdin: when this test process ends, however it ends, the pipe closes and
//! the script stops every server.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_docker-trustacr");

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A running stack.
#[derive(Debug)]
pub struct Stack {
    /// `unix://…/docker.sock`
    pub docker_host: String,
    /// `127.0.0.1:PORT`
    pub registry: String,
    /// `https://127.0.0.1:PORT`
    pub notary_url: String,
    /// CA that signed notary-server's certificate.
    pub notary_ca: PathBuf,
    /// The session bus with the unlocked keyring.
    pub dbus_address: String,
    /// The ACR emulator's login server, `127.0.0.1:PORT` (HTTPS, certificate from `notary_ca`;
    /// Entra endpoints are on the same host).
    pub acr_host: String,
    /// JSON listing the emulator's test identities: `{"tenant_id", "authority_host",
    /// "login_server", "ca", "identities": [{"label": "signer"|"pusher"|"reader"|"wi", "name",
    /// "tenant_id", "client_id", "client_secret"?, "federated_subject"?,
    /// "federated_token_file"?, "object_id", "roles"}]}`.
    pub acr_identities: PathBuf,
    /// The emulator's own configuration file.
    pub acr_config: PathBuf,
    /// The Entra tenant of every test identity.
    pub acr_tenant: String,
    /// The emulator binary the stack runs (`TRUSTACR_ACR_EMULATOR_BIN`; absent in stacks
    /// started by an older stack.sh).
    pub acr_emulator_bin: Option<PathBuf>,
}

static STACK: OnceLock<Stack> = OnceLock::new();
// Holds the self-started stack's stdin open for the life of the test process.
static OWNED: Mutex<Option<Child>> = Mutex::new(None);

/// The stack, started on first use.
pub fn stack() -> &'static Stack {
    STACK.get_or_init(|| {
        let env_file = match std::env::var("TRUSTACR_STACK_ENV") {
            Ok(f) => PathBuf::from(f),
            Err(_) => start_own_stack(),
        };
        let text = std::fs::read_to_string(&env_file)
            .unwrap_or_else(|e| panic!("cannot read stack env {}: {e}", env_file.display()));
        let vars: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
        let get = |k: &str| {
            vars.get(k)
                .unwrap_or_else(|| panic!("{k} missing from {}", env_file.display()))
                .to_string()
        };
        Stack {
            docker_host: get("TRUSTACR_DOCKER_HOST"),
            registry: get("TRUSTACR_REGISTRY"),
            notary_url: get("TRUSTACR_NOTARY_URL"),
            notary_ca: get("TRUSTACR_NOTARY_CA").into(),
            dbus_address: get("DBUS_SESSION_BUS_ADDRESS"),
            acr_host: get("TRUSTACR_ACR_HOST"),
            acr_identities: get("TRUSTACR_ACR_IDENTITIES").into(),
            acr_config: get("TRUSTACR_ACR_CONFIG").into(),
            acr_tenant: get("TRUSTACR_ACR_TENANT"),
            acr_emulator_bin: vars.get("TRUSTACR_ACR_EMULATOR_BIN").map(PathBuf::from),
        }
    })
}

fn start_own_stack() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trustacr-test-stack-{}", std::process::id()));
    let mut child = Command::new(repo_root().join("scripts/stack.sh"))
        .arg("serve")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run scripts/stack.sh (install the stack first: scripts/stack.sh install)");
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let env_file = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(f) = line.strip_prefix("READY ") {
                    break PathBuf::from(f);
                }
            }
            _ => panic!("the test stack failed to start; see the messages above"),
        }
    };
    *OWNED.lock().unwrap() = Some(child);
    env_file
}

/// A fresh HOME and docker config dir for one test.
pub struct TestEnv {
    _dir: tempfile::TempDir,
    /// `$HOME`
    pub home: PathBuf,
    /// `$DOCKER_CONFIG`
    pub config: PathBuf,
    extra: Vec<(String, String)>,
}

impl TestEnv {
    /// A new, empty environment.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        let config = home.join(".docker");
        std::fs::create_dir_all(&config).unwrap();
        TestEnv {
            _dir: dir,
            home,
            config,
            extra: Vec::new(),
        }
    }

    /// Trusts the ACR emulator's certificate as a docker user trusts a private CA: the stack's
    /// CA in `<DOCKER_CONFIG>/tls/<acr host>/ca.crt`. The plugin verifies ACR endpoints even
    /// on loopback (an Entra-derived token goes there), so every ACR test needs this.
    pub fn trust_acr_emulator(&self) {
        self.trust_stack_ca_for(&stack().acr_host);
    }

    /// Trusts the stack's CA for `host` (`host:port`), e.g. a second emulator of a test.
    pub fn trust_stack_ca_for(&self, host: &str) {
        let stack = stack();
        let dir = self.config.join("tls").join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::copy(&stack.notary_ca, dir.join("ca.crt")).unwrap();
    }

    /// Adds an environment variable to every command of this environment.
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.extra.push((key.to_string(), value.into()));
    }

    /// A command with only this environment: PATH, HOME, DOCKER_CONFIG, the keyring's bus if a
    /// stack is running, and whatever [`TestEnv::set`] added.
    pub fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("DOCKER_CONFIG", &self.config)
            .stdin(Stdio::null());
        if let Some(s) = STACK.get() {
            c.env("DBUS_SESSION_BUS_ADDRESS", &s.dbus_address);
        }
        for (k, v) in &self.extra {
            c.env(k, v);
        }
        c
    }

    /// The binary under test, run standalone.
    pub fn plugin(&self) -> Command {
        self.cmd(BIN)
    }

    /// The real docker CLI.
    pub fn docker(&self) -> Command {
        self.cmd("docker")
    }

    /// Installs the binary under test with install.sh (without building), into this HOME and
    /// DOCKER_CONFIG.
    pub fn install(&self) -> Output {
        let out = self
            .cmd(repo_root().join("install.sh"))
            .arg("--from")
            .arg(BIN)
            .output()
            .unwrap();
        assert_success(&out, "install.sh");
        out
    }
}

/// Asserts a zero exit status, showing the output otherwise.
pub fn assert_success(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// stdout as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// How long [`run`] lets a command take: far beyond any command of the suite on a loaded CI
/// machine, and short enough that a hung plugin turns into a red test, not a stuck job.
pub const RUN_DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs a command and returns its output; panics with the output so far when it runs past
/// [`RUN_DEADLINE`].
pub fn run(cmd: &mut Command) -> Output {
    run_within(cmd, RUN_DEADLINE)
}

/// Runs a command with stdout and stderr captured. Past `limit` the child is killed and the
/// test panics with the command and what it printed until then.
pub fn run_within(cmd: &mut Command, limit: std::time::Duration) -> Output {
    use std::io::Read;
    use std::sync::Arc;
    use std::time::Instant;

    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // Readers fill shared buffers, so the output so far can be shown on expiry.
    let collect = |pipe: Option<Box<dyn Read + Send>>| {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&buf);
        let reader = std::thread::spawn(move || {
            let Some(mut pipe) = pipe else { return };
            let mut chunk = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
        (buf, reader)
    };
    let (out, out_reader) = collect(child.stdout.take().map(|p| Box::new(p) as _));
    let (err, err_reader) = collect(child.stderr.take().map(|p| Box::new(p) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                // The readers end at EOF unless a grandchild still holds the pipes: give them
                // a moment to drain, but do not wait on a grandchild.
                let drained = Instant::now() + std::time::Duration::from_secs(2);
                while !(out_reader.is_finished() && err_reader.is_finished())
                    && Instant::now() < drained
                {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                panic!(
                    "{cmd:?} still running after {limit:?}; killed it.\n--- stdout so far:\n{}\n--- stderr so far:\n{}",
                    String::from_utf8_lossy(&out.lock().unwrap()),
                    String::from_utf8_lossy(&err.lock().unwrap()),
                );
            }
            Err(e) => panic!("cannot wait for {cmd:?}: {e}"),
        }
    };
    let _ = out_reader.join();
    let _ = err_reader.join();
    let take = |buf: Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buf.lock().unwrap());
    Output {
        status,
        stdout: take(out),
        stderr: take(err),
    }
}

static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// A number no other call in this test process returns.
pub fn next_id() -> usize {
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// A repository name on `registry` that no other test, nor an earlier run on the same stack, uses.
pub fn unique_repo(registry: &str, prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{registry}/t/{prefix}-{}-{}-{nanos}",
        std::process::id(),
        next_id()
    )
}

/// Imports a one-file scratch image with `content` as `reference` into the engine (no push).
pub fn import_image(env: &TestEnv, reference: &str, content: &str) {
    let dir = env.home.join(format!("img-{}", next_id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("content.txt"), content).unwrap();
    let tar = dir.with_extension("tar");
    assert_success(
        &run(env
            .cmd("tar")
            .arg("-C")
            .arg(&dir)
            .arg("-cf")
            .arg(&tar)
            .arg("content.txt")),
        "tar",
    );
    assert_success(
        &run(env.docker().arg("import").arg(&tar).arg(reference)),
        "docker import",
    );
}

/// The notary CLI against the stack's notary-server, with its own trust dir under HOME.
pub fn notary(env: &TestEnv, args: &[&str]) -> Output {
    let stack = stack();
    let mut c = env.cmd("notary");
    c.arg("-d")
        .arg(env.home.join(".notary"))
        .args(["-s", &stack.notary_url, "--tlscacert"])
        .arg(&stack.notary_ca)
        .args(args);
    run(&mut c)
}

/// An environment for the stack's engine and open notary-server, with the passphrases docker and
/// the notary CLI ask for.
pub fn trust_env() -> TestEnv {
    let stack = stack();
    let mut env = TestEnv::new();
    env.set("DOCKER_CONTENT_TRUST_SERVER", &stack.notary_url);
    env.set("DOCKER_HOST", &stack.docker_host);
    env.set("DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE", "root-pass-123");
    env.set(
        "DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE",
        "repo-pass-123",
    );
    env.set("NOTARY_ROOT_PASSPHRASE", "root-pass-123");
    env.set("NOTARY_TARGETS_PASSPHRASE", "targets-pass-123");
    env.set("NOTARY_SNAPSHOT_PASSPHRASE", "snap-pass-123");
    env.set("NOTARY_DELEGATION_PASSPHRASE", "deleg-pass-123");
    env
}

/// Builds a one-file scratch image with `content`, pushes it as `reference` with plain
/// `docker push` (nothing signed), and returns the manifest digest (`sha256:…`) and size the
/// engine printed.
pub fn docker_push(env: &TestEnv, reference: &str, content: &str) -> (String, u64) {
    import_image(env, reference, content);
    let out = run(env.docker().args(["push", reference]));
    assert_success(&out, "docker push");
    let text = stdout(&out);
    let line = text
        .lines()
        .find(|l| l.contains(": digest: sha256:"))
        .unwrap_or_else(|| panic!("no digest line in:\n{text}"));
    let rest = line.split(": digest: ").nth(1).unwrap();
    let (digest, size) = rest.split_once(" size: ").unwrap();
    (digest.to_string(), size.trim().parse().unwrap())
}

/// Waits for exit; the deadline only turns a hang into a failure.
pub fn wait_output(mut child: Child, within: std::time::Duration) -> Output {
    let start = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > within {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "the plugin did not stop within {within:?}\nstdout:\n{}\nstderr:\n{}",
                stdout(&out),
                stderr(&out)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// A loopback port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
