//! Hooks (migrations and other commands) run by a stage: on the agent as a shell command, or in the slot
//! through a [`RemoteCommand`] (Kudu), with output streamed to the log, captured for the release record,
//! timeouts, cancellation, and the `undo` of hooks already run when one fails.
//!
//! Undo rules:
//! - only hooks that completed successfully are undone; the failed hook's own `undo` is not run, because its
//!   effect is unknown;
//! - undo runs newest first and stops at the first hook without `undo` (a point of no return): undoing what
//!   came before an irreversible change could break it; the hooks left are reported;
//! - undo stops at the first failing undo command, for the same reason;
//! - on cancellation nothing new starts, undo included; the report says what ran so `rollback` can finish.
//!
//! An agent hook runs in its own process group; when it exits, anything it left running in that group is
//! killed, and output still held open by such leftovers is read for at most `drain_grace`.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use slot_release_pipelines::{Log, Secret};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::Error;

/// Longest line passed to the log in one piece; longer lines are split so one line cannot hold memory.
const MAX_LINE: usize = 16 * 1024;

/// What a remote command printed and returned.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RemoteOutput {
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs a command inside the slot (the engine implements it over the Kudu command API).
#[async_trait::async_trait]
pub trait RemoteCommand: Send + Sync {
    /// Runs `command` in `dir` (a path inside the slot), giving up after `timeout` or on `cancel`.
    ///
    /// A command that ran returns its output, whatever its exit code. Otherwise the error is
    /// [`Error::RemoteCommandTimedOut`], [`Error::Cancelled`] (with no step), or
    /// [`Error::RemoteCommandFailed`] when it could not run at all.
    async fn run(
        &self,
        command: &str,
        dir: &str,
        timeout: Duration,
        cancel: &CancellationToken,
    ) -> Result<RemoteOutput, Error>;
}

/// Where a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum HookWhere {
    /// In the slot, through Kudu's command API.
    Slot,
    /// On the agent.
    Agent,
}

/// One hook: a command run in a stage, with its undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookSpec {
    /// Name.
    pub name: String,
    /// Command.
    pub command: String,
    /// Where it runs.
    pub run_where: HookWhere,
    /// Time limit.
    pub timeout: Duration,
    /// The undo command; without one the hook is a point of no return.
    pub undo: Option<String>,
    /// Extra environment variables (agent hooks).
    pub env: BTreeMap<String, String>,
}

/// The environment agent hooks run with.
#[derive(Debug, Clone, Default)]
pub struct HookEnvironment {
    /// The environment's settings.
    pub vars: BTreeMap<String, String>,
    /// Secret settings; registered with the log before any hook runs.
    pub secrets: BTreeMap<String, Secret>,
    /// Variables of the agent's own environment not passed on (besides the built-in list of credential
    /// variables, see [`HookRunnerConfig::inherit_env`]).
    pub remove: Vec<String>,
}

/// How the runner runs hooks.
#[derive(Debug, Clone)]
pub struct HookRunnerConfig {
    /// Working directory of agent hooks.
    pub working_dir: PathBuf,
    /// Working directory of slot hooks, inside the slot.
    pub slot_dir: String,
    /// Whether agent hooks inherit the agent's environment. Credentials the agent hands to this task
    /// (`ENDPOINT_AUTH_*`, `SYSTEM_ACCESSTOKEN`, `INPUT_*`) are never passed on.
    pub inherit_env: bool,
    /// How much of each command's output is kept for the release record (the tail).
    pub capture_limit: usize,
    /// After a timeout or cancellation: how long the process group has between SIGTERM and SIGKILL.
    pub kill_grace: Duration,
    /// After the command exits: how long to wait for background children still holding its output open.
    pub drain_grace: Duration,
}

impl HookRunnerConfig {
    /// Defaults for hooks run in `working_dir`.
    pub fn new(working_dir: impl Into<PathBuf>) -> Self {
        Self {
            working_dir: working_dir.into(),
            slot_dir: "/home/site/wwwroot".to_owned(),
            inherit_env: true,
            capture_limit: 64 * 1024,
            kill_grace: Duration::from_millis(1500),
            drain_grace: Duration::from_secs(2),
        }
    }
}

/// Which command of a hook ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum CommandKind {
    Run,
    Undo,
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum HookOutcome {
    Succeeded,
    /// Non-zero exit, or killed by a signal (`exit_code` is then `None`).
    Failed {
        exit_code: Option<i32>,
    },
    TimedOut {
        after_ms: u64,
    },
    Cancelled,
    /// It could not be started or waited for.
    Error {
        message: String,
    },
}

