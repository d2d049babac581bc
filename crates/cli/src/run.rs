//! `plan` and the stage commands (`build`, `staging`, `production`, `rollback`, `release`): the package each
//! uses, the run itself and its report (summary, record, output variables).

use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use slot_release_engine::artifact;
use slot_release_engine::package::PackageSpec;
use slot_release_engine::plan::{self, BuildInfo, PlanInput, Stage};
use slot_release_engine::port::{self, Port};
use slot_release_engine::release::{self};
use slot_release_engine::spec::AppKind;
use slot_release_engine::stages::{self, Command, LockOptions, StageOptions, Unfinished};
use slot_release_engine::state::{LiveState, SlotName};
use slot_release_pipelines::{AgentEnv, Log, OutputMode, Summary};
use tokio_util::sync::CancellationToken;

use crate::args::{PlanArgs, RunArgs};
use crate::load::{config_dir, connect, load, load_for_release};

pub(crate) async fn plan_cmd(
    args: &PlanArgs,
    log: &Log,
    cancel: &CancellationToken,
) -> Result<ExitCode> {
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

pub(crate) fn slots(loaded: &release::LoadedRelease) -> Vec<SlotName> {
    loaded.spec.slots()
}

pub(crate) async fn run_cmd(
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
pub(crate) fn release_slot(
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

/// The summary, the record, and in a pipeline the output variables and the run summary.
pub(crate) fn report(
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
