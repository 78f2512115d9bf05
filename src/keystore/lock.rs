//! The lock that serialises key creation between processes of one user.
//!
//! The keyring has no locking of its own: two first `sign`s creating the shared root key at once
//! would each sign with their own key while only one survives in the keyring. The lock file lives
//! in a per-user directory that must be owned by this user and closed to everyone else, so no
//! other local user can hold it (and make `sign` hang) or swap it. The lock is taken without
//! blocking, in a loop that gives up after a timeout and stops when the command is cancelled.

use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::KeystoreError;
use crate::plugin::cancel::Cancellation;

/// How long key creation waits for another process of this user to finish creating its key.
/// Creating and storing a key takes well under a second; the margin covers a keyring that asks
/// the user to unlock it.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20);

/// Between two attempts to take the lock.
const POLL: Duration = Duration::from_millis(50);

/// Name of the directory under `$XDG_RUNTIME_DIR`, or under `~/.docker` without one.
const DIR_NAME: &str = "docker-trustacr";
const FILE_NAME: &str = "keyring.lock";

/// Where the lock lives and how long to wait for it.
#[derive(Debug, Clone)]
pub struct LockPlace {
    /// The per-user directory holding the lock file.
    pub dir: PathBuf,
    /// How long to wait for another holder.
    pub timeout: Duration,
}

impl LockPlace {
    /// The per-user place: `$XDG_RUNTIME_DIR/docker-trustacr` (a tmpfs only this user can
    /// enter), else `$HOME/.docker/docker-trustacr`. Keyed by the user, not by `DOCKER_CONFIG`:
    /// every docker config of a user shares one keyring, so it must share one lock.
    pub fn for_user() -> Option<Self> {
        let base = std::env::var_os("XDG_RUNTIME_DIR")
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute())
                    .map(|h| h.join(".docker"))
            })?;
        Some(LockPlace {
            dir: base.join(DIR_NAME),
            timeout: DEFAULT_TIMEOUT,
        })
    }
}

/// A held lock; released when dropped (the file descriptor closes).
#[derive(Debug)]
pub struct KeyLock {
    _file: File,
}

impl KeyLock {
    /// Takes the lock in `place`, waiting at most `place.timeout` and stopping early when
    /// `cancel` fires. The directory is created 0700 if absent, and refused if it is not a
    /// directory owned by this user and closed to group and others.
    pub fn acquire(place: &LockPlace, cancel: &Cancellation) -> Result<KeyLock, KeystoreError> {
        prepare_dir(&place.dir)?;
        let path = place.dir.join(FILE_NAME);
        let file = open_lock_file(&path)?;
        let start = Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(KeyLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => {
                    return Err(KeystoreError::Lock {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    });
                }
            }
            if let Some(reason) = cancel.reason() {
                return Err(KeystoreError::Interrupted(reason));
            }
            if start.elapsed() >= place.timeout {
                return Err(KeystoreError::LockTimeout {
                    path: path.display().to_string(),
                    waited: place.timeout,
                });
            }
            std::thread::sleep(POLL);
        }
    }
}

fn open_lock_file(path: &Path) -> Result<File, KeystoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).truncate(false).write(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        // Never follow a symlink planted in place of the file.
        options.custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32);
        options.mode(0o600);
    }
    options.open(path).map_err(|e| KeystoreError::Lock {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

fn prepare_dir(dir: &Path) -> Result<(), KeystoreError> {
    let refuse = |reason: String| KeystoreError::LockDir {
        path: dir.display().to_string(),
        reason,
    };
    if let Some(parent) = dir.parent() {
        std::fs::create_dir_all(parent).map_err(|e| refuse(e.to_string()))?;
    }
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => {}
        // Someone (maybe another user) made it first: it is checked like any existing one.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(refuse(e.to_string())),
    }
    check_dir(dir).map_err(refuse)
}

/// Refuses anything but a real directory of this user that nobody else may write or enter.
#[cfg(unix)]
fn check_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.file_type().is_dir() {
        return Err("it is not a directory (a symlink or a file is never used)".into());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "it belongs to user id {}, not to you (user id {me})",
            meta.uid()
        ));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "its mode is {mode:03o}: other users may use it; it must be 700"
        ));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_dir(dir: &Path) -> Result<(), String> {
    // The per-user profile directory is already closed to other users on Windows.
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if meta.file_type().is_dir() {
        Ok(())
    } else {
        Err("it is not a directory".into())
    }
}