impl HookOutcome {
    pub fn is_success(&self) -> bool {
        matches!(self, Self::Succeeded)
    }
}

impl std::fmt::Display for HookOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Succeeded => f.write_str("succeeded"),
            Self::Failed { exit_code: Some(c) } => write!(f, "failed with exit code {c}"),
            Self::Failed { exit_code: None } => f.write_str("killed by a signal"),
            Self::TimedOut { after_ms } => write!(
                f,
                "timed out after {}",
                humantime::format_duration(Duration::from_millis(*after_ms))
            ),
            Self::Cancelled => f.write_str("cancelled"),
            Self::Error { message } => write!(f, "could not run: {message}"),
        }
    }
}

/// One command that ran, for the release record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandRecord {
    pub hook: String,
    pub kind: CommandKind,
    pub location: HookWhere,
    pub outcome: HookOutcome,
    pub duration_ms: u64,
    /// The tail of stdout and stderr, interleaved as they arrived, secrets masked.
    pub output: String,
    /// Whether earlier output was dropped to respect the capture limit.
    pub output_truncated: bool,
}

/// Overall result of [`HookRunner::run_all`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum HooksStatus {
    /// Every hook succeeded.
    Succeeded,
    /// A hook failed; every hook that could be undone was undone.
    FailedUndone,
    /// A hook failed and some effects remain (a point of no return, or a failing undo).
    FailedNotFullyUndone,
    /// Cancelled; nothing was undone.
    Cancelled,
}

/// What [`HookRunner::run_all`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HooksReport {
    pub status: HooksStatus,
    /// `run` commands in the order they ran (the failed one last).
    pub ran: Vec<CommandRecord>,
    /// `undo` commands in the order they ran (newest hook first).
    pub undone: Vec<CommandRecord>,
    /// The hook that failed.
    pub failed: Option<String>,
    /// Hooks that completed and have no `undo`: points of no return.
    pub no_undo: Vec<String>,
    /// Completed hooks whose effects remain after the undo (behind a point of no return or a failing undo).
    pub not_undone: Vec<String>,
}

impl HooksReport {
    /// Names of the hooks whose `run` completed successfully, in order (what the journal records).
    pub fn completed(&self) -> Vec<String> {
        self.ran
            .iter()
            .filter(|r| r.outcome.is_success())
            .map(|r| r.hook.clone())
            .collect()
    }
}

/// Runs hooks on the agent or in the slot.
pub struct HookRunner {
    log: Log,
    config: HookRunnerConfig,
    env: HookEnvironment,
    remote: Option<Arc<dyn RemoteCommand>>,
}

impl std::fmt::Debug for HookRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HookRunner")
            .field("config", &self.config)
            .field("env", &self.env)
            .field("remote", &self.remote.is_some())
            .finish_non_exhaustive()
    }
}

/// Agent variables that hold this task's credentials; a user's hook has no business with them.
fn is_credential_var(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    upper.starts_with("ENDPOINT_AUTH_")
        || upper.starts_with("INPUT_")
        || upper.starts_with("SECUREFILE_")
        || upper == "SYSTEM_ACCESSTOKEN"
        || upper == "ACTIONS_ID_TOKEN_REQUEST_TOKEN"
}

impl HookRunner {
    /// A runner; every secret in `env` is registered with `log` now, before any hook can print it.
    pub fn new(log: Log, config: HookRunnerConfig, env: HookEnvironment) -> Self {
        for secret in env.secrets.values() {
            log.register_secret(secret.expose());
        }
        Self {
            log,
            config,
            env,
            remote: None,
        }
    }

    /// Slot hooks run through `remote`.
    pub fn with_remote(mut self, remote: Arc<dyn RemoteCommand>) -> Self {
        self.remote = Some(remote);
        self
    }

