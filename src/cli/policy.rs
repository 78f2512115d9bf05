//! `policy init REPO --cert FILE`: the common Notary Project setup in one step, written in
//! notation's own files so `notation verify` and this plugin read the same trust: the
//! certificate goes into the trust store `ca:<name>`, and `trustpolicy.oci.json` gets one strict
//! statement for the repository that trusts that store and, for a signing certificate, exactly
//! its subject.

use std::path::{Path, PathBuf};

use super::{Context, Error};
use crate::notation::chain;
use crate::notation::policy::{
    MAX_POLICY_BYTES, PolicyError, SignatureVerificationJson, StatementJson, StoreType,
    upsert_statement,
};
use crate::notation::truststore::{self, TrustStore, TrustStoreError, parse_certificates};
use crate::reference::ImageRef;

/// The OCI trust policy file notation reads first.
pub const POLICY_FILE: &str = "trustpolicy.oci.json";

/// Arguments of `policy`.
#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    command: PolicyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum PolicyCommand {
    /// Trust one certificate for one repository: add it to notation's trust store and write a
    /// strict trust policy statement for the repository.
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
struct InitArgs {
    /// The repository, e.g. myregistry.azurecr.io/app (no tag).
    #[arg(value_name = "REPO")]
    repo: String,
    /// The signing certificate (self-signed leaf) or the root CA certificate, PEM.
    #[arg(long, value_name = "FILE")]
    cert: PathBuf,
    /// Trust store name (default: derived from the repository).
    #[arg(long, value_name = "NAME")]
    store: Option<String>,
    /// Replace an existing statement for the repository.
    #[arg(long)]
    force: bool,
}

/// Errors of `policy init`.
#[derive(Debug, thiserror::Error)]
pub enum PolicyInitError {
    /// The certificate file cannot be used.
    #[error("{path}: {reason}")]
    Certificate {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The existing or new policy is invalid, or the statement exists.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The trust store could not be written.
    #[error(transparent)]
    Store(#[from] TrustStoreError),
    /// Reading or writing the policy file.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl PolicyArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        match self.command {
            PolicyCommand::Init(args) => args.run(ctx.out),
        }
    }
}

impl InitArgs {
    fn run(self, out: super::Output) -> Result<(), Error> {
        let image = ImageRef::parse(&self.repo)?;
        if image.tag.is_some() {
            return Err(Error::Usage(format!(
                "{}: give a repository without a tag",
                self.repo
            )));
        }
        let scope = image.gun();
        let config = truststore::config_dir().map_err(PolicyInitError::from)?;
        let store = self.store.clone().unwrap_or_else(|| store_name(&scope));
        let written = init(&config, &scope, &self.cert, &store, self.force)?;
        out.status(format_args!(
            "Trust store ca:{store}: {}",
            written.cert.display()
        ));
        out.status(format_args!(
            "Trust policy {}: statement {:?} for {scope} (level strict, identity {})",
            written.policy.display(),
            written.statement,
            written.identity
        ));
        out.emit_json(&serde_json::json!({
            "scope": scope,
            "trust_store": format!("ca:{store}"),
            "certificate": written.cert,
            "policy_file": written.policy,
            "statement": written.statement,
            "identity": written.identity,
        }))
    }
}

/// What `policy init` wrote.
#[derive(Debug)]
pub struct Written {
    /// The certificate file in the store.
    pub cert: PathBuf,
    /// The policy file.
    pub policy: PathBuf,
    /// The statement's name.
    pub statement: String,
    /// The trusted identity.
    pub identity: String,
}

