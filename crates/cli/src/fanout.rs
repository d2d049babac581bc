//! `--targets`: one job releasing several targets of the config, wave by wave, a bounded number at once.
//!
//! Each target runs the same command as a single-target run would ([`crate::run_one`]): its own lock and
//! journal (they key on the app), its own work folder, its own report. Its log lines are held and written
//! together when it ends, so concurrent targets do not interleave. The package is prepared once and
//! given to every target, so every region runs the same bytes.

use std::process::ExitCode;

use anyhow::{Context as _, Result};
use slot_release_engine::fanout::{self, FanOut, Ran, Target, TargetReport};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::spec::AppKind;
use slot_release_engine::stages::{Command, RunResult, Stopping};
use slot_release_pipelines::{AgentEnv, Log, OutputMode, Summary};
use tokio_util::sync::CancellationToken;

use crate::args::RunArgs;

/// What stops the targets: the run's cancellation and the agent's timing.
pub(crate) struct Signals {
    pub(crate) cancel: CancellationToken,
    pub(crate) stopping: Stopping,
}

/// The line that says which app a target is.
pub(crate) fn target_line(target: &Target) -> String {
    let region = target
        .region
        .as_deref()
        .map_or(String::new(), |r| format!(" in {r}"));
    format!(
        "Target {} (wave {}): app {} in resource group {}{region}",
        target.name, target.wave, target.app, target.resource_group
    )
}

pub(crate) async fn run(
    command: Command,
    args: &RunArgs,
    loaded: &LoadedRelease,
    fan: &FanOut,
    selected: &[Target],
    log: &Log,
    signals: Signals,
) -> Result<ExitCode> {
    let work_dir = args
        .work_dir
        .clone()
        .unwrap_or_else(|| crate::default_work_dir(&AgentEnv::from_env()));
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("cannot create {}", work_dir.display()))?;
    // The package built here and the targets' folders below would be shared with another run.
    let _work_dir_claim = crate::claim_work_dir(&work_dir)?;
    let mut shared = args.clone();
    // One package for every target: built (or verified) here once, then given to each as an earlier
    // build's package, checked against its build record like any given package.
    if matches!(command, Command::Staging | Command::Release)
        && args.package.is_none()
        && matches!(loaded.spec.app.kind, AppKind::Code { .. })
    {
        let package = crate::prepare_package(
            Command::Build,
            args,
            loaded,
            &work_dir,
            log,
            &signals.cancel,
        )
        .await?;
        if let Some(package) = package {
            shared.package = Some(package.path.display().to_string());
        }
    }
    shared.record = None;
    shared.common.json = false;
    shared.targets = Vec::new();
    log.info(&format!(
        "Releasing {} target(s) in {} wave(s), at most {} at once{}",
        selected.len(),
        fanout::waves(selected).len(),
        fan.max_parallel,
        if fan.rollback_earlier_waves {
            "; a failure rolls back every target already released"
        } else {
            ""
        }
    ));
    for target in selected {
        log.info(&format!("  {}", target_line(target)));
    }
    let one = |target: Target, command: Command| {
        let mut args = shared.clone();
        args.work_dir = Some(work_dir.join("targets").join(&target.name));
        if command == Command::Rollback {
            args.package = None;
            args.build_record = None;
            args.rollback_to = None;
        }
        let mut loaded = loaded.clone();
        loaded.spec = fanout::spec_for(&loaded.spec, &target);
        let (held, lines) = log.held();
        let cancel = signals.cancel.clone();
        let stopping = signals.stopping.clone();
        async move {
            let ran = {
                let _group = held.group(&format!(
                    "Target {}: {} of {}",
                    target.name,
                    crate::command_name(command),
                    target.app
                ));
                held.info(&target_line(&target));
                // Each target signs in when it connects: the early sign-in is a single run's.
                let early = crate::config::EarlySignIn::none();
                match crate::run_one(command, &args, &loaded, early, &held, cancel, stopping).await
                {
                    Ok(record) => match record.result {
                        RunResult::Succeeded => Ran::Succeeded,
                        RunResult::Failed => Ran::Failed,
                        RunResult::RolledBack => Ran::RolledBack,
                        RunResult::Cancelled => Ran::Cancelled,
                    },
                    Err(err) => {
                        held.error(&format!("target {}: {err:#}", target.name));
                        Ran::Failed
                    }
                }
            };
            lines.release(log);
            ran
        }
    };
    let reports = fanout::run_waves(
        selected,
        fan.max_parallel,
        fan.rollback_earlier_waves && matches!(command, Command::Production | Command::Release),
        &signals.cancel,
        |target| one(target, command),
        |target| {
            let undo = one(target, Command::Rollback);
            async move { undo.await == Ran::Succeeded }
        },
    )
    .await;
    report(command, &reports, args, &work_dir, log)?;
    Ok(if reports.iter().all(|r| r.outcome.ok()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Every target's outcome: a table in the log, the record (`--record`), and in a pipeline a summary tab.
fn report(
    command: Command,
    reports: &[TargetReport],
    args: &RunArgs,
    work_dir: &std::path::Path,
    log: &Log,
) -> Result<()> {
    let table = fanout::render_table(reports);
    let failed = reports.iter().filter(|r| !r.outcome.ok()).count();
    let heading = format!(
        "Fan-out {}: {} of {} target(s) released",
        crate::command_name(command),
        reports.len() - failed,
        reports.len()
    );
    log.info(&format!("{heading}\n{}", table.trim_end()));
    if args.common.json {
        log.print_json(&serde_json::json!({ "targets": reports }));
    }
    if let Some(path) = &args.record {
        log.write_json(
            "the fan-out record",
            path,
            &serde_json::json!({ "targets": reports }),
        )?;
    }
    if log.mode() == OutputMode::Pipeline {
        let rows: Vec<Vec<String>> = reports
            .iter()
            .map(|r| {
                vec![
                    r.name.clone(),
                    r.app.clone(),
                    r.wave.to_string(),
                    r.outcome.as_str().to_owned(),
                ]
            })
            .collect();
        let mut summary = Summary::new();
        summary
            .heading(2, &heading)
            .table(&["Target", "App", "Wave", "Outcome"], &rows);
        log.write_summary(
            &work_dir.join(format!("fan-out-{}.md", crate::command_name(command))),
            &summary,
        )?;
    }
    Ok(())
}
