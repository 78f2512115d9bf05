//! `info`: where everything is and whether it works. It proves the plugin's wiring: docker's
//! config dir and contexts, the engine through bollard, the keyring, and registry credentials.
//!
//! The report is the facts found (paths, endpoints, versions) plus a list of [`Check`]s, one per
//! part, rendered by [`write_text`] and [`to_json`]. `doctor` extends the same list. Every part
//! is checked even when another fails; the command fails when any check fails, so scripts can
//! use `info` as a health check. Failures are returned to the edge, never printed here.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::{Context, Error, cancellable};
use crate::dockercfg::context::{EndpointSource, resolve_endpoint};
use crate::dockercfg::credentials::{self, Credential, CredentialSource};
use crate::dockercfg::{ConfigDir, ConfigDirSource};
use crate::engine::{DEFAULT_TIMEOUT, Engine, EngineVersion};
use crate::keystore::{self, KeyringState};
use crate::plugin::Mode;

/// Arguments of `info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Also show which credential docker's configuration holds for this registry host
    /// (never the secret itself), e.g. myregistry.azurecr.io.
    #[arg(long, value_name = "HOST")]
    registry: Option<String>,
}

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The part works.
    Ok,
    /// The part works, but something will likely fail later (e.g. no registry credential).
    Warn,
    /// The part is broken; the command fails.
    Fail,
}

/// One part `info` checks, and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable id, also the report section it belongs to: `config`, `engine`, `keyring`,
    /// `registry`.
    pub id: &'static str,
    /// Outcome.
    pub status: Status,
    /// What was found, or what is wrong.
    pub detail: String,
    /// What to do, when the detail does not already say it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

impl Check {
    fn ok(id: &'static str, detail: impl Into<String>) -> Self {
        Check {
            id,
            status: Status::Ok,
            detail: detail.into(),
            hint: None,
        }
    }

    fn fail(id: &'static str, error: &dyn std::fmt::Display) -> Self {
        Check {
            id,
            status: Status::Fail,
            detail: error.to_string(),
            hint: None,
        }
    }
}

#[derive(Debug, Serialize)]
struct Report {
    version: &'static str,
    mode: &'static str,
    config: ConfigReport,
    engine: EngineReport,
    keyring: KeyringReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    registry: Option<RegistryReport>,
    checks: Vec<Check>,
}

#[derive(Debug, Default, Serialize)]
struct ConfigReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<ConfigDirSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_dir: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
struct EngineReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<EndpointSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<EngineVersion>,
}

#[derive(Debug, Serialize)]
struct KeyringReport {
    store: &'static str,
    #[serde(flatten)]
    state: KeyringState,
}

#[derive(Debug, Serialize)]
struct RegistryReport {
    host: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_source: Option<CredentialSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    credential_kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    username: Option<String>,
}

impl Report {
    fn failure(&self, id: &str) -> Option<&str> {
        self.checks
            .iter()
            .find(|c| c.id == id && c.status == Status::Fail)
            .map(|c| c.detail.as_str())
    }

    /// The failed checks, as the errors the edge prints.
    fn failures(&self) -> Vec<Error> {
        self.checks
            .iter()
            .filter(|c| c.status == Status::Fail)
            .map(|c| Error::Check {
                id: c.id,
                detail: c.detail.clone(),
                hint: c.hint.clone(),
            })
            .collect()
    }
}

