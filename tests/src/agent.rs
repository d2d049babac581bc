//! A stand-in for the Azure Pipelines agent: it starts `node index.js` with the environment the agent
//! sets, reads stdout and stderr by the agent's rules, applies its exit-code rule and cancels the way it
//! does (SIGINT, then SIGTERM after 7.5 s, then a kill after 2.5 s more).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slot_release_pipelines::agent::{AgentCommand, agent_lines, parse_command};

/// The agent's default wait after SIGINT before SIGTERM (`PROCESS_SIGINT_TIMEOUT`).
pub const SIGINT_TIMEOUT: Duration = Duration::from_millis(7500);
/// The agent's default wait after SIGTERM before the kill (`PROCESS_SIGTERM_TIMEOUT`).
pub const SIGTERM_TIMEOUT: Duration = Duration::from_millis(2500);

/// The step result the agent would record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AgentResult {
    Succeeded,
    SucceededWithIssues,
    Failed,
    Canceled,
}

impl AgentResult {
    fn parse(value: &str) -> Option<AgentResult> {
        // The agent parses the enum case-insensitively.
        match value.to_ascii_lowercase().as_str() {
            "succeeded" => Some(AgentResult::Succeeded),
            "succeededwithissues" => Some(AgentResult::SucceededWithIssues),
            "failed" => Some(AgentResult::Failed),
            "canceled" | "cancelled" => Some(AgentResult::Canceled),
            _ => None,
        }
    }
}

/// A pipeline variable set by the task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetVariable {
    pub value: String,
    pub secret: bool,
    pub output: bool,
}

/// How a step run is configured: the task folder, inputs and the rest of the agent's environment.
#[derive(Debug, Clone)]
pub struct AgentRun {
    entry_point: PathBuf,
    cwd: PathBuf,
    env: BTreeMap<String, String>,
    secrets: Vec<String>,
    node_args: Vec<String>,
}

impl AgentRun {
    /// A run of `entry_point` (an `index.js`) in `work_dir`, with the variables every agent sets:
    /// `TF_BUILD`, `AGENT_TEMPDIRECTORY` (a `_temp` folder inside `work_dir`),
    /// `SYSTEM_DEFAULTWORKINGDIRECTORY` and `BUILD_SOURCESDIRECTORY` (`work_dir`).
    pub fn new(entry_point: impl Into<PathBuf>, work_dir: &Path) -> AgentRun {
        let temp = work_dir.join("_temp");
        let _ = std::fs::create_dir_all(&temp);
        let mut env = BTreeMap::new();
        // Only what a real agent would pass through from the machine, plus what it sets itself.
        for key in [
            "PATH",
            "HOME",
            "USERPROFILE",
            "SystemRoot",
            "TEMP",
            "TMP",
            "LANG",
            "CARGO_TARGET_DIR",
        ] {
            if let Ok(value) = std::env::var(key) {
                env.insert(key.to_owned(), value);
            }
        }
        let work = work_dir.display().to_string();
        env.insert("TF_BUILD".into(), "True".into());
        env.insert("AGENT_TEMPDIRECTORY".into(), temp.display().to_string());
        env.insert("SYSTEM_DEFAULTWORKINGDIRECTORY".into(), work.clone());
        env.insert("BUILD_SOURCESDIRECTORY".into(), work);
        env.insert("BUILD_REASON".into(), "Manual".into());
        env.insert("SYSTEM_HOSTTYPE".into(), "build".into());
        env.insert(
            "VSTS_PROCESS_LOOKUP_ID".into(),
            "vsts_slot_release_harness".into(),
        );
        AgentRun {
            entry_point: entry_point.into(),
            cwd: work_dir.to_path_buf(),
            env,
            secrets: Vec::new(),
            node_args: Vec::new(),
        }
    }

    /// A task input, exported the agent's way (`INPUT_<NAME>`, dots and spaces to `_`, upper case).
    pub fn input(mut self, name: &str, value: &str) -> AgentRun {
        let key = format!("INPUT_{}", name.replace(['.', ' '], "_").to_uppercase());
        // The agent trims input values unless DISABLE_INPUT_TRIMMING is set.
        self.env.insert(key, value.trim().to_owned());
        self
    }

