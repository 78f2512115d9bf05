//! The Docker CLI plugin protocol: how the process was started and what argv means.
//!
//! The docker CLI runs a plugin in three ways (docker/cli `cli-plugins/manager`):
//! - `docker-trustacr docker-cli-plugin-metadata`: answer with the metadata JSON and nothing
//!   else. The CLI waits for this on every `docker --help`, so that path must do no I/O.
//! - `docker-trustacr [docker global flags] trustacr SUB …`: the CLI's whole argv after `docker`,
//!   with `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND` set. The CLI exports none of its own settings,
//!   so the global flags are parsed here ([`GlobalFlags`]).
//! - `docker-trustacr help trustacr` for `docker help trustacr`.
//!
//! Outside the docker CLI the same binary runs standalone (`docker-trust-acr SUB …`), and then
//! argv\[1\] is the subcommand.

pub mod cancel;
mod globals;

use std::ffi::OsString;

pub use globals::{GlobalFlags, GlobalFlagsError, LogLevel};

/// The name the docker CLI knows us by (`docker trustacr …`). Docker only accepts plugin names
/// matching `^[a-z][a-z0-9]*$`, which is why it is not `trust-acr`.
pub const PLUGIN_NAME: &str = "trustacr";

/// The name `install.sh` links onto PATH for standalone use.
pub const STANDALONE_NAME: &str = "docker-trust-acr";

/// argv\[1\] with which the docker CLI asks for the plugin's metadata.
pub const METADATA_SUBCOMMAND: &str = "docker-cli-plugin-metadata";

/// Set by the docker CLI (v20.10+) in the environment of every plugin it runs.
pub const ENV_ORIGINAL_CLI_COMMAND: &str = "DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND";

/// Abstract socket the docker CLI (v25+) closes to ask a plugin to cancel.
pub const ENV_PLUGIN_SOCKET: &str = "DOCKER_CLI_PLUGIN_SOCKET";

/// The metadata document, baked in at build time from `plugin-metadata/metadata.json`.
pub fn metadata_json() -> &'static str {
    include_str!(concat!(env!("OUT_DIR"), "/metadata.json"))
}

/// True when argv asks for the plugin metadata. Checked before anything else happens, so
/// that path costs one comparison and one write.
pub fn is_metadata_request(argv: &[OsString]) -> bool {
    argv.get(1).is_some_and(|a| a == METADATA_SUBCOMMAND)
}

/// How this process was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run by the docker CLI as `docker trustacr …`.
    Plugin,
    /// Run directly, as `docker-trust-acr …` or `docker-trustacr …`.
    Standalone,
}

impl Mode {
    /// The command name users type in this mode, for help and usage texts.
    pub fn command_name(self) -> &'static str {
        match self {
            Mode::Plugin => "docker trustacr",
            Mode::Standalone => STANDALONE_NAME,
        }
    }
}

/// argv split into docker's global flags and the plugin's own arguments.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// Plugin or standalone.
    pub mode: Mode,
    /// Docker global flags found before the plugin name (or before the subcommand).
    pub globals: GlobalFlags,
    /// The plugin's own arguments, program name first, ready for clap.
    pub args: Vec<OsString>,
}

/// argv could not be understood before clap even saw it.
#[derive(Debug, thiserror::Error)]
pub enum InvocationError {
    /// A global flag was malformed.
    #[error(transparent)]
    Globals(#[from] GlobalFlagsError),
    /// Run by the docker CLI, but the plugin name is missing from argv.
    #[error(
        "started by the docker CLI but argv does not name the `{PLUGIN_NAME}` command (found {found:?})"
    )]
    PluginNameMissing {
        /// What stood where the plugin name was expected.
        found: Option<String>,
    },
}

