//! `info`: where everything is and whether it works. It proves the plugin's wiring: docker's
//! config dir and contexts, the engine through bollard, the keyring, and registry credentials.
//!
//! Every part is reported even when another fails; the exit code is non-zero when any part the
//! report covers is broken, so scripts can use `info` as a health check.

use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use super::{Context, Error, Format, cancellable};
use crate::dockercfg::context::{EndpointSource, resolve_endpoint};
use crate::dockercfg::credentials::{self, CredentialSource};
use crate::dockercfg::{ConfigDir, ConfigDirSource};
use crate::engine::{DEFAULT_TIMEOUT, Engine, EngineVersion};
use crate::keystore::{self, KeyringState};
use crate::plugin::Mode;

/// Arguments of `info`.
#[derive(Debug, clap::Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Also show which credential docker's configuration holds for this registry host
    /// (never the secret itself), e.g. myregistry.azurecr.io.
    #[arg(long, value_name = "HOST")]
    registry: Option<String>,
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
}

#[derive(Debug, Serialize)]
struct ConfigReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<ConfigDirSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    trust_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Debug, Serialize)]
struct EngineReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<EndpointSource>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<EngineVersion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl Report {
    fn problems(&self) -> Vec<&str> {
        let mut p = Vec::new();
        p.extend(self.config.error.as_deref());
        p.extend(self.engine.error.as_deref());
        if let KeyringState::Locked { message } | KeyringState::Unreachable { message } =
            &self.keyring.state
        {
            p.push(message);
        }
        if let Some(r) = &self.registry {
            p.extend(r.error.as_deref());
        }
        p
    }
}

impl InfoArgs {
    /// Builds the report, prints it, and fails when a part is broken.
    pub async fn run(self, ctx: &Context) -> Result<(), Error> {
        let report = cancellable(&ctx.cancel, async { Ok(self.collect(ctx).await) }).await?;
        let mut out = std::io::stdout().lock();
        let written = match self.format {
            Format::Json => serde_json::to_writer_pretty(&mut out, &report)
                .map_err(std::io::Error::other)
                .and_then(|()| writeln!(out)),
            Format::Text => write_text(&mut out, &report),
        };
        drop(out);
        if let Err(e) = written {
            return Err(Error::Reported(format!(
                "Error: cannot write the report: {e}"
            )));
        }
        let problems = report.problems();
        if problems.is_empty() {
            return Ok(());
        }
        for p in &problems {
            eprintln!("Error: {p}");
        }
        Err(Error::Reported(format!(
            "{} problem(s) found",
            problems.len()
        )))
    }

    async fn collect(&self, ctx: &Context) -> Report {
        let mut config = ConfigReport {
            dir: None,
            source: None,
            trust_dir: None,
            error: None,
        };
        let mut engine = EngineReport {
            endpoint: None,
            context: None,
            source: None,
            server: None,
            error: None,
        };
        let mut registry = self.registry.as_ref().map(|host| RegistryReport {
            host: host.clone(),
            credential_source: None,
            credential_kind: None,
            username: None,
            error: None,
        });

        // The keyring probe is blocking D-Bus I/O; run it beside the engine call.
        let keyring = tokio::task::spawn_blocking(keystore::probe);

        match ConfigDir::resolve(ctx.globals.config.as_deref(), &ctx.env) {
            Err(e) => config.error = Some(e.to_string()),
            Ok(dir) => {
                config.trust_dir = Some(dir.trust_dir());
                config.dir = Some(dir.path.clone());
                config.source = Some(dir.source);
                let file = dir.load();
                if let Err(e) = &file {
                    config.error = Some(e.to_string());
                }
                let file = file.unwrap_or_default();
                match resolve_endpoint(&ctx.globals, &ctx.env, &dir, &file) {
                    Err(e) => engine.error = Some(e.to_string()),
                    Ok(ep) => {
                        engine.endpoint = Some(ep.host.clone());
                        engine.context = Some(ep.context.clone());
                        engine.source = Some(ep.source.clone());
                        let answer = match Engine::connect(&ep, DEFAULT_TIMEOUT) {
                            Ok(client) => client.version().await,
                            Err(e) => Err(e),
                        };
                        match answer {
                            Ok(v) => engine.server = Some(v),
                            Err(e) => engine.error = Some(e.to_string()),
                        }
                    }
                }
                if let Some(reg) = registry.as_mut() {
                    match credentials::resolve(&file, &reg.host).await {
                        Ok(found) => {
                            reg.credential_kind = Some(found.credential.kind());
                            reg.username = found.credential.username().map(str::to_string);
                            reg.credential_source = Some(found.source);
                        }
                        Err(e) => reg.error = Some(e.to_string()),
                    }
                }
            }
        }

        let state = keyring.await.unwrap_or_else(|e| KeyringState::Unreachable {
            message: format!("keyring probe failed: {e}"),
        });
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
        }
    }
}

fn write_text(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
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
    if let Some(e) = &r.config.error {
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
    if let Some(e) = &r.engine.error {
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
        if let Some(e) = &reg.error {
            writeln!(out, " Error:        {e}")?;
        }
    }
    Ok(())
}