    /// Any environment variable (pipeline variables, `BUILD_REASON`, `SLOT_RELEASE_BINARY`, …).
    pub fn env(mut self, key: &str, value: &str) -> AgentRun {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Several environment variables at once (for example an emulator's service connection).
    pub fn envs<K: AsRef<str>, V: AsRef<str>>(
        mut self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> AgentRun {
        for (key, value) in pairs {
            self.env
                .insert(key.as_ref().to_owned(), value.as_ref().to_owned());
        }
        self
    }

    /// A value the leak detector must never find (an endpoint key, the access token, a vault value).
    pub fn secret(mut self, value: &str) -> AgentRun {
        self.secrets.push(value.to_owned());
        self
    }

    /// A secret variable the way the agent exports it (`SECRET_<NAME>`), also known to the leak detector.
    pub fn secret_variable(self, name: &str, value: &str) -> AgentRun {
        let key = format!("SECRET_{}", name.replace(['.', ' '], "_").to_uppercase());
        self.env(&key, value).secret(value)
    }

    /// The job's access token, as `SYSTEM_ACCESSTOKEN` and on the built-in `SYSTEMVSSCONNECTION`.
    pub fn access_token(self, token: &str) -> AgentRun {
        self.env("SYSTEM_ACCESSTOKEN", token)
            .env(
                "ENDPOINT_AUTH_PARAMETER_SYSTEMVSSCONNECTION_ACCESSTOKEN",
                token,
            )
            .env("ENDPOINT_AUTH_SCHEME_SYSTEMVSSCONNECTION", "OAuth")
            .secret(token)
    }

    /// Extra arguments for node itself, before the script (for example `--require` of a preload).
    pub fn node_arg(mut self, arg: &str) -> AgentRun {
        self.node_args.push(arg.to_owned());
        self
    }

    /// The secrets declared so far.
    pub fn secrets(&self) -> &[String] {
        &self.secrets
    }

    /// The agent's temp directory for this run.
    pub fn temp_dir(&self) -> PathBuf {
        self.env
            .get("AGENT_TEMPDIRECTORY")
            .map(PathBuf::from)
            .unwrap_or_default()
    }

    /// Starts `node <entry point>` like the agent: no arguments, the environment built here and nothing
    /// else, stdout and stderr read line by line.
    pub fn spawn(&self) -> std::io::Result<RunningTask> {
        let mut child = Command::new(crate::paths::node())
            .args(&self.node_args)
            .arg(&self.entry_point)
            .current_dir(&self.cwd)
            .env_clear()
            .envs(&self.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            child
                .stdout
                .take()
                .map(|out| reader(out, Arc::clone(&stdout))),
            child
                .stderr
                .take()
                .map(|err| reader(err, Arc::clone(&stderr))),
        ]
        .into_iter()
        .flatten()
        .collect();
        Ok(RunningTask {
            child,
            stdout,
            stderr,
            readers,
            started: Instant::now(),
            canceled: false,
            secrets: self.secrets.clone(),
        })
    }

    /// Runs to completion, killing the process (and failing the step) after `timeout`.
    pub fn run(&self, timeout: Duration) -> std::io::Result<AgentOutcome> {
        self.spawn()?.wait(timeout)
    }
}

fn reader(stream: impl Read + Send + 'static, into: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        // Raw bytes, kept whole: line splitting happens later by the agent's rules.
        while let Ok(n) = reader.read_until(b'\n', &mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut text) = into.lock() {
                text.push_str(&String::from_utf8_lossy(&buf));
            }
            buf.clear();
        }
    })
}

/// A task that is running.
#[derive(Debug)]
pub struct RunningTask {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    started: Instant,
    canceled: bool,
    secrets: Vec<String>,
}

