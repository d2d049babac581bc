//! Hostile and broken agent input, through the real entry point: an unknown command, a service
//! connection with fields missing, a config path outside the sources, and `##vso[` in values. Each is
//! refused with a clear message (or neutralised), changes nothing in Azure, and leaks nothing.
#![cfg(unix)]

use std::time::Duration;

use slot_release_tests::{AgentOutcome, AgentResult, AgentRun, World};

const TIMEOUT: Duration = Duration::from_secs(120);

fn run(run: AgentRun) -> AgentOutcome {
    tokio::task::block_in_place(|| run.run(TIMEOUT)).unwrap_or_else(|e| panic!("{e}"))
}

/// Every message the agent would show for the step: issues, the completion message, and stderr.
fn messages(outcome: &AgentOutcome) -> String {
    let mut text: Vec<String> = outcome
        .commands_named("task.logissue")
        .map(|c| c.data.clone())
        .collect();
    text.extend(outcome.complete_message.clone());
    text.push(outcome.stderr.clone());
    text.join("\n")
}

fn assert_no_leaks(world: &World, outcome: &AgentOutcome) {
    // Declared secrets and every credential the emulator handed out or holds.
    let leaks = world.leaks(outcome, &[&world.temp()]);
    assert!(
        leaks.is_empty(),
        "secrets leaked: {leaks:?}\n{}",
        outcome.transcript()
    );
}

/// No ARM, Kudu or Key Vault write happened.
fn assert_azure_untouched(world: &World) {
    let writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| !r.host.starts_with("login.") && !r.host.starts_with("pipelines."))
        .filter(|r| r.method != "GET" && !(r.method == "POST" && r.path.ends_with("/list")))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect();
    assert!(writes.is_empty(), "Azure was changed: {writes:?}");
}

fn assert_failed_clearly(outcome: &AgentOutcome, expect_in_message: &[&str]) {
    assert_eq!(
        outcome.result,
        AgentResult::Failed,
        "{}",
        outcome.transcript()
    );
    let text = messages(outcome);
    for needle in expect_in_message {
        assert!(
            text.to_ascii_lowercase()
                .contains(&needle.to_ascii_lowercase()),
            "the failure does not mention {needle:?}:\n{}",
            outcome.transcript()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_command_fails_the_step_with_a_message_naming_it() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let outcome = run(world
        .run("deploy-everything")
        .unwrap_or_else(|e| panic!("{e}")));
    assert_failed_clearly(&outcome, &["deploy-everything"]);
    // A task failure is reported to the agent as a result, not as a crash of the process.
    assert!(
        outcome.commands_named("task.complete").count() > 0
            || outcome.commands_named("task.logissue").count() > 0,
        "the agent gets no issue and no result, only an exit code:\n{}",
        outcome.transcript()
    );
    assert_azure_untouched(&world);
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_connection_without_its_tenant_is_refused_before_any_change() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let id = world.connection_id.clone();
    world.emulator.clear_requests();
    let outcome = run(world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        // What the agent exports when the connection has no tenant: no parameter at all (an empty
        // value is the closest an environment can get) and an authorization object without it.
        .env(&format!("ENDPOINT_AUTH_PARAMETER_{id}_TENANTID"), "")
        .env(
            &format!("ENDPOINT_AUTH_{id}"),
            r#"{"parameters":{"serviceprincipalid":"11111111-1111-1111-1111-111111111111"},"scheme":"WorkloadIdentityFederation"}"#,
        ));
    assert_failed_clearly(&outcome, &["tenant"]);
    assert_azure_untouched(&world);
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_connection_that_does_not_exist_is_refused() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    world.emulator.clear_requests();
    let outcome = run(world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("azureSubscription", "9b1f0c2e-0000-0000-0000-00000000dead"));
    assert_failed_clearly(&outcome, &["9b1f0c2e-0000-0000-0000-00000000dead"]);
    assert_azure_untouched(&world);
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_outside_the_sources_is_refused_without_echoing_it() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    // A file a config path could be pointed at to read it through the task's error messages.
    let outside = world.dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap_or_else(|e| panic!("{e}"));
    let file = outside.join("credentials.yml");
    std::fs::write(&file, "private-line-7d41: hunter2-value\n").unwrap_or_else(|e| panic!("{e}"));
    let relative = "../outside/credentials.yml";
    for path in [file.display().to_string(), relative.to_owned()] {
        world.emulator.clear_requests();
        let outcome = run(world
            .run("validate")
            .unwrap_or_else(|e| panic!("{e}"))
            .input("configFile", &path));
        assert_eq!(
            outcome.result,
            AgentResult::Failed,
            "{path}: {}",
            outcome.transcript()
        );
        let shown = format!("{}{}", outcome.stdout, outcome.stderr);
        assert!(
            !shown.contains("hunter2-value") && !shown.contains("private-line-7d41"),
            "{path}: the content of a file outside the sources was printed:\n{}",
            outcome.transcript()
        );
        assert_azure_untouched(&world);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logging_commands_in_values_are_neutralised() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let config = world.config();
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    // A settings value that prints in the plan, and a hook name that prints in the log.
    let text = text.replacen(
        "      APP_ENV: staging\n",
        "      APP_ENV: staging\n      BANNER: \"##vso[task.setvariable variable=InjectedBanner]pwned\"\n",
        1,
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let outcome = run(world
        .run("plan")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("environment", "staging")
        .env("BUILD_REASON", "PullRequest")
        .env(
            "BUILD_BUILDNUMBER",
            "7##vso[task.setvariable variable=InjectedBuild]pwned",
        )
        .env("SYSTEM_PULLREQUEST_PULLREQUESTID", "17"));
    for name in ["InjectedBanner", "InjectedBuild"] {
        assert!(
            !outcome.variables.contains_key(name),
            "a value set the variable {name}:\n{}",
            outcome.transcript()
        );
    }
    let injected: Vec<&str> = slot_release_pipelines::agent::agent_lines(&outcome.stdout)
        .into_iter()
        .filter(|l| l.contains("variable=Injected"))
        .filter(|l| slot_release_pipelines::agent::parse_command(l).is_some())
        .collect();
    assert!(
        injected.is_empty(),
        "lines the agent reads as commands: {injected:?}"
    );
    // The environment input itself is a value too.
    let outcome = run(world
        .run("plan")
        .unwrap_or_else(|e| panic!("{e}"))
        .input(
            "environment",
            "nope##vso[task.complete result=Succeeded;]done",
        )
        .env("BUILD_REASON", "PullRequest"));
    assert_eq!(
        outcome.result,
        AgentResult::Failed,
        "an injected task.complete turned a failure into success:\n{}",
        outcome.transcript()
    );
    assert_no_leaks(&world, &outcome);
}
