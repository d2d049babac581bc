//! Loading the release config for a command: the agent's variables and the run's identity applied,
//! the file confined to the sources in a pipeline, its diagnostics reported as located issues, and the
//! connection to Azure it names.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result, anyhow};
use slot_release_engine::artifact;
use slot_release_engine::port;
use slot_release_engine::release::{self, LoadRequest};
use slot_release_pipelines::{AgentEnv, Issue, Log, OutputMode};

use crate::args::{Common, Connection};

/// The config as the release an artifact's build record describes was released with it: its build number,
/// build id and commit in place of this run's, for a rollback that deploys that artifact again.
pub(crate) fn load_for_release(
    common: &Common,
    connection: &Connection,
    record: &artifact::BuildRecord,
    log: &Log,
) -> Result<slot_release_engine::spec::ReleaseSpec> {
    let agent = AgentEnv::from_env().with_build(
        &record.release_name,
        &record.build_id,
        record.source_commit.as_deref(),
    );
    // Its warnings were reported when this run loaded the config.
    let quiet = log.redirected(Box::new(std::io::sink()));
    let loaded = load_with(common, Some(connection), false, &agent, &quiet).with_context(|| {
        format!(
            "cannot render the config for release {}, whose package the rollback deploys",
            record.release_name
        )
    })?;
    Ok(loaded.spec)
}

/// Loads the config; diagnostics go to the log (as located issues in a pipeline).
pub(crate) fn load(
    common: &Common,
    connection: Option<&Connection>,
    syntax_only: bool,
    log: &Log,
) -> Result<release::LoadedRelease> {
    load_with(common, connection, syntax_only, &AgentEnv::from_env(), log)
}

fn load_with(
    common: &Common,
    connection: Option<&Connection>,
    syntax_only: bool,
    agent: &AgentEnv,
    log: &Log,
) -> Result<release::LoadedRelease> {
    let request = LoadRequest {
        variables: agent.vars().clone(),
        build_number: agent.build_number().map(str::to_owned),
        release_id: connection.and_then(|c| c.release_id.clone()),
        run_identity: agent.run_identity(),
        syntax_only,
        // In a pipeline the package root is confined to the sources, like the config file.
        sources: agent.default_working_directory(),
    };
    config_inside_sources(&common.config)?;
    match release::load(&common.config, &request) {
        Ok(loaded) => {
            report_diagnostics(log, &loaded.loaded.warnings);
            Ok(loaded)
        }
        Err(diagnostics) => {
            report_diagnostics(log, &diagnostics);
            if common.json {
                // With --json, stdout carries a document whatever happens: the problems, as data.
                log.print_json(&diagnostics_json(&common.config, &diagnostics));
            }
            Err(anyhow!(
                "{} is not a valid release config ({} problem(s))",
                common.config.display(),
                diagnostics.len()
            ))
        }
    }
}

/// In a pipeline the config must come from the checked-out sources: a path pointed elsewhere would be
/// read and its lines echoed in diagnostics. Refused before the file is opened; the path is not shown.
fn config_inside_sources(config: &Path) -> Result<()> {
    let Some(sources) =
        std::env::var_os("SYSTEM_DEFAULTWORKINGDIRECTORY").filter(|s| !s.is_empty())
    else {
        return Ok(());
    };
    let sources = Path::new(&sources);
    let inside = match (sources.canonicalize(), config.canonicalize()) {
        (Ok(root), Ok(file)) => file.starts_with(&root),
        // A missing file is reported by the loader; `..` must still not climb out of the sources.
        (Ok(root), Err(_)) => {
            let joined = if config.is_absolute() {
                config.to_path_buf()
            } else {
                std::env::current_dir().unwrap_or_default().join(config)
            };
            joined.starts_with(&root)
                && !joined
                    .components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
        }
        (Err(_), _) => false,
    };
    if inside {
        Ok(())
    } else {
        Err(anyhow!(
            "the configFile input must name a file inside the sources (System.DefaultWorkingDirectory); the path given points outside them and was not read"
        ))
    }
}