    /// Runs `hooks` in order; on the first failure undoes the completed ones (see the module docs).
    pub async fn run_all(&self, hooks: &[HookSpec], cancel: &CancellationToken) -> HooksReport {
        let mut ran = Vec::new();
        let mut completed: Vec<&HookSpec> = Vec::new();
        let mut failed = None;
        let mut cancelled = false;
        for hook in hooks {
            if cancel.is_cancelled() {
                cancelled = true;
                break;
            }
            let record = self.run_command(hook, CommandKind::Run, cancel).await;
            let outcome = record.outcome.clone();
            ran.push(record);
            match outcome {
                HookOutcome::Succeeded => completed.push(hook),
                HookOutcome::Cancelled => {
                    cancelled = true;
                    break;
                }
                _ => {
                    failed = Some(hook.name.clone());
                    break;
                }
            }
        }
        let no_undo = completed
            .iter()
            .filter(|h| h.undo.is_none())
            .map(|h| h.name.clone())
            .collect();
        if cancelled {
            return HooksReport {
                status: HooksStatus::Cancelled,
                ran,
                undone: Vec::new(),
                failed,
                no_undo,
                not_undone: completed.iter().map(|h| h.name.clone()).collect(),
            };
        }
        if failed.is_none() {
            return HooksReport {
                status: HooksStatus::Succeeded,
                ran,
                undone: Vec::new(),
                failed,
                no_undo,
                not_undone: Vec::new(),
            };
        }
        let undo = self.undo(&completed, cancel).await;
        HooksReport {
            status: if undo.not_undone.is_empty() {
                HooksStatus::FailedUndone
            } else {
                HooksStatus::FailedNotFullyUndone
            },
            ran,
            undone: undo.undone,
            failed,
            no_undo,
            not_undone: undo.not_undone,
        }
    }

    /// Runs the `undo` of `completed` hooks (given in the order they ran), newest first, with the rules of
    /// the module docs. Also used by a rollback when the config asks for it.
    pub async fn undo(&self, completed: &[&HookSpec], cancel: &CancellationToken) -> UndoReport {
        let mut undone = Vec::new();
        let mut not_undone = Vec::new();
        let mut stopped = false;
        for hook in completed.iter().rev() {
            if stopped || cancel.is_cancelled() {
                not_undone.push(hook.name.clone());
                continue;
            }
            if hook.undo.is_none() {
                self.log.warning(&format!(
                    "Hook {} has no undo (point of no return); it and the hooks before it stay in effect",
                    hook.name
                ));
                stopped = true;
                not_undone.push(hook.name.clone());
                continue;
            }
            let record = self.run_command(hook, CommandKind::Undo, cancel).await;
            let ok = record.outcome.is_success();
            undone.push(record);
            if !ok {
                self.log.warning(&format!(
                    "Undo of hook {} did not succeed; the hooks before it are not undone",
                    hook.name
                ));
                stopped = true;
                not_undone.push(hook.name.clone());
            }
        }
        UndoReport { undone, not_undone }
    }

    /// Runs one command of `hook` (its `run` or its `undo`) and returns the record; never fails, problems
    /// are in the outcome.
    pub async fn run_command(
        &self,
        hook: &HookSpec,
        kind: CommandKind,
        cancel: &CancellationToken,
    ) -> CommandRecord {
        let command = match kind {
            CommandKind::Run => hook.command.as_str(),
            CommandKind::Undo => hook.undo.as_deref().unwrap_or(""),
        };
        let what = match kind {
            CommandKind::Run => "Hook",
            CommandKind::Undo => "Undo of hook",
        };
        let _group = self.log.group(&format!("{what} {}", hook.name));
        let started = Instant::now();
        let capture = Capture::new(self.config.capture_limit);
        let outcome = match hook.run_where {
            HookWhere::Agent => self.run_agent(hook, command, &capture, cancel).await,
            HookWhere::Slot => self.run_slot(hook, command, &capture, cancel).await,
        };
        let outcome = outcome.unwrap_or_else(|e| HookOutcome::Error {
            message: error_chain(&e),
        });
        let duration = started.elapsed();
        let line = format!(
            "{what} {} {outcome} ({})",
            hook.name,
            humantime::format_duration(Duration::from_millis(
                u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
            ))
        );
        if outcome.is_success() {
            self.log.info(&line);
        } else {
            self.log.error(&line);
        }
        let (output, output_truncated) = capture.take();
        CommandRecord {
            hook: hook.name.clone(),
            kind,
            location: hook.run_where,
            outcome,
            duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
            output,
            output_truncated,
        }
    }

