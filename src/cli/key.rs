//! `key import`: bring docker's and notary's private keys into the keyring, so repositories
//! made with `DOCKER_CONTENT_TRUST=1 docker push` or `notary` can be signed here.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::trust::TrustRepo;
use super::{Context, Error, cancellable};
use crate::dockercfg::ConfigDir;
use crate::keystore::export::{self, ExportError};
use crate::keystore::import::{self, Block, ImportError, Outcome, Passphrases};
use crate::keystore::keys;
use crate::keystore::signer::{self, SignerKeyError};
use crate::notary::client::Repo;
use crate::reference::ImageRef;

/// Arguments of `key`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    command: KeyCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeyCommand {
    /// Import docker's or notary's private keys into the OS keyring.
    ///
    /// Reads `*.key` files of directories (docker's `$DOCKER_CONFIG/trust/private` by default,
    /// notary's `~/.notary/private`, and their old `root_keys/` and `tuf_keys/<gun>/` layouts)
    /// and single key files, including `key export` backups. Passphrases come from
    /// DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE / DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE or the
    /// NOTARY_*_PASSPHRASE variables, else a prompt on the terminal. Nothing is stored unless
    /// every key decrypts; the files are left in place.
    Import(ImportArgs),
    /// List the signing keys in the keyring; with REPO, which of its roles each key signs and
    /// which roles have no key here.
    #[command(alias = "ls")]
    List(ListArgs),
    /// Back up keys from the keyring in docker's and notary's own format.
    ///
    /// One encrypted PEM block per key (PBES2, with `path`, `role` and `gun` headers), which
    /// `notary key import`, `docker trust key load` and `key import` read. The root key's
    /// passphrase comes from DOCKER_CONTENT_TRUST_ROOT_PASSPHRASE (or NOTARY_ROOT_PASSPHRASE),
    /// the others' from DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE (or the NOTARY_* one for the
    /// role), else a prompt on the terminal (at least 8 characters).
    Export(ExportArgs),
    /// Generate a signer key pair, as `docker trust key generate` does.
    ///
    /// An ECDSA P-256 key is stored in the keyring under the signer name NAME, and its public
    /// key is written to DIR/NAME.pub (PEM with a `role: NAME` header) for the repository
    /// owner's `signer add NAME REPO --key NAME.pub`.
    Generate(GenerateArgs),
    /// Load a signer's private key file into the keyring, as `docker trust key load` does.
    ///
    /// The file must be readable by its owner only. An encrypted key's passphrase comes from
    /// DOCKER_CONTENT_TRUST_REPOSITORY_PASSPHRASE (or NOTARY_DELEGATION_PASSPHRASE), else a
    /// prompt on the terminal.
    Load(LoadArgs),
    /// Replace a repository's targets, root or snapshot key.
    ///
    /// targets: a new key in the keyring, the root re-signed listing it and every tag
    /// re-signed; the old key is removed from the keyring once the server accepted. root: a new
    /// root key and certificate, the new root signed by the old and the new root key so every
    /// client follows; the old root key stays (other repositories may use it). snapshot: the
    /// server makes and keeps the new key. Needs the repository's root key.
    Rotate(super::rotate::RotateArgs),
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// The signer name (lowercase letters, digits, '-' and '_').
    #[arg(
        value_name = "NAME",
        required_unless_present = "notation",
        conflicts_with = "notation"
    )]
    name: Option<String>,
    /// Directory to write NAME.pub (or NAME.crt) in [default: the current directory].
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Instead, a Notary Project signing key NAME: ECDSA P-256 in the keyring and a self-signed
    /// certificate that notation accepts, written to DIR/NAME.crt for trust stores.
    #[arg(long, value_name = "NAME")]
    notation: Option<String>,
    /// The --notation certificate's subject; C, ST, O and CN are required by notation's trust
    /// policies [default: C=US,ST=WA,O=docker-trustacr,CN=NAME].
    #[arg(long, value_name = "C=..,ST=..,O=..,CN=..", requires = "notation")]
    subject: Option<String>,
    /// Days the --notation certificate is valid. Signatures stop verifying when it expires
    /// (there is no timestamp authority), so cover the time the images must stay verifiable.
    #[arg(long, default_value_t = 365, requires = "notation", value_parser = clap::value_parser!(u32).range(1..=36500))]
    days: u32,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The private key file (PEM, encrypted or not).
    #[arg(value_name = "FILE")]
    file: PathBuf,
    /// The signer name to store the key under [default: the file's role header, else "signer"].
    #[arg(long, value_name = "NAME")]
    name: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    /// Only keys of this role (root, targets, or a signer/delegation name).
    #[arg(long)]
    role: Option<String>,
    /// Only keys that sign roles of this repository's verified trust data (or were imported
    /// for it).
    #[arg(value_name = "REPO")]
    repo: Option<String>,
    /// The file to write (mode 0600).
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// A repository whose verified trust data to match the keys against.
    #[arg(value_name = "REPO")]
    repo: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Key directories or files [default: $DOCKER_CONFIG/trust/private].
    #[arg(value_name = "PATH", conflicts_with = "notation")]
    paths: Vec<PathBuf>,
    /// Import a Notary Project signing key and its certificate chain (both PEM: an unencrypted
    /// PKCS#8 key; the chain leaf first). Stored as the key file's name unless --name is given.
    #[arg(long, num_args = 2, value_names = ["KEY", "CERTCHAIN"])]
    notation: Option<Vec<PathBuf>>,
    /// The name to store a --notation key under.
    #[arg(long, value_name = "NAME", requires = "notation")]
    name: Option<String>,
}

