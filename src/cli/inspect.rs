//! `inspect IMAGE[:TAG]…`: the JSON of `docker trust inspect` (Name, SignedTags, Signers,
//! AdministrativeKeys), or its `--pretty` tables, from verified trust data.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::Write;

use serde::Serialize;

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::notary::client::Repo;
use crate::reference::ImageRef;
use crate::tuf::trusted::RESOLUTION_ORDER;

/// Arguments of `inspect`.
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// Images to inspect, with or without a tag.
    #[arg(value_name = "IMAGE[:TAG]", required = true)]
    images: Vec<String>,
    /// Human-readable tables instead of JSON.
    #[arg(long)]
    pretty: bool,
}

/// One repository, as `docker trust inspect` prints it.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct TrustInfo {
    /// The argument as given.
    pub name: String,
    /// Signed tags.
    pub signed_tags: Vec<SignedTag>,
    /// Delegations other than targets/releases.
    pub signers: Vec<Signer>,
    /// Root and Repository keys.
    pub administrative_keys: Vec<Signer>,
}

/// A signed tag row.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct SignedTag {
    /// Tag.
    pub signed_tag: String,
    /// Hex sha256 of the manifest, without `sha256:`.
    pub digest: String,
    /// Delegations that sign the same digest, or "Repo Admin".
    pub signers: Vec<String>,
}

/// A named set of keys.
#[derive(Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct Signer {
    /// Name.
    pub name: String,
    /// Keys.
    pub keys: Vec<KeyId>,
}

/// A key ID.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct KeyId {
    /// The ID.
    #[serde(rename = "ID")]
    pub id: String,
}