    async fn run_slot(
        &self,
        hook: &HookSpec,
        command: &str,
        capture: &Capture,
        cancel: &CancellationToken,
    ) -> Result<HookOutcome, Error> {
        let remote = self.remote.as_ref().ok_or_else(|| Error::NoRemoteRunner {
            hook: hook.name.clone(),
        })?;
        let result = remote
            .run(command, &self.config.slot_dir, hook.timeout, cancel)
            .await;
        match result {
            Ok(out) => {
                for text in [&out.stdout, &out.stderr] {
                    for line in text.lines() {
                        self.emit_line(&hook.name, line, capture);
                    }
                }
                Ok(if out.exit_code == 0 {
                    HookOutcome::Succeeded
                } else {
                    HookOutcome::Failed {
                        exit_code: Some(out.exit_code),
                    }
                })
            }
            Err(Error::RemoteCommandTimedOut { after }) => Ok(HookOutcome::TimedOut {
                after_ms: u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
            }),
            Err(Error::Cancelled { .. }) => Ok(HookOutcome::Cancelled),
            Err(e) => Ok(HookOutcome::Error {
                message: self.log.mask(&error_chain(&e)),
            }),
        }
    }

    fn emit_line(&self, hook: &str, line: &str, capture: &Capture) {
        self.log.external(hook, line);
        capture.push(&self.log.mask(line));
    }

    async fn run_agent(
        &self,
        hook: &HookSpec,
        command: &str,
        capture: &Capture,
        cancel: &CancellationToken,
    ) -> Result<HookOutcome, Error> {
        let (program, flag) = if cfg!(windows) {
            ("cmd", "/C")
        } else {
            ("sh", "-c")
        };
        let mut cmd = tokio::process::Command::new(program);
        cmd.arg(flag);
        // cmd.exe does not parse arguments with the C runtime's quoting rules, so the command line is
        // passed as written instead of being quoted as one argument.
        #[cfg(windows)]
        cmd.raw_arg(command);
        #[cfg(not(windows))]
        cmd.arg(command);
        cmd.current_dir(&self.config.working_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if self.config.inherit_env {
            for (name, _) in std::env::vars_os() {
                if name.to_str().is_none_or(is_credential_var) {
                    cmd.env_remove(&name);
                }
            }
        } else {
            cmd.env_clear();
        }
        for name in &self.env.remove {
            cmd.env_remove(name);
        }
        for (k, v) in self.env.vars.iter().chain(&hook.env) {
            cmd.env(k, v);
        }
        for (k, v) in &self.env.secrets {
            cmd.env(k, v.expose());
        }
        #[cfg(unix)]
        {
            // Its own process group, so a timeout or cancellation can stop everything the hook started.
            cmd.process_group(0);
        }
        let mut child = cmd.spawn().map_err(|source| Error::HookSpawn {
            hook: hook.name.clone(),
            program: program.to_owned(),
            dir: self.config.working_dir.clone(),
            source,
        })?;
        let pid = child.id();
        let (tx, mut rx) = tokio::sync::mpsc::channel::<String>(256);
        let mut readers = Vec::new();
        if let Some(out) = child.stdout.take() {
            readers.push(tokio::spawn(read_lines(out, tx.clone())));
        }
        if let Some(err) = child.stderr.take() {
            readers.push(tokio::spawn(read_lines(err, tx.clone())));
        }
        drop(tx);

        let deadline = tokio::time::sleep(hook.timeout);
        tokio::pin!(deadline);
        let mut lines_open = true;
        let mut ending: Option<HookOutcome> = None;
        let mut kill_at: Option<Instant> = None;
        let status = {
            let wait = child.wait();
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    line = rx.recv(), if lines_open => match line {
                        Some(line) => self.emit_line(&hook.name, &line, capture),
                        None => lines_open = false,
                    },
                    status = &mut wait => break status,
                    () = &mut deadline, if ending.is_none() => {
                        ending = Some(HookOutcome::TimedOut {
                            after_ms: u64::try_from(hook.timeout.as_millis()).unwrap_or(u64::MAX),
                        });
                        self.log.warning(&format!(
                            "Hook {} exceeded its timeout of {}; stopping it",
                            hook.name,
                            humantime::format_duration(hook.timeout)
                        ));
                        kill_group(pid, Signal::Term);
                        kill_at = Some(Instant::now() + self.config.kill_grace);
                    }
                    () = cancel.cancelled(), if ending.is_none() => {
                        ending = Some(HookOutcome::Cancelled);
                        self.log.info(&format!("Hook {} cancelled; stopping it", hook.name));
                        kill_group(pid, Signal::Term);
                        kill_at = Some(Instant::now() + self.config.kill_grace);
                    }
                    () = sleep_until_opt(kill_at), if kill_at.is_some() => {
                        kill_group(pid, Signal::Kill);
                        kill_at = None;
                    }
                }
            }
        };
        // The hook is done; output still buffered is read, but a background child that keeps the pipes
        // open must not hold the release.
        let drain_until = Instant::now() + self.config.drain_grace;
        while lines_open {
            match tokio::time::timeout_at(drain_until, rx.recv()).await {
                Ok(Some(line)) => self.emit_line(&hook.name, &line, capture),
                Ok(None) | Err(_) => lines_open = false,
            }
        }
        // Whatever the hook left running in its group would outlive the step; it goes too. Only on Unix:
        // there the group id cannot be reused while any member lives, while a Windows pid can be.
        if cfg!(unix) {
            kill_group(pid, Signal::Kill);
        }
        for reader in readers {
            reader.abort();
        }
        let status = status.map_err(|source| Error::HookWait {
            hook: hook.name.clone(),
            source,
        })?;
        if let Some(ending) = ending {
            return Ok(ending);
        }
        Ok(if status.success() {
            HookOutcome::Succeeded
        } else {
            HookOutcome::Failed {
                exit_code: status.code(),
            }
        })
    }
}

