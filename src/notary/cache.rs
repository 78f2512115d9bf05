//! The local trust cache, in the layout docker and the notary CLI use, so that pins and cached
//! metadata are shared with `docker trust`: `<trust dir>/tuf/<GUN>/metadata/<role>.json`.
//!
//! Files are written only after the whole update verified, each through a temporary file and a
//! rename, so a crash leaves either the old or the new file, never half of one.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The cache directory of one repository.
#[derive(Debug, Clone)]
pub struct Cache {
    dir: PathBuf,
    max_file: u64,
}

/// A GUN or role name that would escape the cache directory.
#[derive(Debug, thiserror::Error)]
#[error("refusing unsafe repository or role name {0:?} as a cache path")]
pub struct UnsafeName(String);

fn safe_components(name: &str) -> Result<(), UnsafeName> {
    if name.is_empty()
        || name.starts_with('/')
        || name.contains('\\')
        || name
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(UnsafeName(name.to_string()));
    }
    Ok(())
}

impl Cache {
    /// The cache for `gun` under `trust_dir`.
    pub fn new(trust_dir: &Path, gun: &str, max_file: u64) -> Result<Self, UnsafeName> {
        safe_components(gun)?;
        Ok(Cache {
            dir: trust_dir.join("tuf").join(gun).join("metadata"),
            max_file,
        })
    }

    /// The metadata directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, role: &str) -> Result<PathBuf, UnsafeName> {
        safe_components(role)?;
        Ok(self.dir.join(format!("{role}.json")))
    }

    /// The cached bytes of `role`, if any. Unreadable or oversized files count as absent: the
    /// cache only ever saves downloads, it never vouches for anything.
    pub fn read(&self, role: &str) -> Option<Vec<u8>> {
        let file = std::fs::File::open(self.path(role).ok()?).ok()?;
        // Sized up front: a 0.9 MB targets role is read without growing the buffer 20 times.
        let size = file.metadata().map_or(0, |m| m.len()).min(self.max_file) + 1;
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        file.take(self.max_file + 1).read_to_end(&mut bytes).ok()?;
        (bytes.len() as u64 <= self.max_file).then_some(bytes)
    }

    /// Writes verified files; files already cached with the same bytes are left alone.
    ///
    /// Each file goes to a temporary file first; the root and the rollback floors (timestamp,
    /// snapshot) are synced to disk, all at once (one journal commit rather than one each:
    /// a sync costs milliseconds, tens on a busy disk), before any is renamed into place.
    /// Targets roles are not synced: each read checks them against the snapshot's hashes, so
    /// one that a power loss truncated is only downloaded again.
    pub fn write_all(&self, files: &[(String, Vec<u8>)]) -> std::io::Result<()> {
        let mut staged: Vec<Staged> = Vec::new();
        let result = self.stage(files, &mut staged).and_then(|()| {
            sync_together(staged.iter().filter(|s| s.durable).map(|s| &s.file))?;
            for s in &mut staged {
                std::fs::rename(&s.tmp, &s.path)?;
                s.renamed = true;
            }
            Ok(())
        });
        if result.is_err() {
            for s in staged.iter().filter(|s| !s.renamed) {
                let _ = std::fs::remove_file(&s.tmp);
            }
        }
        result
    }

    fn stage(&self, files: &[(String, Vec<u8>)], staged: &mut Vec<Staged>) -> std::io::Result<()> {
        for (role, bytes) in files {
            let path = self.path(role).map_err(std::io::Error::other)?;
            if std::fs::read(&path).is_ok_and(|old| &old == bytes) {
                continue;
            }
            let parent = path.parent().unwrap_or(&self.dir);
            std::fs::create_dir_all(parent)?;
            let tmp = parent.join(format!(
                ".{}.tmp-{}",
                path.file_name().and_then(|n| n.to_str()).unwrap_or("role"),
                std::process::id()
            ));
            let file = std::fs::File::create(&tmp)?;
            let durable = matches!(role.as_str(), "root" | "timestamp" | "snapshot");
            staged.push(Staged {
                tmp,
                path,
                file,
                durable,
                renamed: false,
            });
            if let Some(s) = staged.last_mut() {
                s.file.write_all(bytes)?;
            }
        }
        Ok(())
    }
}

/// A file written to its temporary name, not yet renamed into place.
struct Staged {
    tmp: PathBuf,
    path: PathBuf,
    file: std::fs::File,
    durable: bool,
    renamed: bool,
}

/// Syncs `files` to disk concurrently: the file system commits its journal for all of them
/// together instead of once per file.
fn sync_together<'a>(files: impl Iterator<Item = &'a std::fs::File>) -> std::io::Result<()> {
    let files: Vec<&std::fs::File> = files.collect();
    let Some((first, rest)) = files.split_first() else {
        return Ok(());
    };
    std::thread::scope(|s| {
        let others: Vec<_> = rest.iter().map(|f| s.spawn(move || f.sync_all())).collect();
        let mut result = first.sync_all();
        for h in others {
            let r = h
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("a file sync failed")));
            result = result.and(r);
        }
        result
    })
}

