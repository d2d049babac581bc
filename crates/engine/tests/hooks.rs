//! Hook runner tests with real processes: success, failure with undo in reverse, points of no return,
//! timeouts that kill the whole process group, cancellation, output neutralising and secret masking, and
//! slot hooks through a [`RemoteCommand`].

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use slot_release_engine::Error;
use slot_release_engine::hooks::{
    CommandKind, HookEnvironment, HookOutcome, HookRunner, HookRunnerConfig, HookSpec, HookWhere,
    HooksStatus, RemoteCommand, RemoteOutput,
};
use slot_release_pipelines::{Log, OutputMode, Secret};
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Sink {
    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

fn hook(name: &str, run: &str, undo: Option<&str>) -> HookSpec {
    HookSpec {
        name: name.to_owned(),
        command: run.to_owned(),
        undo: undo.map(str::to_owned),
        run_where: HookWhere::Agent,
        timeout: Duration::from_secs(20),
        env: BTreeMap::new(),
    }
}

fn runner_with(dir: &Path, mode: OutputMode, env: HookEnvironment) -> (HookRunner, Sink) {
    let sink = Sink::default();
    let log = Log::new(mode, Box::new(sink.clone()));
    let config = HookRunnerConfig {
        kill_grace: Duration::from_millis(300),
        drain_grace: Duration::from_millis(300),
        ..HookRunnerConfig::new(dir)
    };
    (HookRunner::new(log, config, env), sink)
}

fn runner(dir: &Path) -> (HookRunner, Sink) {
    runner_with(dir, OutputMode::Plain, HookEnvironment::default())
}

/// The lines of `journal.txt`, where the test hooks record what they did.
fn journal(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("journal.txt"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn hooks_run_in_order_in_the_working_dir_with_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let env = HookEnvironment {
        vars: BTreeMap::from([("APP_MODE".to_owned(), "staging".to_owned())]),
        ..HookEnvironment::default()
    };
    let (runner, sink) = runner_with(dir.path(), OutputMode::Plain, env);
    let mut second = hook(
        "second",
        "echo \"second $APP_MODE $EXTRA\" >> journal.txt; echo done",
        None,
    );
    second.env.insert("EXTRA".to_owned(), "x".to_owned());
    let hooks = [
        hook(
            "first",
            "echo first >> journal.txt && pwd",
            Some("echo undo-first >> journal.txt"),
        ),
        second,
    ];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;

    assert_eq!(report.status, HooksStatus::Succeeded);
    assert_eq!(journal(dir.path()), ["first", "second staging x"]);
    assert_eq!(report.completed(), ["first", "second"]);
    assert_eq!(report.no_undo, ["second"]);
    assert!(report.undone.is_empty());
    let canonical = std::fs::canonicalize(dir.path()).unwrap();
    assert_eq!(report.ran[0].output.trim(), canonical.to_str().unwrap());
    assert!(sink.text().contains("[second] done"), "{}", sink.text());
}

#[tokio::test]
async fn a_failing_hook_undoes_the_completed_ones_in_reverse() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, sink) = runner(dir.path());
    let hooks = [
        hook(
            "a",
            "echo a >> journal.txt",
            Some("echo undo-a >> journal.txt"),
        ),
        hook(
            "b",
            "echo b >> journal.txt",
            Some("echo undo-b >> journal.txt"),
        ),
        hook(
            "c",
            "echo c >> journal.txt; echo 'migration 3 failed' >&2; exit 3",
            Some("echo undo-c >> journal.txt"),
        ),
        hook(
            "d",
            "echo d >> journal.txt",
            Some("echo undo-d >> journal.txt"),
        ),
    ];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;

    assert_eq!(report.status, HooksStatus::FailedUndone);
    assert_eq!(journal(dir.path()), ["a", "b", "c", "undo-b", "undo-a"]);
    assert_eq!(report.failed.as_deref(), Some("c"));
    assert_eq!(report.ran.len(), 3);
    assert_eq!(
        report.ran[2].outcome,
        HookOutcome::Failed { exit_code: Some(3) }
    );
    assert!(report.ran[2].output.contains("migration 3 failed"));
    let undone: Vec<_> = report
        .undone
        .iter()
        .map(|r| (r.hook.as_str(), r.kind))
        .collect();
    assert_eq!(undone, [("b", CommandKind::Undo), ("a", CommandKind::Undo)]);
    assert!(report.not_undone.is_empty());
    assert!(
        sink.text().contains("[c] migration 3 failed"),
        "{}",
        sink.text()
    );
}