/// A store name from a repository: notation allows letters, digits, `_`, `.`, `-`.
fn store_name(scope: &str) -> String {
    scope
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 4514 escaping of a DN value, as notation's parser reads it back.
fn escape_dn_value(v: &str) -> String {
    let mut out = String::new();
    for (i, c) in v.chars().enumerate() {
        let edge = (i == 0 && (c == ' ' || c == '#')) || (i + 1 == v.chars().count() && c == ' ');
        if edge || ",;+\\\"<>=".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Does the work of `policy init` under a notation config directory. Everything is checked
/// before anything is written, and the store is written before the policy that names it.
pub fn init(
    config: &Path,
    scope: &str,
    cert_file: &Path,
    store: &str,
    force: bool,
) -> Result<Written, PolicyInitError> {
    let cert_err = |reason: String| PolicyInitError::Certificate {
        path: cert_file.to_path_buf(),
        reason,
    };
    let bytes = std::fs::read(cert_file).map_err(|e| cert_err(e.to_string()))?;
    let certs = parse_certificates(&bytes).map_err(cert_err)?;
    let [c] = certs.as_slice() else {
        return Err(cert_err(format!(
            "holds {} certificates; give the one certificate to trust (the signing certificate, or the root CA)",
            certs.len()
        )));
    };
    let is_ca = matches!(
        c.cert
            .tbs_certificate()
            .get_extension::<x509_cert::ext::pkix::BasicConstraints>(),
        Ok(Some((_, bc))) if bc.ca
    );
    let identity = if is_ca {
        if !chain::is_self_signed(&c.cert) {
            return Err(cert_err(
                "is an intermediate CA; trust the root CA (the self-signed one)".into(),
            ));
        }
        "*".to_string()
    } else {
        // A signing certificate: it must be one notation accepts, and we trust its subject.
        chain::validate_code_signing_chain(std::slice::from_ref(&c.cert))
            .map_err(|e| cert_err(e.to_string()))?;
        let attrs = chain::subject_attributes(&c.cert).map_err(|e| cert_err(e.to_string()))?;
        let dn: Vec<String> = attrs
            .iter()
            .map(|(k, v)| format!("{k}={}", escape_dn_value(v)))
            .collect();
        format!("x509.subject: {}", dn.join(", "))
    };
    let policy_path = config.join(POLICY_FILE);
    let existing = match std::fs::metadata(&policy_path) {
        Ok(m) if m.len() > MAX_POLICY_BYTES as u64 => {
            return Err(
                PolicyError::Invalid(format!("{} is too large", policy_path.display())).into(),
            );
        }
        Ok(_) => Some(
            std::fs::read(&policy_path).map_err(|source| PolicyInitError::Io {
                path: policy_path.clone(),
                source,
            })?,
        ),
        Err(_) => None,
    };
    let statement = StatementJson {
        name: store.to_string(),
        registry_scopes: vec![scope.to_string()],
        signature_verification: SignatureVerificationJson {
            level: "strict".into(),
            overrides: Default::default(),
            verify_timestamp: None,
        },
        trust_stores: vec![format!("ca:{store}")],
        trusted_identities: vec![identity.clone()],
    };
    let new_policy = upsert_statement(existing.as_deref(), statement, force)?;
    let pem = pem::encode(&pem::Pem::new("CERTIFICATE", c.der.clone()));
    let cert = TrustStore::new(config).add_certificate(
        StoreType::Ca,
        store,
        &format!("{store}.crt"),
        pem.as_bytes(),
    )?;
    let io = |source| PolicyInitError::Io {
        path: policy_path.clone(),
        source,
    };
    std::fs::create_dir_all(config).map_err(io)?;
    // Written whole, then renamed: a reader never sees half a policy.
    let tmp = config.join(format!(".{POLICY_FILE}.tmp"));
    std::fs::write(&tmp, &new_policy).map_err(io)?;
    std::fs::rename(&tmp, &policy_path).map_err(io)?;
    let statement = crate::notation::policy::Policy::parse(&new_policy)?
        .statement_for(scope)?
        .name
        .clone();
    Ok(Written {
        cert,
        policy: policy_path,
        statement,
        identity,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_from_repositories_are_valid_store_names() {
        let n = store_name("localhost:5000/team/app");
        assert!(crate::notation::policy::is_store_name(&n), "{n}");
    }

    #[test]
    fn dn_values_are_escaped_so_notation_reads_them_back() {
        let v = escape_dn_value("Acme, Inc.");
        let dn = crate::notation::policy::parse_dn(&format!("C=US, ST=WA, O={v}")).unwrap();
        assert_eq!(dn["O"], "Acme, Inc.");
    }
}