impl InfoArgs {
    /// Builds the report, prints it, and fails when a check fails.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let report = cancellable(&ctx.cancel, async { Ok(self.collect(ctx).await) }).await?;
        let written = ctx
            .out
            .emit(&to_json(&report), |out| write_text(out, &report));
        outcome(report.failures(), written)
    }

    async fn collect(&self, ctx: &Context) -> Report {
        let mut config = ConfigReport::default();
        let mut engine = EngineReport::default();
        let config_check;
        let (mut engine_check, mut registry_check) = (None, None);
        let mut registry = self.registry.as_ref().map(|host| RegistryReport {
            host: host.clone(),
            credential_source: None,
            credential_kind: None,
            username: None,
        });

        // The keyring probe is blocking D-Bus I/O; run it beside the engine call.
        let keyring = tokio::task::spawn_blocking(keystore::probe);

        match ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env) {
            Err(e) => config_check = Some(Check::fail("config", &e)),
            Ok(dir) => {
                config.trust_dir = Some(dir.trust_dir());
                config.dir = Some(dir.path.clone());
                config.source = Some(dir.source);
                let file = dir.load();
                config_check = Some(match &file {
                    Ok(_) => Check::ok("config", format!("using {}", dir.config_file().display())),
                    Err(e) => Check::fail("config", e),
                });
                let file = file.unwrap_or_default();
                engine_check = Some(
                    match resolve_endpoint(&ctx.globals, &ctx.env, &dir, &file) {
                        Err(e) => Check::fail("engine", &e),
                        Ok(ep) => {
                            engine.endpoint = Some(ep.host.clone());
                            engine.context = Some(ep.context.clone());
                            engine.source = Some(ep.source.clone());
                            let answer = match Engine::connect(&ep, DEFAULT_TIMEOUT) {
                                Ok(client) => client.version().await,
                                Err(e) => Err(e),
                            };
                            match answer {
                                Ok(v) => {
                                    let check = Check::ok(
                                        "engine",
                                        format!(
                                            "Docker {} (API {}) at {}",
                                            v.version, v.api_version, ep.host
                                        ),
                                    );
                                    engine.server = Some(v);
                                    check
                                }
                                Err(e) => Check::fail("engine", &e),
                            }
                        }
                    },
                );
                if let Some(reg) = registry.as_mut() {
                    registry_check = Some(match credentials::resolve(&file, &reg.host).await {
                        Ok(found) => {
                            let check = registry_check_of(&reg.host, &found.credential);
                            reg.credential_kind = Some(found.credential.kind());
                            reg.username = found.credential.username().map(str::to_string);
                            reg.credential_source = Some(found.source);
                            check
                        }
                        Err(e) => Check::fail("registry", &e),
                    });
                }
            }
        }

        let state = keyring.await.unwrap_or_else(|e| KeyringState::Unreachable {
            message: format!("keyring probe failed: {e}"),
        });
        let keyring_check = match &state {
            KeyringState::Unlocked => Check::ok("keyring", state.to_string()),
            KeyringState::Locked { .. } | KeyringState::Unreachable { .. } => {
                Check::fail("keyring", &state)
            }
        };
        let checks = [
            config_check,
            engine_check,
            Some(keyring_check),
            registry_check,
        ]
        .into_iter()
        .flatten()
        .collect();
        Report {
            version: env!("CARGO_PKG_VERSION"),
            mode: match ctx.mode {
                Mode::Plugin => "plugin",
                Mode::Standalone => "standalone",
            },
            config,
            engine,
            keyring: KeyringReport {
                store: keystore::STORE_NAME,
                state,
            },
            registry,
            checks,
        }
    }
}

/// A reporting command's result once its report is written: the failed checks, led by the
/// report itself when it could not be written.
pub(super) fn outcome(mut failures: Vec<Error>, written: Result<(), Error>) -> Result<(), Error> {
    if let Err(e) = written {
        failures.insert(0, e);
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(Error::Several(failures))
    }
}

/// No credential is not an error (public repositories), but signing will need one.
fn registry_check_of(host: &str, credential: &Credential) -> Check {
    match credential {
        Credential::Anonymous => Check {
            id: "registry",
            status: Status::Warn,
            detail: format!("docker's configuration holds no credential for {host}"),
            hint: Some(format!(
                "sign in with `docker trustacr login {host}` (ACR) or `docker login {host}`"
            )),
        },
        other => Check::ok("registry", other.kind()),
    }
}