/// The repositories in the trust cache under `trust_dir` whose cached root or targets lists one
/// of `ids` (canonical key IDs), by ID. For messages only (`key import` says which repositories
/// a key signs): the cache holds what verified once, but nothing is verified here.
pub fn repositories_using(
    trust_dir: &Path,
    ids: &[String],
) -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    use crate::tuf::metadata::{Root, SignedFile, Targets};
    let mut found: std::collections::BTreeMap<String, std::collections::BTreeSet<String>> =
        Default::default();
    let mut note =
        |gun: &str, keys: &std::collections::BTreeMap<String, crate::tuf::keys::PublicKey>| {
            for key in keys.values() {
                if let Ok(id) = key.canonical_id()
                    && ids.contains(&id)
                {
                    found.entry(id).or_default().insert(gun.to_string());
                }
            }
        };
    // GUNs are host[:port]/path; a few levels and a bounded count keep a hostile tree cheap.
    let tuf = trust_dir.join("tuf");
    let mut stack = vec![(tuf.clone(), 0usize)];
    let mut seen = 0;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            seen += 1;
            if seen > 10_000 {
                return found;
            }
            let Ok(kind) = e.file_type() else { continue };
            if !kind.is_dir() {
                continue;
            }
            let path = e.path();
            if e.file_name() != "metadata" {
                if depth < 8 {
                    stack.push((path, depth + 1));
                }
                continue;
            }
            let Some(gun) = dir.strip_prefix(&tuf).ok().and_then(|g| g.to_str()) else {
                continue;
            };
            let Ok(cache) = Cache::new(trust_dir, gun, 8 << 20) else {
                continue;
            };
            if let Some(root) = cache
                .read("root")
                .and_then(|b| SignedFile::parse("root", &b).ok())
                .and_then(|f| f.into_typed::<Root>("root").ok())
            {
                note(gun, &root.keys);
            }
            if let Some(targets) = cache
                .read("targets")
                .and_then(|b| SignedFile::parse("targets", &b).ok())
                .and_then(|f| f.into_typed::<Targets>("targets").ok())
            {
                note(gun, &targets.delegations.keys);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gun_path_follows_docker_layout_and_refuses_traversal() {
        let c = Cache::new(Path::new("/t"), "127.0.0.1:5000/app", 10).unwrap();
        assert_eq!(c.dir(), Path::new("/t/tuf/127.0.0.1:5000/app/metadata"));
        assert!(Cache::new(Path::new("/t"), "a/../../etc", 10).is_err());
        assert!(c.path("targets/../../x").is_err());
        assert_eq!(
            c.path("targets/releases").unwrap(),
            Path::new("/t/tuf/127.0.0.1:5000/app/metadata/targets/releases.json")
        );
    }

    #[test]
    fn oversized_cached_file_counts_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path(), "r/app", 4).unwrap();
        c.write_all(&[("timestamp".into(), b"12345".to_vec())])
            .unwrap();
        assert_eq!(c.read("timestamp"), None);
        c.write_all(&[("timestamp".into(), b"1234".to_vec())])
            .unwrap();
        assert_eq!(c.read("timestamp").as_deref(), Some(&b"1234"[..]));
    }

    #[test]
    fn files_written_together_read_back_and_a_failed_write_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path(), "r/app", 1 << 20).unwrap();
        let files: Vec<(String, Vec<u8>)> = ["root", "timestamp", "snapshot", "targets/releases"]
            .iter()
            .map(|r| (r.to_string(), format!("{r} bytes").into_bytes()))
            .collect();
        c.write_all(&files).unwrap();
        for (role, bytes) in &files {
            assert_eq!(c.read(role).as_ref(), Some(bytes), "{role}");
        }
        // targets.json cannot replace a directory: the write fails and cleans up after itself.
        std::fs::create_dir_all(c.dir().join("targets.json")).unwrap();
        let err = c.write_all(&[
            ("timestamp".into(), b"new timestamp".to_vec()),
            ("targets".into(), b"new targets".to_vec()),
        ]);
        assert!(err.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(c.dir())
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn repositories_using_a_key_are_found_by_canonical_id_in_cached_roots() {
        let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/notary-v1");
        let Some(root) = std::fs::read_dir(&vectors)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("root.json"))
            .find(|p| p.is_file())
        else {
            panic!("no root.json under {}", vectors.display());
        };
        let bytes = std::fs::read(&root).unwrap();
        let typed: crate::tuf::metadata::Root =
            crate::tuf::metadata::SignedFile::parse("root", &bytes)
                .unwrap()
                .into_typed("root")
                .unwrap();
        let id = typed.keys.values().next().unwrap().canonical_id().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::new(dir.path(), "example.com:5000/team/app", 1 << 20).unwrap();
        c.write_all(&[("root".into(), bytes)]).unwrap();
        let found = repositories_using(dir.path(), &[id.clone(), "other".into()]);
        assert_eq!(found.len(), 1);
        assert_eq!(
            found[&id].iter().collect::<Vec<_>>(),
            ["example.com:5000/team/app"]
        );
    }
}
