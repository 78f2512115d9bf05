//! The Docker engine, reached through bollard at the endpoint docker's own rules chose.
//!
//! This module owns the connection and will own push, pull and tag. It never talks to
//! registries itself: the engine does that with the credentials we hand it.

use std::time::Duration;

use bollard::Docker;

use crate::dockercfg::context::{EngineEndpoint, TlsSettings, unix_socket_path};

/// How long to wait for the engine's response headers. Long pushes and pulls stream after
/// the headers arrive, so this bounds only an engine that does not answer at all.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// Errors reaching the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The unix socket does not exist.
    #[error(
        "cannot reach the Docker engine at {host}: the socket does not exist. Start dockerd, or point to the right engine with -H/--host, --context or DOCKER_HOST"
    )]
    SocketMissing {
        /// The endpoint tried.
        host: String,
    },
    /// The endpoint's scheme is not supported.
    #[error(
        "cannot use the Docker engine endpoint {host}: {reason}. Use a unix:// or tcp:// endpoint (-H/--host, --context or DOCKER_HOST)"
    )]
    Unsupported {
        /// The endpoint tried.
        host: String,
        /// Why.
        reason: String,
    },
    /// TLS settings are incomplete.
    #[error(
        "cannot use TLS for the Docker engine at {host}: {reason}. Give --tlscacert, --tlscert and --tlskey, or DOCKER_CERT_PATH with ca.pem, cert.pem and key.pem"
    )]
    TlsMaterial {
        /// The endpoint tried.
        host: String,
        /// What is missing.
        reason: String,
    },
    /// The engine did not answer or answered with an error.
    #[error(
        "cannot reach the Docker engine at {host}: {source}. Is dockerd running and is this the right endpoint (-H/--host, --context, DOCKER_HOST)?"
    )]
    Unreachable {
        /// The endpoint tried.
        host: String,
        /// Why.
        #[source]
        source: bollard::errors::Error,
    },
}

/// A connection to one engine.
#[derive(Debug, Clone)]
pub struct Engine {
    docker: Docker,
    host: String,
}

/// What the engine says about itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EngineVersion {
    /// Engine version, e.g. `20.10.24`.
    pub version: String,
    /// Its current API version, e.g. `1.41`.
    pub api_version: String,
    /// Operating system and architecture.
    pub os_arch: String,
}

impl Engine {
    /// Prepares a client for `endpoint`. Nothing is sent until the first call.
    pub fn connect(endpoint: &EngineEndpoint, timeout: Duration) -> Result<Self, EngineError> {
        let host = endpoint.host.clone();
        let secs = timeout.as_secs().max(1);
        let version = bollard::API_DEFAULT_VERSION;
        let docker = if let Some(path) = unix_socket_path(&host) {
            if !path.exists() {
                return Err(EngineError::SocketMissing { host });
            }
            Docker::connect_with_unix(&host, secs, version)
        } else if host.starts_with("tcp://") || host.starts_with("http://") || host.starts_with("https://") {
            match &endpoint.tls {
                None => Docker::connect_with_http(&host, secs, version),
                Some(tls) => connect_tls(&host, tls, secs)?,
            }
        } else if host.starts_with("npipe://") {
            #[cfg(windows)]
            {
                Docker::connect_with_named_pipe(&host, secs, version)
            }
            #[cfg(not(windows))]
            {
                return Err(EngineError::Unsupported {
                    host,
                    reason: "named pipes exist only on Windows".into(),
                });
            }
        } else if host.starts_with("ssh://") {
            return Err(EngineError::Unsupported {
                host,
                reason: "ssh:// endpoints are not supported yet; forward the socket with `ssh -L /tmp/docker.sock:/var/run/docker.sock …` and use unix:///tmp/docker.sock".into(),
            });
        } else {
            return Err(EngineError::Unsupported {
                host,
                reason: "unknown scheme".into(),
            });
        }
        .map_err(|source| EngineError::Unreachable {
            host: endpoint.host.clone(),
            source,
        })?;
        Ok(Engine { docker, host })
    }

    /// The endpoint this client talks to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The bollard client, for the engine operations in this module.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// Asks the engine for its version; this is also the reachability check.
    pub async fn version(&self) -> Result<EngineVersion, EngineError> {
        let v = self
            .docker
            .version()
            .await
            .map_err(|source| EngineError::Unreachable {
                host: self.host.clone(),
                source,
            })?;
        Ok(EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: v.api_version.unwrap_or_default(),
            os_arch: format!(
                "{}/{}",
                v.os.unwrap_or_default(),
                v.arch.unwrap_or_default()
            ),
        })
    }
}

fn connect_tls(
    host: &str,
    tls: &TlsSettings,
    secs: u64,
) -> Result<Result<Docker, bollard::errors::Error>, EngineError> {
    if !tls.verify {
        return Err(EngineError::TlsMaterial {
            host: host.to_string(),
            reason: "TLS without server verification (--tls without --tlsverify, or SkipTLSVerify) is not supported".into(),
        });
    }
    let missing: Vec<&str> = [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)]
        .into_iter()
        .filter(|(_, p)| p.is_none())
        .map(|(n, _)| n)
        .collect();
    let (Some(ca), Some(cert), Some(key)) = (&tls.ca, &tls.cert, &tls.key) else {
        return Err(EngineError::TlsMaterial {
            host: host.to_string(),
            reason: format!("missing {}", missing.join(", ")),
        });
    };
    crate::registry::install_crypto_provider();
    Ok(Docker::connect_with_ssl(
        host,
        key,
        cert,
        ca,
        secs,
        bollard::API_DEFAULT_VERSION,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockercfg::context::EndpointSource;

    fn endpoint(host: &str) -> EngineEndpoint {
        EngineEndpoint {
            host: host.into(),
            context: "default".into(),
            source: EndpointSource::HostFlag,
            tls: None,
        }
    }

    #[test]
    fn missing_socket_names_the_endpoint_and_the_fix() {
        let err = Engine::connect(
            &endpoint("unix:///nonexistent/docker.sock"),
            DEFAULT_TIMEOUT,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("unix:///nonexistent/docker.sock"), "{err}");
        assert!(err.contains("-H/--host"), "{err}");
    }

    #[test]
    fn ssh_endpoint_is_refused_with_a_workaround() {
        let err = Engine::connect(&endpoint("ssh://u@h"), DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ssh -L"), "{err}");
    }

    #[test]
    fn tls_without_client_material_lists_what_is_missing() {
        let mut ep = endpoint("tcp://127.0.0.1:2376");
        ep.tls = Some(TlsSettings {
            verify: true,
            ca: Some("/ca.pem".into()),
            cert: None,
            key: None,
        });
        let err = Engine::connect(&ep, DEFAULT_TIMEOUT)
            .unwrap_err()
            .to_string();
        assert!(err.contains("missing cert, key"), "{err}");
    }

    #[tokio::test]
    async fn refused_connection_is_reported_not_panicked() {
        // A socket file that nobody listens on.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let host = format!("unix://{}", path.display());
        let engine = Engine::connect(&endpoint(&host), DEFAULT_TIMEOUT).unwrap();
        let err = engine.version().await.unwrap_err().to_string();
        assert!(err.contains(&host), "{err}");
    }
}
