//! The logger every part of Slot Release writes through: `##vso[` logging commands in a pipeline,
//! readable (optionally coloured) text on a terminal, and secret masking in every mode.

use std::io::{IsTerminal as _, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::Error;
use crate::escape::{escape_data, escape_property, neutralise};
use crate::mask::Masker;
use crate::summary::Summary;

/// Where the output goes and how it is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputMode {
    /// Running under the Azure Pipelines agent (`TF_BUILD` is set): logging commands.
    Pipeline,
    /// An interactive terminal: progress bars, and colour when `color` is true.
    Terminal { color: bool },
    /// Anything else (a file, a pipe, another CI system): plain lines.
    Plain,
}

impl OutputMode {
    /// Chooses the mode from the environment: `TF_BUILD` means the agent runs us; otherwise a
    /// terminal on stdout gets colour unless `NO_COLOR` is set.
    pub fn detect() -> OutputMode {
        if std::env::var_os("TF_BUILD").is_some_and(|v| !v.is_empty()) {
            OutputMode::Pipeline
        } else if std::io::stdout().is_terminal() {
            OutputMode::Terminal {
                color: std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            }
        } else {
            OutputMode::Plain
        }
    }
}

/// The outcome reported with `task.complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
    /// The run stopped because the job was cancelled (the agent's `TaskResult.Canceled`): what the
    /// agent records for a cancelled step, so the task says the same instead of `Failed`.
    Canceled,
}

impl TaskResult {
    /// The name the agent parses.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskResult::Succeeded => "Succeeded",
            TaskResult::SucceededWithIssues => "SucceededWithIssues",
            TaskResult::Failed => "Failed",
            TaskResult::Canceled => "Canceled",
        }
    }
}

/// Whether an issue is an error or a warning (the agent rejects any other type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueKind {
    Error,
    Warning,
}

/// A problem to show in the run's issue list, optionally pointing at a file position
/// (for example a `release.yml` error at line 12, column 5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub kind: IssueKind,
    pub message: String,
    pub source_path: Option<std::path::PathBuf>,
    pub line: Option<u32>,
    pub column: Option<u32>,
    pub code: Option<String>,
}

impl Issue {
    pub fn error(message: impl Into<String>) -> Issue {
        Issue::new(IssueKind::Error, message.into())
    }

    pub fn warning(message: impl Into<String>) -> Issue {
        Issue::new(IssueKind::Warning, message.into())
    }

    fn new(kind: IssueKind, message: String) -> Issue {
        Issue {
            kind,
            message,
            source_path: None,
            line: None,
            column: None,
            code: None,
        }
    }

    /// Points the issue at a position in a file (1-based line and column).
    pub fn at(mut self, path: impl Into<std::path::PathBuf>, line: u32, column: u32) -> Issue {
        self.source_path = Some(path.into());
        self.line = Some(line);
        self.column = Some(column);
        self
    }

    /// Attaches a stable error code (for example `SR0102`).
    pub fn with_code(mut self, code: impl Into<String>) -> Issue {
        self.code = Some(code.into());
        self
    }
}

/// How a pipeline variable is set.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VariableOptions {
    /// Masked in logs and not exported to later steps' environment as plain text.
    pub secret: bool,
    /// Visible to later jobs and stages as `<step>.<name>`.
    pub output: bool,
    /// Later steps cannot overwrite it.
    pub read_only: bool,
}

/// The logger. Cheap to clone; clones share the sink, the registered secrets and the progress bar.
#[derive(Clone)]
pub struct Log {
    inner: Arc<Inner>,
}

struct Inner {
    mode: OutputMode,
    debug: AtomicBool,
    /// Warnings issued: a run that succeeds after any reports `SucceededWithIssues`.
    warnings: std::sync::atomic::AtomicUsize,
    state: Mutex<State>,
}