impl KeyArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        match self.command {
            KeyCommand::Import(a) => a.run(ctx),
            KeyCommand::List(a) => a.run(ctx).await,
            KeyCommand::Export(a) => a.run(ctx).await,
            KeyCommand::Generate(a) => a.run(ctx),
            KeyCommand::Load(a) => a.run(ctx),
            KeyCommand::Rotate(a) => a.run(ctx).await,
        }
    }
}

/// One key `key import`, `key export`, `key generate` or `key load` handled.
#[derive(Debug, serde::Serialize)]
struct KeyJson {
    id: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gun: Option<String>,
    /// Import and load: false when the keyring already held it.
    #[serde(skip_serializing_if = "Option::is_none")]
    imported: Option<bool>,
    /// Import: the file it came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Import: repositories in the local trust cache whose trust data use it.
    #[serde(skip_serializing_if = "Option::is_none")]
    used_by: Option<Vec<String>>,
    /// Generate: the public key file written.
    #[serde(skip_serializing_if = "Option::is_none")]
    public_key_file: Option<PathBuf>,
}

impl KeyJson {
    fn new(id: String, role: &str, gun: Option<&String>) -> Self {
        KeyJson {
            id,
            role: role.to_string(),
            gun: gun.cloned(),
            imported: None,
            path: None,
            used_by: None,
            public_key_file: None,
        }
    }
}

impl GenerateArgs {
    fn run(self, ctx: &Context) -> Result<(), Error> {
        let dir = match self.dir {
            Some(d) => d,
            None => std::env::current_dir().map_err(|e| SignerKeyError::NoDir {
                path: format!("(the current directory: {e})"),
            })?,
        };
        if let Some(name) = &self.notation {
            return super::notation::generate_command(
                ctx.out,
                name,
                self.subject.as_deref(),
                self.days,
                &dir,
            );
        }
        let name = self.name.unwrap_or_default();
        ctx.out.status(format_args!("Generating key for {name}..."));
        let made = signer::generate(&name, &dir)?;
        ctx.out.status(format_args!(
            "Successfully generated and loaded private key {} for signer {}. Corresponding public key available: {}",
            made.id,
            name,
            made.public_file.display()
        ));
        ctx.out.emit_json(&KeyJson {
            public_key_file: Some(made.public_file),
            ..KeyJson::new(made.id, &name, None)
        })
    }
}

impl LoadArgs {
    fn run(self, ctx: &Context) -> Result<(), Error> {
        ctx.out.status(format_args!(
            "Loading key from \"{}\"...",
            self.file.display()
        ));
        let d = signer::check_loadable(&self.file, self.name.as_deref(), |p| {
            let blocks = import::collect(&[p.to_path_buf()])?;
            import::decode_all(&blocks, &mut EnvOrTerminal)
        })?;
        let outcome = signer::store(&d)?;
        let what = match outcome {
            Outcome::Imported => "Successfully imported",
            Outcome::AlreadyPresent => "Already in the keyring:",
        };
        ctx.out.status(format_args!(
            "{what} key {} from {} as signer {}",
            d.id,
            self.file.display(),
            d.label.role
        ));
        ctx.out.emit_json(&KeyJson {
            imported: Some(matches!(outcome, Outcome::Imported)),
            path: Some(self.file.display().to_string()),
            ..KeyJson::new(d.id.clone(), &d.label.role, d.label.gun.as_ref())
        })
    }
}