/// Natural order as docker sorts tags: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, _) => return Ordering::Less,
            (_, None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let na = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let nb = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (da, db) = (&a[..na], &b[..nb]);
                let ta = std::str::from_utf8(da)
                    .unwrap_or("")
                    .trim_start_matches('0');
                let tb = std::str::from_utf8(db)
                    .unwrap_or("")
                    .trim_start_matches('0');
                let ord = ta.len().cmp(&tb.len()).then(ta.cmp(tb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[na..];
                b = &b[nb..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

/// A byte string whose plain order is [`natural_cmp`]'s order: each digit run becomes a digit
/// byte (so it still sorts against other bytes as a digit does), the length of the run without
/// leading zeros, and those digits. 10,000 tags are sorted by their keys (a `memcmp` each)
/// instead of re-scanning digit runs in every comparison. Runs longer than 255 digits fall
/// back to [`natural_cmp`] ([`sort_naturally`]).
fn natural_key(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut key = Vec::with_capacity(b.len() + 4);
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() {
            let run = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            let digits = &b[i..i + run];
            let zeros = digits.iter().take_while(|&&c| c == b'0').count();
            let trimmed = &digits[zeros..];
            key.push(b'0');
            key.push(u8::try_from(trimmed.len()).ok()?);
            key.extend_from_slice(trimmed);
            i += run;
        } else {
            key.push(b[i]);
            i += 1;
        }
    }
    Some(key)
}

/// Sorts `tags` stably in [`natural_cmp`] order.
fn sort_naturally(tags: &mut Vec<SignedTag>) {
    let keys: Option<Vec<Vec<u8>>> = tags.iter().map(|t| natural_key(&t.signed_tag)).collect();
    match keys {
        Some(keys) => {
            let mut order: Vec<usize> = (0..tags.len()).collect();
            order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
            let mut slots: Vec<Option<SignedTag>> =
                std::mem::take(tags).into_iter().map(Some).collect();
            tags.extend(order.into_iter().filter_map(|i| slots[i].take()));
        }
        None => tags.sort_by(|a, b| natural_cmp(&a.signed_tag, &b.signed_tag)),
    }
}

/// Whether tags are resolved from `role`: as in `docker trust inspect`, a tag only these roles
/// sign is shown as signed by "Repo Admin", and no signer is named after them.
fn is_resolution_role(role: &str) -> bool {
    RESOLUTION_ORDER.contains(&role)
}

/// Lower-case hex, written into one allocation (`hex::encode` collects `char`s one by one).
fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

/// Builds the `docker trust inspect` view of a verified repository.
pub fn trust_info(name: &str, tag: Option<&str>, repo: &Repo) -> TrustInfo {
    // Borrowed, and hashed rather than ordered: the list is sorted naturally below anyway, and
    // at 10,000 tags an ordered map of owned copies was a tenth of a cold `inspect`.
    let mut tags: HashMap<&str, &[u8]> = HashMap::new();
    // Last role of docker's resolution order first, so the role a pull resolves a tag from
    // (targets/releases) overrides the others here too.
    for role in RESOLUTION_ORDER.iter().rev() {
        if let Some(r) = repo.role(role) {
            tags.reserve(r.targets.targets.len());
            for (t, meta) in &r.targets.targets {
                // A target without a 32-byte sha256 signs no image (docker: "no valid hash,
                // expecting sha256"); it is not listed rather than shown with an empty digest.
                let sha = meta.sha256().filter(|h| h.len() == 32);
                if let Some(sha) = sha.filter(|_| tag.is_none_or(|want| want == t)) {
                    tags.insert(t, sha);
                }
            }
        }
    }
    let delegations: Vec<_> = repo
        .roles
        .iter()
        .filter(|r| !is_resolution_role(&r.name))
        .collect();
    let mut signed_tags: Vec<SignedTag> = tags
        .into_iter()
        .map(|(t, sha)| {
            let mut signers: Vec<String> = delegations
                .iter()
                .filter(|r| {
                    r.targets
                        .targets
                        .get(t)
                        .is_some_and(|m| m.sha256() == Some(sha))
                })
                .map(|r| r.name.trim_start_matches("targets/").to_string())
                .collect();
            if signers.is_empty() {
                signers.push("Repo Admin".into());
            }
            SignedTag {
                signed_tag: t.to_string(),
                digest: hex_lower(sha),
                signers,
            }
        })
        .collect();
    sort_naturally(&mut signed_tags);

    // Delegation keys as canonical IDs, as docker's translateDelegationsToCanonicalIDs does.
    let mut signers: Vec<Signer> = Vec::new();
    for parent in &repo.roles {
        for d in &parent.targets.delegations.roles {
            if is_resolution_role(&d.name) {
                continue;
            }
            let mut keys: Vec<KeyId> = d
                .keyids
                .iter()
                .flatten()
                .filter_map(|id| parent.targets.delegations.keys.get(id))
                .map(|k| KeyId {
                    id: k.canonical_id().unwrap_or_else(|_| k.id()),
                })
                .collect();
            keys.sort_by(|a, b| a.id.cmp(&b.id));
            signers.push(Signer {
                name: d.name.trim_start_matches("targets/").to_string(),
                keys,
            });
        }
    }
    signers.sort_by(|a, b| b.name.cmp(&a.name));

    let root = &repo.root.root;
    let ids = |role: &str| {
        root.roles
            .get(role)
            .map(|r| r.keyids.iter().map(|id| KeyId { id: id.clone() }).collect())
            .unwrap_or_default()
    };
    TrustInfo {
        name: name.to_string(),
        signed_tags,
        signers,
        administrative_keys: vec![
            Signer {
                name: "Root".into(),
                keys: ids("root"),
            },
            Signer {
                name: "Repository".into(),
                keys: ids("targets"),
            },
        ],
    }
}

/// Docker's JSON: an array indented with four spaces, and a trailing newline, written straight
/// to `out` (10,000 tags are 2.4 MB: no second copy).
fn write_docker_json(out: &mut impl Write, infos: &[TrustInfo]) -> std::io::Result<()> {
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut *out, fmt);
    infos.serialize(&mut ser).map_err(std::io::Error::from)?;
    out.write_all(b"\n")
}

fn pretty(out: &mut impl Write, info: &TrustInfo) -> std::io::Result<()> {
    if info.signed_tags.is_empty() {
        write!(out, "\nNo signatures for {}\n\n", info.name)?;
    } else {
        writeln!(out, "\nSignatures for {}\n", info.name)?;
        let w = info
            .signed_tags
            .iter()
            .map(|t| t.signed_tag.len())
            .max()
            .unwrap_or(0)
            .max(10);
        writeln!(out, "{:<w$}   {:<64}   SIGNERS", "SIGNED TAG", "DIGEST")?;
        for t in &info.signed_tags {
            let mut s = t.signers.clone();
            s.sort();
            let signers = if s == ["Repo Admin"] {
                "(Repo Admin)".to_string()
            } else {
                s.join(", ")
            };
            writeln!(out, "{:<w$}   {:<64}   {signers}", t.signed_tag, t.digest)?;
        }
        writeln!(out)?;
    }
    if !info.signers.is_empty() {
        writeln!(out, "List of signers and their keys for {}\n", info.name)?;
        let w = info
            .signers
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max(6);
        writeln!(out, "{:<w$}   KEYS", "SIGNER")?;
        let mut sorted: Vec<&Signer> = info.signers.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        for s in sorted {
            let keys: Vec<&str> = s.keys.iter().map(|k| &k.id[..k.id.len().min(12)]).collect();
            writeln!(out, "{:<w$}   {}", s.name, keys.join(", "))?;
        }
        writeln!(out)?;
    }
    writeln!(out, "Administrative keys for {}\n", info.name)?;
    for (label, name) in [("Repository Key", "Repository"), ("Root Key", "Root")] {
        let keys: Vec<&str> = info
            .administrative_keys
            .iter()
            .filter(|s| s.name == name)
            .flat_map(|s| s.keys.iter().map(|k| k.id.as_str()))
            .collect();
        writeln!(out, "  {label}:\t{}", keys.join(", "))?;
    }
    Ok(())
}

impl InspectArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        if self.pretty && ctx.out.json() {
            return Err(Error::Usage(
                "--pretty prints tables; with --format json, leave it out".into(),
            ));
        }
        let mut infos = Vec::new();
        let mut failures = Vec::new();
        for name in &self.images {
            let result = cancellable(&ctx.cancel, async {
                let image = ImageRef::parse(name)?;
                let t = TrustRepo::open(ctx, &image).await?;
                let repo = t.update().await?;
                let info = trust_info(name, image.tag.as_deref(), &repo);
                // Plain data, and the process ends once the view is printed: freeing every
                // parsed target entry one by one only delays that (3 % of a cold inspect of
                // 10,000 tags).
                std::mem::forget(repo);
                Ok(info)
            })
            .await;
            match result {
                Ok(info) => infos.push(info),
                Err(e @ Error::Cancelled(_)) => return Err(e),
                // As `docker trust inspect`: report the others, then fail.
                Err(e) => failures.push(Error::Inaccessible {
                    name: name.clone(),
                    cause: Box::new(e),
                }),
            }
        }
        // Buffered: stdout is line-buffered, and a 10,000-tag table is 10,000 lines.
        let mut out = std::io::BufWriter::with_capacity(64 << 10, std::io::stdout().lock());
        let written = if self.pretty {
            infos.iter().enumerate().try_for_each(|(i, info)| {
                if i > 0 {
                    write!(out, "\n\n")?;
                }
                pretty(&mut out, info)
            })
        } else {
            write_docker_json(&mut out, &infos)
        };
        if let Err(e) = written.and_then(|()| out.flush()) {
            failures.push(Error::Output(e));
        }
        if !failures.is_empty() {
            return Err(Error::Several(failures));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorting_by_natural_keys_is_sorting_by_natural_cmp() {
        // Every mix the comparison distinguishes: digit runs of different lengths and leading
        // zeros (equal ones keep their order), digits against bytes below and above '0'..'9',
        // prefixes, and runs over 255 digits (the fallback).
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let alphabet = b"0019-._AZaz";
        let mut names: Vec<String> = (0..3000)
            .map(|_| {
                let n = 1 + next() % 8;
                (0..n)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize] as char)
                    .collect()
            })
            .collect();
        names.extend(
            ["v1", "v01", "v001", "v10", "v1a", "v1-", "a", "", "9", "09"].map(String::from),
        );
        for long in [false, true] {
            if long {
                names.push(format!("x{}", "7".repeat(300)));
            }
            let tags = |names: &[String]| -> Vec<SignedTag> {
                names
                    .iter()
                    .map(|n| SignedTag {
                        signed_tag: n.clone(),
                        digest: String::new(),
                        signers: vec![],
                    })
                    .collect()
            };
            let mut by_keys = tags(&names);
            sort_naturally(&mut by_keys);
            let mut by_cmp = tags(&names);
            by_cmp.sort_by(|a, b| natural_cmp(&a.signed_tag, &b.signed_tag));
            assert_eq!(by_keys, by_cmp, "long run: {long}");
        }
    }

    #[test]
    fn hex_lower_is_hex_encode() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(hex_lower(&bytes), hex::encode(&bytes));
        assert_eq!(hex_lower(&[]), "");
    }

    #[test]
    fn tags_sort_naturally() {
        let mut v = vec!["v10", "v2", "latest", "v1"];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(v, ["latest", "v1", "v2", "v10"]);
    }
}
