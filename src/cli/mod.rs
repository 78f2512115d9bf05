//! The command line: clap definitions, dispatch, and the one place where errors become text
//! and exit codes.

mod doctor;
mod exit;
mod info;
mod inspect;
mod key;
mod login;
mod man;
mod migrate;
mod notation;
mod policy;
mod pull;
mod push;
mod registry;
mod revoke;
mod rotate;
mod sign;
mod signer;
mod trust;
mod verify;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

use crate::dockercfg::context::ContextError;
use crate::dockercfg::credentials::CredentialError;
use crate::dockercfg::{ConfigError, Environment};
use crate::engine::EngineError;
use crate::keystore::KeystoreError;
use crate::notary::client::ClientError;
use crate::notary::publish::PublishError;
use crate::plugin::cancel::{CancelReason, Cancellation};
use crate::plugin::{self, GlobalFlags, InvocationError, Mode};
use crate::reference::ReferenceError;
use crate::registry::{HttpError, ManifestError};

pub use exit::{
    EXIT_CANCELLED, EXIT_FAILURE, EXIT_NETWORK, EXIT_NOT_SIGNED, EXIT_PERMISSION, EXIT_REFUSED,
    EXIT_USAGE, Kind,
};

const ABOUT: &str = "Signed image push and pull for Azure Container Registry.\n\n\
Signs in with Microsoft Entra ID, keeps signing keys in the OS keyring, and publishes and \
verifies Docker Content Trust (Notary v1) data that `notary` and `docker trust` accept.";

#[derive(Debug, Parser)]
#[command(version, about = ABOUT, arg_required_else_help = true, disable_help_subcommand = false)]
struct Cli {
    #[command(flatten)]
    entra: crate::entra::EntraOptions,
    /// Output format: text, or one JSON document on stdout (schemas in docs/schema/).
    #[arg(long, global = true, value_enum, default_value_t = Format::Text)]
    format: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show where configuration, the Docker engine, the keyring and trust data are, and whether
    /// each one works.
    Info(info::InfoArgs),
    /// Push an image through the Docker engine and sign the pushed digest.
    Push(push::PushArgs),
    /// Pull the digest that verified trust data signs for a tag, then tag it.
    Pull(pull::PullArgs),
    /// Sign in to an Azure Container Registry with Entra ID and store the ACR token in docker's
    /// credential helper.
    Login(login::LoginArgs),
    /// Remove the stored ACR token of a registry.
    Logout(login::LogoutArgs),
    /// Sign tags that are already in the registry and publish the trust data.
    Sign(sign::SignArgs),
    /// Print the digest that verified trust data signs for a tag.
    Verify(verify::VerifyArgs),
    /// Show signed tags, signers and keys, as `docker trust inspect` does.
    Inspect(inspect::InspectArgs),
    /// Remove the signature of a tag (or, with --yes, of every tag).
    Revoke(revoke::RevokeArgs),
    /// Manage signing keys: import, list, back up, generate and load them.
    Key(key::KeyArgs),
    /// Manage the registry over Azure Resource Manager: its content trust policy.
    Registry(registry::RegistryArgs),
    /// Check everything a signed push needs (sign-in, roles, registry settings, trust data,
    /// keys, expiry) and say how to fix what is wrong.
    Doctor(doctor::DoctorArgs),
    /// Notary Project trust policy and trust store, in notation's own files.
    Policy(policy::PolicyArgs),
    /// Manage who may sign a repository: add and remove signers, as `docker trust signer`.
    Signer(signer::SignerArgs),
    /// Co-sign every DCT-signed tag of a repository with a Notary Project signature, before DCT
    /// is disabled (disabling it deletes the trust data), and report parity.
    Migrate(migrate::MigrateArgs),
    /// Print the shell completion script of the standalone command, e.g.
    /// `source <(docker-trust-acr completion bash)`.
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages, generated from this command line.
    #[command(hide = true)]
    Man(man::ManArgs),
}

impl Command {
    /// Whether the command's usual run reads a signing key from the keyring.
    fn signs(&self) -> bool {
        matches!(self, Command::Sign(_) | Command::Push(_))
    }
}