impl ImportArgs {
    fn run(self, ctx: &Context) -> Result<(), Error> {
        if let Some([key, chain]) = self.notation.as_deref() {
            let name = super::notation::import(key, chain, self.name.as_deref())?;
            ctx.out.status(format_args!(
                "Imported Notary Project key {name} with its certificate chain from {}",
                chain.display()
            ));
            return ctx.out.emit_json(&serde_json::json!({
                "notation_key": name,
                "certificate_chain": chain,
            }));
        }
        let config = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
        let paths = if self.paths.is_empty() {
            vec![config.trust_dir().join("private")]
        } else {
            self.paths
        };
        let blocks = import::collect(&paths).map_err(Error::KeyImport)?;
        if blocks.is_empty() {
            let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
            return Err(Error::KeyImport(vec![ImportError::BadPem {
                path: shown.join(", "),
                reason: "no *.key files found".into(),
            }]));
        }
        let decoded = import::decode_all(&blocks, &mut EnvOrTerminal).map_err(Error::KeyImport)?;
        let outcomes = import::store_all(&decoded).map_err(|e| Error::KeyImport(vec![e]))?;
        let ids: Vec<String> = decoded.iter().map(|d| d.id.clone()).collect();
        let used = crate::notary::cache::repositories_using(&config.trust_dir(), &ids);
        let mut report = Vec::new();
        for (d, o) in decoded.iter().zip(&outcomes) {
            let what = match o {
                Outcome::Imported => "Imported",
                Outcome::AlreadyPresent => "Skipped (already in the keyring)",
            };
            let gun = d
                .label
                .gun
                .as_ref()
                .map(|g| format!(" for {g}"))
                .unwrap_or_default();
            ctx.out.status(format_args!(
                "{what}: {} key {}{gun} from {}",
                d.label.role, d.id, d.path
            ));
            let users: Vec<String> = used.get(&d.id).into_iter().flatten().cloned().collect();
            if users.is_empty() {
                ctx.out
                    .status("  no repository in the local trust cache uses it");
            } else {
                ctx.out.status(format_args!(
                    "  signs in the trust data of: {}",
                    users.join(", ")
                ));
            }
            report.push(KeyJson {
                imported: Some(matches!(o, Outcome::Imported)),
                path: Some(d.path.clone()),
                used_by: Some(users),
                ..KeyJson::new(d.id.clone(), &d.label.role, d.label.gun.as_ref())
            });
        }
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        ctx.out.status(format_args!(
            "The key files were left in place. Once `docker trustacr sign` works with the imported keys, keep an encrypted backup and remove them with: rm -r {}",
            shown.join(" ")
        ));
        ctx.out.emit_json(&serde_json::json!({ "keys": report }))
    }
}

/// One key of `key list`.
#[derive(Debug, serde::Serialize)]
struct Listed {
    id: String,
    role: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gun: Option<String>,
    algorithm: &'static str,
    imported: bool,
    entry: String,
    /// With REPO: the roles of its trust data this key can sign.
    #[serde(skip_serializing_if = "Option::is_none")]
    signs: Option<Vec<String>>,
}

#[derive(Debug, serde::Serialize)]
struct Listing {
    keys: Vec<Listed>,
    #[serde(skip_serializing_if = "Option::is_none")]
    repository: Option<String>,
    /// With REPO: roles whose keys are all elsewhere (snapshot and timestamp are usually
    /// the server's).
    #[serde(skip_serializing_if = "Option::is_none")]
    roles_without_key: Option<Vec<String>>,
    /// With REPO: what expires within [`EXPIRY_WARNING_DAYS`] (or has expired), soonest first.
    #[serde(skip_serializing_if = "Option::is_none")]
    expiring: Option<Vec<Expiring>>,
}

/// Roles and root certificates this close to their end date are named by `key list REPO`.
const EXPIRY_WARNING_DAYS: i64 = 30;