/// `{"valid": false, "config": …, "diagnostics": [{severity, code, file, line, column, path, message, help}]}`.
fn diagnostics_json(
    config: &Path,
    diagnostics: &slot_release_config::Diagnostics,
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = diagnostics
        .iter()
        .map(|d| {
            serde_json::json!({
                "severity": match d.severity {
                    slot_release_config::Severity::Error => "error",
                    slot_release_config::Severity::Warning => "warning",
                },
                "code": d.code,
                "file": d.file,
                "line": d.line,
                "column": d.column,
                "path": d.path,
                "message": d.message,
                "help": d.help,
            })
        })
        .collect();
    serde_json::json!({ "valid": false, "config": config, "diagnostics": items })
}

fn report_diagnostics(log: &Log, diagnostics: &slot_release_config::Diagnostics) {
    if diagnostics.is_empty() {
        return;
    }
    if log.mode() == OutputMode::Pipeline {
        for d in diagnostics.iter() {
            let issue = match d.severity {
                slot_release_config::Severity::Error => Issue::error(&d.message),
                slot_release_config::Severity::Warning => Issue::warning(&d.message),
            };
            log.issue(
                &issue
                    .at(&d.file, d.line as u32, d.column as u32)
                    .with_code(d.code),
            );
        }
    }
    // Diagnostics quote the offending line of release.yml, which is text from the repository: the
    // agent reads stderr for logging commands too.
    log.diagnostic(&diagnostics.to_string());
}

pub(crate) fn validate(common: &Common, log: &Log) -> Result<ExitCode> {
    let loaded = load(common, None, true, log)?;
    let warnings = loaded.loaded.warnings.len();
    if common.json {
        log.print_json(
            &serde_json::json!({ "valid": true, "config": common.config, "warnings": warnings }),
        );
    } else {
        log.info(&format!(
            "{} is valid ({} environment(s), {} warning(s))",
            common.config.display(),
            loaded.spec.environments.len(),
            warnings
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn env_lookup(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

pub(crate) fn connect(
    connection: &Connection,
    loaded: &release::LoadedRelease,
) -> Result<port::AzurePort> {
    let id = connection
        .service_connection
        .as_deref()
        .filter(|s| !s.is_empty());
    match id {
        Some(id) => port::connect(id, &env_lookup, &loaded.spec.app).context("cannot connect to Azure"),
        // On a workstation, the developer's own login; in a pipeline, never: a job must say which
        // service connection it releases with.
        None if !AgentEnv::from_env().is_pipeline() => {
            port::connect_developer(&env_lookup, &loaded.spec.app)
                .context("cannot connect to Azure with your Azure CLI login (az login); or pass --service-connection ID")
        }
        None => Err(anyhow!(
            "no service connection: set the task input azureSubscription (or pass --service-connection ID)"
        )),
    }
}

/// A service connection being signed in on a blocking thread while the config loads: its HTTPS
/// client (the system's trust roots are read from disk) and, where the credential keeps tokens, its
/// first ARM token come in parallel with the config's validation instead of after it. Nothing it does
/// changes anything; a config that fails still fails first, and this is dropped unheard.
pub(crate) struct EarlySignIn(Option<tokio::task::JoinHandle<Result<port::SignedIn>>>);

impl EarlySignIn {
    /// Starts signing in with the named service connection; without one (a workstation's `az login`,
    /// or a missing input reported later) there is nothing to start.
    pub(crate) fn start(
        connection: &Connection,
        cancel: &tokio_util::sync::CancellationToken,
    ) -> Self {
        let Some(id) = connection
            .service_connection
            .clone()
            .filter(|s| !s.is_empty())
        else {
            return Self::none();
        };
        let cancel = cancel.clone();
        Self(Some(tokio::task::spawn_blocking(move || {
            let signed = port::sign_in(&id, &env_lookup)?;
            signed.prefetch_token(&cancel);
            Ok(signed)
        })))
    }

    /// Nothing started: [`EarlySignIn::connect`] signs in then.
    pub(crate) fn none() -> Self {
        Self(None)
    }

    /// The port on the loaded config's app, through the sign-in started early or, without one, now.
    pub(crate) async fn connect(
        self,
        connection: &Connection,
        loaded: &release::LoadedRelease,
    ) -> Result<port::AzurePort> {
        match self.0 {
            Some(signing_in) => signing_in
                .await
                .context("signing in to Azure stopped")?
                .and_then(|signed| Ok(signed.bind(&loaded.spec.app)?))
                .context("cannot connect to Azure"),
            None => connect(connection, loaded),
        }
    }
}

pub(crate) fn config_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}
