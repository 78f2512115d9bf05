//! Which Docker engine to talk to, resolved as `docker/cli` `cli/command/cli.go` does.
//!
//! Context name: `--context`, else `default` when `-H` or `DOCKER_HOST` is given, else
//! `DOCKER_CONTEXT`, else `currentContext` in config.json, else `default`. The `default` context's
//! host is `-H`, else `DOCKER_HOST`, else the platform socket. A named context lives in
//! `<config dir>/contexts/meta/<sha256(name)>/meta.json`, with TLS files beside it under
//! `contexts/tls/<sha256(name)>/docker/`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{ConfigDir, ConfigError, ConfigFile, Environment};
use crate::plugin::GlobalFlags;

/// Where the engine is when nothing else says.
#[cfg(unix)]
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// Where the engine is when nothing else says.
#[cfg(windows)]
pub const DEFAULT_DOCKER_HOST: &str = "npipe:////./pipe/docker_engine";

/// How the context name was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ContextSource {
    /// `-c/--context`
    Flag,
    /// `DOCKER_CONTEXT`
    Env,
    /// `currentContext` in config.json
    ConfigFile,
}

/// How the engine endpoint was chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum EndpointSource {
    /// `-H/--host`
    HostFlag,
    /// `DOCKER_HOST`
    DockerHostEnv,
    /// A named context.
    Context {
        /// The context name.
        name: String,
        /// How the name was chosen.
        chosen_by: ContextSource,
    },
    /// Nothing was configured: the platform default socket.
    Default,
}

impl fmt::Display for EndpointSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointSource::HostFlag => f.write_str("-H/--host flag"),
            EndpointSource::DockerHostEnv => f.write_str("DOCKER_HOST"),
            EndpointSource::Context { name, chosen_by } => {
                let by = match chosen_by {
                    ContextSource::Flag => "--context flag",
                    ContextSource::Env => "DOCKER_CONTEXT",
                    ContextSource::ConfigFile => "currentContext in config.json",
                };
                write!(f, "context {name:?}, from {by}")
            }
            EndpointSource::Default => f.write_str("default socket"),
        }
    }
}

/// TLS settings for a `tcp://` engine endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    /// Whether the server certificate is verified.
    pub verify: bool,
    /// CA bundle, PEM.
    pub ca: Option<PathBuf>,
    /// Client certificate, PEM.
    pub cert: Option<PathBuf>,
    /// Client key, PEM.
    pub key: Option<PathBuf>,
}

/// A resolved engine endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineEndpoint {
    /// `unix:///…`, `tcp://host:port`, `npipe://…` or `ssh://…`.
    pub host: String,
    /// The context name (`default` for flags, env and the default socket).
    pub context: String,
    /// How it was chosen.
    pub source: EndpointSource,
    /// TLS, for tcp endpoints that use it.
    pub tls: Option<TlsSettings>,
}

/// Errors resolving the engine endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    /// `-H` together with `--context` (docker's own message).
    #[error("conflicting options: cannot specify both --host and --context")]
    HostAndContext,
    /// More than one `-H`.
    #[error("specify only one -H (got {count})")]
    TooManyHosts {
        /// How many were given.
        count: usize,
    },
    /// The named context has no meta.json.
    #[error("context {name:?} does not exist: no {path}; list contexts with `docker context ls`")]
    NotFound {
        /// The context name.
        name: String,
        /// Where its metadata was looked for.
        path: PathBuf,
    },
    /// The context has no docker endpoint.
    #[error("context {name:?} has no docker endpoint in {path}")]
    NoDockerEndpoint {
        /// The context name.
        name: String,
        /// Its meta.json.
        path: PathBuf,
    },
    /// Reading config or context files failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

#[derive(Deserialize)]
struct ContextMeta {
    #[serde(rename = "Endpoints", default)]
    endpoints: std::collections::BTreeMap<String, ContextEndpoint>,
}