#[derive(Debug, serde::Serialize)]
struct Expiring {
    what: String,
    /// RFC 3339.
    expires: String,
    /// Whole days left; negative once expired.
    days_left: i64,
}

/// Every role of `repo` with the (canonical) key IDs that may sign it.
fn role_keys(repo: &Repo) -> Vec<(String, Vec<String>)> {
    let root = &repo.root.root;
    let canonical = |keys: &std::collections::BTreeMap<String, crate::tuf::keys::PublicKey>,
                     ids: &[String]| {
        ids.iter()
            .map(|id| {
                keys.get(id)
                    .and_then(|k| k.canonical_id().ok())
                    .unwrap_or_else(|| id.clone())
            })
            .collect::<Vec<_>>()
    };
    let mut out: Vec<(String, Vec<String>)> = root
        .roles
        .iter()
        .map(|(name, r)| (name.clone(), canonical(&root.keys, &r.keyids)))
        .collect();
    for v in &repo.roles {
        let d = &v.targets.delegations;
        for r in &d.roles {
            if out.iter().any(|(n, _)| *n == r.name) {
                continue;
            }
            let ids = r.keyids.clone().unwrap_or_default();
            out.push((r.name.clone(), canonical(&d.keys, &ids)));
        }
    }
    out
}

impl ListArgs {
    async fn run(self, ctx: &Context) -> Result<(), Error> {
        let held = keys::list()?;
        let repo = match &self.repo {
            Some(r) => {
                let image = ImageRef::parse(r)?;
                Some(
                    cancellable(&ctx.cancel, async {
                        let t = TrustRepo::open(ctx, &image).await?;
                        t.update().await
                    })
                    .await?,
                )
            }
            None => None,
        };
        let roles = repo.as_ref().map(role_keys);
        let now = time::OffsetDateTime::now_utc();
        let mut listing = Listing {
            keys: held
                .iter()
                .map(|h| {
                    let id = h.key.public().id();
                    let signs = roles.as_ref().map(|roles| {
                        roles
                            .iter()
                            .filter(|(_, ids)| ids.contains(&id))
                            .map(|(n, _)| n.clone())
                            .collect()
                    });
                    Listed {
                        id,
                        role: h.label.role.clone(),
                        gun: h.label.gun.clone(),
                        algorithm: h.key.algorithm(),
                        imported: h.imported,
                        entry: h.entry.clone(),
                        signs,
                    }
                })
                .collect(),
            repository: repo.as_ref().map(|r| r.gun.clone()),
            roles_without_key: None,
            expiring: repo.as_ref().map(|r| {
                r.expiring(now, time::Duration::days(EXPIRY_WARNING_DAYS))
                    .into_iter()
                    .map(|e| Expiring {
                        what: e.what,
                        expires: e
                            .at
                            .format(&time::format_description::well_known::Rfc3339)
                            .unwrap_or_default(),
                        days_left: (e.at - now).whole_days(),
                    })
                    .collect()
            }),
        };
        if let Some(roles) = &roles {
            listing.roles_without_key = Some(
                roles
                    .iter()
                    .filter(|(_, ids)| !listing.keys.iter().any(|k| ids.contains(&k.id)))
                    .map(|(n, _)| n.clone())
                    .collect(),
            );
            // Only keys that sign something here are of interest for one repository.
            listing
                .keys
                .retain(|k| k.signs.as_ref().is_some_and(|s| !s.is_empty()));
        }
        ctx.out.emit(&listing, |out| print_listing(out, &listing))?;
        // On stderr, so scripts reading the listing still get only the listing.
        let gun = listing.repository.as_deref().unwrap_or("REPO");
        for e in listing.expiring.iter().flatten() {
            let hint = if e.what.starts_with("root") {
                format!("`docker trustacr key rotate {gun} root` renews it")
            } else {
                format!("`docker trustacr sign` of any tag in {} renews it", e.what)
            };
            match e.days_left {
                d if d < 0 => eprintln!("Warning: {} expired on {}; {hint}", e.what, e.expires),
                d => eprintln!(
                    "Warning: {} expires in {d} days ({}); {hint}",
                    e.what, e.expires
                ),
            }
        }
        Ok(())
    }
}