#[tokio::test]
async fn undo_stops_at_a_point_of_no_return() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _) = runner(dir.path());
    let hooks = [
        hook(
            "a",
            "echo a >> journal.txt",
            Some("echo undo-a >> journal.txt"),
        ),
        hook("irreversible", "echo irreversible >> journal.txt", None),
        hook(
            "c",
            "echo c >> journal.txt",
            Some("echo undo-c >> journal.txt"),
        ),
        hook("d", "exit 1", Some("echo undo-d >> journal.txt")),
    ];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    assert_eq!(report.status, HooksStatus::FailedNotFullyUndone);
    assert_eq!(journal(dir.path()), ["a", "irreversible", "c", "undo-c"]);
    assert_eq!(report.no_undo, ["irreversible"]);
    assert_eq!(report.not_undone, ["irreversible", "a"]);
}

#[tokio::test]
async fn a_failing_undo_stops_the_undo() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _) = runner(dir.path());
    let hooks = [
        hook(
            "a",
            "echo a >> journal.txt",
            Some("echo undo-a >> journal.txt"),
        ),
        hook(
            "b",
            "echo b >> journal.txt",
            Some("echo undo-b-fails >> journal.txt; exit 9"),
        ),
        hook("c", "exit 1", None),
    ];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    assert_eq!(report.status, HooksStatus::FailedNotFullyUndone);
    assert_eq!(journal(dir.path()), ["a", "b", "undo-b-fails"]);
    assert_eq!(
        report.undone[0].outcome,
        HookOutcome::Failed { exit_code: Some(9) }
    );
    assert_eq!(report.not_undone, ["b", "a"]);
}

#[cfg(target_os = "linux")]
fn process_alive(pid: i32) -> bool {
    // A zombie has been killed; only a running or sleeping process counts.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_timeout_kills_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _) = runner(dir.path());
    // A background grandchild that ignores SIGTERM must be killed too.
    let mut slow = hook(
        "slow",
        "sh -c 'trap \"\" TERM; echo $$ > grandchild.pid; exec sleep 30' & echo started; sleep 30",
        Some("echo undo-slow >> journal.txt"),
    );
    slow.timeout = Duration::from_millis(500);
    let started = Instant::now();
    let report = runner.run_all(&[slow], &CancellationToken::new()).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        report.ran[0].outcome,
        HookOutcome::TimedOut { after_ms: 500 }
    );
    assert_eq!(report.status, HooksStatus::FailedUndone);
    assert!(
        journal(dir.path()).is_empty(),
        "the timed-out hook itself is not undone"
    );
    assert!(report.ran[0].output.contains("started"));
    let pid: i32 = std::fs::read_to_string(dir.path().join("grandchild.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(2);
    while process_alive(pid) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!process_alive(pid), "grandchild {pid} survived");
}

#[tokio::test]
async fn cancellation_stops_the_running_hook_and_starts_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _) = runner(dir.path());
    let hooks = [
        hook(
            "a",
            "echo a >> journal.txt",
            Some("echo undo-a >> journal.txt"),
        ),
        hook(
            "long",
            "echo long >> journal.txt; sleep 30",
            Some("echo undo-long >> journal.txt"),
        ),
        hook("never", "echo never >> journal.txt", None),
    ];
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    let dir_path = dir.path().to_owned();
    tokio::spawn(async move {
        // Cancel once the long hook has started.
        while !journal(&dir_path).contains(&"long".to_owned()) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        trigger.cancel();
    });
    let started = Instant::now();
    let report = runner.run_all(&hooks, &cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.status, HooksStatus::Cancelled);
    assert_eq!(report.ran[1].outcome, HookOutcome::Cancelled);
    assert_eq!(
        journal(dir.path()),
        ["a", "long"],
        "no undo and no new hook after cancellation"
    );
    assert_eq!(report.not_undone, ["a"]);
}

