//! The developer tools as credential sources: `az account get-access-token` and `azd auth token`,
//! run by us rather than by azure_identity so that each run is bounded.
//!
//! Bounds (review #8 item 12): a deadline (`TRUSTACR_CLI_TIMEOUT` seconds, default 30), at most
//! [`MAX_STDOUT`] of output (a tool printing endlessly is killed, not buffered), and the tool runs
//! in its own process group, killed with everything it started when the run times out, overflows,
//! or is dropped because the command was cancelled (Ctrl-C, the docker CLI closing the plugin
//! socket). The tool's stdout holds the token: it lives in zeroizing buffers and is never logged.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use zeroize::{Zeroize, Zeroizing};

use super::Failure;
use crate::secret::Secret;

/// Output a tool may print before it is killed: a token answer is a few KiB.
pub const MAX_STDOUT: usize = 1024 * 1024;
/// stderr kept for the error message; the rest is read and dropped.
const MAX_STDERR: usize = 16 * 1024;
/// Deadline for one tool run unless `TRUSTACR_CLI_TIMEOUT` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable that sets the deadline, in seconds.
pub const TIMEOUT_ENV: &str = "TRUSTACR_CLI_TIMEOUT";

/// A developer tool that can hand out Entra tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    /// The Azure CLI.
    Az,
    /// The Azure Developer CLI.
    Azd,
}

impl Tool {
    fn program(self) -> &'static str {
        match self {
            // On Windows the Azure CLI is a batch file, which std runs through cmd.exe with its
            // own argument escaping (our arguments are a fixed scope and a checked tenant).
            Tool::Az if cfg!(windows) => "az.cmd",
            Tool::Az => "az",
            Tool::Azd => "azd",
        }
    }

    fn args(self, scope: &str, tenant: Option<&str>) -> Vec<String> {
        let mut args: Vec<String> = match self {
            Tool::Az => [
                "account",
                "get-access-token",
                "--scope",
                scope,
                "-o",
                "json",
            ],
            Tool::Azd => ["auth", "token", "--scope", scope, "--output", "json"],
        }
        .iter()
        .map(|s| s.to_string())
        .collect();
        if let Some(t) = tenant {
            args.push(
                match self {
                    Tool::Az => "--tenant",
                    Tool::Azd => "--tenant-id",
                }
                .into(),
            );
            args.push(t.into());
        }
        args
    }

    /// What the user runs to sign in, for "not signed in" messages.
    fn login_hint(self) -> &'static str {
        match self {
            Tool::Az => "az login",
            Tool::Azd => "azd auth login",
        }
    }
}

/// The deadline for one run: `TRUSTACR_CLI_TIMEOUT` seconds, or [`DEFAULT_TIMEOUT`].
pub fn timeout() -> Result<Duration, String> {
    crate::timeouts::seconds(TIMEOUT_ENV)
        .map(|t| t.unwrap_or(DEFAULT_TIMEOUT))
        .map_err(|e| e.to_string())
}

/// Only a tenant ID or domain name is passed on (it becomes an argument of the tool).
fn valid_tenant(t: &str) -> bool {
    !t.is_empty()
        && !t.starts_with('-')
        && t.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
}

/// Runs `tool` for a token for `scope`. A tool that is not installed or not signed in is
/// [`Failure::Unavailable`]; any other failure is [`Failure::Refused`].
pub async fn token(
    tool: Tool,
    scope: &str,
    tenant: Option<&str>,
    limit: Duration,
) -> Result<Secret, Failure> {
    if let Some(t) = tenant
        && !valid_tenant(t)
    {
        return Err(Failure::Refused(format!(
            "the tenant {t:?} is not a tenant ID or domain name"
        )));
    }
    let program = tool.program();
    let out = run(program, &tool.args(scope, tenant), limit).await?;
    if !out.success {
        let first = out
            .stderr
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .chars()
            .take(300)
            .collect::<String>();
        let lower = out.stderr.to_ascii_lowercase();
        // Not signed in is "unavailable", as in the Azure SDKs: the next source may apply.
        if lower.contains(tool.login_hint()) || lower.contains("not logged in") {
            return Err(Failure::Unavailable(format!(
                "not signed in (run `{}`): {first}",
                tool.login_hint()
            )));
        }
        return Err(Failure::Refused(format!("`{program}` failed: {first}")));
    }
    parse_token(tool, &out.stdout)
}

fn parse_token(tool: Tool, stdout: &[u8]) -> Result<Secret, Failure> {
    #[derive(serde::Deserialize)]
    struct AzAnswer {
        #[serde(rename = "accessToken")]
        access_token: Option<String>,
        token: Option<String>,
    }
    impl Drop for AzAnswer {
        fn drop(&mut self) {
            self.access_token.zeroize();
            self.token.zeroize();
        }
    }
    let bad = || {
        Failure::Refused(format!(
            "`{}` did not print a token as JSON",
            tool.program()
        ))
    };
    // serde's errors would quote the input, which holds the token: report only that it failed.
    let answer: AzAnswer = serde_json::from_slice(stdout).map_err(|_| bad())?;
    let mut answer = answer;
    let (a, b) = (answer.access_token.take(), answer.token.take());
    let t = match tool {
        Tool::Az => a.or(b),
        Tool::Azd => b.or(a),
    };
    t.filter(|t| !t.is_empty()).map(Secret::new).ok_or_else(bad)
}