fn print_listing(out: &mut dyn std::io::Write, l: &Listing) -> std::io::Result<()> {
    if l.keys.is_empty() {
        writeln!(
            out,
            "No signing keys in the keyring{}.",
            match &l.repository {
                Some(r) => format!(" for {r}"),
                None => String::new(),
            }
        )?;
    } else {
        writeln!(
            out,
            "{:<64}  {:<18}  {:<9}  {:<8}  GUN / SIGNS",
            "ID", "ROLE", "ALGORITHM", "SOURCE"
        )?;
        for k in &l.keys {
            let last = match &k.signs {
                Some(s) => s.join(", "),
                None => k.gun.clone().unwrap_or_default(),
            };
            let source = if k.imported { "imported" } else { "created" };
            writeln!(
                out,
                "{:<64}  {:<18}  {:<9}  {:<8}  {last}",
                k.id, k.role, k.algorithm, source
            )?;
        }
    }
    if let (Some(repo), Some(missing)) = (&l.repository, &l.roles_without_key)
        && !missing.is_empty()
    {
        writeln!(
            out,
            "Roles of {repo} with no key here: {} (snapshot and timestamp are usually kept by the server)",
            missing.join(", ")
        )?;
    }
    Ok(())
}

impl ExportArgs {
    async fn run(self, ctx: &Context) -> Result<(), Error> {
        let image = self.repo.as_deref().map(ImageRef::parse).transpose()?;
        let gun = image.as_ref().map(ImageRef::gun);
        // The repository's own key IDs, from its verified trust data: the root key is shared
        // by many repositories and carries no GUN.
        let repo_ids: Option<Vec<String>> = match &image {
            Some(image) => {
                let repo = cancellable(&ctx.cancel, async {
                    let t = TrustRepo::open(ctx, image).await?;
                    t.update().await
                })
                .await?;
                Some(
                    role_keys(&repo)
                        .into_iter()
                        .flat_map(|(_, ids)| ids)
                        .collect(),
                )
            }
            None => None,
        };
        let held: Vec<keys::Held> = keys::list()?
            .into_iter()
            .filter(|h| match (&gun, &repo_ids) {
                (Some(g), Some(ids)) => {
                    ids.contains(&h.key.public().id()) || h.label.gun.as_deref() == Some(g.as_str())
                }
                _ => true,
            })
            .filter(|h| self.role.as_ref().is_none_or(|r| *r == h.label.role))
            .collect();
        if held.is_empty() {
            let mut what = Vec::new();
            if let Some(g) = &gun {
                what.push(format!("repository {g}"));
            }
            if let Some(r) = &self.role {
                what.push(format!("role {r}"));
            }
            if what.is_empty() {
                what.push("anything".into());
            }
            return Err(ExportError::NoKeys(what.join(" and ")).into());
        }
        let mut text = String::new();
        let mut typed: Vec<(bool, Zeroizing<String>)> = Vec::new();
        for h in &held {
            let id = h.key.public().id();
            let pass = export_passphrase(&h.label.role, &id, &mut typed)?;
            text.push_str(&export::encrypted_pem(&h.key, &h.label, &pass)?);
        }
        export::write_private_file(&self.output, &text, self.force)?;
        let mut report = Vec::new();
        for h in &held {
            let gun = h
                .label
                .gun
                .as_ref()
                .map(|g| format!(" for {g}"))
                .unwrap_or_default();
            ctx.out.status(format_args!(
                "Exported: {} key {}{gun}",
                h.label.role,
                h.key.public().id()
            ));
            report.push(KeyJson::new(
                h.key.public().id(),
                &h.label.role,
                h.label.gun.as_ref(),
            ));
        }
        ctx.out.status(format_args!(
            "Wrote {} (mode 0600). It restores with `docker trustacr key import {0}` or `notary key import {0}`; keep it off this machine, with its passphrases stored apart from it",
            self.output.display()
        ));
        ctx.out.emit_json(&serde_json::json!({
            "file": self.output,
            "keys": report,
        }))
    }
}

