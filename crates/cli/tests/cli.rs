//! The binary without Azure: `validate` on the examples, `plan` from a state file, schemas, error reports.

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The binary with a clean environment: nothing of an agent that may run these tests leaks in.
fn slot_release() -> Command {
    let mut cmd = Command::cargo_bin("slot-release").unwrap();
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .current_dir(root());
    cmd
}

#[test]
fn validate_accepts_every_example() {
    for example in ["python-webapp", "container-app"] {
        let config = format!("examples/{example}/release.yml");
        let out = slot_release()
            .args(["validate", "--config", &config])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("is valid"));
    }
}

#[test]
fn validate_reports_a_broken_config_with_its_location_and_fails() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("release.yml");
    let text = std::fs::read_to_string(root().join("examples/python-webapp/release.yml"))
        .unwrap()
        .replace("resourceGroup: contoso-rg", "resourceGroupp: contoso-rg");
    std::fs::write(&config, text).unwrap();
    let out = slot_release()
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("resourceGroupp"), "{stderr}");
    assert!(
        stderr.contains("release.yml:"),
        "the location is named: {stderr}"
    );
    // With --json, stdout carries the problems as a document, with their places.
    let out = slot_release()
        .args(["validate", "--json", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(doc["valid"], false);
    let first = &doc["diagnostics"][0];
    assert_eq!(first["severity"], "error");
    assert!(first["line"].as_u64().unwrap() > 0, "{doc}");
    assert!(doc.to_string().contains("resourceGroupp"), "{doc}");
}

#[test]
fn a_mistyped_stage_is_named_with_a_suggestion() {
    let out = slot_release()
        .args(["plan", "--stage", "prod", "--config"])
        .arg(root().join("examples/python-webapp/release.yml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("did you mean `production`?"), "{text}");
}

#[test]
fn a_missing_config_is_reported_with_the_whole_chain_and_exit_code_1() {
    let out = slot_release()
        .args([
            "plan",
            "--config",
            "no/such/release.yml",
            "--state",
            "x.json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cannot read the config file"), "{stderr}");
}

#[test]
fn in_a_pipeline_failure_exits_zero_and_completes_the_task_as_failed() {
    let out = slot_release()
        .env("TF_BUILD", "True")
        .args(["validate", "--config", "no/such/release.yml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("##vso[task.logissue type=error"),
        "{stdout}"
    );
    assert!(
        stdout.contains("##vso[task.complete result=Failed;"),
        "{stdout}"
    );
}

#[test]
fn task_mode_reads_the_inputs_when_started_without_arguments() {
    let out = slot_release()
        .env("TF_BUILD", "True")
        .env("INPUT_COMMAND", "validate")
        .env("INPUT_CONFIGFILE", "examples/container-app/release.yml")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(
        stdout.contains("##vso[task.complete result=Succeeded;"),
        "{stdout}"
    );
}

/// The binary prints the plan exactly as the engine renders it: the engine's snapshot of each stage's
/// plan (`crates/engine/tests/snapshots/python_webapp_plan@<stage>.snap`) is the one expected text, so the
/// two cannot drift apart or be updated one without the other.
#[test]
fn plan_from_a_state_file_for_each_stage() {
    for stage in ["build", "staging", "production", "rollback"] {
        let state = match stage {
            "production" => "staged.json",
            "rollback" => "after-release.json",
            _ => "before-first-release.json",
        };
        let out = slot_release()
            .args(["plan", "--config"])
            .arg(root().join("examples/python-webapp/release.yml"))
            .args(["--stage", stage, "--release-id", "20261122.7", "--state"])
            .arg(format!("crates/engine/tests/fixtures/{state}"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{stage}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text =
            String::from_utf8_lossy(&out.stdout).replace(&root().display().to_string(), "<repo>");
        let snapshot = std::fs::read_to_string(root().join(format!(
            "crates/engine/tests/snapshots/python_webapp_plan@{stage}.snap"
        )))
        .unwrap();
        // An insta snapshot is a `---` header block, then the text.
        let expected = snapshot
            .splitn(3, "---\n")
            .nth(2)
            .expect("an insta snapshot header");
        assert_eq!(text.trim_end(), expected.trim_end(), "{stage}");
    }
}

#[test]
fn plan_json_is_versioned_and_matches_the_checked_in_schema() {
    let out = slot_release()
        .args([
            "plan",
            "--config",
            "examples/python-webapp/release.yml",
            "--stage",
            "staging",
            "--json",
            "--state",
            "crates/engine/tests/fixtures/before-first-release.json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["planVersion"], 2);
    let schema = slot_release().args(["schema", "--plan"]).output().unwrap();
    let printed: serde_json::Value = serde_json::from_slice(&schema.stdout).unwrap();
    let checked_in: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("docs/plan.schema.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(printed, checked_in);
}

#[test]
fn a_failed_preflight_makes_plan_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        r#"{"slots": {"production": {"settings": {"WEBSITE_RUN_FROM_PACKAGE": "https://example.invalid/p.zip"}},
                      "staging": {"settings": {"WEBSITE_RUN_FROM_PACKAGE": "https://example.invalid/p.zip"}}}}"#,
    )
    .unwrap();
    let out = slot_release()
        .args([
            "plan",
            "--config",
            "examples/python-webapp/release.yml",
            "--stage",
            "staging",
            "--state",
        ])
        .arg(&state)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL run-from-package"));
}

#[test]
fn in_a_pull_request_plan_becomes_the_run_summary_and_stages_refuse() {
    let temp = tempfile::tempdir().unwrap();
    let pr = |cmd: &mut Command| {
        cmd.env("TF_BUILD", "True")
            .env("BUILD_REASON", "PullRequest")
            .env("AGENT_TEMPDIRECTORY", temp.path());
    };
    let mut plan = slot_release();
    pr(&mut plan);
    let out = plan
        .args([
            "plan",
            "--config",
            "examples/python-webapp/release.yml",
            "--stage",
            "production",
            "--state",
            "crates/engine/tests/fixtures/staged.json",
            "--release-id",
            "20261122.7",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("##vso[task.uploadsummary]"), "{stdout}");
    let summary =
        std::fs::read_to_string(temp.path().join("slot-release/plan-production.md")).unwrap();
    assert!(
        summary.contains("swap staging into production"),
        "{summary}"
    );
    let mut staging = slot_release();
    pr(&mut staging);
    let out = staging
        .args(["staging", "--config", "examples/python-webapp/release.yml"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("a pull-request run is read-only"),
        "{stdout}"
    );
    assert!(
        stdout.contains("##vso[task.complete result=Failed;"),
        "{stdout}"
    );
}

#[test]
fn the_emulator_command_prints_its_endpoints_and_stops_on_sigint() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_slot-release"))
        .args(["emulator", "--work-dir"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    for line in lines.by_ref() {
        let line = line.unwrap();
        let done = line.starts_with("Admin:");
        seen.push(line);
        if done {
            break;
        }
    }
    let text = seen.join("\n");
    assert!(text.contains("CA certificate:"), "{text}");
    assert!(text.contains("ARM:"), "{text}");
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
}

#[test]
fn health_timeout_bounds_the_gates_of_the_plan() {
    let out = slot_release()
        .args([
            "plan",
            "--config",
            "examples/python-webapp/release.yml",
            "--stage",
            "staging",
            "--release-id",
            "20261122.7",
            "--health-timeout-seconds",
            "17",
            "--state",
            "crates/engine/tests/fixtures/before-first-release.json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("consecutive success(es) within 17s"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("within 30s"),
        "the config's 30s is replaced: {stdout}"
    );
}

#[test]
fn the_health_timeout_task_input_reaches_the_stages_and_is_checked_before_any_change() {
    // In task mode the input arrives as INPUT_HEALTHTIMEOUTSECONDS; an unusable value stops the run
    // before it connects to Azure, naming the gate it conflicts with.
    for (seconds, expected) in [
        ("0", "at least 1 second"),
        (
            "1",
            "does not exceed the 1s probe interval of stages.staging.healthCheck",
        ),
    ] {
        let out = slot_release()
            .env("TF_BUILD", "True")
            .env("INPUT_COMMAND", "staging")
            .env("INPUT_CONFIGFILE", "examples/python-webapp/release.yml")
            .env("INPUT_HEALTHTIMEOUTSECONDS", seconds)
            .env("BUILD_BUILDNUMBER", "20261122.7")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains(expected), "{seconds}: {stdout}");
        assert!(
            stdout.contains("##vso[task.complete result=Failed;"),
            "{stdout}"
        );
    }
}

/// A config diagnostic quotes the offending line of release.yml on stderr, and the agent reads stderr
/// lines for logging commands too: a line of the repository must not set a variable or end the task.
#[test]
fn a_diagnostic_quoting_a_hostile_line_cannot_run_a_command() {
    use slot_release_pipelines::agent::{agent_lines, is_formatting_line, parse_command};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("release.yml");
    let text = std::fs::read_to_string(root().join("examples/python-webapp/release.yml"))
        .unwrap()
        .replace(
            "resourceGroup: contoso-rg",
            "resourceGroupp: \"##vso[task.setvariable variable=PWNED]1 ##[error]x\"",
        );
    std::fs::write(&config, text).unwrap();
    for pipeline in [true, false] {
        let mut cmd = slot_release();
        if pipeline {
            cmd.env("TF_BUILD", "True");
        }
        let out = cmd
            .args(["validate", "--config"])
            .arg(&config)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("resourceGroupp"),
            "the diagnostic is still shown: {stderr}"
        );
        for line in agent_lines(&stderr) {
            assert!(parse_command(line).is_none(), "stderr: {line}");
            assert!(!is_formatting_line(line), "stderr: {line}");
        }
        for line in agent_lines(&stdout) {
            if let Some(cmd) = parse_command(line) {
                assert!(
                    ["task.logissue", "task.complete"].contains(&cmd.name.as_str()),
                    "stdout: {line}"
                );
            }
            assert!(!is_formatting_line(line), "stdout: {line}");
        }
    }
}

/// In a pipeline the package root is confined to the sources like the config file: a root climbing
/// out is refused with an error located at `package.root`, naming what to do.
#[test]
fn a_package_root_outside_the_sources_is_refused_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("s");
    std::fs::create_dir_all(&sources).unwrap();
    let config = sources.join("release.yml");
    let text = std::fs::read_to_string(root().join("examples/python-webapp/release.yml"))
        .unwrap()
        .replace("root: .", "root: ../../../../../../etc");
    std::fs::write(&config, &text).unwrap();
    let out = slot_release()
        .env("SYSTEM_DEFAULTWORKINGDIRECTORY", &sources)
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("package-root-outside-sources"), "{stderr}");
    assert!(stderr.contains("release.yml:13:"), "located: {stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
    // Outside a pipeline (no sources known) the same config is the user's own business.
    let out = slot_release()
        .args(["validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn build_help_lists_only_what_a_build_takes() {
    let out = slot_release().args(["build", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for takes in ["--out", "--package", "--release-id", "--record"] {
        assert!(help.contains(takes), "{takes}: {help}");
    }
    // A build never reaches Azure: no connection, lock, resume or rollback options.
    for not in [
        "--service-connection",
        "--take-over-lock",
        "--lock-ttl-seconds",
        "--resume",
        "--rollback-unfinished",
        "--to ",
        "--health-timeout-seconds",
    ] {
        assert!(!help.contains(not), "{not}: {help}");
    }
}

#[test]
fn a_second_run_on_the_same_work_folder_is_refused_before_it_builds() {
    let dir = tempfile::tempdir().unwrap();
    let build = || {
        slot_release()
            .args([
                "build",
                "--config",
                "examples/python-webapp/release.yml",
                "--work-dir",
            ])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    // Another run holds the folder (as a run in progress does, until its process ends).
    let held = std::fs::File::create(dir.path().join(".slot-release.lock")).unwrap();
    held.lock().unwrap();
    let refused = build();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&refused.stdout),
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("another slot-release run is using the work folder")
            && said.contains("--work-dir"),
        "{said}"
    );
    assert!(!dir.path().join("package.zip").exists(), "it built anyway");
    held.unlock().unwrap();
    let built = build();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    assert!(dir.path().join("package.zip").exists());
}