impl RunningTask {
    /// The node process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything written to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until stdout contains `needle`, or `timeout` passes. Returns whether it appeared.
    pub fn wait_for_output(&mut self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if self.stdout_so_far().contains(needle) {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return self.stdout_so_far().contains(needle);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Cancels the step the agent's way: SIGINT to the node process only, SIGTERM after 7.5 s, a kill
    /// after 2.5 s more. Returns the outcome, whose result is `Canceled` (unless it had already ended).
    #[cfg(unix)]
    pub fn cancel(mut self) -> std::io::Result<AgentOutcome> {
        if let Some(status) = self.child.try_wait()? {
            // It ended before the cancellation: the agent records its own result.
            return Ok(self.finish(Some(status), false));
        }
        self.canceled = true;
        signal(self.pid(), "INT")?;
        if let Some(status) = wait_until(&mut self.child, SIGINT_TIMEOUT)? {
            return Ok(self.finish(Some(status), false));
        }
        signal(self.pid(), "TERM")?;
        if let Some(status) = wait_until(&mut self.child, SIGTERM_TIMEOUT)? {
            return Ok(self.finish(Some(status), false));
        }
        self.child.kill()?;
        let status = self.child.wait()?;
        Ok(self.finish(Some(status), true))
    }

    /// Waits for the end, killing the process after `timeout` (a step timeout: the result is Failed).
    pub fn wait(mut self, timeout: Duration) -> std::io::Result<AgentOutcome> {
        match wait_until(&mut self.child, timeout)? {
            Some(status) => Ok(self.finish(Some(status), false)),
            None => {
                self.child.kill()?;
                let status = self.child.wait()?;
                Ok(self.finish(Some(status), true))
            }
        }
    }

    fn finish(mut self, status: Option<ExitStatus>, killed: bool) -> AgentOutcome {
        for handle in self.readers.drain(..) {
            let _ = handle.join();
        }
        let stdout = self.stdout.lock().map(|s| s.clone()).unwrap_or_default();
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        AgentOutcome::from_output(
            stdout,
            stderr,
            status,
            killed,
            self.canceled,
            self.started.elapsed(),
            self.secrets,
        )
    }
}

#[cfg(unix)]
fn signal(pid: u32, name: &str) -> std::io::Result<()> {
    // `kill(1)` rather than libc: the workspace forbids unsafe code.
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()?;
    if status.success() {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("kill -{name} {pid} failed")))
    }
}

