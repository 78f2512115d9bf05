//! Notary Project signing from the command line: the keys (`key generate --notation`, `key
//! import --notation`), choosing the key to sign with, and signing one manifest the registry
//! serves (`sign --notation`, `push --notation`, `migrate`).

use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::keystore::keys::SigningKey;
use crate::keystore::notation::{self as store, NotationSigner};
use crate::notation::certgen::{self, CertRuleError, Subject};
use crate::notation::sign::{self as sig, Descriptor, NotationKey, SignError};
use crate::reference::ImageRef;
use crate::registry::AuthedClient;
use crate::registry::artifact::{self, ArtifactError, Listed};
use crate::registry::endpoint::Endpoint;

/// Errors of Notary Project key handling and signing.
#[derive(Debug, thiserror::Error)]
pub enum NotationError {
    /// A certificate or chain breaks the Notary Project's rules.
    #[error("{0}. Nothing was stored")]
    Certificate(#[from] CertRuleError),
    /// Signing failed.
    #[error(transparent)]
    Sign(#[from] SignError),
    /// Pushing the signature failed.
    #[error(transparent)]
    Artifact(#[from] ArtifactError),
    /// Existing signatures could not be listed.
    #[error(transparent)]
    Discovery(#[from] crate::registry::referrers::ReferrersError),
    /// A key file cannot be used.
    #[error("{path}: {reason}. Nothing was stored")]
    KeyFile {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// The key name cannot be used.
    #[error(
        "{0:?} is not a usable key name: use 1-64 letters, digits, '.', '_' or '-', not starting with '.'"
    )]
    BadName(String),
    /// A key of that name exists; it is never replaced.
    #[error(
        "a Notary Project key named {0:?} is already in the keyring; nothing was changed. Choose another name"
    )]
    Exists(String),
    /// No Notary Project key to sign with.
    #[error(
        "no Notary Project signing key in the keyring; make one with: docker trustacr key generate --notation NAME (or import one with key import --notation KEY CERTCHAIN)"
    )]
    NoKey,
    /// Several keys and none chosen.
    #[error(
        "several Notary Project keys are in the keyring ({0}); choose one with --notation-key NAME"
    )]
    Ambiguous(String),
    /// The chosen key does not exist.
    #[error("no Notary Project key named {0:?} in the keyring (keys: {1})")]
    Unknown(String, String),
}

impl From<NotationError> for Error {
    fn from(e: NotationError) -> Self {
        Error::NotationSign(Box::new(e))
    }
}

async fn blocking<T: Send + 'static>(
    what: &'static str,
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|source| Error::Task { what, source })?
}

/// `key generate --notation NAME`: an ECDSA P-256 key in the keyring and a self-signed
/// certificate by notation's rules, written to `<dir>/NAME.crt` for trust stores.
pub fn generate(
    name: &str,
    subject: Option<&str>,
    days: u32,
    dir: &Path,
) -> Result<PathBuf, Error> {
    if !store::valid_name(name) {
        return Err(NotationError::BadName(name.to_string()).into());
    }
    let subject = match subject {
        Some(s) => Subject::parse(s).map_err(NotationError::from)?,
        None => Subject::default_for(name),
    };
    let path = dir.join(format!("{name}.crt"));
    // Checked before the key is made: a refusal afterwards would leave a key whose certificate
    // nobody has.
    if path.exists() {
        return Err(NotationError::File {
            path: path.display().to_string(),
            reason: "already exists; nothing was changed. Move it away or run the command in another directory".into(),
        }
        .into());
    }
    let SigningKey::P256(sk) = SigningKey::generate_p256()? else {
        return Err(NotationError::Sign(SignError::Key("key generation failed".into())).into());
    };
    let der = certgen::make_signing_certificate(&sk, &subject, days, OffsetDateTime::now_utc())
        .map_err(NotationError::from)?;
    let chain = vec![der];
    if !store::put_new(name, &NotationKey::P256(sk), &chain)? {
        return Err(NotationError::Exists(name.to_string()).into());
    }
    write_new(&path, certgen::to_pem(&chain).as_bytes())?;
    Ok(path)
}