#[tokio::test]
async fn logging_commands_in_hook_output_are_neutralised() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, sink) = runner_with(dir.path(), OutputMode::Pipeline, HookEnvironment::default());
    let hooks = [hook(
        "sneaky",
        "echo '##vso[task.setvariable variable=DEPLOY_TARGET]prod'; echo '##[error]fake'; echo '  ##vso[task.complete result=Succeeded]'",
        None,
    )];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    assert_eq!(report.status, HooksStatus::Succeeded);
    let text = sink.text();
    for line in text.lines() {
        let trimmed = line.trim_start();
        let allowed = ["##[group]", "##[endgroup]"];
        assert!(
            !(trimmed.contains("##vso[task.setvariable")
                || trimmed.contains("##vso[task.complete")
                || trimmed.starts_with("##[error]fake")),
            "an injected command reached the agent: {line:?}\n{text}"
        );
        if trimmed.starts_with("##") {
            assert!(
                allowed.iter().any(|a| trimmed.starts_with(a))
                    || trimmed.starts_with("##vso[task.logissue"),
                "{line:?}"
            );
        }
    }
    assert!(
        text.contains("task.setvariable variable=DEPLOY_TARGET"),
        "the text itself stays readable:\n{text}"
    );
}

#[tokio::test]
async fn secrets_are_masked_in_the_log_and_the_captured_output() {
    let dir = tempfile::tempdir().unwrap();
    let env = HookEnvironment {
        secrets: BTreeMap::from([("DB_PASSWORD".to_owned(), Secret::new("hunter2-Very-Secret"))]),
        ..HookEnvironment::default()
    };
    let (runner, sink) = runner_with(dir.path(), OutputMode::Plain, env);
    let hooks = [hook(
        "leaky",
        "echo \"connecting with $DB_PASSWORD\"; echo \"$DB_PASSWORD\" >> journal.txt",
        None,
    )];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    assert_eq!(report.status, HooksStatus::Succeeded);
    assert_eq!(
        journal(dir.path()),
        ["hunter2-Very-Secret"],
        "the hook received the secret"
    );
    assert!(!sink.text().contains("hunter2"), "{}", sink.text());
    assert!(
        sink.text().contains("connecting with ***"),
        "{}",
        sink.text()
    );
    assert!(!report.ran[0].output.contains("hunter2"));
    assert!(report.ran[0].output.contains("connecting with ***"));
}

/// The agent hands this task its credentials in the environment; the test runs itself again with such
/// variables set (the test process's own environment cannot be changed safely).
#[tokio::test]
async fn agent_credentials_are_not_passed_to_hooks() {
    if std::env::var_os("SLOT_RELEASE_TEST_CREDENTIALS_CHILD").is_none() {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "agent_credentials_are_not_passed_to_hooks",
                "--test-threads=1",
            ])
            .env("SLOT_RELEASE_TEST_CREDENTIALS_CHILD", "1")
            .env("ENDPOINT_AUTH_0123", "{\"serviceprincipalkey\":\"k\"}")
            .env("SYSTEM_ACCESSTOKEN", "token")
            .env("INPUT_CONFIGFILE", "release.yml")
            .env("KEEP_ME", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && stdout.contains("1 passed"),
            "{stdout}"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let env = HookEnvironment {
        remove: vec!["HOME".to_owned()],
        ..HookEnvironment::default()
    };
    let (runner, _) = runner_with(dir.path(), OutputMode::Plain, env);
    let hooks = [hook("env", "env | cut -d= -f1 | sort", None)];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    let names: Vec<&str> = report.ran[0].output.lines().collect();
    assert!(
        names.contains(&"PATH") && names.contains(&"KEEP_ME"),
        "{names:?}"
    );
    assert!(!names.contains(&"HOME"), "{names:?}");
    for gone in [
        "ENDPOINT_AUTH_0123",
        "SYSTEM_ACCESSTOKEN",
        "INPUT_CONFIGFILE",
    ] {
        assert!(!names.contains(&gone), "{gone} reached the hook");
    }
}

