//! The `slot-release` binary: parses arguments (or the task's inputs) and dispatches to the libraries.
//!
//! Everything that decides or changes something lives in the libraries; this file maps inputs to calls,
//! errors to the agent's issues and exit codes, and signals to a cancellation token.

mod task_inputs;
mod tracing_log;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use clap::{Args, Parser, Subcommand};
use slot_release_engine::artifact;
use slot_release_engine::package::PackageSpec;
use slot_release_engine::plan::{self, BuildInfo, PlanInput, Stage};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::spec::{AppKind, HealthTimeout};
use slot_release_engine::stages::{self, Command, LockOptions, StageOptions, Unfinished};
use slot_release_engine::state::{LiveState, SlotName};
use slot_release_pipelines::{AgentEnv, Issue, Log, OutputMode, Summary, TaskResult};
use slot_release_rehearse::{self as rehearse, FailAt};
use tokio_util::sync::CancellationToken;

/// Release web apps to Azure App Service through deployment slots.
#[derive(Debug, Parser)]
#[command(name = "slot-release", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check release.yml and print every problem found.
    Validate(Common),
    /// Print the plan of a stage without changing anything.
    Plan(PlanArgs),
    /// Build the package (code apps) or resolve the image tag (container apps).
    Build(BuildArgs),
    /// Deploy to the staging slot, run hooks, health-gate it.
    Staging(RunArgs),
    /// Swap the staged release into production and watch it.
    Production(RunArgs),
    /// Restore the last known-good release.
    Rollback(RunArgs),
    /// Build, staging and production in one run, rolling back on failure.
    Release(RunArgs),
    /// The whole release against an embedded emulator seeded from the config.
    Rehearse(RehearseArgs),
    /// Print a JSON Schema (release.yml by default).
    Schema(SchemaArgs),
    /// Serve the Azure emulator until Ctrl-C.
    Emulator(EmulatorArgs),
    /// Print, as JSON, the task inputs the binary reads and the commands that read each (for tests of
    /// task.json).
    #[command(hide = true)]
    TaskInputs,
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// The release config.
    #[arg(long, default_value = "release.yml")]
    config: PathBuf,
    /// The environment (overrides the stage's).
    #[arg(long)]
    environment: Option<String>,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Args)]
struct Connection {
    /// The AzureRM service connection id (default: the task input azureSubscription).
    #[arg(long, env = "INPUT_AZURESUBSCRIPTION", hide_env_values = true)]
    service_connection: Option<String>,
    /// The release id (default: the pipeline run's identity, shown as Build.BuildNumber; else a local
    /// timestamp).
    #[arg(long)]
    release_id: Option<String>,
}

/// Values given from outside release.yml that adjust it for one run.
#[derive(Debug, Clone, Args)]
struct Overrides {
    /// Bound every health gate (staging, swap preview, after a rollback) to this many seconds
    /// instead of the config's `timeout` (the task input healthTimeoutSeconds).
    #[arg(long, value_name = "SECONDS")]
    health_timeout_seconds: Option<u64>,
}