fn write_new(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    use std::io::Write;
    let io = |e: std::io::Error| NotationError::File {
        path: path.display().to_string(),
        reason: e.to_string(),
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    Ok(())
}

/// Reads an unencrypted PKCS#8 private key (`PRIVATE KEY` PEM) and refuses types the Notary
/// Project does not allow, naming them.
fn read_key_file(path: &Path) -> Result<NotationKey, NotationError> {
    let bad = |reason: String| NotationError::KeyFile {
        path: path.display().to_string(),
        reason,
    };
    let text = zeroize::Zeroizing::new(std::fs::read(path).map_err(|e| bad(e.to_string()))?);
    let block = pem::parse(&*text).map_err(|e| bad(format!("not a PEM key ({e})")))?;
    let der = zeroize::Zeroizing::new(block.contents().to_vec());
    match block.tag() {
        "PRIVATE KEY" => {}
        "ENCRYPTED PRIVATE KEY" => {
            return Err(bad("the key is encrypted; give it decrypted for the import (openssl pkcs8 -in KEY -out PLAIN.key), then delete the plain copy".into()));
        }
        other => {
            return Err(bad(format!(
                "a {other:?} PEM block; give a PKCS#8 key (\"PRIVATE KEY\"): openssl pkcs8 -topk8 -nocrypt -in KEY -out PLAIN.key"
            )));
        }
    }
    let info = pkcs8::PrivateKeyInfoRef::try_from(der.as_slice())
        .map_err(|e| bad(format!("not a PKCS#8 key ({e})")))?;
    if info.algorithm.oid.to_string() == "1.3.101.112" {
        return Err(bad("Ed25519 keys cannot sign Notary Project signatures (the specification allows only RSA 2048/3072/4096 and ECDSA P-256/P-384/P-521); make a P-256 key with: docker trustacr key generate --notation NAME".into()));
    }
    NotationKey::from_pkcs8_der(&der).map_err(|e| bad(e.to_string()))
}

/// `key import --notation KEY CERTCHAIN`: a CA-issued (or self-signed) key and its chain, both
/// PEM. The chain must meet the rules now and hold the key; nothing is stored otherwise.
pub fn import(key_path: &Path, chain_path: &Path, name: Option<&str>) -> Result<String, Error> {
    let name = match name {
        Some(n) => n.to_string(),
        None => key_path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    if !store::valid_name(&name) {
        return Err(NotationError::BadName(name).into());
    }
    let key = read_key_file(key_path)?;
    let pem = std::fs::read(chain_path).map_err(|e| NotationError::File {
        path: chain_path.display().to_string(),
        reason: e.to_string(),
    })?;
    let chain = certgen::parse_pem_chain(&pem).map_err(NotationError::from)?;
    let spec =
        certgen::check_chain(&chain, OffsetDateTime::now_utc()).map_err(NotationError::from)?;
    let ders: Vec<Vec<u8>> = chain
        .iter()
        .map(|c| der::Encode::to_der(c).unwrap_or_default())
        .collect();
    let leaf_spki = der::Encode::to_der(chain[0].tbs_certificate().subject_public_key_info())
        .unwrap_or_default();
    if leaf_spki != key.public_spki() || spec != key.spec() {
        return Err(NotationError::from(CertRuleError::KeyMismatch).into());
    }
    if !store::put_new(&name, &key, &ders)? {
        return Err(NotationError::Exists(name).into());
    }
    Ok(name)
}

/// The key to sign with: `name`, else the only Notary Project key in the keyring.
pub async fn select_key(name: Option<String>) -> Result<NotationSigner, Error> {
    blocking("keyring read", move || {
        let names = store::list()?;
        let chosen = match name {
            Some(n) => n,
            None => match names.as_slice() {
                [] => return Err(NotationError::NoKey.into()),
                [one] => one.clone(),
                many => return Err(NotationError::Ambiguous(many.join(", ")).into()),
            },
        };
        store::get(&chosen)?.ok_or_else(|| NotationError::Unknown(chosen, names.join(", ")).into())
    })
    .await
}

/// Signs `target` (resolved from the registry and verified by the caller) and pushes the
/// signature. Returns the signature manifest digest and where it is listed.
pub async fn sign_descriptor(
    client: &AuthedClient,
    registry: &Endpoint,
    repo: &str,
    signer: &NotationSigner,
    target: &Descriptor,
) -> Result<(String, Listed), NotationError> {
    let now = OffsetDateTime::now_utc();
    let envelope = sig::sign_envelope(&signer.key, &signer.chain, target, now, None)?;
    let manifest = sig::signature_manifest(target, &envelope, &signer.chain, now);
    Ok(artifact::push_signature(client, registry, repo, target, &envelope, &manifest).await?)
}

/// `sign --notation`: for each tag, the manifest the registry serves (digest recomputed from the
/// bytes) is signed with a Notary Project signature.
pub async fn sign_images(
    ctx: &Context,
    images: &[ImageRef],
    key: Option<String>,
) -> Result<Vec<super::sign::SignedTag>, Error> {
    let signer = select_key(key).await?;
    let mut signed = Vec::new();
    for image in images {
        let tag = image.tag.clone().unwrap_or_default();
        let (descriptor, sig_digest, listed) = cancellable(&ctx.cancel, async {
            let t = TrustRepo::open(ctx, image).await?;
            let (client, base) = t.registry_client().await?;
            let resolved = artifact::resolve(&client, &base, &image.repository, &tag)
                .await
                .map_err(NotationError::from)?;
            let (sig_digest, listed) = sign_descriptor(
                &client,
                &base,
                &image.repository,
                &signer,
                &resolved.descriptor,
            )
            .await?;
            Ok((resolved.descriptor, sig_digest, listed))
        })
        .await?;
        let how = match listed {
            Listed::ReferrersApi => "referrers API",
            Listed::TagSchema => "tag-schema index",
        };
        ctx.out.status(format_args!(
            "Successfully signed {image} with a Notary Project signature by key {}: {} (signature {sig_digest}), listed through the {how}",
            signer.name, descriptor.digest
        ));
        signed.push(super::sign::SignedTag {
            name: image.gun(),
            tag,
            digest: descriptor.digest,
            size: descriptor.size,
            signature: "notation",
            notation_signature: Some(sig_digest.to_string()),
        });
    }
    Ok(signed)
}

/// `key generate --notation NAME`, with its report.
pub fn generate_command(
    out: super::Output,
    name: &str,
    subject: Option<&str>,
    days: u32,
    dir: &Path,
) -> Result<(), Error> {
    let path = generate(name, subject, days, dir)?;
    out.status(format_args!(
        "Generated Notary Project key {name} in the keyring; its certificate is {} (for notation's trust store: notation cert add --type ca --store {name} {})",
        path.display(),
        path.display()
    ));
    out.emit_json(&serde_json::json!({
        "notation_key": name,
        "certificate": path,
    }))
}