#[derive(Deserialize)]
struct ContextEndpoint {
    #[serde(rename = "Host", default)]
    host: Option<String>,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The directory name docker uses for a context: hex(sha256(name)).
pub fn context_dir_name(name: &str) -> String {
    hex::encode(Sha256::digest(name.as_bytes()))
}

/// Resolves the engine endpoint from flags, environment and config, as the docker CLI does.
pub fn resolve_endpoint(
    flags: &GlobalFlags,
    env: &Environment,
    config_dir: &ConfigDir,
    config: &ConfigFile,
) -> Result<EngineEndpoint, ContextError> {
    if !flags.hosts.is_empty() && flags.context.is_some() {
        return Err(ContextError::HostAndContext);
    }
    if flags.hosts.len() > 1 {
        return Err(ContextError::TooManyHosts {
            count: flags.hosts.len(),
        });
    }
    let named = if let Some(name) = &flags.context {
        Some((name.clone(), ContextSource::Flag))
    } else if !flags.hosts.is_empty() || env.docker_host.is_some() {
        None
    } else if let Some(name) = &env.docker_context {
        Some((name.clone(), ContextSource::Env))
    } else {
        config
            .current_context
            .as_ref()
            .filter(|n| !n.is_empty())
            .map(|n| (n.clone(), ContextSource::ConfigFile))
    };

    match named {
        Some((name, chosen_by)) if name != "default" => named_context(&name, chosen_by, config_dir),
        _ => Ok(default_context(flags, env, config_dir)),
    }
}

fn default_context(
    flags: &GlobalFlags,
    env: &Environment,
    config_dir: &ConfigDir,
) -> EngineEndpoint {
    let (host, source) = if let Some(h) = flags.hosts.first() {
        (h.clone(), EndpointSource::HostFlag)
    } else if let Some(h) = &env.docker_host {
        (h.clone(), EndpointSource::DockerHostEnv)
    } else {
        (DEFAULT_DOCKER_HOST.to_string(), EndpointSource::Default)
    };
    let verify = flags.tls_verify || env.docker_tls_verify.is_some();
    let tls_on = verify || flags.tls || env.docker_tls.is_some();
    let tls = (tls_on && is_tcp(&host)).then(|| {
        // Docker's defaults: DOCKER_CERT_PATH, else the config dir, holds {ca,cert,key}.pem.
        let base = env
            .docker_cert_path
            .clone()
            .unwrap_or_else(|| config_dir.path.clone());
        let pick = |flag: &Option<PathBuf>, file: &str| {
            flag.clone()
                .or_else(|| Some(base.join(file)).filter(|p| p.exists()))
        };
        TlsSettings {
            verify,
            ca: pick(&flags.tls_ca_cert, "ca.pem"),
            cert: pick(&flags.tls_cert, "cert.pem"),
            key: pick(&flags.tls_key, "key.pem"),
        }
    });
    EngineEndpoint {
        host,
        context: "default".into(),
        source,
        tls,
    }
}

fn named_context(
    name: &str,
    chosen_by: ContextSource,
    config_dir: &ConfigDir,
) -> Result<EngineEndpoint, ContextError> {
    let id = context_dir_name(name);
    let meta_path = config_dir
        .path
        .join("contexts")
        .join("meta")
        .join(&id)
        .join("meta.json");
    let meta: ContextMeta =
        super::read_json_file(&meta_path)?.ok_or_else(|| ContextError::NotFound {
            name: name.to_string(),
            path: meta_path.clone(),
        })?;
    let endpoint = meta.endpoints.get("docker");
    let host = endpoint
        .and_then(|e| e.host.clone())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ContextError::NoDockerEndpoint {
            name: name.to_string(),
            path: meta_path.clone(),
        })?;
    let tls_dir = config_dir
        .path
        .join("contexts")
        .join("tls")
        .join(&id)
        .join("docker");
    let file = |f: &str| Some(tls_dir.join(f)).filter(|p: &PathBuf| p.exists());
    let (ca, cert, key) = (file("ca.pem"), file("cert.pem"), file("key.pem"));
    let skip_verify = endpoint.is_some_and(|e| e.skip_tls_verify);
    let has_tls = ca.is_some() || cert.is_some() || key.is_some() || skip_verify;
    let tls = (is_tcp(&host) && has_tls).then_some(TlsSettings {
        verify: !skip_verify,
        ca,
        cert,
        key,
    });
    Ok(EngineEndpoint {
        host,
        context: name.to_string(),
        source: EndpointSource::Context {
            name: name.to_string(),
            chosen_by,
        },
        tls,
    })
}

fn is_tcp(host: &str) -> bool {
    host.starts_with("tcp://") || host.starts_with("https://")
}

