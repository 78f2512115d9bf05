//! `man [--dir DIR]` (hidden): the manual pages, generated from the clap definition so that they
//! never lag behind the commands and flags. Without `--dir`, the main page on stdout
//! (`docker-trust-acr man | man -l -`); with it, one page per command, as git's
//! `git-commit(1)`: docker-trust-acr.1, docker-trust-acr-push.1, docker-trust-acr-key-import.1…

use std::io::Write;
use std::path::PathBuf;

use super::Error;

/// Arguments of `man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Write every page (section 1) into this directory instead of the main page to stdout.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

impl ManArgs {
    /// Renders the pages of `cmd`, the whole command line.
    pub fn run(self, cmd: clap::Command) -> Result<(), Error> {
        let name = crate::plugin::Mode::Standalone.command_name();
        let cmd = cmd.name(name).disable_help_subcommand(true);
        match self.dir {
            Some(dir) => {
                std::fs::create_dir_all(&dir)
                    .and_then(|()| clap_mangen::generate_to(cmd, &dir))
                    .map_err(Error::Output)?;
                println!("Wrote the manual pages to {}", dir.display());
                Ok(())
            }
            None => {
                let mut page = Vec::new();
                clap_mangen::Man::new(cmd)
                    .render(&mut page)
                    .map_err(Error::Output)?;
                let mut out = std::io::stdout().lock();
                out.write_all(&page)
                    .and_then(|()| out.flush())
                    .map_err(Error::Output)
            }
        }
    }
}