#[tokio::test]
async fn output_capture_is_bounded_to_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let sink = Sink::default();
    let config = HookRunnerConfig {
        capture_limit: 1000,
        ..HookRunnerConfig::new(dir.path())
    };
    let runner = HookRunner::new(
        Log::new(OutputMode::Plain, Box::new(sink)),
        config,
        HookEnvironment::default(),
    );
    let hooks = [hook(
        "chatty",
        "i=0; while [ $i -lt 2000 ]; do echo line-$i; i=$((i+1)); done",
        None,
    )];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    let out = &report.ran[0];
    assert!(out.output_truncated);
    assert!(out.output.len() <= 1000);
    assert!(out.output.ends_with("line-1999\n"), "{}", out.output);
    assert!(!out.output.contains("line-0\n"));
}

struct FakeKudu {
    calls: Mutex<Vec<(String, String)>>,
}

#[async_trait::async_trait]
impl RemoteCommand for FakeKudu {
    async fn run(
        &self,
        command: &str,
        dir: &str,
        timeout: Duration,
        _cancel: &CancellationToken,
    ) -> Result<RemoteOutput, Error> {
        self.calls
            .lock()
            .unwrap()
            .push((command.to_owned(), dir.to_owned()));
        match command {
            "python manage.py migrate" => Ok(RemoteOutput {
                exit_code: 0,
                stdout: "Applying 0001... OK\n##vso[task.setvariable variable=x]y\n".to_owned(),
                stderr: String::new(),
            }),
            "python manage.py check" => Ok(RemoteOutput {
                exit_code: 2,
                stdout: String::new(),
                stderr: "SystemCheckError\n".to_owned(),
            }),
            "sleep" => Err(Error::RemoteCommandTimedOut { after: timeout }),
            _ => Ok(RemoteOutput::default()),
        }
    }
}

#[tokio::test]
async fn slot_hooks_run_through_the_remote_command() {
    let dir = tempfile::tempdir().unwrap();
    let kudu = Arc::new(FakeKudu {
        calls: Mutex::new(Vec::new()),
    });
    let (runner, sink) = runner(dir.path());
    let runner = runner.with_remote(kudu.clone());
    let slot = |name: &str, run: &str, undo: Option<&str>| HookSpec {
        run_where: HookWhere::Slot,
        ..hook(name, run, undo)
    };
    let hooks = [
        slot(
            "migrate",
            "python manage.py migrate",
            Some("python manage.py migrate app 0000"),
        ),
        slot("check", "python manage.py check", None),
    ];
    let report = runner.run_all(&hooks, &CancellationToken::new()).await;
    assert_eq!(report.status, HooksStatus::FailedUndone);
    assert_eq!(
        report.ran[1].outcome,
        HookOutcome::Failed { exit_code: Some(2) }
    );
    assert!(report.ran[1].output.contains("SystemCheckError"));
    let calls = kudu.calls.lock().unwrap().clone();
    let commands: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(
        commands,
        [
            "python manage.py migrate",
            "python manage.py check",
            "python manage.py migrate app 0000"
        ]
    );
    assert!(calls.iter().all(|(_, d)| d == "/home/site/wwwroot"));
    assert!(sink.text().contains("[migrate] Applying 0001... OK"));

    let timeout = [slot("sleepy", "sleep", None)];
    let report = runner.run_all(&timeout, &CancellationToken::new()).await;
    assert!(matches!(
        report.ran[0].outcome,
        HookOutcome::TimedOut { .. }
    ));
}

#[tokio::test]
async fn slot_hook_without_a_remote_runner_is_an_error_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let (runner, _) = runner(dir.path());
    let spec = HookSpec {
        run_where: HookWhere::Slot,
        ..hook("m", "true", None)
    };
    let report = runner.run_all(&[spec], &CancellationToken::new()).await;
    assert!(
        matches!(report.ran[0].outcome, HookOutcome::Error { ref message } if message.contains("no remote"))
    );
}
