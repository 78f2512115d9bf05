//! The OS keyring, where signing keys and cached tokens live: the Secret Service on Linux and
//! the BSDs, the Keychain on macOS, the Credential Manager on Windows, chosen at compile time.
//!
//! Private key bytes go from the keyring to memory and back, never to a file. Opening the store
//! is lazy: only commands that need keys pay for a D-Bus connection.
//!
//! Signing code reaches keys only through [`KeySource`] ([`source`]); [`Keyring`] is the
//! keyring's implementation, which creates missing keys under a per-user lock ([`lock`]).

pub mod export;
pub mod import;
pub mod keys;
pub mod lock;
pub mod notation;
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
pub mod session;
pub mod signer;
pub mod source;

pub use source::{KeyKind, KeySource, Keyring};

use std::fmt;
use std::sync::{Arc, OnceLock};

use crate::plugin::cancel::CancelReason;

/// The keyring `service` under which every entry of this plugin is stored.
pub const SERVICE: &str = "docker-trustacr";

/// Overrides [`SERVICE`], so tests (and users who want separate key sets) get a keyring
/// namespace of their own.
pub const SERVICE_ENV: &str = "TRUSTACR_KEYRING_SERVICE";

/// The keyring `service` in use: `TRUSTACR_KEYRING_SERVICE` if set, else [`SERVICE`].
pub fn service() -> &'static str {
    static NAME: OnceLock<String> = OnceLock::new();
    NAME.get_or_init(|| {
        std::env::var(SERVICE_ENV)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| SERVICE.to_string())
    })
}

/// The platform store's name, for messages.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
pub const STORE_NAME: &str = "Secret Service (D-Bus)";
/// The platform store's name, for messages.
#[cfg(target_os = "macos")]
pub const STORE_NAME: &str = "macOS Keychain";
/// The platform store's name, for messages.
#[cfg(windows)]
pub const STORE_NAME: &str = "Windows Credential Manager";

/// Errors opening or using the keyring.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// No keyring service could be reached.
    #[error("cannot reach the OS keyring ({STORE_NAME}): {detail}. {hint}")]
    Unreachable {
        /// What the platform said.
        detail: String,
        /// How to fix it on this platform.
        hint: &'static str,
    },
    /// An entry exists but does not hold a key this plugin wrote.
    #[error(
        "keyring entry {entry:?} (service {SERVICE}) does not hold a valid key; it was not written by docker trustacr or is damaged. Nothing was changed; move it aside with your keyring tool if you are sure it is not needed"
    )]
    Corrupt {
        /// Entry user name.
        entry: String,
    },
    /// The keyring is there but locked.
    #[error("the OS keyring ({STORE_NAME}) is locked: {detail}. {hint}")]
    Locked {
        /// What the platform said.
        detail: String,
        /// How to fix it on this platform.
        hint: &'static str,
    },
    /// The key-creation lock directory is unsafe or unusable; nothing was created.
    #[error(
        "refusing the key-creation lock directory {path}: {reason}. Nothing was created. Remove it (or fix it: chmod 700, owned by you) and retry"
    )]
    LockDir {
        /// The directory.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The key-creation lock file could not be opened or locked.
    #[error("cannot take the key-creation lock {path}: {reason}. Nothing was created")]
    Lock {
        /// The lock file.
        path: String,
        /// What the system said.
        reason: String,
    },
    /// Another process held the key-creation lock for too long.
    #[error(
        "another docker trustacr process has held the key-creation lock {path} for {waited:?}; nothing was created. Wait for it to finish (or stop it) and retry"
    )]
    LockTimeout {
        /// The lock file.
        path: String,
        /// How long this process waited.
        waited: std::time::Duration,
    },
    /// The command was cancelled while waiting for the key-creation lock.
    #[error("{0} while waiting for the key-creation lock")]
    Interrupted(CancelReason),
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const UNREACHABLE_HINT: &str = "Start a Secret Service provider (gnome-keyring-daemon or KeePassXC) in a D-Bus session; on a headless machine run the command inside `dbus-run-session` after `echo -n PASS | gnome-keyring-daemon --unlock --components=secrets`";
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const LOCKED_HINT: &str = "Unlock the login keyring (log in to the desktop, or `echo -n PASS | gnome-keyring-daemon --unlock --replace --components=secrets`)";
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
const UNREACHABLE_HINT: &str = "Check that you are logged in to a desktop session";
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
const LOCKED_HINT: &str = "Unlock the keychain and retry";

/// The keyring's state as `info` reports it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum KeyringState {
    /// Reachable and unlocked: keys can be read and written without a prompt.
    Unlocked,
    /// Reachable but locked.
    Locked {
        /// Detail and fix.
        message: String,
    },
    /// Not reachable.
    Unreachable {
        /// Detail and fix.
        message: String,
    },
}

impl fmt::Display for KeyringState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyringState::Unlocked => f.write_str("reachable, unlocked"),
            KeyringState::Locked { message } | KeyringState::Unreachable { message } => {
                f.write_str(message)
            }
        }
    }
}

