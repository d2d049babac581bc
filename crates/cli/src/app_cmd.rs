//! `slot-release app start|stop|restart` and `slot-release slot delete`: the config names the app, the
//! engine takes the release lock, acts and records the command in the journal.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use slot_release_engine::port::SlotControl;
use slot_release_engine::stages::{self, AppAction, AppCommandOptions, LockOptions, Stopping};
use slot_release_engine::state::SlotName;
use slot_release_pipelines::{AgentEnv, Log};
use tokio_util::sync::CancellationToken;

use crate::args::{AppCmd, CommandRun, SlotCmd};
use crate::config::{connect, load};

/// `app start|stop|restart`.
pub(crate) async fn app(
    cmd: AppCmd,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
) -> Result<ExitCode> {
    let (control, target) = match cmd {
        AppCmd::Start(t) => (SlotControl::Start, t),
        AppCmd::Stop(t) => (SlotControl::Stop, t),
        AppCmd::Restart(t) => (SlotControl::Restart, t),
    };
    run(
        AppAction::Control(control),
        &target.slot,
        &target.run,
        log,
        cancel,
        stopping,
    )
    .await
}

/// `slot delete`.
pub(crate) async fn slot(
    cmd: SlotCmd,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
) -> Result<ExitCode> {
    let SlotCmd::Delete(target) = cmd;
    run(
        AppAction::DeleteSlot,
        &target.slot,
        &target.run,
        log,
        cancel,
        stopping,
    )
    .await
}

async fn run(
    action: AppAction,
    slot: &str,
    args: &CommandRun,
    log: &Log,
    cancel: CancellationToken,
    stopping: Stopping,
) -> Result<ExitCode> {
    let slot = SlotName::new(slot)?;
    let mut loaded = load(&args.common, Some(&args.connection), false, log)?;
    args.overrides.apply(&mut loaded, log)?;
    let agent = AgentEnv::from_env();
    if agent.is_pull_request() {
        return Err(anyhow!(
            "a pull-request run is read-only: run app commands from the target branch"
        ));
    }
    let port = connect(&args.connection, &loaded)?;
    // An app that answers a health probe, or the log of one that crashed, may quote a secret.
    stages::register_referenced_secrets(&port, &loaded.spec, log, &cancel).await;
    let work_dir = crate::default_work_dir(&agent);
    let opts = AppCommandOptions {
        action,
        slot,
        run_id: loaded.release_id.clone(),
        run_name: loaded.release_name.clone(),
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
        work_dir,
    };
    let cancel = crate::signals::with_deadline(&cancel, args.timeout_minutes, log, |minutes| {
        format!("The command exceeded its {minutes} minute(s): it stops now")
    });
    let ctx = stages::Context {
        port: std::sync::Arc::new(port),
        log: log.clone(),
        cancel,
        stopping,
    };
    let record = stages::run_app_command(&ctx, &loaded.spec, &opts).await;
    if args.common.json {
        log.print_json(&record);
    }
    if let Some(path) = &args.record {
        log.write_json("the command's record", path, &record)?;
    }
    Ok(if record.succeeded() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
