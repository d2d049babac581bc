//! The real binary through the real entry point (`node task/index.js`), run the way the agent runs it,
//! against the emulator with a workload-identity service connection: results, output variables, the
//! summary, and no secret anywhere the agent or a person could see it.
#![cfg(unix)]

use std::time::Duration;

use slot_release_emulator::{CredentialKind, Fault, RouteMatch};
use slot_release_tests::{AgentResult, LeakDetector, World};

const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs blocking harness work off the runtime threads the emulator serves on.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => panic!("harness thread failed: {e}"),
    }
}

fn assert_no_leaks(world: &World, outcome: &slot_release_tests::AgentOutcome) {
    // Declared secrets and every credential the emulator handed out (tokens issued during the run,
    // publishing passwords, client secrets). The sources folder holds the agent's temp folder
    // (records, plans, packages) too.
    let leaks = world.leaks(outcome, &[&world.sources]);
    let report: Vec<String> = leaks.iter().map(ToString::to_string).collect();
    assert!(
        leaks.is_empty(),
        "secrets leaked:\n{}\n{}",
        report.join("\n"),
        outcome.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validate_through_the_entry_point() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let run = world.run("validate").unwrap_or_else(|e| panic!("{e}"));
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert_eq!(
        outcome.commands_named("task.logissue").count(),
        0,
        "{}",
        outcome.transcript()
    );
    // The detector has teeth: a value the output does contain (the config path), declared as a
    // secret, is found, and so is its base64 form written to a file.
    let config = world.config().display().to_string();
    let canary = LeakDetector::new([config.as_str()]);
    assert!(
        !canary.scan_output(&outcome).is_empty(),
        "the leak detector missed a value in stdout"
    );
    let file = world.temp().join("canary.txt");
    std::fs::write(
        &file,
        base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &config),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        canary.scan_dir(&world.temp()).len(),
        1,
        "the leak detector missed a base64 form in a file"
    );
    std::fs::remove_file(&file).unwrap_or_else(|e| panic!("{e}"));
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_config_is_an_issue_with_its_position_and_a_failed_result() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let config = world.config();
    let text = std::fs::read_to_string(&config).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        &config,
        text.replacen("  kind: code\n", "  kind: code\n  rooot: 1\n", 1),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = world.run("validate").unwrap_or_else(|e| panic!("{e}"));
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    // A task failure is reported with task.complete; the process itself exits 0.
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.result,
        AgentResult::Failed,
        "{}",
        outcome.transcript()
    );
    let issue = outcome
        .commands_named("task.logissue")
        .find(|c| c.property("type") == Some("error") && c.property("linenumber").is_some())
        .unwrap_or_else(|| {
            panic!(
                "no error issue with a line number\n{}",
                outcome.transcript()
            )
        });
    assert!(
        issue
            .property("sourcepath")
            .is_some_and(|p| p.ends_with("release.yml")),
        "{issue:?}"
    );
    assert!(issue.data.contains("rooot"), "{issue:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_request_plan_is_read_only_and_becomes_the_summary() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let run = world
        .run("plan")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("environment", "staging")
        .env("BUILD_REASON", "PullRequest")
        .env("SYSTEM_PULLREQUEST_PULLREQUESTID", "17");
    world.emulator.clear_requests();
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    let writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| {
            r.host.starts_with("management.")
                || r.host.contains(".scm.")
                || r.host.contains(".vault.")
        })
        .filter(|r| r.method != "GET" && !(r.method == "POST" && r.path.ends_with("/list")))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect();
    assert!(
        writes.is_empty(),
        "a pull-request plan changed Azure: {writes:?}"
    );
    let summary = outcome
        .summaries
        .first()
        .unwrap_or_else(|| panic!("no summary uploaded\n{}", outcome.transcript()));
    let markdown =
        std::fs::read_to_string(summary).unwrap_or_else(|e| panic!("{}: {e}", summary.display()));
    assert!(markdown.contains("staging"), "{markdown}");
    let plan_json = outcome
        .variables
        .get("PlanJsonPath")
        .unwrap_or_else(|| panic!("no PlanJsonPath\n{}", outcome.transcript()));
    assert!(
        std::path::Path::new(&plan_json.value).is_file(),
        "{}",
        plan_json.value
    );
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_release_with_workload_identity() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let record = world.temp().join("release-record.json");
    let run = world
        .run("release")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("releaseRecordPath", &record.display().to_string());
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );

    // The Key Vault values were registered with the agent, every line of the multi-line one too.
    for line in slot_release_tests::world::API_KEY
        .lines()
        .chain([slot_release_tests::world::DB_PASSWORD])
    {
        assert!(
            outcome.registered_secrets.iter().any(|s| s == line),
            "{line:?} was not registered with task.setsecret"
        );
    }
    // Output variables, as later steps and stages read them.
    let var = |name: &str| outcome.variables.get(name).map(|v| v.value.clone());
    assert!(
        var("ReleaseId").is_some_and(|v| !v.is_empty()),
        "{}",
        outcome.transcript()
    );
    assert!(
        var("AppUrl").is_some_and(|v| v.starts_with("https://contoso-web")),
        "{:?}",
        var("AppUrl")
    );
    assert_eq!(var("Slot").as_deref(), Some("production"));
    assert_eq!(var("Result").as_deref(), Some("Succeeded"));
    assert!(
        outcome.variables.values().all(|v| !v.secret),
        "no output variable should be secret"
    );

    let summary = outcome
        .summaries
        .first()
        .unwrap_or_else(|| panic!("no summary uploaded\n{}", outcome.transcript()));
    let markdown =
        std::fs::read_to_string(summary).unwrap_or_else(|e| panic!("{}: {e}", summary.display()));
    assert!(markdown.contains("production"), "{markdown}");
    assert!(
        record.is_file(),
        "no release record at {}",
        record.display()
    );

    // The leak scan below covers what authenticated this release: the access tokens Entra issued
    // for ARM and Key Vault, the OIDC token that was exchanged for them, and the publishing password.
    let kinds: Vec<CredentialKind> = world
        .emulator
        .credentials()
        .iter()
        .map(|c| c.kind)
        .collect();
    for kind in [
        CredentialKind::AccessToken,
        CredentialKind::OidcToken,
        CredentialKind::PublishingPassword,
        CredentialKind::ClientSecret,
    ] {
        assert!(
            kinds.contains(&kind),
            "no {kind:?} to search for: {kinds:?}"
        );
    }
    let detector = world.leak_detector(&outcome);
    assert!(
        detector.len() > outcome.secrets.len() + 2,
        "the detector searches only for the declared secrets"
    );
    // A token this run was issued, cut down to its signature and written where a person could
    // read it, is found.
    let token = world
        .emulator
        .credentials()
        .into_iter()
        .find(|c| c.kind == CredentialKind::AccessToken)
        .map(|c| c.value.expose().to_owned())
        .unwrap_or_default();
    let signature = token.rsplit('.').next().unwrap_or_default().to_owned();
    let canary = world.temp().join("token-canary.txt");
    std::fs::write(&canary, format!("Bearer ...{signature}\n")).unwrap_or_else(|e| panic!("{e}"));
    let found = world.leaks(&outcome, &[&world.temp()]);
    assert!(
        found
            .iter()
            .any(|l| l.form == "JWT signature" && l.location.ends_with("token-canary.txt")),
        "the leak detector missed an issued token's signature: {found:?}"
    );
    std::fs::remove_file(&canary).unwrap_or_else(|e| panic!("{e}"));

    // Production serves the new release.
    let snapshot = world.emulator.snapshot();
    let snapshot = serde_json::to_string(&snapshot).unwrap_or_default();
    assert!(snapshot.contains("contoso-web"), "{snapshot}");

    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_during_a_release_stops_within_the_agents_grace_period() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    // A slow deployment keeps the release in the middle of staging when the cancel arrives.
    world.emulator.inject(Fault::Latency {
        route: RouteMatch {
            host: Some("*.scm.*azurewebsites.emulator.test".into()),
            method: Some("POST".into()),
            path: None,
            body_contains: None,
        },
        millis: 60_000,
        count: None,
    });
    let run = world.run("release").unwrap_or_else(|e| panic!("{e}"));
    let outcome = blocking(move || {
        let mut task = run.spawn()?;
        let started = task.wait_for_output("set startup command", TIMEOUT);
        std::thread::sleep(Duration::from_millis(300));
        let asked = std::time::Instant::now();
        let outcome = task.cancel()?;
        Ok::<_, std::io::Error>((started, asked.elapsed(), outcome))
    })
    .await;
    let (started, stop_time, outcome) = outcome.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        started,
        "the release never reached staging\n{}",
        outcome.transcript()
    );
    // The binary heard the signal (forwarded by node) and stopped on its own, saying so.
    assert_eq!(
        outcome.variables.get("Result").map(|v| v.value.as_str()),
        Some("Cancelled"),
        "{}",
        outcome.transcript()
    );
    assert_eq!(outcome.result, AgentResult::Canceled);
    // The task's own report agrees with the agent's: a cancelled run is not called a failure.
    assert_eq!(
        outcome.reported,
        Some(AgentResult::Canceled),
        "{}",
        outcome.transcript()
    );
    assert!(
        !outcome.killed,
        "the task had to be killed\n{}",
        outcome.transcript()
    );
    // Well inside the agent's 7.5 s: the upload in flight stops at once, and nothing in the binary
    // exits on a timer that could pass this bound for it.
    assert!(
        stop_time < Duration::from_secs(3),
        "SIGINT should stop the task within 3 s, took {stop_time:?}\n{}",
        outcome.transcript()
    );
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_build_number_format_can_be_released() {
    // Azure Pipelines numbers runs `$(Date:yyyyMMdd).$(Rev:r)` unless told otherwise, so the release id
    // a real pipeline hands the task contains a dot.
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let run = world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        .env("BUILD_BUILDNUMBER", "20261122.1");
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert!(
        outcome
            .variables
            .get("ReleaseId")
            .is_some_and(|v| !v.value.is_empty()),
        "{}",
        outcome.transcript()
    );
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearsal_of_a_failed_watch_shows_the_rollback() {
    // `rehearse` needs no service connection: it brings its own emulator.
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let run = world
        .run("rehearse")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("azureSubscription", "")
        .input("rehearseFailAt", "watch")
        .input("rehearseQuick", "true");
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(outcome.exit_code, Some(0), "{}", outcome.transcript());
    // The input reached the binary as `--quick`, and the log says the waits are not the config's.
    assert!(
        outcome.stdout.contains(
            "Quick rehearsal, waits shortened (not what a release with this config waits)"
        ),
        "{}",
        outcome.transcript()
    );
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert_eq!(
        outcome.variables.get("Result").map(|v| v.value.as_str()),
        Some("RolledBack"),
        "{}",
        outcome.transcript()
    );
    // The agent uploads attachments after reading the command, so the files must outlive the process.
    // One summary per stage: the production stage's tells the rollback.
    assert!(
        !outcome.summaries.is_empty(),
        "no summary uploaded\n{}",
        outcome.transcript()
    );
    let markdown: Vec<String> = outcome
        .summaries
        .iter()
        .map(|s| {
            std::fs::read_to_string(s).unwrap_or_else(|e| panic!("summary {}: {e}", s.display()))
        })
        .collect();
    assert!(
        markdown.iter().any(|m| m.to_lowercase().contains("rolled")),
        "{markdown:#?}"
    );
    if let Some(plan) = outcome.variables.get("PlanJsonPath") {
        assert!(
            std::path::Path::new(&plan.value).is_file(),
            "PlanJsonPath {} does not exist after the run",
            plan.value
        );
    }
    assert_no_leaks(&world, &outcome);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_principal_key_never_reaches_the_log() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let run = world
        .run_with(
            "plan",
            slot_release_emulator::ConnectionKind::ServicePrincipal,
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .input("environment", "staging")
        .env("SYSTEM_DEBUG", "true");
    let outcome = blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    // The key sits in ENDPOINT_AUTH_PARAMETER_<id>_SERVICEPRINCIPALKEY; even with debug output on it
    // must not be printed (World declares it, "emulator-client-secret", to the leak detector).
    assert_no_leaks(&world, &outcome);
}