/// Output format of commands that report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable text.
    Text,
    /// One JSON document.
    Json,
}

/// Where a command's report goes: the one emitter of every command, so that with
/// `--format json` stdout carries exactly one JSON document and everything else (status lines,
/// progress, warnings) goes to stderr.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// What `--format` asked for.
    pub format: Format,
}

impl Output {
    /// Whether the report is JSON.
    pub fn json(&self) -> bool {
        self.format == Format::Json
    }

    /// A status line (docker's "Successfully signed …"): stdout in text, stderr with json.
    pub fn status(&self, line: impl std::fmt::Display) {
        use std::io::Write;
        // A closed stdout must not panic (println! would); the final emit reports it.
        let _ = match self.format {
            Format::Text => writeln!(std::io::stdout().lock(), "{line}"),
            Format::Json => writeln!(std::io::stderr().lock(), "{line}"),
        };
    }

    /// The engine's progress renderer, on the stream status lines use.
    pub fn progress(&self) -> crate::engine::progress::Progress {
        match self.format {
            Format::Text => crate::engine::progress::Progress::stdout(),
            Format::Json => crate::engine::progress::Progress::stderr(),
        }
    }

    /// Writes the command's report: `doc` as one pretty JSON document, or `text` for humans.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        doc: &T,
        text: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Result<(), Error> {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        match self.format {
            Format::Json => serde_json::to_writer_pretty(&mut out, doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(out)),
            Format::Text => text(&mut out),
        }
        .and_then(|()| out.flush())
        .map_err(Error::Output)
    }

    /// Like [`Output::emit`] for commands whose text output is the status lines already
    /// printed: nothing more in text.
    pub fn emit_json<T: serde::Serialize + ?Sized>(&self, doc: &T) -> Result<(), Error> {
        self.emit(doc, |_| Ok(()))
    }
}

/// Everything a command needs to know about how it was started.
#[derive(Debug, Clone)]
pub struct Context {
    /// Where the report goes (`--format`).
    pub out: Output,
    /// Plugin or standalone.
    pub mode: Mode,
    /// Docker global flags.
    pub globals: GlobalFlags,
    /// Docker's environment variables.
    pub env: Environment,
    /// Resolves when the command must stop.
    pub cancel: Cancellation,
    /// Entra sign-in options.
    pub entra: crate::entra::EntraOptions,
}