impl Overrides {
    fn apply(&self, loaded: &mut release::LoadedRelease, log: &Log) -> Result<()> {
        if let Some(seconds) = self.health_timeout_seconds {
            let timeout = HealthTimeout::from_secs(seconds)?;
            loaded.spec.override_health_timeout(timeout)?;
            log.info(&format!(
                "Health gates time out after {seconds}s (healthTimeoutSeconds), not the config's timeout"
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
struct PlanArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    overrides: Overrides,
    /// The stage to plan.
    #[arg(long, default_value = "staging")]
    stage: String,
    /// Read the live state from this JSON file instead of Azure.
    #[arg(long)]
    state: Option<PathBuf>,
    /// With `--stage rollback`: the release the rollback would return to.
    #[arg(long = "to", value_name = "RELEASE")]
    rollback_to: Option<String>,
    /// With `--stage production`: plan as if the staging stage had staged this release (always so in a
    /// pull-request run, whose release is never staged).
    #[arg(long)]
    as_if_staged: bool,
}

#[derive(Debug, Clone, Args)]
struct RunArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    connection: Connection,
    #[command(flatten)]
    overrides: Overrides,
    /// Write the release record (JSON) here.
    #[arg(long)]
    record: Option<PathBuf>,
    /// The package to deploy instead of building one: the zip an earlier `build` wrote (its build record
    /// beside it is verified), or a zip or folder made by another tool. Wildcards select exactly one match
    /// (`drop/*.zip`, `**/*.zip`).
    #[arg(long, value_name = "PATH_OR_PATTERN")]
    package: Option<String>,
    /// The build record to verify the package against (default: `slot-release-build.json` beside a zip).
    #[arg(long, value_name = "PATH", requires = "package")]
    build_record: Option<PathBuf>,
    /// Where a built package and its build record are written, for the pipeline to publish (default: the
    /// work dir).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where packages, plans and summaries are written.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Continue a release that stopped half-way.
    #[arg(long, conflicts_with = "rollback_unfinished")]
    resume: bool,
    /// Roll back a release that stopped half-way, then run.
    #[arg(long)]
    rollback_unfinished: bool,
    /// Stop starting new steps after this many minutes (the run then ends as cancelled).
    #[arg(long)]
    timeout_minutes: Option<u64>,
    /// Take over the stale release lock with this token (the refusal names it).
    #[arg(long, value_name = "TOKEN")]
    take_over_lock: Option<String>,
    /// How long the release lock lives without renewal; renewed every third of it while the stage runs.
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 180,
        env = "SLOT_RELEASE_LOCK_TTL_SECONDS"
    )]
    lock_ttl_seconds: u64,
    /// rollback: the release to return to, by id or build number (default: the one before the current release).
    #[arg(long = "to", value_name = "RELEASE")]
    rollback_to: Option<String>,
    /// The pipeline artifact the package was downloaded from, kept in the release history with the run that
    /// built it so a later rollback can name what to download again.
    #[arg(long, value_name = "NAME", default_value = "slot-release-package")]
    artifact_name: String,
}

/// What `build` takes: it never reaches Azure, so no connection, lock or rollback options.
#[derive(Debug, Clone, Args)]
struct BuildArgs {
    #[command(flatten)]
    common: Common,
    /// The release id (default: the pipeline run's identity, else a local timestamp).
    #[arg(long)]
    release_id: Option<String>,
    /// Write the release record (JSON) here.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Record this zip or folder (made by another tool) instead of building from `package.root`; a folder
    /// is zipped. Wildcards select exactly one match.
    #[arg(long, value_name = "PATH_OR_PATTERN")]
    package: Option<String>,
    /// Where the package and its build record are written, for the pipeline to publish (default: the
    /// work dir).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Where packages and summaries are written.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Stop after this many minutes (the run then ends as cancelled).
    #[arg(long)]
    timeout_minutes: Option<u64>,
    /// Accepted so a script that passes it to every stage keeps working; a build never uses it.
    #[arg(long, hide = true)]
    service_connection: Option<String>,
}

impl BuildArgs {
    /// The stage options a build runs with; the ones it does not take keep their defaults.
    fn into_run(self) -> RunArgs {
        RunArgs {
            common: self.common,
            connection: Connection {
                service_connection: self.service_connection,
                release_id: self.release_id,
            },
            overrides: Overrides {
                health_timeout_seconds: None,
            },
            record: self.record,
            package: self.package,
            build_record: None,
            out: self.out,
            work_dir: self.work_dir,
            resume: false,
            rollback_unfinished: false,
            timeout_minutes: self.timeout_minutes,
            take_over_lock: None,
            lock_ttl_seconds: 180,
            rollback_to: None,
            artifact_name: "slot-release-package".to_owned(),
        }
    }
}

#[derive(Debug, Clone, Args)]
struct RehearseArgs {
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    overrides: Overrides,
    /// Show a failure path and its recovery: none, health, migration or watch.
    #[arg(long, default_value = "none")]
    fail_at: FailAt,
    /// Write the release record (JSON) here.
    #[arg(long)]
    record: Option<PathBuf>,
    /// Keep the emulator's files here (default: a temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
struct SchemaArgs {
    /// Print the schema of the plan's JSON instead.
    #[arg(long)]
    plan: bool,
}

#[derive(Debug, Clone, Args)]
struct EmulatorArgs {
    /// The seed (YAML or JSON); default: a sample.
    #[arg(long)]
    seed: Option<PathBuf>,
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Folder for the emulator's files.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// How apps' default hosts are named: `unique` (`<app>-<hash>.<region>.azurewebsites…`, as apps
    /// created since 2024 may be) or `classic` (`<app>[-<slot>].azurewebsites…`); default: the
    /// seed's `hostNameStyle` (unique).
    #[arg(long, value_name = "unique|classic")]
    host_names: Option<slot_release_emulator::HostNameStyle>,
    /// A container image the emulator runs as a local command: `PATTERN=COMMAND`, e.g.
    /// `'contoso.azurecr.io/contoso/app:*=python3 app.py'` (`*` matches any run of characters);
    /// repeatable, and ahead of the seed's `images`.
    #[arg(long = "image", value_name = "PATTERN=COMMAND")]
    images: Vec<String>,
    /// The folder the `--image` commands run in (default: the current directory).
    #[arg(long, value_name = "DIR")]
    image_dir: Option<PathBuf>,
    /// A folder put in front of `PATH` for code apps and their builds, standing in for the tools
    /// App Service's images carry (e.g. `gunicorn`); repeatable.
    #[arg(long = "runtime-path", value_name = "DIR")]
    runtime_path: Vec<PathBuf>,
    /// The local package folder (wheels, sdists) Python builds install from, offline
    /// (`pip install --no-index --find-links DIR`).
    #[arg(long, value_name = "DIR")]
    python_packages: Option<PathBuf>,
    /// The npm cache Node builds install from, offline (`npm ci --offline --cache DIR`).
    #[arg(long, value_name = "DIR")]
    npm_cache: Option<PathBuf>,
}

impl Cmd {
    /// Whether the command was asked for JSON output.
    fn json(&self) -> bool {
        match self {
            Cmd::Validate(c) => c.json,
            Cmd::Plan(a) => a.common.json,
            Cmd::Build(a) => a.common.json,
            Cmd::Staging(a) | Cmd::Production(a) | Cmd::Rollback(a) | Cmd::Release(a) => {
                a.common.json
            }
            Cmd::Rehearse(a) => a.common.json,
            Cmd::Schema(_) | Cmd::Emulator(_) | Cmd::TaskInputs => false,
        }
    }
}

/// A failure with the exit code it maps to; config problems are reported before reaching here.
struct Failed(anyhow::Error);

/// How a run ended: its result, and whether the job cancelled it (a SIGINT or SIGTERM reached us).
struct Ended {
    outcome: Result<ExitCode, Failed>,
    cancelled: bool,
}

fn main() -> ExitCode {
    let log = Log::from_env();
    // Before anything can print: the service connection's keys, the job's access token and secret
    // variables the agent handed over.
    log.register_secrets(&AgentEnv::from_env().secrets());
    // A panic message goes through the masker and the neutraliser like every other byte we print.
    log.install_panic_hook();
    let detail = tracing_log::Detail::from_env(|name| std::env::var(name).ok());
    if detail.is_some() {
        log.set_debug(true);
    }
    let cli = match parse() {
        Ok(cli) => cli,
        Err(err) if err.use_stderr() && log.mode() == OutputMode::Pipeline => {
            // The agent needs an issue and a result, not only an exit code (e.g. an unknown command input).
            return finish(
                &log,
                Ended {
                    outcome: Err(Failed(anyhow!("{}", err.render().to_string().trim_end()))),
                    cancelled: false,
                },
            );
        }
        Err(err) => {
            // Usage errors quote the arguments given: printed through the log like everything else.
            let text = err.render().to_string();
            if err.use_stderr() {
                log.diagnostic(text.trim_end());
            } else {
                log.print_document(text.trim_end());
            }
            return if err.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    // With --json, stdout carries only the JSON document; the human log moves to stderr.
    let log = if cli.command.json() && log.mode() != OutputMode::Pipeline {
        let quiet = log.redirected(Box::new(std::io::stderr()));
        quiet.install_panic_hook();
        quiet
    } else {
        log
    };
    tracing_log::install(&log, detail);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            log.diagnostic(&format!("error: cannot start the async runtime: {err}"));
            return ExitCode::FAILURE;
        }
    };
    let ended = runtime.block_on(dispatch(cli, &log));
    // Background work (a hung HTTP call) must not hold the exit past the agent's grace period.
    runtime.shutdown_timeout(Duration::from_millis(500));
    finish(&log, ended)
}

/// Arguments, or the task's inputs when the agent started us with none.
fn parse() -> Result<Cli, clap::Error> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() > 1 {
        return Cli::try_parse_from(args);
    }
    match task_inputs::argv(&AgentEnv::from_env()) {
        Some(argv) => Cli::try_parse_from(argv),
        None => Cli::try_parse_from(args),
    }
}

fn finish(log: &Log, ended: Ended) -> ExitCode {
    let pipeline = log.mode() == OutputMode::Pipeline;
    // The agent records a cancelled step as Canceled whatever the task says; the task's report agrees
    // with it instead of calling the stop a failure.
    let failed = if ended.cancelled {
        TaskResult::Canceled
    } else {
        TaskResult::Failed
    };
    match ended.outcome {
        Ok(code) => {
            if pipeline {
                // Succeeded after something the user should know (each said as a warning above): a retry
                // that succeeded, a skipped secret, a rollback that restored production.
                let warnings = log.warning_count();
                let (result, message) = match (code == ExitCode::SUCCESS, warnings) {
                    (false, _) => (failed, String::new()),
                    (true, 0) => (TaskResult::Succeeded, String::new()),
                    (true, n) => (
                        TaskResult::SucceededWithIssues,
                        format!("succeeded with {n} warning(s); see the warnings in the log"),
                    ),
                };
                log.complete(result, &message);
                ExitCode::SUCCESS
            } else {
                code
            }
        }
        Err(Failed(err)) => {
            let mut text = format!("{err}");
            for cause in err.chain().skip(1) {
                text.push_str(&format!("\n  caused by: {cause}"));
            }
            log.error(&text);
            if pipeline {
                log.complete(failed, &err.to_string());
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

async fn dispatch(cli: Cli, log: &Log) -> Ended {
    // Before any work: a signal that arrives while the config loads, or right after the emulator prints
    // its endpoints, is heard (without a handler, SIGINT and SIGTERM would kill the process outright).
    let signals = Signals::register();
    let cancel = CancellationToken::new();
    let work = command(cli, log, cancel.clone());
    let outcome = match signals {
        Ok(mut signals) => stop_on_signals(work, &mut signals, &cancel, log).await,
        Err(err) => {
            log.warning(&format!(
                "Cannot listen for SIGINT and SIGTERM ({err}): a cancellation will stop this run without writing the journal"
            ));
            work.await
        }
    }
    .map_err(Failed);
    Ended {
        outcome,
        cancelled: cancel.is_cancelled(),
    }
}

/// Runs `work` to its end, which is how every run ends, cancelled or not. The first SIGINT or SIGTERM
/// cancels `cancel`: no further step starts, the call in flight stops, and the stop's own writes (the
/// journal, production's settings, the lock given back) finish within the engine's settle grace
/// (`stages::SETTLE_GRACE`, 7 s); then `work` returns and the result is reported through `main` as usual.
///
/// A second signal changes nothing but the log. The agent sends SIGINT, then SIGTERM 7.5 s later and a
/// kill 2.5 s after that: by its SIGTERM the stop has ended or is finishing a bounded journal write,
/// which matters more than exiting a moment earlier. No deadline of our own is needed: every wait of a
/// stopping run is bounded by the run's token or the settle grace, and background work cannot hold the
/// exit (`main` gives the runtime 0.5 s to shut down).
async fn stop_on_signals<T>(
    work: impl std::future::Future<Output = T>,
    signals: &mut Signals,
    cancel: &CancellationToken,
    log: &Log,
) -> T {
    let mut work = std::pin::pin!(work);
    loop {
        tokio::select! {
            out = &mut work => return out,
            name = signals.next() => {
                if cancel.is_cancelled() {
                    log.warning(&format!(
                        "{name} again: still stopping safely (the journal, the lock); this ends within seconds"
                    ));
                } else {
                    log.warning(&format!(
                        "Cancellation requested ({name}): finishing the current step safely"
                    ));
                    cancel.cancel();
                }
            }
        }
    }
}

async fn command(cli: Cli, log: &Log, cancel: CancellationToken) -> Result<ExitCode> {
    match cli.command {
        Cmd::Validate(common) => validate(&common, log),
        Cmd::Plan(args) => plan_cmd(&args, log, &cancel).await,
        Cmd::Build(args) => run_cmd(Command::Build, &args.into_run(), log, cancel).await,
        Cmd::Staging(args) => run_cmd(Command::Staging, &args, log, cancel).await,
        Cmd::Production(args) => run_cmd(Command::Production, &args, log, cancel).await,
        Cmd::Rollback(args) => run_cmd(Command::Rollback, &args, log, cancel).await,
        Cmd::Release(args) => run_cmd(Command::Release, &args, log, cancel).await,
        Cmd::Rehearse(args) => rehearse_cmd(&args, log, cancel).await,
        Cmd::Schema(args) => {
            let schema = if args.plan {
                serde_json::to_string_pretty(&plan::json_schema()).unwrap_or_default()
            } else {
                slot_release_config::json_schema_string()
            };
            log.print_document(&schema);
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Emulator(args) => emulator_cmd(&args, log, &cancel).await,
        Cmd::TaskInputs => {
            let table = serde_json::to_string_pretty(&task_inputs::to_json()).unwrap_or_default();
            log.print_document(&table);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// SIGINT and SIGTERM (Ctrl-C elsewhere), listened for from start-up to exit: the one place the
/// binary hears signals.
struct Signals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Signals {})
        }
    }

    /// The next signal, by name.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.interrupt.recv() => "SIGINT",
                _ = self.terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = &mut self;
            if tokio::signal::ctrl_c().await.is_err() {
                // Nothing to listen to: no signal ever comes.
                std::future::pending::<()>().await;
            }
            "Ctrl-C"
        }
    }
}

/// Loads the config; diagnostics go to the log (as located issues in a pipeline).
/// The config as the release an artifact's build record describes was released with it: its build number,
/// build id and commit in place of this run's, for a rollback that deploys that artifact again.
fn load_for_release(
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

fn load(
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

fn validate(common: &Common, log: &Log) -> Result<ExitCode> {
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

fn connect(connection: &Connection, loaded: &release::LoadedRelease) -> Result<port::AzurePort> {
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

async fn plan_cmd(args: &PlanArgs, log: &Log, cancel: &CancellationToken) -> Result<ExitCode> {
    let stage: Stage = args.stage.parse()?;
    let mut loaded = load(&args.common, Some(&args.connection), false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let state = match &args.state {
        // Offline: `secrets.select` stays unlisted, and the plan's preflight says so.
        Some(path) => LiveState::from_file(path)?,
        None => {
            let port = connect(&args.connection, &loaded)?;
            if loaded
                .spec
                .environments
                .values()
                .any(|e| e.select.is_some())
            {
                loaded.spec = slot_release_engine::selection::select_secrets(
                    &port,
                    &loaded.spec,
                    log,
                    cancel,
                )
                .await;
            }
            port.read_state(&slots(&loaded), cancel)
                .await
                .context("cannot read the live state")?
        }
    };
    let mut plan = plan::compute(PlanInput {
        target: None,
        spec: &loaded.spec,
        stage,
        environment: args.common.environment.as_deref(),
        state: &state,
        build: &BuildInfo {
            release_id: loaded.release_id.clone(),
            release_name: Some(loaded.release_name.clone()),
            package_sha256: None,
            rollback_to: args.rollback_to.clone(),
            // The rollback job that follows a plan is given the artifact the plan names.
            package_later: true,
            // A pull request's release is never staged; its plan of production shows the swap it leads to.
            assume_staged: args.as_if_staged || AgentEnv::from_env().is_pull_request(),
            // The package is built by the stage that deploys it; that stage judges its layout.
            layout: None,
        },
    })?;
    // The package root is checked before `build` and `staging` change anything; the plan shows it when it
    // fails, so a pull-request run catches it (only a failure is listed: the live-state checks stay first).
    if let Some(problem) = package_root_problem(stage, &args.common.config, &loaded) {
        plan.preflight.push(plan::Check {
            name: "package-root".to_owned(),
            ok: false,
            detail: problem,
        });
    }
    // Through the log, never `print!`: a value in the plan (a setting, the build number) could hold a
    // `##vso[` the agent would run as a logging command.
    if args.common.json && log.mode() != OutputMode::Pipeline {
        log.print_json(&plan);
    } else if args.common.json {
        log.info(&plan.to_json());
    } else {
        log.info(plan.render().trim_end());
    }
    if log.mode() == OutputMode::Pipeline {
        let agent = AgentEnv::from_env();
        let dir = agent
            .temp_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join("slot-release");
        std::fs::create_dir_all(&dir)?;
        let json_path = dir.join(format!("plan-{stage}.json"));
        log.write_json("the plan", &json_path, &plan)?;
        // For the rollback stage, the artifact's outputs are set empty when it needs none, so a download
        // step can be conditioned on them.
        let artifact = plan.artifact.clone().unwrap_or_default();
        slot_release_pipelines::PlanOutputs {
            plan_json_path: &json_path.display().to_string(),
            rollback_artifact: (stage == Stage::Rollback).then_some((
                artifact.run.as_str(),
                artifact.pipeline.as_deref().unwrap_or_default(),
                artifact.artifact.as_str(),
            )),
        }
        .set(log)?;
        // A pull-request run is read-only: its plan becomes the run summary for reviewers.
        let mut summary = Summary::new();
        summary
            .heading(2, &format!("Slot Release plan: {stage} of {}", plan.app))
            .code_block("text", &plan.render());
        let md = dir.join(format!("plan-{stage}.md"));
        log.write_summary(&md, &summary)?;
    }
    Ok(if plan.problems().next().is_some() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn slots(loaded: &release::LoadedRelease) -> Vec<SlotName> {
    loaded.spec.slots()
}

async fn run_cmd(
    command: Command,
    args: &RunArgs,
    log: &Log,
    cancel: CancellationToken,
) -> Result<ExitCode> {
    let mut loaded = load(&args.common, Some(&args.connection), false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let agent = AgentEnv::from_env();
    if agent.is_pull_request() {
        return Err(anyhow!(
            "a pull-request run is read-only: use `plan` or `rehearse` there, and release from the target branch"
        ));
    }
    let work_dir = args
        .work_dir
        .clone()
        .or_else(|| agent.temp_dir().map(|t| t.join("slot-release")))
        .unwrap_or_else(|| std::env::temp_dir().join("slot-release"));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    // Before anything reaches Azure: a package that is missing, garbage or not what the build made, or a
    // package root outside the sources, is refused while nothing has changed (no lock, no journal).
    // Every secret the config references is read (reading changes nothing) and registered with the
    // log first, so nothing printed from here on (package preparation included) can show one. A missing
    // connection is reported after the package checks, which need none.
    let connection = (command != Command::Build).then(|| connect(&args.connection, &loaded));
    if let Some(Ok(port)) = &connection {
        stages::register_referenced_secrets(port, &loaded.spec, log, &cancel).await;
    }
    let package = prepare_package(command, args, &loaded, &work_dir, log, &cancel).await?;
    let port: std::sync::Arc<dyn Port> = match connection {
        None => std::sync::Arc::new(port::Offline),
        Some(connected) => std::sync::Arc::new(connected?),
    };
    let opts = StageOptions {
        command,
        environment: args.common.environment.clone(),
        release_id: loaded.release_id.clone(),
        release_name: loaded.release_name.clone(),
        package: package.as_ref().map(|p| p.path.clone()),
        package_sha256: package.as_ref().map(|p| p.sha256.as_str().to_owned()),
        // A package given with its build record can be downloaded again from the run that built it.
        artifact: package
            .as_ref()
            .filter(|p| !p.built)
            .and_then(|p| p.record.as_ref())
            .and_then(|r| {
                Some(slot_release_engine::history::ArtifactSource {
                    pipeline: r.pipeline_id.clone(),
                    run: r.run_id.clone()?,
                    artifact: args.artifact_name.clone(),
                })
            }),
        target_spec: match (&package, command) {
            (Some(p), Command::Rollback) if !p.built => p
                .record
                .as_ref()
                .map(|r| load_for_release(&args.common, &args.connection, r, log))
                .transpose()?,
            _ => None,
        },
        build_run: agent.build_run(),
        work_dir: work_dir.clone(),
        hook_dir: config_dir(&args.common.config),
        unfinished: if args.resume {
            Unfinished::Resume
        } else if args.rollback_unfinished {
            Unfinished::Rollback
        } else {
            Unfinished::Refuse
        },
        rollback_to: args.rollback_to.clone().filter(|t| !t.trim().is_empty()),
        lock: LockOptions {
            ttl: Duration::from_secs(args.lock_ttl_seconds.max(3)),
            take_over: args.take_over_lock.clone().filter(|t| !t.is_empty()),
            attempt: agent.job_attempt(),
            holder: agent
                .run_description()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        },
    };
    // The run's own deadline stops it like a cancellation but is a failure to finish, not a cancelled
    // job: it cancels a child token, so the signal path's token (what decides `Canceled`) stays clear.
    let cancel = cancel.child_token();
    if let Some(minutes) = args.timeout_minutes {
        let (cancel, log) = (cancel.clone(), log.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(minutes * 60)).await;
            log.error(&format!(
                "The run exceeded its {minutes} minute(s): no further steps start"
            ));
            cancel.cancel();
        });
    }
    let ctx = stages::Context {
        port,
        log: log.clone(),
        cancel,
    };
    let record = stages::run(&ctx, &loaded.spec, &opts).await;
    let portal =
        loaded.spec.app.subscription.as_deref().map(|sub| {
            stages::portal_url(sub, &loaded.spec.app.resource_group, &loaded.spec.app.name)
        });
    report(
        log,
        &record,
        release_slot(&loaded, &record, args.common.environment.as_deref()).as_ref(),
        args.record.as_deref(),
        &work_dir,
        args.common.json,
        &stages::SummaryContext {
            rehearsal: false,
            portal_url: portal.as_deref(),
        },
    )?;
    Ok(if record.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The package a code app's `build`, `staging` or `release` uses: the one given (resolved, validated and
/// verified against its build record), else one built from the package root. `build` writes the build
/// record beside the package in the output folder. Other commands deploy no package.
async fn prepare_package(
    command: Command,
    args: &RunArgs,
    loaded: &release::LoadedRelease,
    work_dir: &Path,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<Option<artifact::PreparedPackage>> {
    let AppKind::Code { root, exclude } = &loaded.spec.app.kind else {
        if args.package.is_some() {
            log.warning("The package input is ignored: a container app deploys an image");
        }
        return Ok(None);
    };
    // A rollback deploys a package only when given one: an earlier run's artifact it brings back.
    let rollback_package = command == Command::Rollback && args.package.is_some();
    if !rollback_package
        && !matches!(
            command,
            Command::Build | Command::Staging | Command::Release
        )
    {
        if args.package.is_some() {
            log.warning(&format!(
                "The package input is ignored by {}: it releases what staging deployed",
                command_name(command)
            ));
        }
        return Ok(None);
    }
    let source = match &args.package {
        Some(pattern) => artifact::PackageSource::Given {
            pattern: pattern.clone(),
            build_record: args.build_record.clone(),
        },
        None => {
            let mut spec = PackageSpec::new(root.clone());
            spec.exclude = exclude.clone();
            artifact::PackageSource::Build {
                spec,
                none_given: command != Command::Build,
            }
        }
    };
    let built_here = matches!(source, artifact::PackageSource::Build { .. });
    let request = artifact::PrepareRequest {
        source,
        base_dir: std::env::current_dir().context("cannot read the current directory")?,
        config: args.common.config.clone(),
        sources: artifact::sources_dir(
            &args.common.config,
            AgentEnv::from_env().sources_directory(),
        ),
        out_dir: args.out.clone().unwrap_or_else(|| work_dir.to_path_buf()),
        context: artifact::BuildContext::from_run(
            &loaded.release_id,
            &loaded.release_name,
            &AgentEnv::from_env().build_run(),
        ),
        // A package built here, or one given to `build`, is recorded so a later stage can verify it.
        write_record: command == Command::Build || built_here,
        verify_config: command != Command::Rollback,
    };
    // Off the runtime's workers: signals are heard, and a cancel stops a big build within a moment.
    let prepared = artifact::prepare_in_background(&request, log, cancel).await?;
    Ok(Some(prepared))
}

/// Why the package root of a code app cannot be built from, for the stages that build it.
fn package_root_problem(
    stage: Stage,
    config: &Path,
    loaded: &release::LoadedRelease,
) -> Option<String> {
    let AppKind::Code { root, .. } = &loaded.spec.app.kind else {
        return None;
    };
    if !matches!(stage, Stage::Build | Stage::Staging) {
        return None;
    }
    let sources = artifact::sources_dir(config, AgentEnv::from_env().sources_directory());
    artifact::check_package_root(root, &sources)
        .err()
        .map(|e| e.to_string())
}

fn command_name(command: Command) -> &'static str {
    match command {
        Command::Build => "build",
        Command::Staging => "staging",
        Command::Production => "production",
        Command::Rollback => "rollback",
        Command::Release => "release",
    }
}

/// The slot that holds the new release after the run: the staging slot after `staging` (the one of
/// `environment` when the run named one), else production; none after a build without a staging stage.
fn release_slot(
    loaded: &release::LoadedRelease,
    record: &stages::ReleaseRecord,
    environment: Option<&str>,
) -> Option<SlotName> {
    match record.stages.last().map(|s| s.stage) {
        Some(Stage::Staging) => loaded.spec.staging_slot(environment).cloned(),
        Some(Stage::Build) => loaded.spec.staging_slot(None).cloned(),
        _ => Some(SlotName::production()),
    }
}

fn config_dir(config: &Path) -> PathBuf {
    config
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// The summary, the record, and in a pipeline the output variables and the run summary.
/// A file name from text that names an app and a stage: letters, digits, `-`, `_` and `.` only.
fn summary_file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn report(
    log: &Log,
    record: &stages::ReleaseRecord,
    slot: Option<&SlotName>,
    record_path: Option<&Path>,
    work_dir: &Path,
    json: bool,
    summary: &stages::SummaryContext<'_>,
) -> Result<()> {
    if json {
        log.print_json(record);
    } else {
        log.info(stages::render_summary(record).trim_end());
    }
    if let Some(path) = record_path {
        // Masked like the log: the record quotes hook output and Azure messages.
        log.write_json("the release record", path, record)?;
    }
    if log.mode() == OutputMode::Pipeline {
        // The agent reads the summary and the plan after the process ends, so they must outlive a
        // temporary work folder: the agent's temp directory is kept until the job ends.
        let out_dir = AgentEnv::from_env()
            .temp_dir()
            .map(|t| t.join("slot-release"))
            .unwrap_or_else(|| work_dir.to_path_buf());
        std::fs::create_dir_all(&out_dir)
            .with_context(|| format!("cannot create {}", out_dir.display()))?;
        let work_dir = out_dir.as_path();
        let plan_path = work_dir.join("plan.json");
        if let Some(plan) = record.stages.last().and_then(|s| s.plan.as_ref()) {
            log.write_json("the plan", &plan_path, plan)?;
        }
        stages::set_outputs(log, record, slot, Some(&plan_path))?;
        // One file per stage, each attached under its own name: a job's summary never overwrites
        // another's, and a rehearsal's never passes for a release's.
        for stage in &record.stages {
            let name = if summary.rehearsal {
                format!("rehearsal-{}.md", stage.stage)
            } else {
                format!("{}-{}.md", record.app, stage.stage)
            };
            log.write_summary(
                &work_dir.join(summary_file_name(&name)),
                &stages::stage_summary(record, stage, summary),
            )?;
        }
    }
    Ok(())
}

async fn rehearse_cmd(
    args: &RehearseArgs,
    log: &Log,
    cancel: CancellationToken,
) -> Result<ExitCode> {
    let mut loaded = load(&args.common, None, false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let temp;
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("cannot create a temporary folder")?;
            temp.path().to_path_buf()
        }
    };
    let options = rehearse::RehearseOptions {
        config_dir: config_dir(&args.common.config),
        work_dir: work_dir.clone(),
        fail_at: args.fail_at,
    };
    let outcome = rehearse::run(&loaded, &options, log, cancel).await?;
    report(
        log,
        &outcome.record,
        release_slot(&loaded, &outcome.record, None).as_ref(),
        args.record.as_deref(),
        &work_dir,
        args.common.json,
        &stages::SummaryContext {
            rehearsal: true,
            portal_url: None,
        },
    )?;
    log.info(&outcome.story);
    Ok(if outcome.as_expected {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn emulator_cmd(
    args: &EmulatorArgs,
    log: &Log,
    stop: &CancellationToken,
) -> Result<ExitCode> {
    let mut seed = match &args.seed {
        Some(path) => slot_release_emulator::Seed::from_file(path)?,
        None => slot_release_emulator::Seed::sample(),
    };
    if let Some(style) = args.host_names {
        seed.host_name_style = style;
    }
    let work_dir = match &args.work_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("slot-release-emulator-{}", std::process::id())),
    };
    let mut opts = slot_release_emulator::EmulatorOptions::new(seed, work_dir);
    opts.port = args.port;
    opts.runtime_path = args.runtime_path.clone();
    opts.python_packages = args.python_packages.clone();
    opts.npm_cache = args.npm_cache.clone();
    let image_dir = match &args.image_dir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("read the current directory")?,
    };
    for mapping in &args.images {
        let Some((pattern, command)) = mapping
            .split_once('=')
            .filter(|(p, c)| !p.trim().is_empty() && !c.trim().is_empty())
        else {
            anyhow::bail!(
                "--image {mapping:?} is not PATTERN=COMMAND (e.g. 'contoso.azurecr.io/contoso/app:*=python3 app.py')"
            );
        };
        opts.images.push(slot_release_emulator::ImageMapping {
            pattern: pattern.trim().to_owned(),
            command: command.trim().to_owned(),
            dir: image_dir.clone(),
        });
    }
    let emulator = slot_release_emulator::Emulator::start(opts).await?;
    // Signals were registered before the start: whoever reads the endpoints may signal at once.
    log.print_document(&emulator.connection_summary());
    stop.cancelled().await;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