struct State {
    sink: Box<dyn Write + Send>,
    /// Where documents go (`--json` output): stdout unless a test gives another stream.
    out: Box<dyn Write + Send>,
    /// Where diagnostics and panics go: stderr unless a test gives another stream.
    err: Box<dyn Write + Send>,
    masker: Masker,
    bar: Option<indicatif::ProgressBar>,
    /// Groups open: the agent does not nest `##[group]`, so only the outermost one is a group and an
    /// inner one is a heading inside it.
    groups: usize,
}

impl std::fmt::Debug for Log {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Log")
            .field("mode", &self.inner.mode)
            .field("debug", &self.inner.debug.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Closes a log group (`##[endgroup]`) when dropped.
#[derive(Debug)]
#[must_use = "the group closes when this guard is dropped"]
pub struct GroupGuard {
    log: Log,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.log.end_group();
    }
}

impl Log {
    /// A logger writing to `sink` in the given mode, with debug output off; documents go to stdout
    /// and diagnostics to stderr.
    pub fn new(mode: OutputMode, sink: Box<dyn Write + Send>) -> Log {
        Log::with_streams(
            mode,
            sink,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
        )
    }

    /// A logger writing log lines to `sink`, documents ([`Log::print_document`]) to `out` and
    /// diagnostics and panics ([`Log::diagnostic`], [`Log::install_panic_hook`]) to `err`.
    pub fn with_streams(
        mode: OutputMode,
        sink: Box<dyn Write + Send>,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
    ) -> Log {
        Log::build(mode, sink, out, err, Masker::default())
    }

    fn build(
        mode: OutputMode,
        sink: Box<dyn Write + Send>,
        out: Box<dyn Write + Send>,
        err: Box<dyn Write + Send>,
        masker: Masker,
    ) -> Log {
        Log {
            inner: Arc::new(Inner {
                mode,
                debug: AtomicBool::new(false),
                warnings: std::sync::atomic::AtomicUsize::new(0),
                state: Mutex::new(State {
                    sink,
                    out,
                    err,
                    masker,
                    bar: None,
                    groups: 0,
                }),
            }),
        }
    }

    /// The same logger writing its log lines to `sink` instead (with `--json`, the human log moves to
    /// stderr). Every secret registered so far stays registered: a fresh logger would print them.
    /// Documents and diagnostics go to the process's stdout and stderr.
    pub fn redirected(&self, sink: Box<dyn Write + Send>) -> Log {
        let masker = self.state().masker.clone();
        let log = Log::build(
            self.inner.mode,
            sink,
            Box::new(std::io::stdout()),
            Box::new(std::io::stderr()),
            masker,
        );
        log.set_debug(self.debug_enabled());
        log
    }

    /// A logger whose lines are held until [`Held::release`] writes them, in order, to another
    /// logger's sink: work that runs concurrently (one target of a fan-out) keeps its lines together
    /// instead of interleaving them with the others'. The lines are masked and neutralised as they are
    /// written, by this logger's rules, so releasing them writes them as they are.
    pub fn held(&self) -> (Log, Held) {
        let buffer = HeldBuffer::default();
        let log = self.redirected(Box::new(buffer.clone()));
        (log.clone(), Held { buffer, log })
    }

    /// A logger on stdout in the detected mode, with debug output on when `SYSTEM_DEBUG` is true.
    pub fn from_env() -> Log {
        let log = Log::new(OutputMode::detect(), Box::new(std::io::stdout()));
        let debug = std::env::var("SYSTEM_DEBUG").is_ok_and(|v| v.eq_ignore_ascii_case("true"));
        log.set_debug(debug);
        log
    }

    /// How many warnings were issued: a run that succeeded after one is `SucceededWithIssues`.
    pub fn warning_count(&self) -> usize {
        self.inner.warnings.load(Ordering::Relaxed)
    }

    /// The output mode.
    pub fn mode(&self) -> OutputMode {
        self.inner.mode
    }

    /// Turns debug output on or off (`System.Debug`, `--verbose`).
    pub fn set_debug(&self, on: bool) {
        self.inner.debug.store(on, Ordering::Relaxed);
    }