/// The path of a `unix://` host, if it is one.
pub fn unix_socket_path(host: &str) -> Option<&Path> {
    host.strip_prefix("unix://").map(Path::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dockercfg::ConfigDirSource;

    fn cfg_dir(path: &Path) -> ConfigDir {
        ConfigDir {
            path: path.to_path_buf(),
            source: ConfigDirSource::Flag,
        }
    }

    fn write_context(dir: &Path, name: &str, host: &str) {
        let meta = dir.join("contexts/meta").join(context_dir_name(name));
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(
                r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
            ),
        )
        .unwrap();
    }

    #[test]
    fn context_dir_name_is_sha256_hex_of_the_name() {
        // sha256("default")
        assert_eq!(
            context_dir_name("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
    }

    #[test]
    fn default_socket_when_nothing_is_configured() {
        let dir = tempfile::tempdir().unwrap();
        let ep = resolve_endpoint(
            &GlobalFlags::default(),
            &Environment::default(),
            &cfg_dir(dir.path()),
            &ConfigFile::default(),
        )
        .unwrap();
        assert_eq!(ep.host, DEFAULT_DOCKER_HOST);
        assert_eq!(ep.source, EndpointSource::Default);
        assert_eq!(ep.context, "default");
    }

    #[test]
    fn host_flag_wins_over_docker_host_and_context_env() {
        let dir = tempfile::tempdir().unwrap();
        write_context(dir.path(), "envctx", "unix:///ctx.sock");
        let flags = GlobalFlags {
            hosts: vec!["unix:///flag.sock".into()],
            ..Default::default()
        };
        let env = Environment {
            docker_host: Some("unix:///env.sock".into()),
            docker_context: Some("envctx".into()),
            ..Default::default()
        };
        let ep =
            resolve_endpoint(&flags, &env, &cfg_dir(dir.path()), &ConfigFile::default()).unwrap();
        assert_eq!(
            (ep.host.as_str(), ep.source),
            ("unix:///flag.sock", EndpointSource::HostFlag)
        );
        let ep = resolve_endpoint(
            &GlobalFlags::default(),
            &env,
            &cfg_dir(dir.path()),
            &ConfigFile::default(),
        )
        .unwrap();
        // DOCKER_HOST beats DOCKER_CONTEXT, as in the docker CLI.
        assert_eq!(ep.source, EndpointSource::DockerHostEnv);
        assert_eq!(ep.host, "unix:///env.sock");
    }

    #[test]
    fn context_from_flag_env_and_config_file_in_that_order() {
        let dir = tempfile::tempdir().unwrap();
        for n in ["a", "b", "c"] {
            write_context(dir.path(), n, &format!("unix:///{n}.sock"));
        }
        let cfg = ConfigFile {
            current_context: Some("c".into()),
            ..Default::default()
        };
        let env = Environment {
            docker_context: Some("b".into()),
            ..Default::default()
        };
        let flags = GlobalFlags {
            context: Some("a".into()),
            ..Default::default()
        };
        let d = cfg_dir(dir.path());
        let ep = resolve_endpoint(&flags, &env, &d, &cfg).unwrap();
        assert_eq!(ep.host, "unix:///a.sock");
        assert_eq!(
            ep.source,
            EndpointSource::Context {
                name: "a".into(),
                chosen_by: ContextSource::Flag
            }
        );
        let ep = resolve_endpoint(&GlobalFlags::default(), &env, &d, &cfg).unwrap();
        assert_eq!(ep.host, "unix:///b.sock");
        let ep =
            resolve_endpoint(&GlobalFlags::default(), &Environment::default(), &d, &cfg).unwrap();
        assert_eq!(ep.host, "unix:///c.sock");
        assert_eq!(ep.context, "c");
    }

    #[test]
    fn host_with_context_is_dockers_conflict_error() {
        let flags = GlobalFlags {
            hosts: vec!["unix:///x".into()],
            context: Some("a".into()),
            ..Default::default()
        };
        let err = resolve_endpoint(
            &flags,
            &Environment::default(),
            &cfg_dir(Path::new("/nonexistent")),
            &ConfigFile::default(),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "conflicting options: cannot specify both --host and --context"
        );
    }

    #[test]
    fn unknown_context_names_the_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let flags = GlobalFlags {
            context: Some("nope".into()),
            ..Default::default()
        };
        let err = resolve_endpoint(
            &flags,
            &Environment::default(),
            &cfg_dir(dir.path()),
            &ConfigFile::default(),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("\"nope\"") && msg.contains("meta.json"),
            "{msg}"
        );
    }

    #[test]
    fn tls_material_for_tcp_from_flags_and_cert_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), "x").unwrap();
        let flags = GlobalFlags {
            hosts: vec!["tcp://10.0.0.1:2376".into()],
            tls_verify: true,
            tls_key: Some("/k.pem".into()),
            ..Default::default()
        };
        let env = Environment {
            docker_cert_path: Some(dir.path().into()),
            ..Default::default()
        };
        let ep = resolve_endpoint(
            &flags,
            &env,
            &cfg_dir(Path::new("/cfg")),
            &ConfigFile::default(),
        )
        .unwrap();
        let tls = ep.tls.unwrap();
        assert!(tls.verify);
        assert_eq!(tls.ca, Some(dir.path().join("ca.pem")));
        assert_eq!(tls.cert, None);
        assert_eq!(tls.key, Some("/k.pem".into()));
        // unix sockets never use TLS
        let flags = GlobalFlags {
            hosts: vec!["unix:///s".into()],
            tls_verify: true,
            ..Default::default()
        };
        let ep = resolve_endpoint(
            &flags,
            &env,
            &cfg_dir(Path::new("/cfg")),
            &ConfigFile::default(),
        )
        .unwrap();
        assert!(ep.tls.is_none());
    }
}
