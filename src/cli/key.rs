//! `key import`: bring docker's and notary's private keys into the keyring, so repositories
//! made with `DOCKER_CONTENT_TRUST=1 docker push` or `notary` can be signed here.

use std::path::PathBuf;

use zeroize::Zeroizing;

use super::{Context, Error};
use crate::dockercfg::ConfigDir;
use crate::keystore::import::{self, Block, ImportError, Outcome, Passphrases};

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
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    /// Key directories or files [default: $DOCKER_CONFIG/trust/private].
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
}

impl KeyArgs {
    /// Runs the command.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        match self.command {
            KeyCommand::Import(a) => a.run(ctx),
        }
    }
}

impl ImportArgs {
    fn run(self, ctx: &Context) -> Result<(), Error> {
        let paths = if self.paths.is_empty() {
            let dir = ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env)?;
            vec![dir.trust_dir().join("private")]
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
            println!("{what}: {} key {}{gun} from {}", d.label.role, d.id, d.path);
        }
        let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        println!(
            "The key files were left in place. Once `docker trustacr sign` works with the imported keys, keep an encrypted backup and remove them with: rm -r {}",
            shown.join(" ")
        );
        Ok(())
    }
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