    /// Whether debug output is shown.
    pub fn debug_enabled(&self) -> bool {
        self.inner.debug.load(Ordering::Relaxed)
    }

    /// Registers a secret: the agent is told with `task.setsecret` (the whole value and each line of a
    /// multi-line value), and this logger masks it as `***` from now on.
    pub fn register_secret(&self, value: &str) {
        let mut state = self.state();
        let for_agent = state.masker.add(value);
        if self.inner.mode == OutputMode::Pipeline {
            for part in for_agent {
                let line = format!("##vso[task.setsecret]{}", escape_data(&part));
                write_line(&mut state, &line);
            }
        }
    }

    /// Registers every secret the agent handed the process ([`crate::AgentEnv::secrets`]: endpoint
    /// keys, the access token, secret variables). Call it first thing in task mode.
    pub fn register_secrets<'a>(&self, secrets: impl IntoIterator<Item = &'a crate::Secret>) {
        for secret in secrets {
            self.register_secret(secret.expose());
        }
    }

    /// Masks registered secrets in `text` (for files the caller writes itself).
    pub fn mask(&self, text: &str) -> String {
        self.state().masker.mask(text)
    }

    /// Masks every string (keys included) of a JSON document, which stays valid JSON.
    pub fn mask_json(&self, value: &serde_json::Value) -> serde_json::Value {
        self.state().masker.mask_json(value)
    }

    /// Writes `value` as pretty JSON to `path` with every registered secret masked (the plan JSON, the
    /// release record), creating the parent folder. `what` names the file in the error.
    pub fn write_json<T: serde::Serialize + ?Sized>(
        &self,
        what: &'static str,
        path: &Path,
        value: &T,
    ) -> Result<(), Error> {
        let text = self
            .masked_json_text(value)
            .map_err(|source| Error::WriteFile {
                what,
                path: path.to_owned(),
                source,
            })?;
        self.write_file(what, path, &text)
    }

    /// Writes `text` to `path` with every registered secret masked, creating the parent folder.
    pub fn write_text(&self, what: &'static str, path: &Path, text: &str) -> Result<(), Error> {
        self.write_file(what, path, &self.mask(text))
    }