fn wait_until(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the agent would make of a finished step.
#[derive(Debug, Clone)]
pub struct AgentOutcome {
    pub stdout: String,
    pub stderr: String,
    /// The exit code; `None` when the process died of a signal.
    pub exit_code: Option<i32>,
    /// The process had to be killed (after a timeout or an ignored cancellation).
    pub killed: bool,
    pub elapsed: Duration,
    /// Every logging command, from stdout and stderr, in the order of each stream.
    pub commands: Vec<AgentCommand>,
    /// The step result after the agent's rules.
    pub result: AgentResult,
    /// What the task itself reported with `task.complete` (the worst of them), before the agent's rules.
    pub reported: Option<AgentResult>,
    /// The message of the last `task.complete`.
    pub complete_message: Option<String>,
    /// Variables set with `task.setvariable`, by name.
    pub variables: BTreeMap<String, SetVariable>,
    /// Values registered with `task.setsecret`.
    pub registered_secrets: Vec<String>,
    /// Files attached with `task.uploadsummary`.
    pub summaries: Vec<PathBuf>,
    /// Secrets declared for the run (for the leak detector).
    pub secrets: Vec<String>,
}

impl AgentOutcome {
    fn from_output(
        stdout: String,
        stderr: String,
        status: Option<ExitStatus>,
        killed: bool,
        canceled: bool,
        elapsed: Duration,
        secrets: Vec<String>,
    ) -> AgentOutcome {
        let commands: Vec<AgentCommand> = agent_lines(&stdout)
            .into_iter()
            .chain(agent_lines(&stderr))
            .filter_map(parse_command)
            .collect();
        let mut complete: Option<AgentResult> = None;
        let mut complete_message = None;
        let mut command_failed = false;
        let mut variables = BTreeMap::new();
        let mut registered_secrets = Vec::new();
        let mut summaries = Vec::new();
        for cmd in &commands {
            match cmd.name.as_str() {
                "task.complete" => match cmd.property("result").and_then(AgentResult::parse) {
                    // Results merge: the worse one wins.
                    Some(result) => {
                        complete = Some(complete.map_or(result, |r| r.max(result)));
                        complete_message = Some(cmd.data.clone());
                    }
                    None => command_failed = true,
                },
                "task.setvariable" => match cmd.property("variable") {
                    Some(name) => {
                        let flag = |key: &str| {
                            cmd.property(key)
                                .is_some_and(|v| v.eq_ignore_ascii_case("true"))
                        };
                        let secret = flag("issecret");
                        if secret && cmd.data.contains(['\n', '\r']) {
                            command_failed = true;
                        }
                        variables.insert(
                            name.to_owned(),
                            SetVariable {
                                value: cmd.data.clone(),
                                secret,
                                output: flag("isoutput"),
                            },
                        );
                    }
                    None => command_failed = true,
                },
                "task.setsecret" => registered_secrets.push(cmd.data.clone()),
                "task.uploadsummary" => summaries.push(PathBuf::from(&cmd.data)),
                "task.logissue" | "task.issue" => {
                    // The agent throws on a type other than error or warning, which fails the step.
                    if let Some(kind) = cmd.property("type")
                        && !matches!(kind.to_ascii_lowercase().as_str(), "error" | "warning")
                    {
                        command_failed = true;
                    }
                }
                _ => {}
            }
        }
        let exit_code = status.and_then(|s| s.code());
        // The agent requires exit code 0; anything else is a failure that overrides task.complete.
        let result = if canceled {
            AgentResult::Canceled
        } else if killed || exit_code != Some(0) || command_failed {
            AgentResult::Failed
        } else {
            complete.unwrap_or(AgentResult::Succeeded)
        };
        AgentOutcome {
            stdout,
            stderr,
            exit_code,
            killed,
            elapsed,
            commands,
            result,
            reported: complete,
            complete_message,
            variables,
            registered_secrets,
            summaries,
            secrets,
        }
    }

    /// The commands with a given name.
    pub fn commands_named<'a>(
        &'a self,
        name: &'a str,
    ) -> impl Iterator<Item = &'a AgentCommand> + 'a {
        self.commands.iter().filter(move |c| c.name == name)
    }

    /// stdout and stderr for a failure message.
    pub fn transcript(&self) -> String {
        format!(
            "exit code {:?}, result {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.exit_code, self.result, self.stdout, self.stderr
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The binary budgets its stop by its own copy of the agent's timing; this stand-in's numbers come
    /// from the agent's source, so the two must agree.
    #[test]
    fn the_binary_knows_the_agents_cancel_timing() {
        let timing = slot_release_pipelines::agent::CancelTiming::AGENT;
        assert_eq!(timing.sigint_timeout, SIGINT_TIMEOUT);
        assert_eq!(timing.sigterm_timeout, SIGTERM_TIMEOUT);
    }

    fn outcome(stdout: &str, stderr: &str, exit_code: i32) -> AgentOutcome {
        // An ExitStatus with a chosen code is only constructible from a real process.
        let status = Command::new("sh")
            .args(["-c", &format!("exit {exit_code}")])
            .status()
            .ok();
        AgentOutcome::from_output(
            stdout.into(),
            stderr.into(),
            status,
            false,
            false,
            Duration::ZERO,
            Vec::new(),
        )
    }

    #[test]
    #[cfg(unix)]
    fn results_follow_the_agents_rules() {
        assert_eq!(
            outcome("hello\n", "", 0).result,
            AgentResult::Succeeded,
            "no task.complete means success"
        );
        let merged = outcome(
            "##vso[task.complete result=Failed;]a\n",
            "##vso[task.complete result=Succeeded;]b\n",
            0,
        );
        assert_eq!(merged.result, AgentResult::Failed, "the worse result wins");
        let crashed = outcome("##vso[task.complete result=Succeeded;]\n", "", 1);
        assert_eq!(
            crashed.result,
            AgentResult::Failed,
            "a non-zero exit overrides task.complete"
        );
        let bad_issue = outcome("##vso[task.logissue type=info]x\n", "", 0);
        assert_eq!(
            bad_issue.result,
            AgentResult::Failed,
            "a malformed command fails the step"
        );
        let issue_only = outcome("##vso[task.logissue type=error]x\n", "", 0);
        assert_eq!(
            issue_only.result,
            AgentResult::Succeeded,
            "an error issue alone does not fail the step"
        );
        let multiline_secret = outcome(
            "##vso[task.setvariable variable=A;issecret=true]x%0Ay\n",
            "",
            0,
        );
        assert_eq!(
            multiline_secret.result,
            AgentResult::Failed,
            "the agent rejects multi-line secrets"
        );
        let vars = outcome(
            "x\r##vso[task.setvariable variable=Out;isOutput=true]v\r\n",
            "",
            0,
        );
        assert_eq!(
            vars.variables.get("Out"),
            Some(&SetVariable {
                value: "v".into(),
                secret: false,
                output: true
            })
        );
    }
}