/// The passphrase for exporting a key of `role`: docker's or notary's variable, else typed
/// twice on the terminal (at least 8 characters, as docker asks). A typed one is reused for
/// the other keys of the same kind (root / not root), in `typed`.
fn export_passphrase(
    role: &str,
    id: &str,
    typed: &mut Vec<(bool, Zeroizing<String>)>,
) -> Result<Zeroizing<String>, ExportError> {
    let vars = import::passphrase_vars(role);
    for v in vars {
        if let Ok(p) = std::env::var(v)
            && !p.is_empty()
        {
            return Ok(Zeroizing::new(p));
        }
    }
    let is_root = role == "root";
    if let Some((_, p)) = typed.iter().find(|(r, _)| *r == is_root) {
        return Ok(p.clone());
    }
    let short: String = id.chars().take(7).collect();
    let kind = if is_root { "root" } else { "repository" };
    let io =
        |e: std::io::Error| ExportError::BadPassphrase(format!("cannot read the passphrase: {e}"));
    let Some(first) = terminal::read_hidden(&format!(
        "Enter a passphrase to encrypt the {kind} key with ID {short} in the export: "
    ))
    .map_err(io)?
    else {
        return Err(ExportError::NoPassphrase {
            role: role.to_string(),
            id: id.to_string(),
            vars: vars.join(" or "),
        });
    };
    if first.chars().count() < 8 {
        return Err(ExportError::BadPassphrase(
            "the passphrase must have at least 8 characters".into(),
        ));
    }
    let again = terminal::read_hidden("Repeat the passphrase: ")
        .map_err(io)?
        .unwrap_or_default();
    if *again != *first {
        return Err(ExportError::BadPassphrase(
            "the passphrases do not match".into(),
        ));
    }
    typed.push((is_root, first.clone()));
    Ok(first)
}

/// Passphrases from docker's and notary's variables, then a no-echo prompt on the terminal.
struct EnvOrTerminal;

impl Passphrases for EnvOrTerminal {
    fn known(&mut self, block: &Block) -> Vec<(String, Zeroizing<String>)> {
        import::passphrase_vars(&block.label.role)
            .iter()
            .filter_map(|v| {
                let value = Zeroizing::new(std::env::var(v).ok()?);
                (!value.is_empty()).then(|| (v.to_string(), value))
            })
            .collect()
    }

    fn ask(&mut self, block: &Block, attempt: u32) -> std::io::Result<Option<Zeroizing<String>>> {
        let gun = block
            .label
            .gun
            .as_ref()
            .map(|g| format!(" of {g}"))
            .unwrap_or_default();
        let again = if attempt > 0 {
            "Wrong passphrase. "
        } else {
            ""
        };
        let id: String = block.shown_id().chars().take(7).collect();
        terminal::read_hidden(&format!(
            "{again}Enter passphrase for {} key with ID {id}{gun}: ",
            block.label.role
        ))
    }
}

#[cfg(unix)]
mod terminal {
    use std::io::{Read, Write};

    use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
    use zeroize::Zeroizing;

    /// Reads a line from the controlling terminal with echo off; `Ok(None)` without one.
    pub fn read_hidden(prompt: &str) -> std::io::Result<Option<Zeroizing<String>>> {
        let Ok(mut tty) = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/tty")
        else {
            return Ok(None);
        };
        let Ok(saved) = tcgetattr(&tty) else {
            return Ok(None);
        };
        let mut quiet = saved.clone();
        quiet.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&tty, OptionalActions::Flush, &quiet)?;
        let result = (|| {
            tty.write_all(prompt.as_bytes())?;
            tty.flush()?;
            // Sized up front and read byte by byte, so no unwiped copy is left behind.
            let mut line = Zeroizing::new(Vec::with_capacity(1024));
            let mut b = [0u8; 1];
            while line.len() < 1024 {
                if tty.read(&mut b)? == 0 || b[0] == b'\n' {
                    break;
                }
                line.push(b[0]);
            }
            zeroize::Zeroize::zeroize(&mut b);
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let text = std::str::from_utf8(&line)
                .map_err(|_| std::io::Error::other("the passphrase is not UTF-8"))?;
            Ok(Zeroizing::new(text.to_string()))
        })();
        let _ = tcsetattr(&tty, OptionalActions::Flush, &saved);
        let _ = tty.write_all(b"\n");
        result.map(Some)
    }
}

#[cfg(not(unix))]
mod terminal {
    use zeroize::Zeroizing;

    /// No prompt on this platform yet: passphrases come from the environment.
    pub fn read_hidden(_prompt: &str) -> std::io::Result<Option<Zeroizing<String>>> {
        Ok(None)
    }
}
