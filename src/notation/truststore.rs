//! notation's trust store, in notation's own layout so both tools share it:
//! `{NOTATION_CONFIG}/truststore/x509/{ca,signingAuthority,tsa}/<name>/<certificate files>`,
//! with `NOTATION_CONFIG` from the environment or the per-OS default (Go's
//! `os.UserConfigDir()/notation`). The rules are notation-go's `truststore.GetCertificates`: the
//! store is a real directory of regular files (no symlinks, no sub-directories), every file is
//! PEM or DER certificates, each a CA or self-signed, and an empty store is an error.

use std::path::{Path, PathBuf};

use der::{Decode, DecodePem};
use x509_cert::Certificate;
use x509_cert::ext::pkix::BasicConstraints;

use super::chain::is_self_signed;
use super::policy::{StoreType, is_store_name};

/// Largest certificate file read.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most files read from one store.
pub const MAX_FILES: usize = 256;

/// Why a trust store cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TrustStoreError {
    /// No config directory can be found.
    #[error("cannot find notation's config directory: set NOTATION_CONFIG or HOME")]
    NoConfigDir,
    /// The store does not exist.
    #[error(
        "trust store {store} does not exist at {path}: create it with `docker trustacr policy init REPO --cert FILE` or `notation cert add`"
    )]
    Missing {
        /// `type:name`.
        store: String,
        /// Its directory.
        path: PathBuf,
    },
    /// A rule of the layout.
    #[error("trust store {store}: {reason}")]
    Invalid {
        /// `type:name`.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// I/O.
    #[error("trust store {store}: cannot read {path}: {source}")]
    Io {
        /// `type:name`.
        store: String,
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// notation's config directory: `$NOTATION_CONFIG`, else the per-OS default.
pub fn config_dir() -> Result<PathBuf, TrustStoreError> {
    config_dir_from(|k| std::env::var_os(k))
}

/// [`config_dir`] with the environment passed in (tests).
pub fn config_dir_from(
    env: impl Fn(&str) -> Option<std::ffi::OsString>,
) -> Result<PathBuf, TrustStoreError> {
    let set = |k: &str| env(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(p) = set("NOTATION_CONFIG") {
        return Ok(p);
    }
    let base = if cfg!(windows) {
        set("AppData")
    } else if cfg!(target_os = "macos") {
        set("HOME").map(|h| h.join("Library").join("Application Support"))
    } else {
        set("XDG_CONFIG_HOME").or_else(|| set("HOME").map(|h| h.join(".config")))
    };
    base.map(|b| b.join("notation"))
        .ok_or(TrustStoreError::NoConfigDir)
}

/// The `truststore/x509` tree under a config directory.
#[derive(Debug, Clone)]
pub struct TrustStore {
    x509: PathBuf,
}

/// A certificate from a store: its DER (compared byte for byte with the signature's chain) and
/// the parsed form.
#[derive(Debug, Clone)]
pub struct StoreCertificate {
    /// DER bytes.
    pub der: Vec<u8>,
    /// Parsed.
    pub cert: Certificate,
}

impl TrustStore {
    /// The store tree of a notation config directory.
    pub fn new(config_dir: &Path) -> Self {
        Self {
            x509: config_dir.join("truststore").join("x509"),
        }
    }

    /// Directory of one named store.
    pub fn path(&self, kind: StoreType, name: &str) -> PathBuf {
        self.x509.join(kind.dir_name()).join(name)
    }

    /// Every certificate of one named store, by notation's rules.
    pub fn certificates(
        &self,
        kind: StoreType,
        name: &str,
    ) -> Result<Vec<StoreCertificate>, TrustStoreError> {
        let store = format!("{}:{name}", kind.dir_name());
        let invalid = |reason: String| TrustStoreError::Invalid {
            store: store.clone(),
            reason,
        };
        if !is_store_name(name) {
            return Err(invalid(
                "the name must be letters, digits, '_', '.', '-'".into(),
            ));
        }
        let dir = self.path(kind, name);
        let io = |path: &Path, source| TrustStoreError::Io {
            store: store.clone(),
            path: path.to_path_buf(),
            source,
        };
        let meta = match std::fs::symlink_metadata(&dir) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(TrustStoreError::Missing {
                    store: store.clone(),
                    path: dir,
                });
            }
            Err(e) => return Err(io(&dir, e)),
        };
        if !meta.is_dir() {
            return Err(invalid(format!(
                "{} is not a directory (symbolic links are refused)",
                dir.display()
            )));
        }
        let mut entries = std::fs::read_dir(&dir)
            .map_err(|e| io(&dir, e))?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io(&dir, e))?;
        entries.sort();
        if entries.len() > MAX_FILES {
            return Err(invalid(format!(
                "{} files, over the limit of {MAX_FILES}",
                entries.len()
            )));
        }
        let mut out = Vec::new();
        for path in entries {
            let m = std::fs::symlink_metadata(&path).map_err(|e| io(&path, e))?;
            if !m.is_file() {
                return Err(invalid(format!(
                    "{} is not a regular file (sub-directories and symbolic links are refused)",
                    path.display()
                )));
            }
            if m.len() > MAX_FILE_BYTES {
                return Err(invalid(format!(
                    "{} is over {MAX_FILE_BYTES} bytes",
                    path.display()
                )));
            }
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let certs = parse_certificates(&bytes)
                .map_err(|reason| invalid(format!("{}: {reason}", path.display())))?;
            for c in certs {
                if !is_ca(&c.cert) && !is_self_signed(&c.cert) {
                    return Err(invalid(format!(
                        "{}: certificate {} is neither a CA nor self-signed",
                        path.display(),
                        super::chain::subject_string(&c.cert)
                    )));
                }
                out.push(c);
            }
        }
        if out.is_empty() {
            return Err(invalid(format!("{} holds no certificates", dir.display())));
        }
        Ok(out)
    }

    /// Writes one certificate (PEM) into a store, creating it. Refuses to overwrite a different
    /// file of the same name; the same bytes again are fine.
    pub fn add_certificate(
        &self,
        kind: StoreType,
        name: &str,
        file_name: &str,
        pem: &[u8],
    ) -> Result<PathBuf, TrustStoreError> {
        let store = format!("{}:{name}", kind.dir_name());
        let invalid = |reason: String| TrustStoreError::Invalid {
            store: store.clone(),
            reason,
        };
        if !is_store_name(name) || !is_store_name(file_name) {
            return Err(invalid(format!(
                "store and file names must be letters, digits, '_', '.', '-' (got {name:?}, {file_name:?})"
            )));
        }
        let dir = self.path(kind, name);
        std::fs::create_dir_all(&dir).map_err(|e| TrustStoreError::Io {
            store: store.clone(),
            path: dir.clone(),
            source: e,
        })?;
        let path = dir.join(file_name);
        match std::fs::read(&path) {
            Ok(old) if old == pem => return Ok(path),
            Ok(_) => {
                return Err(invalid(format!(
                    "{} already exists with other content; remove it or pick another store name",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(TrustStoreError::Io {
                    store,
                    path,
                    source: e,
                });
            }
        }
        std::fs::write(&path, pem).map_err(|e| TrustStoreError::Io {
            store,
            path: path.clone(),
            source: e,
        })?;
        Ok(path)
    }
}

fn is_ca(cert: &Certificate) -> bool {
    matches!(
        cert.tbs_certificate().get_extension::<BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    )
}

/// Parses a file of PEM certificates, or one DER certificate.
pub fn parse_certificates(bytes: &[u8]) -> Result<Vec<StoreCertificate>, String> {
    let text = std::str::from_utf8(bytes).ok();
    if let Some(text) = text.filter(|t| t.contains("-----BEGIN")) {
        let blocks = pem::parse_many(text).map_err(|e| format!("not PEM: {e}"))?;
        let mut out = Vec::new();
        for b in blocks {
            if b.tag() != "CERTIFICATE" {
                return Err(format!("holds a {} PEM block, not a CERTIFICATE", b.tag()));
            }
            let cert = Certificate::from_der(b.contents()).map_err(|e| e.to_string())?;
            out.push(StoreCertificate {
                der: b.contents().to_vec(),
                cert,
            });
        }
        if out.is_empty() {
            return Err("holds no certificate".into());
        }
        return Ok(out);
    }
    let cert = Certificate::from_der(bytes).map_err(|e| format!("not PEM or DER X.509: {e}"))?;
    Ok(vec![StoreCertificate {
        der: bytes.to_vec(),
        cert,
    }])
}

/// Parses one PEM certificate (for `policy init --cert`).
pub fn parse_pem_certificate(pem: &[u8]) -> Result<Certificate, String> {
    Certificate::from_pem(pem).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_config_comes_from_the_environment_first() {
        let env = |k: &str| match k {
            "NOTATION_CONFIG" => Some("/cfg".into()),
            "HOME" => Some("/home/u".into()),
            _ => None,
        };
        assert_eq!(config_dir_from(env).unwrap(), PathBuf::from("/cfg"));
        let env = |k: &str| (k == "HOME").then(|| "/home/u".into());
        let d = config_dir_from(env).unwrap();
        assert!(d.ends_with("notation") && d.starts_with("/home/u"), "{d:?}");
        assert!(config_dir_from(|_| None).is_err());
    }

    #[test]
    fn a_missing_store_and_a_bad_store_name_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ts = TrustStore::new(tmp.path());
        assert!(matches!(
            ts.certificates(StoreType::Ca, "absent"),
            Err(TrustStoreError::Missing { .. })
        ));
        assert!(matches!(
            ts.certificates(StoreType::Ca, "../x"),
            Err(TrustStoreError::Invalid { .. })
        ));
    }
}
