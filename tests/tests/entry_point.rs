//! The Node entry point (`task/index.js`) run for real by the agent harness: binary selection, the
//! execute bit, the environment and streams passed through, exit codes, signal forwarding, and the
//! failures it must report itself (unsupported platform, missing binary).
#![cfg(unix)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use slot_release_tests::{AgentResult, AgentRun, paths};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A task folder like the staged one: `index.js` and, optionally, a binary for this host.
fn task_folder(root: &Path, binary_script: Option<&str>) -> PathBuf {
    let task = root.join("task");
    std::fs::create_dir_all(&task).unwrap_or_else(|e| panic!("mkdir: {e}"));
    std::fs::copy(paths::entry_point(), task.join("index.js"))
        .unwrap_or_else(|e| panic!("copy index.js: {e}"));
    if let Some(script) = binary_script {
        let bin = task.join("bin").join(paths::host_platform());
        std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("mkdir: {e}"));
        let exe = bin.join("slot-release");
        std::fs::write(&exe, script).unwrap_or_else(|e| panic!("write: {e}"));
        // As tfx leaves it: no execute bit.
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o644))
            .unwrap_or_else(|e| panic!("chmod: {e}"));
    }
    task.join("index.js")
}

/// A stand-in binary written as a shell script, to drive the entry point through every exit path.
fn script(dir: &Path, body: &str) -> PathBuf {
    let path = dir.join("fake-slot-release");
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap_or_else(|e| panic!("write: {e}"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("chmod: {e}"));
    path
}

#[test]
fn missing_binary_fails_with_a_clear_message_and_exit_zero() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let entry = task_folder(dir.path(), None);
    let outcome = AgentRun::new(entry, dir.path())
        .input("command", "validate")
        .run(TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(outcome.result, AgentResult::Failed);
    let message = outcome.complete_message.clone().unwrap_or_default();
    assert!(message.contains("binary is missing"), "{message}");
    assert!(
        message.contains(&format!("bin/{}/slot-release", paths::host_platform())),
        "{message}"
    );
}

#[test]
fn unsupported_platform_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let entry = task_folder(dir.path(), Some("#!/bin/sh\nexit 0\n"));
    // The entry point reads process.platform; a preload makes node report a platform without a build.
    let preload = dir.path().join("aix.js");
    std::fs::write(
        &preload,
        "Object.defineProperty(process, 'platform', { value: 'aix' });\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let outcome = AgentRun::new(entry, dir.path())
        .node_arg("--require")
        .node_arg(&preload.display().to_string())
        .run(TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(outcome.result, AgentResult::Failed);
    let message = outcome.complete_message.clone().unwrap_or_default();
    assert!(
        message.contains("does not support this agent's platform (aix-"),
        "{message}"
    );
    assert!(
        message.contains("linux-x64, linux-arm64, win-x64, osx-x64, osx-arm64"),
        "{message}"
    );
}

#[test]
fn restores_the_execute_bit_and_passes_environment_and_streams() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let entry = task_folder(
        dir.path(),
        Some(concat!(
            "#!/bin/sh\n",
            "echo \"##vso[task.setvariable variable=Seen]$INPUT_COMMAND|$ENDPOINT_URL_abc|$#\"\n",
            "echo \"##vso[task.complete result=SucceededWithIssues;]from stderr\" >&2\n",
        )),
    );
    let outcome = AgentRun::new(&entry, dir.path())
        .input("command", "plan")
        .env("ENDPOINT_URL_abc", "https://management.emulator.test/")
        .run(TIMEOUT)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.variables.get("Seen").map(|v| v.value.as_str()),
        Some("plan|https://management.emulator.test/|0")
    );
    assert_eq!(outcome.result, AgentResult::SucceededWithIssues);
    let exe = entry
        .with_file_name("bin")
        .join(paths::host_platform())
        .join("slot-release");
    let mode = std::fs::metadata(&exe)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or_default();
    assert_eq!(mode, 0o755);
}

#[test]
fn exit_codes_follow_the_child() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let run = |body: &str| {
        let fake = script(dir.path(), body);
        AgentRun::new(paths::entry_point(), dir.path())
            .env("SLOT_RELEASE_BINARY", &fake.display().to_string())
            .run(TIMEOUT)
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let ok = run("echo done");
    assert_eq!(
        (ok.exit_code, ok.result),
        (Some(0), AgentResult::Succeeded),
        "{}",
        ok.transcript()
    );
    // A non-zero exit fails the step even after a successful task.complete.
    let crash = run("echo '##vso[task.complete result=Succeeded;]'; exit 3");
    assert_eq!(
        (crash.exit_code, crash.result),
        (Some(3), AgentResult::Failed),
        "{}",
        crash.transcript()
    );
    // Death by a signal becomes a non-zero exit of node.
    let killed = run("kill -KILL $$");
    assert_eq!(
        (killed.exit_code, killed.result),
        (Some(128 + 9), AgentResult::Failed),
        "{}",
        killed.transcript()
    );
    assert!(
        killed.stderr.contains("stopped by SIGKILL"),
        "{}",
        killed.transcript()
    );
}

#[test]
fn sigint_is_forwarded_to_the_binary() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fake = script(
        dir.path(),
        "trap 'echo \"##vso[task.complete result=Failed;]canceled by SIGINT\"; exit 0' INT\necho ready\nwhile :; do sleep 0.05; done",
    );
    let mut task = AgentRun::new(paths::entry_point(), dir.path())
        .env("SLOT_RELEASE_BINARY", &fake.display().to_string())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(task.wait_for_output("ready", TIMEOUT));
    let outcome = task.cancel().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.complete_message.as_deref(),
        Some("canceled by SIGINT")
    );
    assert_eq!(outcome.result, AgentResult::Canceled);
    assert!(
        outcome.elapsed < Duration::from_secs(7),
        "SIGINT alone should have stopped it"
    );
}

#[test]
fn sigterm_follows_after_the_agents_grace_period() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let fake = script(
        dir.path(),
        "trap '' INT\ntrap 'echo \"##vso[task.complete result=Failed;]terminated\"; exit 0' TERM\necho ready\nwhile :; do sleep 0.05; done",
    );
    let mut task = AgentRun::new(paths::entry_point(), dir.path())
        .env("SLOT_RELEASE_BINARY", &fake.display().to_string())
        .spawn()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(task.wait_for_output("ready", TIMEOUT));
    let outcome = task.cancel().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.complete_message.as_deref(),
        Some("terminated"),
        "{}",
        outcome.transcript()
    );
    assert!(!outcome.killed);
    assert!(outcome.elapsed >= slot_release_tests::agent::SIGINT_TIMEOUT);
}

#[test]
fn the_entry_points_own_unit_tests_pass() {
    // `task/index.test.js` tests the entry point's pure helpers (escaping, the binary's environment);
    // run here so CI runs them with everything else.
    let out = std::process::Command::new("node")
        .arg("--test")
        .arg(paths::entry_point().with_file_name("index.test.js"))
        .output()
        .unwrap_or_else(|e| panic!("node: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("# fail 0") && !text.contains("# pass 0"),
        "{text}"
    );
}
