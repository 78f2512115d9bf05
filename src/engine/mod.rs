//! The Docker engine, reached through bollard at the endpoint docker's own rules chose.
//!
//! This module owns the connection, push, pull and tag. It never talks to registries itself:
//! the engine does that with the credentials we hand it.

pub mod platform;
pub mod progress;
mod raw;
pub mod stream;

use std::time::Duration;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use futures_util::StreamExt;

use crate::dockercfg::credentials::Credential;
use crate::tuf::trusted::VerifiedDigest;
use progress::Progress;

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
    /// Pushing failed; nothing was signed.
    #[error("pushing {reference} failed: {message}")]
    Push {
        /// image:tag
        reference: String,
        /// The engine's message.
        message: String,
    },
    /// The push stream ended without the digest line.
    #[error(
        "the engine pushed {reference} but did not report its digest; check the registry and sign it with `docker trustacr sign {reference}`"
    )]
    NoDigest {
        /// image:tag
        reference: String,
    },
    /// Pulling failed.
    #[error("pulling {reference} failed: {message}")]
    Pull {
        /// image@digest
        reference: String,
        /// The engine's message.
        message: String,
    },
    /// The image the engine pulled for a signed digest is not the platform asked for.
    #[error(
        "{reference}: asked for {wanted}, but the image the engine pulled is {got}; it was not tagged. Check that the signed image exists for {wanted} (docker manifest inspect), or pull without --platform"
    )]
    PlatformMismatch {
        /// image@digest
        reference: String,
        /// What --platform asked for.
        wanted: String,
        /// What the engine's image is.
        got: String,
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
    /// Where pushes are sent directly (unix socket or plain TCP), to read the layer ids;
    /// `None` (TLS, named pipes) pushes through bollard, without them.
    raw: Option<raw::Target>,
    timeout: Duration,
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
        })?
        .with_request_modifier(fix_registry_auth_encoding);
        let raw = match (&endpoint.tls, unix_socket_path(&host)) {
            (_, Some(path)) => Some(raw::Target::Unix(path.to_path_buf())),
            (None, None) => ["tcp://", "http://"]
                .iter()
                .find_map(|p| host.strip_prefix(p))
                .map(|addr| raw::Target::Tcp(addr.trim_end_matches('/').to_string())),
            (Some(_), None) => None,
        };
        Ok(Engine {
            docker,
            host,
            raw,
            timeout,
        })
    }

    /// The endpoint this client talks to.
    pub fn host(&self) -> &str {
        &self.host
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

/// The engine decodes `X-Registry-Auth` as base64url and silently ignores a header it cannot
/// decode, pushing or pulling anonymously; bollard 0.21 encodes with the standard alphabet.
/// Both alphabets pad alike, so swapping the two differing characters is the whole fix.
fn fix_registry_auth_encoding(mut req: bollard::BollardRequest) -> bollard::BollardRequest {
    let fixed = req
        .headers()
        .get("X-Registry-Auth")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.contains(['+', '/']))
        .map(|v| v.replace('+', "-").replace('/', "_"));
    if let Some(v) = fixed.and_then(|f| http::HeaderValue::from_str(&f).ok()) {
        req.headers_mut().insert("X-Registry-Auth", v);
    }
    req
}

/// The engine's form of a registry credential.
pub fn engine_credentials(credential: &Credential, registry: &str) -> Option<DockerCredentials> {
    let base = DockerCredentials {
        serveraddress: Some(registry.to_string()),
        ..Default::default()
    };
    match credential {
        Credential::Anonymous => None,
        Credential::Basic { username, password } => Some(DockerCredentials {
            username: Some(username.clone()),
            password: Some(password.expose().to_string()),
            ..base
        }),
        Credential::IdentityToken { username, token } => Some(DockerCredentials {
            username: username.clone(),
            identitytoken: Some(token.expose().to_string()),
            ..base
        }),
        Credential::RegistryToken(token) => Some(DockerCredentials {
            registrytoken: Some(token.expose().to_string()),
            ..base
        }),
    }
}

/// A local image, as far as pull checks it.
#[derive(Debug, Clone)]
pub struct LocalImage {
    /// The engine's image id (`sha256:…`).
    pub id: String,
    /// `name@digest` for each registry digest the engine pulled it by.
    pub repo_digests: Vec<String>,
    /// From its configuration.
    pub os: String,
    /// From its configuration.
    pub architecture: String,
    /// From its configuration.
    pub variant: Option<String>,
}

impl LocalImage {
    /// `os/arch[/variant]`.
    pub fn platform(&self) -> String {
        match &self.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", self.os, self.architecture),
            _ => format!("{}/{}", self.os, self.architecture),
        }
    }
}

/// What a push reported for the tag: the manifest digest and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:<hex>`
    pub digest: String,
    /// The raw sha256.
    pub sha256: [u8; 32],
    /// Manifest size in bytes.
    pub size: u64,
}

/// Parses the status line `<tag>: digest: <digest> size: <n>` the engine prints after a push
/// (the aux message carrying the same is dropped by bollard 0.21, and the containerd image store
/// only prints this line).
pub fn parse_push_digest(status: &str, tag: &str) -> Option<Pushed> {
    let rest = status.strip_prefix(tag)?.strip_prefix(": digest: ")?;
    let (digest, size) = rest.split_once(" size: ")?;
    let sha256: [u8; 32] = hex::decode(digest.strip_prefix("sha256:")?)
        .ok()?
        .try_into()
        .ok()?;
    Some(Pushed {
        digest: digest.to_string(),
        sha256,
        size: size.trim().parse().ok()?,
    })
}