    fn write_file(&self, what: &'static str, path: &Path, text: &str) -> Result<(), Error> {
        let failed = |source| Error::WriteFile {
            what,
            path: path.to_owned(),
            source,
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::write(path, text).map_err(failed)
    }

    /// Pretty JSON of `value` with every string (keys included) and every number that holds a
    /// secret masked, in the order the value serialises its fields.
    fn masked_json_text<T: serde::Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<String, std::io::Error> {
        let text = serde_json::to_string_pretty(value).map_err(std::io::Error::other)?;
        Ok(self.state().masker.mask_json_text(&text))
    }

    /// Prints a document (the `--json` output) on stdout as it is, but masked and neutralised: it is
    /// still read by the agent when stdout is the task's output.
    pub fn print_document(&self, text: &str) {
        let mut state = self.state();
        let text = clean(&state.masker, text);
        let _ = writeln!(state.out, "{text}");
        let _ = state.out.flush();
    }

    /// Prints `value` as pretty JSON with [`Log::print_document`], every string masked first so the
    /// document stays valid JSON.
    pub fn print_json<T: serde::Serialize + ?Sized>(&self, value: &T) {
        match self.masked_json_text(value) {
            Ok(text) => self.print_document(&text),
            Err(e) => self.error(&format!("cannot print the JSON document: {e}")),
        }
    }

    /// A diagnostic on stderr (a config error quoting its source line, a usage error), masked and
    /// neutralised line by line: the agent reads stderr lines for logging commands too.
    pub fn diagnostic(&self, text: &str) {
        let mut state = self.state();
        let text = clean(&state.masker, text);
        let text = text.replace("\r\n", "\n");
        for line in text.split(['\n', '\r']) {
            let _ = writeln!(state.err, "{line}");
        }
        let _ = state.err.flush();
    }

    /// Replaces the panic hook with one that prints the panic through this logger's masker and
    /// neutraliser on its diagnostic stream (stderr): the default hook would print a panic message
    /// holding a secret or a `##vso[` as it is.
    pub fn install_panic_hook(&self) {
        let log = self.clone();
        std::panic::set_hook(Box::new(move |info| log.report_panic(info)));
    }

    fn report_panic(&self, info: &std::panic::PanicHookInfo<'_>) {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let text = format!("error: slot-release stopped on an internal error{place}: {payload}");
        // A panic inside the logger itself holds the lock: the message cannot be masked then, so it
        // is not printed at all rather than printed in clear.
        let Ok(mut state) = self.inner.state.try_lock() else {
            let _ = writeln!(
                std::io::stderr(),
                "error: slot-release stopped on an internal error while writing its log{place}"
            );
            return;
        };
        let text = clean(&state.masker, &text);
        for line in text.replace("\r\n", "\n").split(['\n', '\r']) {
            let _ = writeln!(state.err, "{line}");
        }
        let _ = state.err.flush();
    }

    /// An informational message.
    pub fn info(&self, msg: &str) {
        self.text(Style::Plain, "", msg);
    }

    /// A warning: an issue of type warning in a pipeline.
    pub fn warning(&self, msg: &str) {
        self.issue(&Issue::warning(msg));
    }

    /// An error: an issue of type error in a pipeline. It does not fail the task by itself;
    /// [`Log::complete`] does.
    pub fn error(&self, msg: &str) {
        self.issue(&Issue::error(msg));
    }

    /// A debug message, shown only when debug output is on.
    pub fn debug(&self, msg: &str) {
        if !self.debug_enabled() {
            return;
        }
        if self.inner.mode == OutputMode::Pipeline {
            let mut state = self.state();
            let line = format!(
                "##vso[task.debug]{}",
                escape_data(&clean(&state.masker, msg))
            );
            write_line(&mut state, &line);
        } else {
            self.text(Style::Dim, "debug: ", msg);
        }
    }

    /// Text from outside Slot Release (hook output, Azure error messages, app responses), prefixed with
    /// its source. It is masked and neutralised so it cannot run logging commands.
    pub fn external(&self, source: &str, text: &str) {
        let prefix = format!("[{source}] ");
        self.text(Style::Plain, &prefix, text);
    }

    /// An issue, with its file position when known.
    pub fn issue(&self, issue: &Issue) {
        if issue.kind == IssueKind::Warning {
            self.inner.warnings.fetch_add(1, Ordering::Relaxed);
        }
        let mut state = self.state();
        let message = clean(&state.masker, &issue.message);
        match self.inner.mode {
            OutputMode::Pipeline => {
                let kind = match issue.kind {
                    IssueKind::Error => "error",
                    IssueKind::Warning => "warning",
                };
                let mut props = vec![("type", kind.to_owned())];
                if let Some(path) = &issue.source_path {
                    props.push((
                        "sourcepath",
                        clean(&state.masker, &path.display().to_string()),
                    ));
                }
                if let Some(line) = issue.line {
                    props.push(("linenumber", line.to_string()));
                }
                if let Some(column) = issue.column {
                    props.push(("columnnumber", column.to_string()));
                }
                if let Some(code) = &issue.code {
                    props.push(("code", clean(&state.masker, code)));
                }
                let line = command("task.logissue", &props, &message);
                write_line(&mut state, &line);
            }
            OutputMode::Terminal { color } => {
                let head = issue_head(issue, &state.masker);
                let colour = match issue.kind {
                    IssueKind::Error => "\x1b[31m",
                    IssueKind::Warning => "\x1b[33m",
                };
                write_lines(&mut state, &head, &message, color.then_some(colour));
            }
            OutputMode::Plain => {
                let head = issue_head(issue, &state.masker);
                write_lines(&mut state, &head, &message, None);
            }
        }
    }

    /// Opens a collapsible group; it closes when the guard is dropped. Inside another group it is a
    /// heading within that one: the agent does not nest groups, and a second `##[group]` would end the
    /// first one's fold early.
    pub fn group(&self, title: &str) -> GroupGuard {
        let mut state = self.state();
        let title = one_line(&clean(&state.masker, title));
        let nested = state.groups > 0;
        state.groups += 1;
        let line = match (self.inner.mode, nested) {
            (OutputMode::Pipeline, false) => format!("##[group]{title}"),
            (OutputMode::Terminal { color: true }, _) => format!("\x1b[1m▸ {title}\x1b[0m"),
            _ => format!("▸ {title}"),
        };
        write_line(&mut state, &line);
        GroupGuard { log: self.clone() }
    }

    fn end_group(&self) {
        let mut state = self.state();
        state.groups = state.groups.saturating_sub(1);
        if self.inner.mode == OutputMode::Pipeline && state.groups == 0 {
            write_line(&mut state, "##[endgroup]");
        }
    }

    /// A section heading.
    pub fn section(&self, title: &str) {
        let mut state = self.state();
        let title = one_line(&clean(&state.masker, title));
        let line = match self.inner.mode {
            OutputMode::Pipeline => format!("##[section]{title}"),
            OutputMode::Terminal { color: true } => format!("\x1b[1;36m== {title}\x1b[0m"),
            _ => format!("== {title}"),
        };
        write_line(&mut state, &line);
    }

    /// Progress of the current operation: `task.setprogress` in a pipeline, a bar on a terminal.
    pub fn progress(&self, percent: u8, what: &str) {
        let percent = percent.min(100);
        let mut state = self.state();
        let what = clean(&state.masker, what);
        match self.inner.mode {
            OutputMode::Pipeline => {
                let line = command("task.setprogress", &[("value", percent.to_string())], &what);
                write_line(&mut state, &line);
            }
            OutputMode::Terminal { .. } => {
                let bar = state.bar.get_or_insert_with(|| {
                    let bar = indicatif::ProgressBar::new(100);
                    if let Ok(style) =
                        indicatif::ProgressStyle::with_template("{bar:30} {pos:>3}% {msg}")
                    {
                        bar.set_style(style);
                    }
                    bar
                });
                bar.set_position(u64::from(percent));
                bar.set_message(one_line(&what));
                if percent == 100 {
                    bar.finish_and_clear();
                    state.bar = None;
                }
            }
            OutputMode::Plain => {
                let line = format!("[{percent:>3}%] {}", one_line(&what));
                write_line(&mut state, &line);
            }
        }
    }

    /// Sets a pipeline variable (`task.setvariable`). A secret value is registered for masking first.
    /// Outside a pipeline the assignment is shown as a debug line.
    pub fn set_variable(
        &self,
        name: &str,
        value: &str,
        opts: VariableOptions,
    ) -> Result<(), Error> {
        validate_variable_name(name)?;
        if opts.secret {
            if value.contains(['\n', '\r']) {
                return Err(Error::MultilineSecret {
                    name: name.to_owned(),
                });
            }
            // Registered locally only: `issecret=true` tells the agent itself.
            self.state().masker.add(value);
        }
        if self.inner.mode != OutputMode::Pipeline {
            let shown = if opts.secret {
                crate::mask::MASK.to_owned()
            } else {
                self.mask(value)
            };
            self.debug(&format!("variable {name} = {shown}"));
            return Ok(());
        }
        let mut state = self.state();
        let mut props = vec![("variable", name.to_owned())];
        if opts.secret {
            props.push(("issecret", "true".to_owned()));
        }
        if opts.output {
            props.push(("isoutput", "true".to_owned()));
        }
        if opts.read_only {
            props.push(("isreadonly", "true".to_owned()));
        }
        // A non-secret value is masked like any other output: it must never carry a secret.
        let value = if opts.secret {
            value.to_owned()
        } else {
            state.masker.mask(value)
        };
        let line = command("task.setvariable", &props, &value);
        write_line(&mut state, &line);
        Ok(())
    }

    /// Attaches a markdown file to the run's summary tab (`task.uploadsummary`).
    pub fn upload_summary(&self, path: &Path) {
        let mut state = self.state();
        let shown = clean(&state.masker, &path.display().to_string());
        let line = match self.inner.mode {
            OutputMode::Pipeline => command("task.uploadsummary", &[], &shown),
            _ => format!("Summary written to {shown}"),
        };
        write_line(&mut state, &line);
    }

    /// Writes the summary (masked) to `path` and uploads it.
    pub fn write_summary(&self, path: &Path, summary: &Summary) -> Result<(), Error> {
        let text = self.mask(&summary.to_markdown());
        std::fs::write(path, text).map_err(|source| Error::WriteSummary {
            path: path.to_owned(),
            source,
        })?;
        self.upload_summary(path);
        Ok(())
    }

    /// Uploads a file or folder as a build artifact (`artifact.upload`).
    pub fn upload_artifact(&self, container: &str, name: &str, path: &Path) {
        let mut state = self.state();
        let shown = clean(&state.masker, &path.display().to_string());
        let line = match self.inner.mode {
            OutputMode::Pipeline => command(
                "artifact.upload",
                &[
                    ("containerfolder", container.to_owned()),
                    ("artifactname", name.to_owned()),
                ],
                &shown,
            ),
            _ => format!(
                "Artifact {} ({}) at {}",
                clean(&state.masker, name),
                clean(&state.masker, container),
                shown
            ),
        };
        write_line(&mut state, &line);
    }

    /// Reports the task's result (`task.complete`). The process should still exit 0 afterwards.
    pub fn complete(&self, result: TaskResult, message: &str) {
        let mut state = self.state();
        if let Some(bar) = state.bar.take() {
            bar.finish_and_clear();
        }
        let message = clean(&state.masker, message);
        match self.inner.mode {
            OutputMode::Pipeline => {
                let line = command(
                    "task.complete",
                    &[("result", result.as_str().to_owned())],
                    &message,
                );
                write_line(&mut state, &line);
            }
            mode => {
                let colour = match (mode, result) {
                    (OutputMode::Terminal { color: true }, TaskResult::Succeeded) => {
                        Some("\x1b[32m")
                    }
                    (OutputMode::Terminal { color: true }, TaskResult::SucceededWithIssues) => {
                        Some("\x1b[33m")
                    }
                    (OutputMode::Terminal { color: true }, TaskResult::Failed) => Some("\x1b[31m"),
                    _ => None,
                };
                let head = format!("{}: ", result.as_str());
                write_lines(&mut state, &head, &message, colour);
            }
        }
    }

    /// Plain text, masked and neutralised, one output line per line of text.
    fn text(&self, style: Style, prefix: &str, msg: &str) {
        let mut state = self.state();
        let masked = clean(&state.masker, msg);
        let prefix = clean(&state.masker, prefix);
        let colour = match (self.inner.mode, style) {
            (OutputMode::Terminal { color: true }, Style::Dim) => Some("\x1b[2m"),
            _ => None,
        };
        write_lines(&mut state, &prefix, &masked, colour);
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves nothing half-written that matters for a logger,
        // so a poisoned lock is used as is.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[derive(Clone, Copy)]
enum Style {
    Plain,
    Dim,
}

fn issue_head(issue: &Issue, masker: &Masker) -> String {
    let kind = match issue.kind {
        IssueKind::Error => "error",
        IssueKind::Warning => "warning",
    };
    let code = issue
        .code
        .as_deref()
        .map(|c| format!("[{}]", masker.mask(c)))
        .unwrap_or_default();
    let place = match (&issue.source_path, issue.line, issue.column) {
        (Some(path), Some(line), Some(column)) => format!(
            " {}:{line}:{column}",
            masker.mask(&path.display().to_string())
        ),
        (Some(path), Some(line), None) => {
            format!(" {}:{line}", masker.mask(&path.display().to_string()))
        }
        (Some(path), None, _) => format!(" {}", masker.mask(&path.display().to_string())),
        _ => String::new(),
    };
    clean(masker, &format!("{kind}{code}{place}: "))
}

/// Builds `##vso[area.event k=v;…]data` with the agent's escaping.
fn command(name: &str, props: &[(&str, String)], data: &str) -> String {
    let mut out = format!("##vso[{name}");
    for (i, (key, value)) in props.iter().enumerate() {
        out.push(if i == 0 { ' ' } else { ';' });
        out.push_str(key);
        out.push('=');
        out.push_str(&escape_property(value));
    }
    if !props.is_empty() {
        // task-lib ends the property list with `;`; the agent drops the empty entry.
        out.push(';');
    }
    out.push(']');
    out.push_str(&escape_data(data));
    out
}

/// Untrusted-safe text: masked, neutralised, then masked again.
///
/// Masking comes first because neutralising changes a secret that contains `##vso[` or `##[` (it
/// inserts a space), after which the secret would no longer match its mask and be printed in clear.
/// The `***` inserted by masking holds no `#` or `[`, so it can never complete a command. The second
/// pass masks a secret that neutralising itself produced (a secret containing `## vso[`).
fn clean(masker: &Masker, text: &str) -> String {
    if masker.is_empty() {
        return neutralise(text);
    }
    masker.mask(&neutralise(&masker.mask(text)))
}

fn one_line(text: &str) -> String {
    text.replace(['\r', '\n'], " ")
}

fn validate_variable_name(name: &str) -> Result<(), Error> {
    let reason = if name.trim().is_empty() {
        Some("it is empty")
    } else if name.contains(['\r', '\n', ';', ']', '=']) {
        Some("it contains a line break, `;`, `]` or `=`")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidVariableName {
            name: name.to_owned(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Writes each line of `body` with `prefix`, splitting on every line break the agent splits on, so no
/// line of ours can continue into the next one.
fn write_lines(state: &mut State, prefix: &str, body: &str, colour: Option<&str>) {
    let body = body.replace("\r\n", "\n");
    for line in body.split(['\n', '\r']) {
        let line = match colour {
            Some(colour) => format!("{colour}{prefix}{line}\x1b[0m"),
            None => format!("{prefix}{line}"),
        };
        write_line(state, &line);
    }
}

fn write_line(state: &mut State, line: &str) {
    let bar = state.bar.clone();
    let sink = &mut state.sink;
    let mut emit = || {
        // A logger has nowhere to report its own write failures (a closed pipe, a full disk):
        // dropping the line is the only sensible outcome.
        let _ = writeln!(sink, "{line}");
        let _ = sink.flush();
    };
    match bar {
        Some(bar) => bar.suspend(emit),
        None => emit(),
    }
}

/// The lines a [`Log::held`] logger wrote, waiting to be released.
#[derive(Debug)]
pub struct Held {
    buffer: HeldBuffer,
    log: Log,
}

impl Held {
    /// Writes the held lines to `into`'s sink and counts their warnings there (a fan-out whose targets
    /// warned succeeds with issues).
    pub fn release(self, into: &Log) {
        let bytes = std::mem::take(&mut *self.buffer.0.lock().unwrap_or_else(|e| e.into_inner()));
        let text = String::from_utf8_lossy(&bytes);
        let mut state = into.state();
        for line in text.lines() {
            write_line(&mut state, line);
        }
        drop(state);
        into.inner
            .warnings
            .fetch_add(self.log.warning_count(), Ordering::Relaxed);
    }
}

#[derive(Debug, Clone, Default)]
struct HeldBuffer(Arc<Mutex<Vec<u8>>>);

impl Write for HeldBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
