//! Docker's client configuration, read the way the docker CLI reads it: the config directory,
//! `config.json`, contexts (the engine endpoint) and registry credentials.
//!
//! Everything here reads, except the credential helper calls that `login` and `logout` make
//! (`store`, `erase`): docker's own files are never written.
//! Resolution takes an [`Environment`] snapshot instead of reading process variables, so each rule
//! can be tested in isolation.

pub mod context;
pub mod credentials;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Files under the config dir that we read are capped at this size: a config.json or
/// context meta.json is a few KiB, and anything far bigger is not one.
pub const MAX_CONFIG_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// The environment variables docker's client reads, captured once.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `HOME` (`USERPROFILE` on Windows).
    pub home: Option<PathBuf>,
    /// `DOCKER_CONFIG`
    pub docker_config: Option<PathBuf>,
    /// `DOCKER_HOST`
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`
    pub docker_context: Option<String>,
    /// `DOCKER_TLS`
    pub docker_tls: Option<String>,
    /// `DOCKER_TLS_VERIFY`
    pub docker_tls_verify: Option<String>,
    /// `DOCKER_CERT_PATH`
    pub docker_cert_path: Option<PathBuf>,
}

impl Environment {
    /// Reads the process environment. Empty values count as unset, as in the docker CLI.
    pub fn from_process() -> Self {
        fn var(name: &str) -> Option<String> {
            std::env::var(name).ok().filter(|v| !v.is_empty())
        }
        let home_var = if cfg!(windows) { "USERPROFILE" } else { "HOME" };
        Environment {
            home: var(home_var).map(PathBuf::from),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            docker_tls: var("DOCKER_TLS"),
            docker_tls_verify: var("DOCKER_TLS_VERIFY"),
            docker_cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
        }
    }
}

/// How the config directory was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConfigDirSource {
    /// `--config DIR`
    Flag,
    /// `DOCKER_CONFIG`
    Env,
    /// `$HOME/.docker`
    Default,
}

impl fmt::Display for ConfigDirSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConfigDirSource::Flag => "--config flag",
            ConfigDirSource::Env => "DOCKER_CONFIG",
            ConfigDirSource::Default => "default: $HOME/.docker",
        })
    }
}

/// The docker config directory (`~/.docker` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir {
    /// Its path.
    pub path: PathBuf,
    /// How it was chosen.
    pub source: ConfigDirSource,
}

/// Errors reading docker's configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No `--config`, no `DOCKER_CONFIG` and no home directory.
    #[error(
        "cannot find the docker config directory: HOME is not set; set DOCKER_CONFIG or pass --config DIR"
    )]
    NoHome,
    /// A file exists but cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file is larger than any config file docker writes.
    #[error("{path} is larger than {limit} bytes; it is not a docker config file")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// A file is not valid JSON of the expected shape.
    #[error("{path} is not valid docker configuration JSON: {at}; fix or remove the file")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What kind of problem, and where; never the text found there.
        at: JsonProblem,
    },
}

/// Where and what kind of problem a JSON document has, without serde's own message: that
/// message quotes the value it choked on, and in `config.json` or a credential helper's answer
/// that value is often a secret (#8 item 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonProblem {
    /// What went wrong.
    pub category: serde_json::error::Category,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl From<&serde_json::Error> for JsonProblem {
    fn from(e: &serde_json::Error) -> Self {
        JsonProblem {
            category: e.classify(),
            line: e.line(),
            column: e.column(),
        }
    }
}

impl fmt::Display for JsonProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use serde_json::error::Category;
        let what = match self.category {
            Category::Io => "read error",
            Category::Syntax => "syntax error",
            Category::Data => "a value of the wrong type or shape",
            Category::Eof => "unexpected end of input",
        };
        write!(f, "{what} at line {}, column {}", self.line, self.column)
    }
}

impl ConfigDir {
    /// Chooses the config dir as the docker CLI does: `--config`, else `DOCKER_CONFIG`, else
    /// `$HOME/.docker`.
    pub fn resolve(flag: Option<&Path>, env: &Environment) -> Result<Self, ConfigError> {
        if let Some(p) = flag {
            return Ok(ConfigDir {
                path: p.to_path_buf(),
                source: ConfigDirSource::Flag,
            });
        }
        if let Some(p) = &env.docker_config {
            return Ok(ConfigDir {
                path: p.clone(),
                source: ConfigDirSource::Env,
            });
        }
        let home = env.home.as_ref().ok_or(ConfigError::NoHome)?;
        Ok(ConfigDir {
            path: home.join(".docker"),
            source: ConfigDirSource::Default,
        })
    }

    /// `<config dir>/config.json`
    pub fn config_file(&self) -> PathBuf {
        self.path.join("config.json")
    }

    /// `<config dir>/trust`, where docker keeps Notary trust data (shared with `docker trust`).
    pub fn trust_dir(&self) -> PathBuf {
        self.path.join("trust")
    }

    /// Loads `config.json`; a missing file is an empty configuration, as for docker.
    pub fn load(&self) -> Result<ConfigFile, ConfigError> {
        Ok(read_json_file(&self.config_file())?.unwrap_or_default())
    }
}

/// Reads a small JSON file; `Ok(None)` when it does not exist.
pub(crate) fn read_json_file<T: serde::de::DeserializeOwned>(
    path: &Path,
) -> Result<Option<T>, ConfigError> {
    use std::io::Read;
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    if bytes.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(ConfigError::TooLarge {
            path: path.to_path_buf(),
            limit: MAX_CONFIG_FILE_BYTES,
        });
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            at: JsonProblem::from(&e),
        })
}

/// The parts of `config.json` this plugin uses. Unknown keys are ignored, as docker does.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigFile {
    /// Inline credentials per registry.
    #[serde(default)]
    pub auths: BTreeMap<String, AuthEntry>,
    /// Default credential helper suffix (`docker-credential-<x>`).
    #[serde(default)]
    pub creds_store: Option<String>,
    /// Credential helper per registry host.
    #[serde(default)]
    pub cred_helpers: BTreeMap<String, String>,
    /// The current context name.
    #[serde(default)]
    pub current_context: Option<String>,
}

/// One `auths` entry. Secrets stay in [`crate::secret::Secret`] once decoded.
#[derive(Clone, Default, Deserialize)]
pub struct AuthEntry {
    /// base64("user:password")
    #[serde(default)]
    pub auth: Option<String>,
    /// Username, in older files.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, in older files.
    #[serde(default)]
    pub password: Option<String>,
    /// A refresh token for the registry's token service (ACR refresh tokens land here).
    #[serde(default)]
    pub identitytoken: Option<String>,
    /// A bearer token sent to the registry as is.
    #[serde(default)]
    pub registrytoken: Option<String>,
}

impl fmt::Debug for AuthEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Field presence only: these fields are secrets.
        f.debug_struct("AuthEntry")
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field(
                "identitytoken",
                &self.identitytoken.as_ref().map(|_| "<redacted>"),
            )
            .field(
                "registrytoken",
                &self.registrytoken.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_dir_precedence_is_flag_then_env_then_home() {
        let env = Environment {
            home: Some("/home/u".into()),
            docker_config: Some("/env/cfg".into()),
            ..Default::default()
        };
        let d = ConfigDir::resolve(Some(Path::new("/flag")), &env).unwrap();
        assert_eq!(
            (d.path.as_path(), d.source),
            (Path::new("/flag"), ConfigDirSource::Flag)
        );
        let d = ConfigDir::resolve(None, &env).unwrap();
        assert_eq!(
            (d.path.as_path(), d.source),
            (Path::new("/env/cfg"), ConfigDirSource::Env)
        );
        let env = Environment {
            home: Some("/home/u".into()),
            ..Default::default()
        };
        let d = ConfigDir::resolve(None, &env).unwrap();
        assert_eq!(d.path, Path::new("/home/u/.docker"));
        assert_eq!(d.source, ConfigDirSource::Default);
        assert!(matches!(
            ConfigDir::resolve(None, &Environment::default()),
            Err(ConfigError::NoHome)
        ));
    }

    #[test]
    fn missing_config_file_is_empty_and_broken_one_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let cd = ConfigDir {
            path: dir.path().into(),
            source: ConfigDirSource::Flag,
        };
        let cfg = cd.load().unwrap();
        assert!(cfg.auths.is_empty() && cfg.current_context.is_none());
        std::fs::write(cd.config_file(), "{not json").unwrap();
        let err = cd.load().unwrap_err();
        assert!(err.to_string().contains("config.json"), "{err}");
    }

    #[test]
    fn config_file_fields_are_read_and_unknown_keys_ignored() {
        let cfg: ConfigFile = serde_json::from_str(
            r#"{"auths":{"r.io":{"auth":"dTpw","identitytoken":"t"}},"credsStore":"pass",
                "credHelpers":{"x.azurecr.io":"acr-env"},"currentContext":"c1","HttpHeaders":{}}"#,
        )
        .unwrap();
        assert_eq!(cfg.creds_store.as_deref(), Some("pass"));
        assert_eq!(cfg.cred_helpers["x.azurecr.io"], "acr-env");
        assert_eq!(cfg.current_context.as_deref(), Some("c1"));
        assert_eq!(cfg.auths["r.io"].identitytoken.as_deref(), Some("t"));
        let dbg = format!("{:?}", cfg.auths["r.io"]);
        assert!(!dbg.contains("dTpw") && dbg.contains("redacted"), "{dbg}");
    }
}
