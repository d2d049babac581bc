//! The `slot-release` binary: parses arguments (or the task's inputs) and dispatches to the libraries.
//!
//! Everything that decides or changes something lives in the libraries; this file maps inputs to calls,
//! errors to the agent's issues and exit codes, and signals to a cancellation token.

mod args;
mod load;
mod local;
mod run;
mod task_inputs;
mod tracing_log;

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow};
use clap::Parser;
use slot_release_engine::plan::{self};
use slot_release_engine::stages::Command;
use slot_release_pipelines::{AgentEnv, Log, OutputMode, TaskResult};
use tokio_util::sync::CancellationToken;

use crate::args::{Cli, Cmd};
use crate::load::validate;
use crate::local::{emulator_cmd, rehearse_cmd};
use crate::run::{plan_cmd, run_cmd};

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