/// What [`HookRunner::undo`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UndoReport {
    pub undone: Vec<CommandRecord>,
    pub not_undone: Vec<String>,
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

#[cfg(unix)]
fn kill_group(pid: Option<u32>, signal: Signal) {
    use nix::sys::signal::{Signal as S, killpg};
    use nix::unistd::Pid;
    let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) else {
        return;
    };
    let sig = match signal {
        Signal::Term => S::SIGTERM,
        Signal::Kill => S::SIGKILL,
    };
    // ESRCH (the group is already gone) is the expected case after a clean exit.
    let _ = killpg(Pid::from_raw(pid), sig);
}

#[cfg(not(unix))]
fn kill_group(pid: Option<u32>, _signal: Signal) {
    // Windows has no process groups to signal; taskkill /T stops the whole tree.
    if let Some(pid) = pid {
        let _ = std::process::Command::new("taskkill")
            .args(["/T", "/F", "/PID", &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Reads lines (lossy UTF-8, split at `MAX_LINE`) and sends them on; ends at EOF or when nobody listens.
async fn read_lines(stream: impl AsyncRead + Unpin, tx: tokio::sync::mpsc::Sender<String>) {
    let mut reader = BufReader::new(stream);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        match read_line_bounded(&mut reader, &mut buf, MAX_LINE).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        while matches!(buf.last(), Some(b'\n' | b'\r')) {
            buf.pop();
        }
        let line = String::from_utf8_lossy(&buf).into_owned();
        if tx.send(line).await.is_err() {
            return;
        }
    }
}

/// Appends bytes up to and including a newline, or `limit` bytes, whichever comes first.
async fn read_line_bounded<R: AsyncRead + Unpin>(
    reader: &mut BufReader<R>,
    out: &mut Vec<u8>,
    limit: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(total);
        }
        let room = limit - total;
        let window = &available[..available.len().min(room)];
        let (used, done) = match window.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (window.len(), window.len() == room),
        };
        out.extend_from_slice(&window[..used]);
        reader.consume(used);
        total += used;
        if done {
            return Ok(total);
        }
    }
}

/// The bounded tail of a command's output.
struct Capture {
    limit: usize,
    inner: Mutex<(VecDeque<String>, usize, bool)>,
}

impl Capture {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            inner: Mutex::new((VecDeque::new(), 0, false)),
        }
    }

    fn push(&self, line: &str) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (lines, size, truncated) = &mut *guard;
        lines.push_back(line.to_owned());
        *size += line.len() + 1;
        while *size > self.limit {
            match lines.pop_front() {
                Some(old) => {
                    *size -= old.len() + 1;
                    *truncated = true;
                }
                None => break,
            }
        }
    }

    fn take(&self) -> (String, bool) {
        let mut guard = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (lines, _, truncated) = &mut *guard;
        let mut text = String::new();
        for line in lines.drain(..) {
            text.push_str(&line);
            text.push('\n');
        }
        (text, *truncated)
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    crate::error::chain(e).join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_keeps_the_tail_within_the_limit() {
        let capture = Capture::new(10);
        for line in ["aaaa", "bbbb", "cccc"] {
            capture.push(line);
        }
        let (text, truncated) = capture.take();
        assert_eq!(text, "bbbb\ncccc\n");
        assert!(truncated);
    }

    #[test]
    fn credential_variables_are_recognised() {
        assert!(is_credential_var("ENDPOINT_AUTH_1234"));
        assert!(is_credential_var("system_accesstoken"));
        assert!(!is_credential_var("PATH"));
    }
}
