//! Publishing: initialise a repository or change its targets, sign, and upload everything in one
//! multipart POST, as docker does on ACR (the server holds the snapshot and timestamp keys).
//!
//! The server applies an upload atomically or not at all, so a failed publish changes nothing
//! there; locally only the cache is touched, and only with data that verified. When someone else
//! published in between (the server answers `VERSION`), the update is fetched again, the changes
//! re-applied and the upload retried.

use std::collections::BTreeMap;

use time::{Duration, OffsetDateTime};

use super::NotaryServer;
use super::cache::Cache;
use super::client::{self, ClientError, Repo};
use crate::keystore::KeystoreError;
use crate::keystore::keys::{self, KeyName, SigningKey};
use crate::registry::{HttpError, read_limited};
use crate::tuf::keys::{PublicKey, keytype};
use crate::tuf::metadata::{
    Base64Bytes, Delegations, Expires, FileMeta, RoleKeys, Root, Signature, Targets,
    canonical_bytes, encode_signed, role_type,
};
use crate::tuf::verify::{Limits, RootTrust};
use crate::tuf::x509;

/// Root metadata lifetime (notary: 10 years).
pub const ROOT_LIFETIME: Duration = Duration::days(3650);
/// Targets lifetime (notary: 3 years).
pub const TARGETS_LIFETIME: Duration = Duration::days(3 * 365);
/// Attempts when the server reports a concurrent publish. Each retry waits a random
/// 20–220 ms times the attempt number, so racing signers spread out instead of colliding again.
const ATTEMPTS: usize = 8;

/// One change to a repository's targets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Sign `tag` as the manifest described by `meta`.
    Add {
        /// Tag.
        tag: String,
        /// sha256 and length of the manifest.
        meta: FileMeta,
    },
    /// Remove the signature of `tag`.
    Remove {
        /// Tag.
        tag: String,
    },
}

impl Change {
    fn tag(&self) -> &str {
        match self {
            Change::Add { tag, .. } | Change::Remove { tag } => tag,
        }
    }
}

/// What a publish did.
#[derive(Debug, Clone)]
pub struct Published {
    /// Whether the repository was initialised by this publish.
    pub initialized: bool,
    /// The verified repository after the publish.
    pub repo: Repo,
}

/// Errors publishing.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Reading or verifying current trust data failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The keyring failed.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// HTTP failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// We hold no key that may sign the repository's targets.
    #[error(
        "cannot sign {gun}: its targets role is signed by key(s) {keyids:?}, and the keyring holds no such key (entry targets:{gun}). Ask the repository's administrator for a signing delegation, or publish from the machine that created it"
    )]
    NoSigningKey {
        /// GUN.
        gun: String,
        /// Key IDs the role accepts.
        keyids: Vec<String>,
    },
    /// A delegation we cannot sign would still decide what docker resolves.
    #[error(
        "cannot change {tag} in {gun}: targets/releases also signs it (digest {digest}), and docker resolves targets/releases first. Revoke it with the key holder's `docker trust revoke`, or use a tag that releases does not sign"
    )]
    ShadowedByReleases {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
        /// Digest releases signs.
        digest: String,
    },
    /// The server refused the upload.
    #[error("the notary server refused the update for {gun}: {detail}. Nothing was published")]
    Rejected {
        /// GUN.
        gun: String,
        /// Server's explanation.
        detail: String,
    },
    /// Others kept publishing.
    #[error("{gun} changed on the server during {ATTEMPTS} attempts to publish; try again")]
    Contention {
        /// GUN.
        gun: String,
    },
    /// The published data does not show the change.
    #[error("published {gun}, but the verified trust data does not show the change to {tag}")]
    NotVisible {
        /// GUN.
        gun: String,
        /// Tag.
        tag: String,
    },
    /// A certificate could not be made.
    #[error(transparent)]
    Certificate(#[from] x509::CertCreateError),
    /// Encoding failed.
    #[error("cannot encode {role}: {reason}")]
    Encode {
        /// Role.
        role: String,
        /// Why.
        reason: String,
    },
}

