//! The agent contract, checked from the agent's side: everything the logger writes is read back with
//! the agent's own line splitting, command parsing and unescaping.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};

use proptest::prelude::*;
use slot_release_pipelines::agent::{AgentCommand, agent_lines, is_formatting_line, parse_command};
use slot_release_pipelines::{
    Issue, Log, OutputMode, Summary, TaskResult, VariableOptions, escape_data, escape_property,
    unescape,
};

/// A sink the test can read back after the logger wrote to it.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl Write for Buffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Buffer {
    fn text(&self) -> String {
        let bytes = self.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8(bytes).unwrap_or_default()
    }
}

fn pipeline_log() -> (Log, Buffer) {
    let buffer = Buffer::default();
    (
        Log::new(OutputMode::Pipeline, Box::new(buffer.clone())),
        buffer,
    )
}

fn commands(output: &str) -> Vec<AgentCommand> {
    agent_lines(output)
        .into_iter()
        .filter_map(parse_command)
        .collect()
}

/// What the agent would display for the output, without its masking: plain lines as they are, command
/// lines as their unescaped data, and `task.setsecret` lines left out (they are the registration).
fn visible_text(output: &str) -> Vec<String> {
    agent_lines(output)
        .into_iter()
        .filter_map(|line| match parse_command(line) {
            Some(cmd) if cmd.name == "task.setsecret" => None,
            Some(cmd) => Some(format!("{:?} {}", cmd.properties, cmd.data)),
            None => Some(line.to_owned()),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn escaping_round_trips_through_the_agent(s in any::<String>()) {
        prop_assert_eq!(unescape(&escape_property(&s)), s.clone());
        prop_assert_eq!(unescape(&escape_data(&s)), s.clone());
        let escaped = escape_property(&s);
        prop_assert!(!escaped.contains([';', ']', '\r', '\n']));
    }

    #[test]
    fn escaping_round_trips_for_percent_heavy_text(s in "[%A-Z0-9;\\]\r\n]{0,40}") {
        prop_assert_eq!(unescape(&escape_data(&s)), s);
    }

    #[test]
    fn commands_round_trip_through_the_agent_parser(name in "[A-Za-z][A-Za-z0-9_.]{0,20}", value in any::<String>()) {
        let (log, out) = pipeline_log();
        let output = VariableOptions { output: true, ..VariableOptions::default() };
        prop_assert!(log.set_variable(&name, &value, output).is_ok());
        let cmds = commands(&out.text());
        prop_assert_eq!(cmds.len(), 1);
        prop_assert_eq!(cmds[0].name.as_str(), "task.setvariable");
        prop_assert_eq!(cmds[0].property("variable"), Some(name.as_str()));
        prop_assert_eq!(cmds[0].property("isoutput"), Some("true"));
        prop_assert_eq!(&cmds[0].data, &value);
    }

    #[test]
    fn untrusted_text_cannot_run_commands(
        text in prop::collection::vec(prop_oneof![
            Just("##vso[".to_owned()), Just("##VsO[".to_owned()), Just("##[".to_owned()), Just("#".to_owned()),
            Just("]".to_owned()), Just("\r".to_owned()), Just("\n".to_owned()), Just(";".to_owned()),
            Just("task.complete result=Failed".to_owned()), "[a-z ]{0,5}".prop_map(|s| s),
        ], 0..24).prop_map(|parts| parts.concat()),
        source in "[a-z#\\[]{0,8}",
    ) {
        let (log, out) = pipeline_log();
        log.external(&source, &text);
        log.info(&text);
        log.debug(&text);
        let output = out.text();
        for line in agent_lines(&output) {
            prop_assert!(parse_command(line).is_none(), "a command got through: {line:?}");
            prop_assert!(!is_formatting_line(line), "a formatting line got through: {line:?}");
        }
        let (log, out) = pipeline_log();
        log.set_debug(true);
        log.warning(&text);
        log.error(&text);
        log.debug(&text);
        log.issue(&Issue::error(text.clone()).at(&text, 1, 2).with_code(&text));
        log.progress(50, &text);
        log.complete(TaskResult::Failed, &text);
        let names: Vec<String> = commands(&out.text()).into_iter().map(|c| c.name).collect();
        prop_assert_eq!(names, ["task.logissue", "task.logissue", "task.debug", "task.logissue", "task.setprogress", "task.complete"]);
        prop_assert!(agent_lines(&out.text()).iter().all(|l| l.starts_with("##vso[")));
    }

    #[test]
    fn registered_secrets_never_appear(
        secret in "[A-Za-z0-9+/=%;\\]#!-]{6,24}(\n[A-Za-z0-9+/=%;\\]#!-]{6,24}){0,2}",
        before in "[a-z ]{0,10}",
        after in "[a-z ]{0,10}",
    ) {
        let (log, out) = pipeline_log();
        log.register_secret(&secret);
        let embedded = format!("{before}{secret}{after}");
        log.info(&embedded);
        log.external("hook", &embedded);
        log.warning(&embedded);
        log.error(&embedded);
        log.section(&embedded);
        drop(log.group(&embedded));
        log.progress(10, &embedded);
        log.issue(&Issue::warning(embedded.clone()).at(&embedded, 3, 4).with_code(&embedded));
        prop_assert!(log.set_variable("Plain", &embedded, VariableOptions::default()).is_ok());
        log.upload_summary(Path::new(&embedded));
        log.upload_artifact("c", "n", Path::new(&embedded));
        log.complete(TaskResult::Succeeded, &embedded);
        let output = out.text();
        let registered: Vec<String> = commands(&output).into_iter().filter(|c| c.name == "task.setsecret").map(|c| c.data).collect();
        let lines: Vec<&str> = secret.lines().collect();
        prop_assert!(registered.contains(&secret));
        for line in &lines {
            prop_assert!(registered.iter().any(|r| r == line), "line {line:?} not registered");
        }
        for shown in visible_text(&output) {
            for line in &lines {
                prop_assert!(!shown.contains(line), "secret line {line:?} leaked in {shown:?}");
            }
        }
    }
}

#[test]
fn secret_variables_and_multiline_secrets() {
    let (log, out) = pipeline_log();
    let secret = VariableOptions {
        secret: true,
        ..VariableOptions::default()
    };
    assert!(log.set_variable("Token", "abc\ndef", secret).is_err());
    assert!(
        log.set_variable("", "x", VariableOptions::default())
            .is_err()
    );
    assert!(log.set_variable("Token", "tok-123456", secret).is_ok());
    log.info("the token is tok-123456");
    let output = out.text();
    let cmds = commands(&output);
    assert_eq!(cmds.len(), 1);
    assert_eq!(cmds[0].property("issecret"), Some("true"));
    assert_eq!(cmds[0].data, "tok-123456");
    assert!(output.ends_with("the token is ***\n"), "{output}");
}

#[test]
fn summary_file_is_masked_and_uploaded() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("summary.md");
    let (log, out) = pipeline_log();
    log.register_secret("hunter2-secret");
    let mut summary = Summary::new();
    summary
        .heading(1, "Release")
        .code_block("text", "password=hunter2-secret");
    log.write_summary(&path, &summary)?;
    let written = std::fs::read_to_string(&path)?;
    assert!(written.contains("password=***"), "{written}");
    let cmds = commands(&out.text());
    assert_eq!(
        cmds.last().map(|c| (c.name.as_str(), c.data.as_str())),
        Some(("task.uploadsummary", path.to_str().unwrap_or("")))
    );
    Ok(())
}

#[test]
fn terminal_and_plain_modes_write_no_commands() {
    for mode in [
        OutputMode::Plain,
        OutputMode::Terminal { color: true },
        OutputMode::Terminal { color: false },
    ] {
        let buffer = Buffer::default();
        let log = Log::new(mode, Box::new(buffer.clone()));
        log.register_secret("s3cr3t-value");
        log.info("hello s3cr3t-value");
        log.warning("careful");
        let group = log.group("Build");
        log.progress(40, "uploading");
        drop(group);
        let _ = log.set_variable("A", "b", VariableOptions::default());
        log.complete(TaskResult::Succeeded, "done");
        let text = buffer.text();
        assert!(!text.contains("##vso["), "{mode:?}: {text}");
        assert!(!text.contains("s3cr3t-value"), "{mode:?}: {text}");
        assert!(text.contains("hello ***"), "{mode:?}: {text}");
        assert!(text.contains("Succeeded: done"), "{mode:?}: {text}");
    }
}

#[test]
fn vso_stream_snapshot() {
    let (log, out) = pipeline_log();
    log.set_debug(true);
    log.register_secret("p@ss;word]\nsecond-line");
    log.section("Slot Release 1.0.0");
    {
        let _group = log.group("Plan for contoso-web (staging)");
        log.info("deploy package app.zip (3 files) to slot staging");
        log.debug("GET https://management.emulator.test/subscriptions/…");
        log.external(
            "hook migrate",
            "applied 2 migrations\n##vso[task.setvariable variable=Evil]1\npassword p@ss;word]",
        );
        log.progress(40, "uploading 40%");
    }
    log.issue(
        &Issue::error("unknown field `rooot`")
            .at("/src/release.yml", 6, 3)
            .with_code("SR0102"),
    );
    log.warning("slot `staging` has no health check; 100% trust");
    let _ = log.set_variable(
        "AppUrl",
        "https://contoso-web.azurewebsites.emulator.test",
        VariableOptions {
            output: true,
            ..Default::default()
        },
    );
    let _ = log.set_variable(
        "DbPassword",
        "second-line",
        VariableOptions {
            secret: true,
            ..Default::default()
        },
    );
    log.upload_summary(Path::new("/agent/_temp/slot-release/summary.md"));
    log.upload_artifact(
        "release",
        "release-record",
        Path::new("/agent/_temp/slot-release/record.json"),
    );
    log.complete(
        TaskResult::SucceededWithIssues,
        "released 20260101-1; 1 warning",
    );
    insta::assert_snapshot!(out.text());
}

#[test]
fn agent_secrets_are_registered_and_masked() {
    let env = slot_release_pipelines::AgentEnv::from_vars([
        (
            "ENDPOINT_AUTH_PARAMETER_abc_SERVICEPRINCIPALKEY",
            "spn-key-0123456789",
        ),
        ("ENDPOINT_AUTH_PARAMETER_abc_TENANTID", "tenant-id-visible"),
        ("SYSTEM_ACCESSTOKEN", "job-token-abcdef"),
    ]);
    let (log, out) = pipeline_log();
    log.register_secrets(&env.secrets());
    log.info("key spn-key-0123456789 token job-token-abcdef tenant tenant-id-visible");
    let output = out.text();
    let registered: Vec<String> = commands(&output)
        .into_iter()
        .filter(|c| c.name == "task.setsecret")
        .map(|c| c.data)
        .collect();
    // Each value is registered as it is, followed by the encoded forms it could leak in.
    let values: Vec<&String> = registered
        .iter()
        .filter(|r| *r == "spn-key-0123456789" || *r == "job-token-abcdef")
        .collect();
    assert_eq!(values.len(), 2, "{output}");
    assert!(
        registered.len() > 2,
        "the encoded forms are registered too: {output}"
    );
    assert!(
        output.ends_with("key *** token *** tenant tenant-id-visible\n"),
        "{output}"
    );
}

/// Secrets that look like commands: masking comes before neutralising, so the secret is masked in
/// every kind of output, and what is left cannot run a command.
#[test]
fn a_secret_that_holds_a_command_is_masked_not_neutralised() {
    for secret in [
        "##vso[task.setvariable variable=PWNED]gotcha5521",
        "##[group]gotcha5522",
        "a ## vso[x]gotcha5523",
    ] {
        let (log, out) = pipeline_log();
        log.set_debug(true);
        log.register_secret(secret);
        let text = format!("before {secret} after ##vso[task.complete result=Failed]");
        log.info(&text);
        log.external("hook", &text);
        log.error(&text);
        log.debug(&text);
        log.section(&text);
        log.progress(1, &text);
        log.complete(TaskResult::Failed, &text);
        let output = out.text();
        let shown = visible_text(&output).join("\n");
        assert!(!shown.contains("gotcha552"), "{secret:?} leaked: {shown}");
        for line in agent_lines(&output) {
            if let Some(cmd) = parse_command(line) {
                assert!(
                    cmd.name == "task.setsecret"
                        || (!cmd.data.contains("PWNED") && cmd.name != "task.setvariable"),
                    "{line}"
                );
            }
        }
    }
}

/// A writer the test reads back, for the document and diagnostic streams.
fn streams_log(mode: OutputMode) -> (Log, Buffer, Buffer, Buffer) {
    let (sink, out, err) = (Buffer::default(), Buffer::default(), Buffer::default());
    let log = Log::with_streams(
        mode,
        Box::new(sink.clone()),
        Box::new(out.clone()),
        Box::new(err.clone()),
    );
    (log, sink, out, err)
}

#[test]
fn documents_and_diagnostics_are_masked_and_neutralised() {
    let (log, _, out, err) = streams_log(OutputMode::Pipeline);
    log.register_secret("hunter2\"quoted");
    log.print_json(&serde_json::json!({ "value": "hunter2\"quoted", "n": "##vso[task.complete]" }));
    let document = out.text();
    let parsed: serde_json::Value = serde_json::from_str(&document).expect("still JSON");
    assert_eq!(parsed["value"], "***");
    assert_eq!(parsed["n"], "## vso[task.complete]");
    log.diagnostic(
        "release.yml:3: name: hunter2\"quoted\r##vso[task.setvariable variable=X]1\n##[error]x",
    );
    let diagnostics = err.text();
    assert!(!diagnostics.contains("hunter2"), "{diagnostics}");
    for line in agent_lines(&diagnostics) {
        assert!(parse_command(line).is_none(), "{line}");
        assert!(!is_formatting_line(line), "{line}");
    }
}

#[test]
fn files_written_through_the_log_are_masked_and_stay_json() -> Result<(), Box<dyn std::error::Error>>
{
    let dir = tempfile::tempdir()?;
    let (log, _) = pipeline_log();
    log.register_secret("s3cr\"et\\val");
    log.register_secret("424242");
    let path = dir.path().join("nested/plan.json");
    log.write_json(
        "the plan",
        &path,
        &serde_json::json!({ "a": "x s3cr\"et\\val y", "s3cr\"et\\val": 1, "n": 424242 }),
    )?;
    let text = std::fs::read_to_string(&path)?;
    assert!(!text.contains("s3cr") && !text.contains("424242"), "{text}");
    let parsed: serde_json::Value = serde_json::from_str(&text)?;
    assert_eq!(parsed["a"], "x *** y");
    assert_eq!(parsed["***"], 1);
    assert_eq!(parsed["n"], "***");
    Ok(())
}

#[test]
fn a_redirected_log_keeps_the_registered_secrets() {
    let (log, _) = pipeline_log();
    log.register_secret("kept-secret-value");
    let sink = Buffer::default();
    let moved = log.redirected(Box::new(sink.clone()));
    moved.info("kept-secret-value");
    assert_eq!(sink.text(), "***\n");
}

/// The agent does not nest groups: a group opened inside another is a heading in it, and only the
/// outermost one ends the fold, so a hook's group inside a step's group keeps the step folded whole.
#[test]
fn groups_do_not_nest() {
    let (log, out) = pipeline_log();
    {
        let _step = log.group("run hook migrate");
        log.info("step line");
        {
            let _hook = log.group("hook migrate");
            log.info("hook output");
        }
        log.info("after the hook");
    }
    log.info("[done] run hook migrate (1.2 s)");
    let text = out.text();
    assert_eq!(
        text,
        "##[group]run hook migrate\nstep line\n▸ hook migrate\nhook output\nafter the hook\n##[endgroup]\n[done] run hook migrate (1.2 s)\n"
    );
}

/// A held logger's lines reach the agent only when released, in one block, as the logger wrote them:
/// masked, with untrusted text unable to become a command, and its warnings counted by the receiver.
#[test]
fn held_lines_are_released_whole_masked_and_neutralised() {
    let (log, buffer) = pipeline_log();
    log.register_secret("hunter2-secret");
    let registered = buffer.text();
    let (first, first_lines) = log.held();
    let (second, second_lines) = log.held();
    first.info("first: one");
    second.warning("second: hunter2-secret ##vso[task.setvariable variable=PWNED]1");
    first.info("first: two");
    assert_eq!(
        buffer.text(),
        registered,
        "nothing is written before a release"
    );
    second_lines.release(&log);
    first_lines.release(&log);
    let text = buffer.text()[registered.len()..].to_owned();
    let pos = |needle: &str| {
        text.find(needle)
            .unwrap_or_else(|| panic!("{needle} missing: {text}"))
    };
    assert!(pos("second:") < pos("first: one") && pos("first: one") < pos("first: two"));
    assert!(!text.contains("hunter2-secret"), "{text}");
    assert!(
        commands(&text).iter().all(|c| c.name == "task.logissue"),
        "only the warning is a command: {text}"
    );
    assert_eq!(log.warning_count(), 1);
}
