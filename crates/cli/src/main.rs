//! The `slot-release` binary: parses arguments (or the task's inputs) and dispatches to the libraries.
//!
//! Everything that decides or changes something lives in the libraries; this file maps inputs to calls and
//! errors to the agent's issues and exit codes. Its concerns each have a module: the command line (`args`),
//! loading the config (`config`), the run's report (`report`), the signals that cancel a run (`signals`) and
//! the app commands (`app_cmd`).

mod app_cmd;
mod args;
mod config;
mod fanout;
mod report;
mod signals;
mod task_inputs;
mod tracing_log;

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use args::{Cli, Cmd, EmulatorArgs, PlanArgs, RehearseArgs, RunArgs};
use clap::Parser;
use config::{EarlySignIn, config_dir, load, load_for_release, validate};
use report::{release_slot, report};
use signals::{Signals, stop_on_signals};
use slot_release_engine::artifact;
use slot_release_engine::fanout::FanOut;
use slot_release_engine::package::PackageSpec;
use slot_release_engine::plan::{self, BuildInfo, PlanInput, Stage};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release;
use slot_release_engine::spec::AppKind;
use slot_release_engine::stages::{self, Command, LockOptions, StageOptions, Stopping, Unfinished};
use slot_release_engine::state::{LiveState, SlotName};
use slot_release_pipelines::{AgentEnv, Log, OutputMode, Summary, TaskResult};
use slot_release_rehearse as rehearse;
use tokio_util::sync::CancellationToken;

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
    runtime.shutdown_timeout(stages::RUNTIME_SHUTDOWN);
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
    // The agent's timing: what each signal leaves the stop's writes before its next step.
    let stopping = Stopping::default();
    let work = command(cli, log, cancel.clone(), stopping.clone());
    let outcome = match signals {
        Ok(mut signals) => stop_on_signals(work, &mut signals, &cancel, &stopping, log).await,
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

async fn command(
    cli: Cli,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
) -> Result<ExitCode> {
    match cli.command {
        Cmd::Validate(common) => validate(&common, log),
        Cmd::Plan(args) => plan_cmd(&args, log, &cancel).await,
        Cmd::Build(args) => run_cmd(Command::Build, &args.into_run(), log, cancel, stopping).await,
        Cmd::Staging(args) => run_cmd(Command::Staging, &args, log, cancel, stopping).await,
        Cmd::Production(args) => run_cmd(Command::Production, &args, log, cancel, stopping).await,
        Cmd::Rollback(args) => run_cmd(Command::Rollback, &args, log, cancel, stopping).await,
        Cmd::Release(args) => run_cmd(Command::Release, &args, log, cancel, stopping).await,
        Cmd::App(args) => app_cmd::app(args.action, log, cancel, stopping).await,
        Cmd::Slot(args) => app_cmd::slot(args.action, log, cancel, stopping).await,
        Cmd::Rehearse(args) => rehearse_cmd(&args, log, cancel, stopping).await,
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

async fn plan_cmd(args: &PlanArgs, log: &Log, cancel: &CancellationToken) -> Result<ExitCode> {
    let stage: Stage = args.stage.parse()?;
    let early = match &args.state {
        Some(_) => EarlySignIn::none(),
        None => EarlySignIn::start(&args.connection, cancel),
    };
    let mut loaded = load(&args.common, Some(&args.connection), false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let fan = FanOut::from_config(&loaded.loaded.config);
    // Checked before anything is read: a wave no target is in is a template and config that disagree.
    let matrix = fan.matrix(args.wave)?.to_string();
    let selected = fan.select(&args.targets)?;
    if fan.explicit
        && let Some(target) = selected.first()
    {
        if selected.len() > 1 && !args.targets.is_empty() {
            return Err(anyhow!(
                "`plan` plans one target at a time; name one with --target (the Matrix output lists them all)"
            ));
        }
        log.info(&fanout::target_line(target));
        loaded.spec = slot_release_engine::fanout::spec_for(&loaded.spec, target);
    }
    let state = match &args.state {
        // Offline: `secrets.select` stays unlisted, and the plan's preflight says so.
        Some(path) => LiveState::from_file(path)?,
        None => {
            let port = early.connect(&args.connection, &loaded).await?;
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
        if fan.explicit {
            let which = args.wave.map_or(String::new(), |w| format!(" (wave {w})"));
            log.info(&format!("Matrix{which}: {matrix}"));
        }
    }
    if log.mode() == OutputMode::Pipeline {
        let dir = default_work_dir(&AgentEnv::from_env());
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
            matrix: Some(&matrix),
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
    stopping: Stopping,
) -> Result<ExitCode> {
    let agent = AgentEnv::from_env();
    // A pull-request run is refused below and a build needs no Azure: neither signs in.
    let early = if command == Command::Build || agent.is_pull_request() {
        EarlySignIn::none()
    } else {
        EarlySignIn::start(&args.connection, &cancel)
    };
    let mut loaded = load(&args.common, Some(&args.connection), false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    if agent.is_pull_request() {
        return Err(anyhow!(
            "a pull-request run is read-only: use `plan` or `rehearse` there, and release from the target branch"
        ));
    }
    let fan = FanOut::from_config(&loaded.loaded.config);
    let selected = fan.select(&args.targets)?;
    // `build` never reaches Azure: one package serves every target.
    if fan.explicit && command != Command::Build {
        if let [target] = selected.as_slice() {
            log.info(&fanout::target_line(target));
            loaded.spec = slot_release_engine::fanout::spec_for(&loaded.spec, target);
        } else {
            return fanout::run(
                command,
                args,
                &loaded,
                &fan,
                &selected,
                log,
                fanout::Signals { cancel, stopping },
            )
            .await;
        }
    }
    let record = run_one(command, args, &loaded, early, log, cancel, stopping).await?;
    Ok(if record.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// One run of a command on one app (the config's, or one target's): its package, its lock and journal,
/// its report.
pub(crate) async fn run_one(
    command: Command,
    args: &RunArgs,
    loaded: &release::LoadedRelease,
    early: EarlySignIn,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
) -> Result<stages::ReleaseRecord> {
    let agent = AgentEnv::from_env();
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| default_work_dir(&agent));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    // Held until the run ends: a second run on the same folder would overwrite this one's package and
    // build record between its build and its upload.
    let _work_dir_claim = claim_work_dir(&work_dir)?;
    // Before anything reaches Azure: a package that is missing, garbage or not what the build made, or a
    // package root outside the sources, is refused while nothing has changed (no lock, no journal).
    // Every secret the config references is read (reading changes nothing) and registered with the
    // log first, so nothing printed from here on (package preparation included) can show one. A missing
    // connection is reported after the package checks, which need none.
    let connection = match command {
        Command::Build => None,
        _ => Some(early.connect(&args.connection, loaded).await),
    };
    if let Some(Ok(port)) = &connection {
        stages::register_referenced_secrets(port, &loaded.spec, log, &cancel).await;
    }
    let package = prepare_package(command, args, loaded, &work_dir, log, &cancel).await?;
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
    let cancel = signals::with_deadline(&cancel, args.timeout_minutes, log, |minutes| {
        format!("The run exceeded its {minutes} minute(s): no further steps start")
    });
    let ctx = stages::Context {
        port,
        log: log.clone(),
        cancel,
        stopping,
    };
    let record = stages::run(&ctx, &loaded.spec, &opts).await;
    let portal =
        loaded.spec.app.subscription.as_deref().map(|sub| {
            stages::portal_url(sub, &loaded.spec.app.resource_group, &loaded.spec.app.name)
        });
    report(
        log,
        &record,
        release_slot(loaded, &record, args.common.environment.as_deref()).as_ref(),
        args.record.as_deref(),
        &work_dir,
        args.common.json,
        &stages::SummaryContext {
            rehearsal: false,
            portal_url: portal.as_deref(),
        },
    )?;
    Ok(record)
}

/// The package a code app's `build`, `staging` or `release` uses: the one given (resolved, validated and
/// verified against its build record), else one built from the package root. `build` writes the build
/// record beside the package in the output folder. Other commands deploy no package.
/// Where a run keeps its package, records and plan when `--work-dir` is not given: the job's
/// `Agent.TempDirectory` in a pipeline, else the system's temporary folder.
pub(crate) fn default_work_dir(agent: &AgentEnv) -> std::path::PathBuf {
    agent
        .temp_dir()
        .unwrap_or_else(std::env::temp_dir)
        .join("slot-release")
}

/// The run's exclusive claim on its work folder, released when the process ends (the OS drops the lock
/// of a killed process too). Outside a pipeline every run defaults to the same folder, so two at once
/// would overwrite each other's package and records; the second is refused before any change instead.
pub(crate) fn claim_work_dir(dir: &Path) -> Result<std::fs::File> {
    let path = dir.join(".slot-release.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(anyhow!(
            "another slot-release run is using the work folder {}: two runs sharing it would overwrite \
             each other's package and build record. Give this run its own folder with --work-dir (in a \
             pipeline, each job has its own Agent.TempDirectory), or wait for the other run to end",
            dir.display()
        )),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("cannot lock {}", path.display()))
        }
    }
}

pub(crate) async fn prepare_package(
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

pub(crate) fn command_name(command: Command) -> &'static str {
    match command {
        Command::Build => "build",
        Command::Staging => "staging",
        Command::Production => "production",
        Command::Rollback => "rollback",
        Command::Release => "release",
    }
}

async fn rehearse_cmd(
    args: &RehearseArgs,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
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
        quick: args.quick,
        stopping,
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
            private: None,
        });
    }
    let emulator = slot_release_emulator::Emulator::start(opts).await?;
    // Signals were registered before the start: whoever reads the endpoints may signal at once.
    log.print_document(&emulator.connection_summary());
    stop.cancelled().await;
    emulator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
