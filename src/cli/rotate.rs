//! `key rotate REPO ROLE`: replace the targets, root or (server-held) snapshot key of a
//! repository, so that every client, including those holding the old trust data, follows.

use time::{Duration, OffsetDateTime};

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::keystore::Keyring;
use crate::keystore::lock::LockPlace;
use crate::notary::rotate::{OldKey, RotateError, Rotator};
use crate::reference::ImageRef;
use crate::tuf::rotation::{Lifetimes, Rotatable};

/// Test-only: the lifetime in days of the metadata `key rotate` writes, to make metadata near
/// expiry on a real server. Only shortens the default lifetimes; not for production use.
pub const TEST_LIFETIME_ENV: &str = "TRUSTACR_TEST_ROTATE_LIFETIME_DAYS";

/// Arguments of `key rotate`.
#[derive(Debug, clap::Args)]
pub struct RotateArgs {
    /// The repository, e.g. myregistry.azurecr.io/app.
    #[arg(value_name = "REPO")]
    repo: String,
    /// The key to replace: targets (new key here, every tag re-signed), root (new root key and
    /// certificate, signed by the old and the new root key) or snapshot (the server makes the
    /// new one). timestamp is always the server's and is refused.
    #[arg(value_name = "ROLE", value_parser = parse_role)]
    role: Rotatable,
}

fn parse_role(s: &str) -> Result<Rotatable, String> {
    s.parse()
        .map_err(|e: crate::tuf::rotation::RoleError| e.to_string())
}

/// The lifetimes to write: the defaults, or shorter ones from [`TEST_LIFETIME_ENV`].
fn lifetimes() -> Lifetimes {
    let mut l = Lifetimes::default();
    if let Some(days) = std::env::var(TEST_LIFETIME_ENV)
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .filter(|d| *d > 0)
    {
        let d = Duration::days(days);
        l.root = l.root.min(d);
        l.targets = l.targets.min(d);
    }
    l
}

impl RotateArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = ImageRef::parse(&self.repo)?;
        if image.tag.is_some() {
            return Err(Error::Usage(format!(
                "{}: give the repository without a tag",
                self.repo
            )));
        }
        let t = cancellable(&ctx.cancel, async {
            let t = TrustRepo::open(ctx, &image).await?;
            t.check_can_sign(false).await?;
            Ok(t)
        })
        .await?;
        let keys = Keyring::new(LockPlace::for_user(), ctx.cancel.clone());
        let rotator = Rotator {
            server: &t.server,
            cache: &t.cache,
            trust: &t.trust,
            limits: &t.limits,
            keys: &keys,
            cancel: &ctx.cancel,
            lifetimes: lifetimes(),
        };
        let done = match rotator.rotate(self.role, OffsetDateTime::now_utc()).await {
            Ok(d) => d,
            Err(RotateError::Interrupted(reason)) => return Err(Error::Cancelled(reason)),
            Err(e) => return Err(Error::Rotate(Box::new(e))),
        };
        let gun = &t.server.gun;
        let role = self.role.name();
        let out = ctx.out;
        out.status(format_args!(
            "Rotated the {role} key of {gun}: the new key is {} (root version {}).",
            done.new_key, done.root_version
        ));
        let (old_key, removed): (&str, &[String]) = match &done.old_key {
            OldKey::Removed(ids) => {
                out.status(format_args!(
                    "The old {role} key {} was removed from the keyring.",
                    ids.join(", ")
                ));
                ("removed", ids)
            }
            OldKey::NotHere => {
                out.status(format_args!("The old {role} key was not in this keyring."));
                ("not-here", &[])
            }
            OldKey::Kept(why) => {
                out.status(format_args!(
                    "The old {role} key stays in the keyring: {why}. Clients that trusted it follow the new root, because the new root is signed by both keys."
                ));
                ("kept", &[])
            }
            OldKey::Server => {
                out.status(format_args!(
                    "The notary server holds the new {role} key and signs with it."
                ));
                ("server", &[])
            }
        };
        let mut resigned = None;
        if self.role == Rotatable::Targets {
            let tags: Vec<&str> = done
                .repo
                .role(crate::tuf::editor::TARGETS)
                .map(|r| r.targets.targets.keys().map(String::as_str).collect())
                .unwrap_or_default();
            out.status(format_args!(
                "Re-signed with the new key: {}.",
                if tags.is_empty() {
                    "no tags".to_string()
                } else {
                    tags.join(", ")
                }
            ));
            resigned = Some(tags);
        }
        if self.role != Rotatable::Snapshot {
            out.status(format_args!(
                "Back up the new key: docker trustacr key export {gun} -o FILE"
            ));
        }
        let mut doc = serde_json::json!({
            "name": gun,
            "role": role,
            "new_key": done.new_key,
            "root_version": done.root_version,
            "old_key": old_key,
            "removed_keys": removed,
        });
        if let Some(tags) = resigned {
            doc["resigned_tags"] = serde_json::json!(tags);
        }
        out.emit_json(&doc)
    }
}
