//! Cancellation: Ctrl-C in a terminal, SIGTERM, or the docker CLI closing the plugin socket.
//!
//! When its stdout is not a terminal, the docker CLI (v25+) forwards SIGINT/SIGTERM to a plugin
//! by closing the abstract unix socket named in `DOCKER_CLI_PLUGIN_SOCKET`; the plugin gets no
//! signal, only EOF. On a terminal the signal reaches the whole process group, so we listen for
//! it as well. Commands race their work against [`Cancellation::cancelled`] and must leave
//! nothing half-done when they lose.

use std::fmt;

use tokio::sync::watch;

/// Why the command was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelReason {
    /// SIGINT (Ctrl-C).
    Interrupt,
    /// SIGTERM.
    Terminate,
    /// The docker CLI closed the plugin socket.
    CliClosedSocket,
    /// The whole-command limit (`TRUSTACR_TIMEOUT`, seconds) was reached.
    Deadline(u64),
}

impl fmt::Display for CancelReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CancelReason::Interrupt => "interrupted (SIGINT)",
            CancelReason::Terminate => "terminated (SIGTERM)",
            CancelReason::CliClosedSocket => "cancelled by the docker CLI",
            CancelReason::Deadline(secs) => {
                return write!(
                    f,
                    "stopped at the {secs} s limit of {} (raise or unset it to wait longer)",
                    crate::timeouts::COMMAND_ENV
                );
            }
        })
    }
}

/// A handle that resolves once the command should stop. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Cancellation {
    rx: watch::Receiver<Option<CancelReason>>,
}

/// Could not connect to the docker CLI's plugin socket.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to the docker CLI plugin socket {name:?}: {source}")]
pub struct SocketError {
    name: String,
    #[source]
    source: std::io::Error,
}

impl Cancellation {
    /// Starts listening for signals, for EOF on `plugin_socket` when given, and for the end of
    /// `deadline` when given: a whole-command timeout stops the command the way Ctrl-C does,
    /// so a publish in flight still reports what is live. Must be called inside a tokio runtime.
    pub fn install(
        plugin_socket: Option<&str>,
        deadline: Option<std::time::Duration>,
    ) -> Result<Self, SocketError> {
        let (tx, rx) = watch::channel(None);
        if let Some(limit) = deadline {
            let tx = tx.clone();
            tokio::spawn(async move {
                tokio::time::sleep(limit).await;
                tx.send_if_modified(|r| {
                    let first = r.is_none();
                    if first {
                        *r = Some(CancelReason::Deadline(limit.as_secs()));
                    }
                    first
                });
            });
        }
        if let Some(name) = plugin_socket {
            let stream = connect(name).map_err(|source| SocketError {
                name: name.to_string(),
                source,
            })?;
            let tx = tx.clone();
            tokio::spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut stream = stream;
                let mut buf = [0u8; 64];
                // The CLI never writes; any read result ends the wait: EOF is the cancel
                // signal, and an error means the CLI is gone just the same.
                loop {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(_) => continue,
                    }
                }
                tx.send_replace(Some(CancelReason::CliClosedSocket));
            });
        }
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            for (kind, reason) in [
                (SignalKind::interrupt(), CancelReason::Interrupt),
                (SignalKind::terminate(), CancelReason::Terminate),
            ] {
                if let Ok(mut s) = signal(kind) {
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        if s.recv().await.is_some() {
                            tx.send_replace(Some(reason));
                        }
                    });
                }
            }
        }
        #[cfg(not(unix))]
        {
            let tx = tx.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    tx.send_replace(Some(CancelReason::Interrupt));
                }
            });
        }
        // Keep one sender alive for the life of the process, so `cancelled` never sees a
        // closed channel and mistakes it for cancellation.
        std::mem::forget(tx);
        Ok(Cancellation { rx })
    }

    /// A handle that is never cancelled, for library callers and tests.
    pub fn never() -> Self {
        let (tx, rx) = watch::channel(None);
        std::mem::forget(tx);
        Cancellation { rx }
    }

    /// Resolves when the command should stop.
    pub async fn cancelled(&self) -> CancelReason {
        let mut rx = self.rx.clone();
        loop {
            if let Some(reason) = *rx.borrow_and_update() {
                return reason;
            }
            if rx.changed().await.is_err() {
                // Unreachable while a sender is leaked above; waiting forever is the safe answer.
                std::future::pending::<()>().await;
            }
        }
    }

    /// The reason, if cancellation has already been requested.
    pub fn reason(&self) -> Option<CancelReason> {
        *self.rx.borrow()
    }
}

#[cfg(target_os = "linux")]
fn connect(name: &str) -> std::io::Result<tokio::net::UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixStream};
    // `@name` is how Go spells a Linux abstract socket address.
    let stream = match name.strip_prefix('@') {
        Some(abstract_name) => {
            UnixStream::connect_addr(&SocketAddr::from_abstract_name(abstract_name.as_bytes())?)?
        }
        None => UnixStream::connect(name)?,
    };
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

#[cfg(all(unix, not(target_os = "linux")))]
fn connect(name: &str) -> std::io::Result<tokio::net::UnixStream> {
    let stream = std::os::unix::net::UnixStream::connect(name)?;
    stream.set_nonblocking(true)?;
    tokio::net::UnixStream::from_std(stream)
}

#[cfg(not(unix))]
fn connect(name: &str) -> std::io::Result<tokio::net::TcpStream> {
    Err(std::io::Error::new(
        std::io::ErrorKind::Unsupported,
        format!("plugin socket {name} is not supported on this platform"),
    ))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixListener};

    #[tokio::test]
    async fn closing_the_plugin_socket_cancels() {
        let name = format!("docker_cli_test_{}", std::process::id());
        let listener =
            UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
                .unwrap();
        let cancel = Cancellation::install(Some(&format!("@{name}")), None).unwrap();
        let (conn, _) = listener.accept().unwrap();
        assert_eq!(cancel.reason(), None);
        drop(conn);
        let reason = tokio::time::timeout(std::time::Duration::from_secs(10), cancel.cancelled())
            .await
            .expect("EOF on the plugin socket must cancel");
        assert_eq!(reason, CancelReason::CliClosedSocket);
    }

    #[tokio::test]
    async fn the_whole_command_deadline_cancels_with_its_own_reason() {
        let cancel = Cancellation::install(None, Some(std::time::Duration::from_secs(1))).unwrap();
        assert_eq!(cancel.reason(), None);
        let reason = tokio::time::timeout(std::time::Duration::from_secs(10), cancel.cancelled())
            .await
            .expect("the deadline must cancel");
        assert_eq!(reason, CancelReason::Deadline(1));
        assert!(reason.to_string().contains("TRUSTACR_TIMEOUT"));
    }

    #[tokio::test]
    async fn missing_plugin_socket_is_an_error_naming_it() {
        let err = Cancellation::install(Some("@docker_cli_does_not_exist_42"), None).unwrap_err();
        assert!(err.to_string().contains("docker_cli_does_not_exist_42"));
    }
}