/// The JSON document: the report, plus each failed check's detail as the `error` of its
/// section, where scripts written before the checks list look for it. The keyring section
/// needs none: its `message` is the detail.
fn to_json(r: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    for c in r.checks.iter().filter(|c| c.status == Status::Fail) {
        if c.id == "keyring" {
            continue;
        }
        if let Some(section) = v.get_mut(c.id).and_then(serde_json::Value::as_object_mut) {
            section.insert("error".into(), c.detail.clone().into());
        }
    }
    v
}

fn write_text(out: &mut dyn Write, r: &Report) -> std::io::Result<()> {
    let na = "-";
    writeln!(out, "Client:")?;
    writeln!(out, " Version:      {}", r.version)?;
    let mode = if r.mode == "plugin" {
        "docker CLI plugin (docker trustacr)"
    } else {
        "standalone"
    };
    writeln!(out, " Mode:         {mode}")?;
    writeln!(out, "Config:")?;
    match (&r.config.dir, r.config.source) {
        (Some(dir), Some(src)) => writeln!(out, " Directory:    {} ({src})", dir.display())?,
        _ => writeln!(out, " Directory:    {na}")?,
    }
    match &r.config.trust_dir {
        Some(t) => writeln!(out, " Trust dir:    {}", t.display())?,
        None => writeln!(out, " Trust dir:    {na}")?,
    }
    if let Some(e) = r.failure("config") {
        writeln!(out, " Error:        {e}")?;
    }
    writeln!(out, "Engine:")?;
    match (&r.engine.endpoint, &r.engine.source) {
        (Some(ep), Some(src)) => writeln!(out, " Endpoint:     {ep} ({src})")?,
        _ => writeln!(out, " Endpoint:     {na}")?,
    }
    if let Some(ctx) = &r.engine.context {
        writeln!(out, " Context:      {ctx}")?;
    }
    if let Some(v) = &r.engine.server {
        writeln!(out, " Version:      {}", v.version)?;
        writeln!(out, " API version:  {}", v.api_version)?;
        writeln!(out, " OS/Arch:      {}", v.os_arch)?;
    }
    if let Some(e) = r.failure("engine") {
        writeln!(out, " Error:        {e}")?;
    }
    writeln!(out, "Keyring:")?;
    writeln!(out, " Store:        {}", r.keyring.store)?;
    writeln!(out, " Status:       {}", r.keyring.state)?;
    if let Some(reg) = &r.registry {
        writeln!(out, "Registry {}:", reg.host)?;
        if let Some(src) = &reg.credential_source {
            writeln!(out, " Credential:   {src}")?;
        }
        if let Some(kind) = reg.credential_kind {
            match &reg.username {
                Some(u) => writeln!(out, " Kind:         {kind} (user {u})")?,
                None => writeln!(out, " Kind:         {kind}")?,
            }
        }
        if let Some(e) = r.failure("registry") {
            writeln!(out, " Error:        {e}")?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_checks_fail_the_command_and_land_in_their_json_section() {
        let report = Report {
            version: "0",
            mode: "standalone",
            config: ConfigReport::default(),
            engine: EngineReport::default(),
            keyring: KeyringReport {
                store: "test",
                state: KeyringState::Unlocked,
            },
            registry: None,
            checks: vec![
                Check::ok("config", "using /c/config.json"),
                Check::fail("engine", &"no engine"),
                Check::ok("keyring", "reachable, unlocked"),
                registry_check_of("r.io", &Credential::Anonymous),
            ],
        };
        let v = to_json(&report);
        assert_eq!(v["engine"]["error"], "no engine");
        assert!(v["config"].get("error").is_none(), "{v}");
        assert_eq!(v["checks"][3]["status"], "warn");
        assert!(
            v["checks"][3]["hint"]
                .as_str()
                .unwrap()
                .contains("login r.io")
        );
        let failures = report.failures();
        assert_eq!(failures.len(), 1, "a warning does not fail the command");
        assert!(matches!(&failures[0], Error::Check { id: "engine", .. }));
        let mut text = Vec::new();
        write_text(&mut text, &report).unwrap();
        assert!(
            String::from_utf8(text)
                .unwrap()
                .contains(" Error:        no engine")
        );
    }
}