/// Signs `body` with each `(key ID, key)` and returns the file bytes notary-server expects.
pub fn sign_role<T: serde::Serialize>(
    role: &str,
    body: &T,
    signers: &[(&str, &SigningKey)],
) -> Result<Vec<u8>, PublishError> {
    let canonical = canonical_bytes(body).map_err(|e| PublishError::Encode {
        role: role.into(),
        reason: e.to_string(),
    })?;
    let signatures: Vec<Signature> = signers
        .iter()
        .map(|(keyid, key)| {
            let (method, sig) = key.sign(&canonical);
            Signature {
                keyid: keyid.to_string(),
                method: method.to_string(),
                sig: Base64Bytes(sig),
            }
        })
        .collect();
    Ok(encode_signed(&canonical, &signatures))
}

fn apply(targets: &mut Targets, changes: &[Change]) {
    for c in changes {
        match c {
            Change::Add { tag, meta } => {
                targets.targets.insert(tag.clone(), meta.clone());
            }
            Change::Remove { tag } => {
                targets.targets.remove(tag);
            }
        }
    }
}

fn expires(now: OffsetDateTime, lifetime: Duration) -> Expires {
    // Whole seconds keep the Go spelling short; the value itself does not matter.
    Expires(
        (now + lifetime)
            .replace_nanosecond(0)
            .unwrap_or(now + lifetime),
    )
}

/// Publishes `changes` to `server`'s repository, initialising it if it has no trust data.
pub async fn publish(
    server: &NotaryServer,
    cache: &Cache,
    changes: &[Change],
    now: OffsetDateTime,
    trust: &RootTrust,
    limits: &Limits,
) -> Result<Published, PublishError> {
    let gun = server.gun.clone();
    let mut initialized;
    let mut attempt = 0;
    loop {
        attempt += 1;
        if attempt > ATTEMPTS {
            return Err(PublishError::Contention { gun });
        }
        let files = match client::update(server, cache, &gun, now, trust, limits).await {
            Ok(repo) => {
                initialized = false;
                update_files(&repo, changes, now)?
            }
            Err(ClientError::NotFound { missing, .. }) if missing == "root.json" => {
                initialized = true;
                init_files(server, changes, now).await?
            }
            Err(e) => return Err(e.into()),
        };
        match upload(server, &files).await? {
            Upload::Done => break,
            Upload::Conflict => {
                tracing::info!("{gun} changed on the server; fetching it again");
                let mut r = [0u8; 1];
                let _ = getrandom::fill(&mut r);
                let wait = (20 + u64::from(r[0]) * 200 / 255) * attempt as u64;
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                continue;
            }
        }
    }
    // Read back through the full verification: what we report is what clients will see.
    let repo = client::update(server, cache, &gun, now, trust, limits).await?;
    for c in changes {
        let seen = repo
            .role("targets")
            .and_then(|r| r.targets.targets.get(c.tag()));
        let ok = match c {
            Change::Add { meta, .. } => seen == Some(meta),
            Change::Remove { .. } => seen.is_none(),
        };
        if !ok {
            return Err(PublishError::NotVisible {
                gun,
                tag: c.tag().to_string(),
            });
        }
    }
    Ok(Published { initialized, repo })
}

fn update_files(
    repo: &Repo,
    changes: &[Change],
    now: OffsetDateTime,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    let gun = &repo.gun;
    let root = &repo.root.root;
    let allowed = &root.roles["targets"].keyids;
    let key = keys::get(&KeyName::Targets { gun: gun.clone() })?
        .filter(|k| allowed.contains(&k.public().id()))
        .ok_or_else(|| PublishError::NoSigningKey {
            gun: gun.clone(),
            keyids: allowed.clone(),
        })?;
    if let Some(releases) = repo.role("targets/releases") {
        for c in changes {
            if let Some(m) = releases.targets.targets.get(c.tag()) {
                let same = matches!(c, Change::Add { meta, .. } if meta == m);
                if !same {
                    return Err(PublishError::ShadowedByReleases {
                        gun: gun.clone(),
                        tag: c.tag().to_string(),
                        digest: hex::encode(m.sha256().unwrap_or_default()),
                    });
                }
            }
        }
    }
    let mut targets = repo
        .role("targets")
        .map(|r| r.targets.clone())
        .unwrap_or_else(|| Targets {
            typ: role_type::TARGETS.into(),
            delegations: Delegations::default(),
            expires: expires(now, TARGETS_LIFETIME),
            targets: BTreeMap::new(),
            version: 0,
        });
    apply(&mut targets, changes);
    targets.version += 1;
    targets.expires = expires(now, TARGETS_LIFETIME);
    let keyid = key.public().id();
    let bytes = sign_role("targets", &targets, &[(&keyid, &key)])?;
    Ok(vec![("targets".into(), bytes)])
}