/// Checks the keyring without creating, reading or prompting for anything.
///
/// On the Secret Service this connects to the session bus and asks whether the default
/// collection is locked; a locked collection would make every key operation prompt or fail.
pub fn probe() -> KeyringState {
    match probe_inner() {
        Ok(()) => KeyringState::Unlocked,
        Err(e @ KeystoreError::Locked { .. }) => KeyringState::Locked {
            message: e.to_string(),
        },
        Err(e) => KeyringState::Unreachable {
            message: e.to_string(),
        },
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn probe_inner() -> Result<(), KeystoreError> {
    use secret_service::{EncryptionType, blocking::SecretService};
    let unreachable = |e: &dyn fmt::Display| KeystoreError::Unreachable {
        detail: e.to_string(),
        hint: UNREACHABLE_HINT,
    };
    // Plain transfer is fine here: no secret crosses the bus during the probe.
    let ss = SecretService::connect(EncryptionType::Plain).map_err(|e| unreachable(&e))?;
    let collection = ss.get_default_collection().map_err(|e| unreachable(&e))?;
    match collection.is_locked() {
        Ok(false) => Ok(()),
        Ok(true) => Err(KeystoreError::Locked {
            detail: "the default collection is locked".into(),
            hint: LOCKED_HINT,
        }),
        Err(e) => Err(unreachable(&e)),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
fn probe_inner() -> Result<(), KeystoreError> {
    open_store().map(|_| ())
}

/// Opens the platform store and makes it keyring-core's default.
pub fn open_store() -> Result<Arc<keyring_core::CredentialStore>, KeystoreError> {
    tracing::debug!("opening keyring-core's platform store");
    let store = platform_store().map_err(|e| KeystoreError::Unreachable {
        detail: e.to_string(),
        hint: UNREACHABLE_HINT,
    })?;
    keyring_core::set_default_store(store.clone());
    Ok(store)
}

static OPENED: OnceLock<Result<(), String>> = OnceLock::new();

/// The entry names (keyring "user") of every entry of this keyring service, sorted, without
/// repeats: keys, Notary Project keys and cached tokens alike.
pub fn entry_names() -> Result<Vec<String>, KeystoreError> {
    ensure_store()?;
    let spec = std::collections::HashMap::from([("service", service())]);
    let found = keyring_core::Entry::search(&spec).map_err(|e| map_error(&e))?;
    let mut names: Vec<String> = found
        .iter()
        .filter_map(|e| e.get_specifiers())
        .filter(|(s, _)| s == service())
        .map(|(_, user)| user)
        .collect();
    names.sort();
    names.dedup();
    Ok(names)
}

/// Sets up, ahead of the first key read, what reading a key needs: on the Secret Service the
/// encrypted session of [`session`], elsewhere the platform store. Errors are left for the read
/// to report.
pub fn warm() {
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    session::warm();
    #[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
    let _ = ensure_store();
}

/// The text of entry `user` of this keyring service; `Ok(None)` when there is none.
///
/// Read over the plugin's own session where the Secret Service allows (see [`session`]): that
/// session is set up early and cheaply, and keyring-core's would be a second key exchange.
/// Anything that session does not answer is read through keyring-core, which unlocks, prompts
/// or names the problem.
pub fn read_text(user: &str) -> Result<Option<zeroize::Zeroizing<String>>, KeystoreError> {
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    {
        // The attributes keyring-core's Secret Service store gives an entry.
        let attributes =
            std::collections::HashMap::from([("service", service()), ("username", user)]);
        match session::read(&attributes) {
            Ok(None) => return Ok(None),
            Ok(Some(secret)) => match std::str::from_utf8(&secret) {
                Ok(text) => return Ok(Some(zeroize::Zeroizing::new(text.to_owned()))),
                Err(_) => tracing::debug!(
                    "keyring entry {user} is not text; reading it again through keyring-core"
                ),
            },
            Err(session::Fallback(why)) => {
                tracing::debug!("reading keyring entry {user} through keyring-core: {why}");
            }
        }
    }
    ensure_store()?;
    let entry = keyring_core::Entry::new(service(), user).map_err(|e| map_error(&e))?;
    match entry.get_password() {
        Ok(text) => Ok(Some(zeroize::Zeroizing::new(text))),
        Err(keyring_core::Error::NoEntry) => Ok(None),
        Err(e) => Err(map_error(&e)),
    }
}

/// Checks that the keyring can be reached, before work that would be left half done without it
/// (a push before its signing). The plugin's own session answers when it is open; only
/// otherwise is keyring-core's store opened, which names the problem.
pub fn ensure_reachable() -> Result<(), KeystoreError> {
    #[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
    if session::is_open() {
        return Ok(());
    }
    ensure_store()
}

/// Opens the platform store once per process; later calls reuse it.
pub fn ensure_store() -> Result<(), KeystoreError> {
    OPENED
        .get_or_init(|| {
            open_store().map(|_| ()).map_err(|e| match e {
                // Only the detail: the error is rebuilt below with its hint, once.
                KeystoreError::Unreachable { detail, .. } => detail,
                other => other.to_string(),
            })
        })
        .clone()
        .map_err(|detail| KeystoreError::Unreachable {
            detail,
            hint: UNREACHABLE_HINT,
        })
}

/// Maps a keyring-core error to what the user can do about it.
pub(crate) fn map_error(e: &keyring_core::Error) -> KeystoreError {
    match e {
        keyring_core::Error::NoStorageAccess(_) => KeystoreError::Locked {
            detail: e.to_string(),
            hint: LOCKED_HINT,
        },
        keyring_core::Error::BadEncoding(_) | keyring_core::Error::BadDataFormat(..) => {
            KeystoreError::Corrupt {
                entry: "(unknown)".into(),
            }
        }
        _ => KeystoreError::Unreachable {
            detail: e.to_string(),
            hint: UNREACHABLE_HINT,
        },
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(zbus_secret_service_keyring_store::Store::new()?)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(apple_native_keyring_store::keychain::Store::new()?)
}

#[cfg(windows)]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Ok(windows_native_keyring_store::Store::new()?)
}