impl Engine {
    /// Pushes `name:tag` and returns the digest and size the engine reports for it.
    pub async fn push(
        &self,
        name: &str,
        tag: &str,
        credentials: Option<DockerCredentials>,
        progress: &mut Progress,
    ) -> Result<Pushed, EngineError> {
        let reference = format!("{name}:{tag}");
        if let Some(target) = &self.raw {
            let pushed = raw::push(
                target,
                self.timeout,
                name,
                tag,
                credentials.as_ref(),
                progress,
            )
            .await
            .map_err(|message| EngineError::Push {
                reference: reference.clone(),
                message,
            })?;
            return pushed.ok_or(EngineError::NoDigest { reference });
        }
        let options = bollard::query_parameters::PushImageOptionsBuilder::default()
            .tag(tag)
            .build();
        let mut stream = self.docker.push_image(name, Some(options), credentials);
        let mut pushed = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::Push {
                reference: reference.clone(),
                message: engine_message(&e),
            })?;
            if let Some(status) = info.status.as_deref() {
                if let Some(p) = parse_push_digest(status, tag) {
                    pushed = Some(p);
                }
                let (current, total) = info
                    .progress_detail
                    .as_ref()
                    .map_or((None, None), |d| (d.current, d.total));
                progress.update(None, status, current, total);
            }
        }
        pushed.ok_or(EngineError::NoDigest { reference })
    }

    /// Pulls `name@digest` for a digest the trust core verified (nothing else is accepted);
    /// returns the digest the engine reported, if it printed one.
    pub async fn pull_by_digest(
        &self,
        name: &str,
        verified: &VerifiedDigest,
        platform: Option<&platform::Platform>,
        credentials: Option<DockerCredentials>,
        progress: &mut Progress,
    ) -> Result<Option<String>, EngineError> {
        let digest = verified.digest();
        let reference = format!("{name}@{digest}");
        let mut options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_image(name)
            .tag(&digest);
        if let Some(p) = platform {
            options = options.platform(&p.to_string());
        }
        let options = options.build();
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        let mut reported = None;
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| EngineError::Pull {
                reference: reference.clone(),
                message: engine_message(&e),
            })?;
            if let Some(status) = info.status.as_deref() {
                if let Some(d) = status.strip_prefix("Digest: ") {
                    reported = Some(d.trim().to_string());
                }
                let (current, total) = info
                    .progress_detail
                    .as_ref()
                    .map_or((None, None), |d| (d.current, d.total));
                progress.update(info.id.as_deref(), status, current, total);
            }
        }
        Ok(reported)
    }

    /// What the engine holds locally as `image`.
    pub async fn inspect(&self, image: &str) -> Result<LocalImage, EngineError> {
        let inspect = self
            .docker
            .inspect_image(image)
            .await
            .map_err(|e| EngineError::Pull {
                reference: image.to_string(),
                message: engine_message(&e),
            })?;
        Ok(LocalImage {
            id: inspect.id.unwrap_or_default(),
            repo_digests: inspect.repo_digests.unwrap_or_default(),
            os: inspect.os.unwrap_or_default(),
            architecture: inspect.architecture.unwrap_or_default(),
            variant: inspect.variant,
        })
    }

    /// Tags `source` as `repo:tag`.
    pub async fn tag(&self, source: &str, repo: &str, tag: &str) -> Result<(), EngineError> {
        let options = bollard::query_parameters::TagImageOptionsBuilder::default()
            .repo(repo)
            .tag(tag)
            .build();
        self.docker
            .tag_image(source, Some(options))
            .await
            .map_err(|e| EngineError::Pull {
                reference: source.to_string(),
                message: format!("tagging as {repo}:{tag}: {}", engine_message(&e)),
            })
    }
}

/// The engine's own message from a bollard error, without bollard's wrapping.
fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        // The engine stopped, restarted or dropped the connection in the middle of an answer.
        lost @ (bollard::errors::Error::HyperResponseError { .. }
        | bollard::errors::Error::HyperLegacyError { .. }
        | bollard::errors::Error::IOError { .. }
        | bollard::errors::Error::RequestTimeoutError) => format!(
            "the connection to the Docker engine was lost ({lost}). Check that dockerd is running, then run the command again"
        ),
        other => other.to_string(),
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
    fn push_digest_line_is_parsed_for_our_tag_only() {
        let d = "sha256:607f4e9df84045774c852a9617e3bb91d4b3cfb47e0556128787b6805a52f4f1";
        assert_eq!(
            parse_push_digest(&format!("v1: digest: {d} size: 523"), "v1"),
            Some(Pushed {
                digest: d.into(),
                sha256: hex::decode(&d[7..]).unwrap().try_into().unwrap(),
                size: 523
            })
        );
        assert_eq!(
            parse_push_digest(&format!("v2: digest: {d} size: 523"), "v1"),
            None
        );
        assert_eq!(
            parse_push_digest("v1: digest: sha256:zz size: 1", "v1"),
            None
        );
    }

    #[test]
    fn registry_auth_header_is_rewritten_to_base64url() {
        let req = http::Request::builder()
            .header("X-Registry-Auth", "ab+c/d==")
            .body(bollard::body_full(Default::default()))
            .unwrap();
        let fixed = fix_registry_auth_encoding(req);
        assert_eq!(fixed.headers()["X-Registry-Auth"], "ab-c_d==");
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