/// A finished run.
struct Output {
    success: bool,
    stdout: Zeroizing<Vec<u8>>,
    stderr: String,
}

/// A child in its own process group; dropping it kills the whole group, so nothing the tool
/// started outlives a timeout, an overflow or a cancelled command.
struct Group {
    child: tokio::process::Child,
    done: bool,
}

impl Group {
    fn kill(&mut self) {
        #[cfg(unix)]
        if let Some(pid) = self
            .child
            .id()
            .and_then(|id| rustix::process::Pid::from_raw(id as i32))
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.start_kill();
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if !self.done {
            self.kill();
        }
    }
}

async fn run(program: &str, args: &[String], limit: Duration) -> Result<Output, Failure> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Failure::Unavailable(format!(
                "`{program}` is not installed"
            )));
        }
        Err(e) => {
            return Err(Failure::Unavailable(format!("cannot run `{program}`: {e}")));
        }
    };
    let mut group = Group { child, done: false };
    tracing::debug!("running {program} {}", args.join(" "));
    let (Some(stdout), Some(stderr)) = (group.child.stdout.take(), group.child.stderr.take())
    else {
        return Err(Failure::Refused(format!("`{program}`: no output pipes")));
    };
    let work = async {
        // try_join: an overflowing stdout ends the run at once, whatever stderr does.
        let (out, err) = tokio::try_join!(read_capped(stdout, MAX_STDOUT), async {
            Ok(read_kept(stderr).await)
        })
        .map_err(|e| match e {
            None => Failure::Refused(format!(
                "`{program}` printed more than {MAX_STDOUT} bytes; it was stopped"
            )),
            Some(io) => Failure::Refused(format!("reading the output of `{program}`: {io}")),
        })?;
        let status = group
            .child
            .wait()
            .await
            .map_err(|e| Failure::Refused(format!("waiting for `{program}`: {e}")))?;
        Ok::<_, Failure>((status, out, err))
    };
    let (status, stdout, stderr) = match tokio::time::timeout(limit, work).await {
        Ok(Ok(done)) => done,
        Ok(Err(e)) => return Err(e),
        Err(_) => {
            return Err(Failure::Refused(format!(
                "`{program}` did not finish within {} s; it was stopped (set {TIMEOUT_ENV} to wait longer)",
                limit.as_secs()
            )));
        }
    };
    group.done = true;
    // The tool may have left children behind that still hold nothing we need.
    group.kill();
    Ok(Output {
        success: status.success(),
        stdout,
        stderr,
    })
}

/// Reads at most `cap` bytes. Errors: `None` when there was more, else the read error.
async fn read_capped(
    mut r: impl AsyncRead + Unpin,
    cap: usize,
) -> Result<Zeroizing<Vec<u8>>, Option<std::io::Error>> {
    let mut buf = Zeroizing::new(Vec::with_capacity(8192));
    let mut chunk = Zeroizing::new([0u8; 8192]);
    loop {
        let n = r.read(&mut chunk[..]).await.map_err(Some)?;
        if n == 0 {
            return Ok(buf);
        }
        if buf.len() + n > cap {
            return Err(None);
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Reads everything, keeping the first [`MAX_STDERR`] bytes as text.
async fn read_kept(mut r: impl AsyncRead + Unpin) -> String {
    let mut kept = Vec::new();
    let mut chunk = [0u8; 8192];
    while let Ok(n) = r.read(&mut chunk).await {
        if n == 0 {
            break;
        }
        let room = MAX_STDERR.saturating_sub(kept.len());
        kept.extend_from_slice(&chunk[..n.min(room)]);
    }
    String::from_utf8_lossy(&kept).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_must_not_look_like_an_option() {
        assert!(valid_tenant("72f988bf-86f1-41af-91ab-2d7cd011db47"));
        assert!(valid_tenant("contoso.onmicrosoft.com"));
        assert!(!valid_tenant("--debug"));
        assert!(!valid_tenant("a b"));
        assert!(!valid_tenant(""));
    }

    #[test]
    fn az_answer_is_parsed_without_quoting_it_on_error() {
        let t = parse_token(Tool::Az, br#"{"accessToken":"abc","expires_on":1}"#).unwrap();
        assert_eq!(t.expose(), "abc");
        let t = parse_token(Tool::Azd, br#"{"token":"xyz","expiresOn":"x"}"#).unwrap();
        assert_eq!(t.expose(), "xyz");
        let Err(Failure::Refused(why)) = parse_token(Tool::Az, b"{\"accessToken\": eyJsecret")
        else {
            panic!("bad JSON is refused")
        };
        assert!(!why.contains("eyJ"), "{why}");
    }

    #[test]
    fn tenant_flag_differs_between_az_and_azd() {
        let az = Tool::Az.args("s/.default", Some("t1")).join(" ");
        assert_eq!(
            az,
            "account get-access-token --scope s/.default -o json --tenant t1"
        );
        let azd = Tool::Azd.args("s/.default", Some("t1")).join(" ");
        assert_eq!(
            azd,
            "auth token --scope s/.default --output json --tenant-id t1"
        );
    }
}