/// Splits argv (program name first) into mode, global flags and the plugin's arguments.
///
/// `started_by_docker` is whether `DOCKER_CLI_PLUGIN_ORIGINAL_CLI_COMMAND` is set.
pub fn parse_invocation(
    argv: &[OsString],
    started_by_docker: bool,
) -> Result<Invocation, InvocationError> {
    let mode = if started_by_docker {
        Mode::Plugin
    } else {
        Mode::Standalone
    };
    let program = OsString::from(mode.command_name());
    let rest = argv.get(1..).unwrap_or_default();

    // `docker help trustacr [SUB]` runs us as `help trustacr [SUB]`.
    if mode == Mode::Plugin
        && rest.first().is_some_and(|a| a == "help")
        && rest.get(1).is_some_and(|a| a == PLUGIN_NAME)
    {
        let mut args = vec![program];
        args.extend(rest[2..].iter().cloned());
        args.push("--help".into());
        return Ok(Invocation {
            mode,
            globals: GlobalFlags::default(),
            args,
        });
    }

    let (globals, consumed) = GlobalFlags::parse_leading(rest)?;
    let mut remaining = &rest[consumed..];
    if mode == Mode::Plugin {
        match remaining.first() {
            Some(name) if name == PLUGIN_NAME => remaining = &remaining[1..],
            other => {
                return Err(InvocationError::PluginNameMissing {
                    found: other.map(|s| s.to_string_lossy().into_owned()),
                });
            }
        }
    }
    let mut args = Vec::with_capacity(remaining.len() + 1);
    args.push(program);
    args.extend(remaining.iter().cloned());
    Ok(Invocation {
        mode,
        globals,
        args,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(items: &[&str]) -> Vec<OsString> {
        items.iter().map(OsString::from).collect()
    }

    fn args_of(inv: &Invocation) -> Vec<String> {
        inv.args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn metadata_is_valid_json_with_the_fields_docker_requires() {
        let v: serde_json::Value = serde_json::from_str(metadata_json()).unwrap();
        assert_eq!(v["SchemaVersion"], "0.1.0");
        assert!(!v["Vendor"].as_str().unwrap().is_empty());
        assert_eq!(v["Version"], env!("CARGO_PKG_VERSION"));
        assert!(!v["ShortDescription"].as_str().unwrap().is_empty());
        assert!(v["URL"].as_str().unwrap().starts_with("https://"));
    }

    #[test]
    fn metadata_request_is_recognised_only_at_argv1() {
        assert!(is_metadata_request(&argv(&["x", METADATA_SUBCOMMAND])));
        assert!(!is_metadata_request(&argv(&[
            "x",
            "trustacr",
            METADATA_SUBCOMMAND
        ])));
        assert!(!is_metadata_request(&argv(&["x"])));
    }

    #[test]
    fn plugin_mode_strips_global_flags_and_plugin_name() {
        let inv = parse_invocation(
            &argv(&[
                "/p/docker-trustacr",
                "--config",
                "/cfg",
                "-H",
                "unix:///s.sock",
                "--log-level=debug",
                "-D",
                "trustacr",
                "info",
                "--format",
                "json",
                "-H",
                "z",
            ]),
            true,
        )
        .unwrap();
        assert_eq!(inv.mode, Mode::Plugin);
        assert_eq!(inv.globals.config.as_deref(), Some("/cfg".as_ref()));
        assert_eq!(inv.globals.hosts, vec!["unix:///s.sock".to_string()]);
        assert!(inv.globals.debug);
        assert_eq!(inv.globals.log_level, Some(LogLevel::Debug));
        // Flags after the plugin name belong to the plugin, even when they look like docker's.
        assert_eq!(
            args_of(&inv),
            ["docker trustacr", "info", "--format", "json", "-H", "z"]
        );
    }

    #[test]
    fn docker_help_trustacr_becomes_help_flag() {
        let inv = parse_invocation(&argv(&["p", "help", "trustacr"]), true).unwrap();
        assert_eq!(args_of(&inv), ["docker trustacr", "--help"]);
        let inv = parse_invocation(&argv(&["p", "help", "trustacr", "info"]), true).unwrap();
        assert_eq!(args_of(&inv), ["docker trustacr", "info", "--help"]);
    }

    #[test]
    fn standalone_mode_takes_argv1_as_subcommand() {
        let inv = parse_invocation(&argv(&["docker-trust-acr", "info"]), false).unwrap();
        assert_eq!(inv.mode, Mode::Standalone);
        assert_eq!(args_of(&inv), ["docker-trust-acr", "info"]);
        let inv =
            parse_invocation(&argv(&["docker-trust-acr", "-c", "ctx", "info"]), false).unwrap();
        assert_eq!(inv.globals.context.as_deref(), Some("ctx"));
        assert_eq!(args_of(&inv), ["docker-trust-acr", "info"]);
    }

    #[test]
    fn plugin_mode_without_plugin_name_is_an_error() {
        let err = parse_invocation(&argv(&["p", "--debug", "info"]), true).unwrap_err();
        assert!(err.to_string().contains("trustacr"), "{err}");
    }

    #[test]
    fn unknown_leading_flag_is_left_for_clap() {
        let inv = parse_invocation(&argv(&["docker-trust-acr", "--version"]), false).unwrap();
        assert_eq!(args_of(&inv), ["docker-trust-acr", "--version"]);
    }
}