fn key_import_errors(errors: &[crate::keystore::import::ImportError]) -> String {
    let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// Every way a command can fail, one variant per layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// argv could not be understood.
    #[error(transparent)]
    Invocation(#[from] InvocationError),
    /// Reading docker's configuration failed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// Resolving the engine endpoint failed.
    #[error(transparent)]
    Context(#[from] ContextError),
    /// The engine is unreachable or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The keyring is unreachable or locked.
    #[error(transparent)]
    Keystore(#[from] KeystoreError),
    /// A registry credential could not be read.
    #[error(transparent)]
    Credential(#[from] CredentialError),
    /// An image reference is invalid.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// Trust data could not be fetched or did not verify.
    #[error(transparent)]
    Notary(#[from] ClientError),
    /// Publishing trust data failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
    /// HTTP setup or transfer failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The registry could not give a manifest.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Key files could not be imported; nothing was stored.
    #[error("{}", key_import_errors(.0))]
    KeyImport(Vec<crate::keystore::import::ImportError>),
    /// A key backup could not be written.
    #[error(transparent)]
    KeyExport(#[from] crate::keystore::export::ExportError),
    /// A signer key could not be generated, loaded or read.
    #[error(transparent)]
    SignerKey(#[from] crate::keystore::signer::SignerKeyError),
    /// A key rotation failed.
    #[error(transparent)]
    Rotate(Box<crate::notary::rotate::RotateError>),
    /// The tag has no valid signature.
    #[error("No valid trust data for {tag} in {gun}{}", skipped_note(skipped))]
    NotSigned {
        /// Tag.
        tag: String,
        /// GUN.
        gun: String,
        /// Delegations left out, with why.
        skipped: Vec<(String, String)>,
    },
    /// The image was pushed, but signing it failed.
    #[error(
        "{reference} was pushed ({digest}) but is NOT signed: {cause}. Sign it with: docker trustacr sign {reference}"
    )]
    PushedButUnsigned {
        /// image:tag
        reference: String,
        /// The pushed digest.
        digest: String,
        /// Why signing failed.
        cause: Box<Error>,
    },
    /// The engine reports a different digest than the verified one; nothing was tagged.
    #[error(
        "{reference}: the engine reports {reported}, not the verified {verified}; the image was not tagged"
    )]
    DigestMismatch {
        /// image:tag
        reference: String,
        /// Verified digest.
        verified: String,
        /// What the engine said.
        reported: String,
    },
    /// ACR sign-in failed.
    #[error(transparent)]
    Acr(#[from] crate::acr::AcrError),
    /// Azure Resource Manager failed or refused.
    #[error(transparent)]
    Arm(#[from] crate::acr::arm::ArmError),
    /// The identity lacks a role; found before anything was sent.
    #[error(
        "your identity lacks {role} on {registry}: its token for {scope} does not grant push, so nothing was sent. Ask an owner of the registry to run: az role assignment create --role {role} --assignee <your app or principal id> --scope $(az acr show --name <registry name> --query id --output tsv); then sign in again (cached ACR tokens carry the old roles: docker trustacr logout {registry})"
    )]
    MissingRole {
        /// AcrImageSigner or AcrPush.
        role: &'static str,
        /// Login server.
        registry: String,
        /// Scope that was asked for.
        scope: String,
    },
    /// Admin users and repository-scoped tokens cannot sign on ACR.
    #[error(
        "{registry}: signing needs a Microsoft Entra identity with AcrImageSigner; the credential in docker's configuration is a username and password (the admin account or a repository-scoped token), which ACR does not allow to sign. Sign in with Entra (service principal, workload or managed identity, or az login)"
    )]
    AcrLimitation {
        /// Login server.
        registry: String,
    },
    /// Arguments are inconsistent: the only runtime error that exits with the usage code.
    #[error("{0}")]
    Usage(String),
    /// A blocking task (keyring D-Bus I/O) ended without an answer: it panicked or its
    /// runtime shut down.
    #[error("{what} failed: {source}")]
    Task {
        /// What the task was doing.
        what: &'static str,
        /// Why it ended.
        #[source]
        source: tokio::task::JoinError,
    },
    /// A registry or trust server endpoint is refused (`DOCKER_CONTENT_TRUST_SERVER`, a host).
    #[error(transparent)]
    Endpoint(#[from] crate::registry::endpoint::EndpointError),
    /// A repository name that would escape the trust cache directory.
    #[error(transparent)]
    UnsafeName(#[from] crate::notary::cache::UnsafeName),
    /// The trust pinning settings (a pinned CA file) cannot be used.
    #[error("{0}")]
    TrustPinning(String),
    /// The command's output could not be written (stdout closed, disk full).
    #[error("cannot write the output: {0}")]
    Output(#[source] std::io::Error),
    /// A part `info` checks is broken.
    #[error("{detail}")]
    Check {
        /// The check's id (`config`, `engine`, `keyring`, `registry`).
        id: &'static str,
        /// What is wrong.
        detail: String,
        /// What to do about it, when the detail does not already say.
        hint: Option<String>,
    },
    /// One image of several could not be inspected.
    #[error("no signatures or cannot access {name}: {cause}")]
    Inaccessible {
        /// The image as given.
        name: String,
        /// Why.
        cause: Box<Error>,
    },
    /// Independent failures of one command; the edge prints each on its own line.
    #[error("{}", several(.0))]
    Several(Vec<Error>),

    /// Notary Project signatures could not be verified.
    #[error(transparent)]
    Notation(#[from] verify::NotationError),
    /// `policy init` failed; nothing was half-written.
    #[error(transparent)]
    PolicyInit(#[from] policy::PolicyInitError),
    /// The signatures a policy requires did not verify; nothing was pulled.
    #[error("{0}")]
    Unverified(String),
    /// The image has no signature of the kinds asked for; nothing was pulled.
    #[error("{0}")]
    NoSignature(String),
    /// Notary Project keys, signing or signature push failed.
    #[error(transparent)]
    NotationSign(Box<notation::NotationError>),

    /// The command was cancelled; nothing was left half-done.
    #[error("{0}; stopped before finishing, nothing was changed")]
    Cancelled(CancelReason),
}

fn several(errors: &[Error]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

fn skipped_note(skipped: &[(String, String)]) -> String {
    skipped
        .iter()
        .map(|(role, why)| format!("; {role} was ignored: {why}"))
        .collect()
}

impl Error {
    /// The failures to print, one per line: [`Error::Several`] flattened.
    fn leaves(&self) -> Vec<&Error> {
        match self {
            Error::Several(errors) => errors.iter().flat_map(Error::leaves).collect(),
            other => vec![other],
        }
    }

    /// What to do, when the message does not already say it.
    fn hint(&self) -> Option<&str> {
        match self {
            Error::Check { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

/// Prints `error` to stderr: the one place errors become text. A stderr that cannot be written
/// to leaves only the exit code; that must not panic.
fn report(error: &Error) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    for leaf in error.leaves() {
        let _ = writeln!(stderr, "Error: {leaf}");
        if let Some(hint) = leaf.hint() {
            let _ = writeln!(stderr, "Hint: {hint}");
        }
    }
}

/// Runs `fut`, or stops with [`Error::Cancelled`] when cancellation wins the race.
/// `fut` is dropped on cancellation, so only futures that leave nothing half-done when dropped
/// belong here. Work that cannot stop midway (a trust data upload that was already sent) must
/// watch the cancellation itself and report what is live, as `notary::publish` does.
pub async fn cancellable<T>(
    cancel: &Cancellation,
    fut: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::select! {
        biased;
        reason = cancel.cancelled() => Err(Error::Cancelled(reason)),
        r = fut => r,
    }
}

/// The whole program after the metadata fast path: argv and environment in, exit code out.
pub fn run(argv: Vec<OsString>) -> ExitCode {
    let started_by_docker = std::env::var_os(plugin::ENV_ORIGINAL_CLI_COMMAND).is_some();
    let inv = match plugin::parse_invocation(&argv, started_by_docker) {
        Ok(inv) => inv,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "{}: {e}",
                program_name(started_by_docker)
            );
            return ExitCode::from(EXIT_USAGE);
        }
    };

    let cli = match parse_cli(inv.mode, &inv.args) {
        Ok(cli) => cli,
        // clap prints help/version to stdout (exit 0) and usage errors to stderr (exit 2).
        Err(e) => e.exit(),
    };

    init_logging(&inv.globals);
    if cli.command.signs() {
        // The keyring's session setup (a Diffie-Hellman exchange, most of it inside the
        // Secret Service) is the longest step before a key can be read: start it before the
        // async runtime exists, so it is done by the time the trust data is. Nothing is read
        // here; a keyring that cannot be opened is reported when a key is asked for.
        std::thread::spawn(crate::keystore::warm);
    }

    let deadline = match crate::timeouts::command() {
        Ok(d) => d,
        Err(e) => {
            let e = Error::Usage(e.to_string());
            report(&e);
            return ExitCode::from(e.exit_code());
        }
    };

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "Error: cannot start the async runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };

    let result = runtime.block_on(async {
        let socket = std::env::var(plugin::ENV_PLUGIN_SOCKET).ok();
        let cancel = match Cancellation::install(socket.as_deref(), deadline) {
            Ok(c) => c,
            Err(e) => {
                // Ctrl-C still works; only the CLI's forwarded cancel is lost.
                tracing::warn!("{e}; cancellation through the docker CLI is unavailable");
                Cancellation::install(None, deadline).unwrap_or_else(|_| Cancellation::never())
            }
        };
        let ctx = Context {
            mode: inv.mode,
            globals: inv.globals,
            env: Environment::from_process(),
            cancel,
            entra: cli.entra,
            out: Output { format: cli.format },
        };
        match cli.command {
            Command::Info(args) => args.run(&ctx).await,
            Command::Push(args) => args.run(&ctx).await,
            Command::Pull(args) => args.run(&ctx).await,
            Command::Sign(args) => args.run(&ctx).await,
            Command::Login(args) => args.run(&ctx).await,
            Command::Logout(args) => args.run(&ctx).await,
            Command::Verify(args) => args.run(&ctx).await,
            Command::Inspect(args) => args.run(&ctx).await,
            Command::Revoke(args) => args.run(&ctx).await,
            Command::Key(args) => args.run(&ctx).await,
            Command::Registry(args) => args.run(&ctx).await,
            Command::Doctor(args) => args.run(&ctx).await,
            Command::Policy(args) => args.run(&ctx).await,
            Command::Signer(args) => args.run(&ctx).await,
            Command::Migrate(args) => args.run(&ctx).await,
            Command::Completion { shell } => {
                text_only(cli.format, "completion prints a shell script")?;
                completion(shell)
            }
            Command::Man(args) => {
                text_only(cli.format, "man writes manual pages")?;
                args.run(Cli::command())
            }
        }
    });
    // Background tasks (signal listeners, socket reader) must not keep the process alive.
    runtime.shutdown_background();

    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes `shell`'s completion script for the standalone command, generated from the clap
/// definition so that it never lags behind the commands and flags.
/// Commands whose output is a file format of its own refuse `--format json` rather than
/// print something a script would take for the JSON it asked for.
fn text_only(format: Format, what: &str) -> Result<(), Error> {
    match format {
        Format::Text => Ok(()),
        Format::Json => Err(Error::Usage(format!(
            "{what}; --format json does not apply"
        ))),
    }
}

fn completion(shell: clap_complete::Shell) -> Result<(), Error> {
    use std::io::Write;
    let name = Mode::Standalone.command_name();
    let mut script = Vec::new();
    if shell == clap_complete::Shell::Bash {
        // clap_complete spells a hyphenated name two ways in the bash script's state names, so
        // no subcommand's flags would complete: generate under a plain name, then register the
        // function for the real one.
        const PLAIN: &str = "trustacrcompletionbin";
        clap_complete::generate(shell, &mut Cli::command().name(PLAIN), PLAIN, &mut script);
        let text = String::from_utf8_lossy(&script)
            .replace(
                &format!("-o default {PLAIN}"),
                &format!("-o default {name}"),
            )
            .replace(PLAIN, "docker_trust_acr");
        script = text.into_bytes();
    } else {
        clap_complete::generate(shell, &mut Cli::command().name(name), name, &mut script);
    }
    let mut out = std::io::stdout().lock();
    out.write_all(&script)
        .and_then(|()| out.flush())
        .map_err(Error::Output)
}

fn parse_cli(mode: Mode, args: &[OsString]) -> Result<Cli, clap::Error> {
    let command = Cli::command()
        .name(mode.command_name())
        .bin_name(mode.command_name());
    command
        .try_get_matches_from(args)
        .and_then(|m| Cli::from_arg_matches(&m))
}

/// Parses the plugin's own arguments (as [`plugin::parse_invocation`] leaves them) without
/// running anything, and renders clap's answer the way the edge would print it. The `argv`
/// fuzz target drives this: no argv may make parsing or rendering panic (#8 item 15).
pub fn check_args(mode: Mode, args: &[OsString]) -> Result<(), String> {
    parse_cli(mode, args)
        .map(|_| ())
        .map_err(|e| e.render().to_string())
}

fn program_name(started_by_docker: bool) -> &'static str {
    if started_by_docker {
        Mode::Plugin.command_name()
    } else {
        Mode::Standalone.command_name()
    }
}

/// Logs go to stderr. `-D` (or `DEBUG=1`, which the docker CLI sets for `-D`) means debug;
/// `-l LEVEL` sets the level; `RUST_LOG` overrides both for development.
fn init_logging(globals: &GlobalFlags) {
    let level = if globals.debug || std::env::var_os("DEBUG").is_some_and(|v| v == "1") {
        "debug"
    } else {
        globals.log_level.map_or("warn", |l| l.as_filter())
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("docker_trustacr={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn unknown_subcommand_is_a_usage_error() {
        let err = Cli::try_parse_from(["docker trustacr", "frobnicate"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