async fn server_key(server: &NotaryServer, role: &str) -> Result<PublicKey, PublishError> {
    let url = server.url(&format!("{role}.key"));
    let resp = server
        .client
        .send(&server.push_scope(), |http| http.get(&url))
        .await?;
    if !resp.status().is_success() {
        return Err(PublishError::Rejected {
            gun: server.gun.clone(),
            detail: NotaryServer::describe_failure(resp).await,
        });
    }
    let body = read_limited(resp, 256 * 1024).await?;
    serde_json::from_slice(&body).map_err(|e| PublishError::Rejected {
        gun: server.gun.clone(),
        detail: format!("invalid {role}.key: {e}"),
    })
}

async fn init_files(
    server: &NotaryServer,
    changes: &[Change],
    now: OffsetDateTime,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    let gun = &server.gun;
    let (root_key, _) = keys::get_or_create(&KeyName::Root, SigningKey::generate_p256)?;
    let (targets_key, _) = keys::get_or_create(
        &KeyName::Targets { gun: gun.clone() },
        SigningKey::generate_ed25519,
    )?;
    let SigningKey::P256(root_sk) = &root_key else {
        return Err(PublishError::Encode {
            role: "root".into(),
            reason: "the keyring's root key is not ECDSA P-256".into(),
        });
    };
    let timestamp_key = server_key(server, "timestamp").await?;
    let snapshot_key = server_key(server, "snapshot").await?;
    let cert = x509::make_root_certificate(root_sk, gun, now)?;
    let cert_key = PublicKey::new(keytype::ECDSA_X509, cert.into_bytes());
    let targets_pub = targets_key.public();
    let ids = [
        ("root", cert_key.id()),
        ("targets", targets_pub.id()),
        ("snapshot", snapshot_key.id()),
        ("timestamp", timestamp_key.id()),
    ];
    let mut keys_map = BTreeMap::new();
    keys_map.insert(ids[0].1.clone(), cert_key);
    keys_map.insert(ids[1].1.clone(), targets_pub);
    keys_map.insert(ids[2].1.clone(), snapshot_key);
    keys_map.insert(ids[3].1.clone(), timestamp_key);
    let root = Root {
        typ: role_type::ROOT.into(),
        consistent_snapshot: false,
        expires: expires(now, ROOT_LIFETIME),
        keys: keys_map,
        roles: ids
            .iter()
            .map(|(role, id)| {
                (
                    role.to_string(),
                    RoleKeys {
                        keyids: vec![id.clone()],
                        threshold: 1,
                    },
                )
            })
            .collect(),
        version: 1,
    };
    let mut targets = Targets {
        typ: role_type::TARGETS.into(),
        delegations: Delegations::default(),
        expires: expires(now, TARGETS_LIFETIME),
        targets: BTreeMap::new(),
        version: 1,
    };
    apply(&mut targets, changes);
    let root_bytes = sign_role("root", &root, &[(&ids[0].1, &root_key)])?;
    let targets_bytes = sign_role("targets", &targets, &[(&ids[1].1, &targets_key)])?;
    Ok(vec![
        ("root".into(), root_bytes),
        ("targets".into(), targets_bytes),
    ])
}

enum Upload {
    Done,
    Conflict,
}

fn multipart(files: &[(String, Vec<u8>)]) -> (String, Vec<u8>) {
    let mut rnd = [0u8; 16];
    let _ = getrandom::fill(&mut rnd);
    let boundary = hex::encode(rnd);
    let mut body = Vec::new();
    for (role, bytes) in files {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{role}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(
    server: &NotaryServer,
    files: &[(String, Vec<u8>)],
) -> Result<Upload, PublishError> {
    let (content_type, body) = multipart(files);
    let url = server.url("");
    let resp = server
        .client
        .send(&server.push_scope(), |http| {
            http.post(&url)
                .header(reqwest::header::CONTENT_TYPE, &content_type)
                .body(body.clone())
        })
        .await?;
    let status = resp.status();
    if status.is_success() {
        return Ok(Upload::Done);
    }
    let detail = NotaryServer::describe_failure(resp).await;
    if status.as_u16() == 400 && detail.contains("\"code\":\"VERSION\"") {
        return Ok(Upload::Conflict);
    }
    Err(PublishError::Rejected {
        gun: server.gun.clone(),
        detail,
    })
}
