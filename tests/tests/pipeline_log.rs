//! The pipeline user's view of a run, from the real binary under the agent's variables: one fold per step
//! with its result line outside it, progress through the stage, debug lines from the libraries under
//! System.Debug (`task.debug`, never a secret), `SucceededWithIssues` after a retry, output variables that fit the
//! stage, a summary per stage that renders as the summary tab shows it, and secrets masked.

use std::path::Path;

use slot_release_emulator::{Fault, RouteMatch, Scope};
use slot_release_tests::{World, printed, stdout};
use tokio_util::sync::CancellationToken;

/// Runs a stage as the agent does (`TF_BUILD`, its temp folder), with extra variables.
async fn agent_run(
    world: &World,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (String, std::path::PathBuf) {
    let temp = world
        .dir
        .path()
        .join(format!("agent-temp-{}", args.join("-")));
    std::fs::create_dir_all(&temp).unwrap();
    let mut env: Vec<(&str, String)> = vec![
        ("TF_BUILD", "True".into()),
        ("AGENT_TEMPDIRECTORY", temp.display().to_string()),
        ("BUILD_BUILDNUMBER", "20261204.7".into()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let out = world.cli_with(args, &env).await;
    (stdout(&out), temp.join("slot-release"))
}

fn output_variable<'a>(log: &'a str, name: &str) -> Option<&'a str> {
    let head = format!("##vso[task.setvariable variable={name};isoutput=true;]");
    log.lines().find_map(|l| l.strip_prefix(head.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_step_folds_its_output_and_the_stage_reports_progress() {
    let world = World::released(|t| t).await;
    let (log, _) = agent_run(&world, &["staging", "--release-id", "r1"], &[]).await;
    assert!(log.contains("task.complete result=Succeeded;"), "{log}");
    // Groups never nest (the agent would end the outer fold early) and every one is closed.
    let mut open = false;
    for line in log.lines() {
        if line.starts_with("##[group]") {
            assert!(!open, "a group inside a group: {line}\n{log}");
            open = true;
        } else if line == "##[endgroup]" {
            assert!(open, "an endgroup without a group\n{log}");
            open = false;
        }
    }
    assert!(!open, "{log}");
    assert!(
        log.contains("##[group]Plan: staging of contoso-web"),
        "{log}"
    );
    // A step that prints (the deploy, the migration hook, the gate) is a fold; its result line follows
    // the fold, outside it.
    for step in ["deploy package", "run hook migrate", "health gate staging"] {
        let at = log
            .find(&format!("##[group]{step}"))
            .unwrap_or_else(|| panic!("no fold for {step}\n{log}"));
        let rest = &log[at..];
        let end = rest.find("##[endgroup]").unwrap();
        let result = rest.find(&format!("[done] {step}")).unwrap();
        assert!(
            end < result,
            "{step}: the result line is inside the fold\n{log}"
        );
    }
    // Progress moves forward through the stage (after the package's own, while it was built).
    let stage = &log[log.find("##[group]Plan:").unwrap()..];
    let progress: Vec<u32> = stage
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.setprogress value="))
        .filter_map(|l| l.split(';').next()?.parse().ok())
        .collect();
    assert!(progress.len() >= 5, "{progress:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    // Through the gate (seconds long), progress keeps moving inside its fold.
    let gate = &stage[stage.find("##[group]health gate staging").unwrap()..];
    let gate = &gate[..gate.find("##[endgroup]").unwrap()];
    assert!(
        gate.lines()
            .any(|l| l.starts_with("##vso[task.setprogress") && l.contains("health gate")),
        "{gate}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outputs_fit_the_stage_and_the_summary_renders() {
    let world = World::released(|t| t).await;
    let production_url = world
        .port
        .slot_url(
            &slot_release_engine::state::SlotName::production(),
            &CancellationToken::new(),
        )
        .await
        .unwrap()
        .to_string();
    let before = world.tag("slotrelease.slots").unwrap_or_default();
    let (log, out_dir) = agent_run(&world, &["staging", "--release-id", "r1"], &[]).await;
    // The run creates the staging slot: its host exists (and ARM names it) only now.
    let staging_url = world
        .port
        .slot_url(&"staging".parse().unwrap(), &CancellationToken::new())
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        output_variable(&log, "AppUrl"),
        Some(staging_url.as_str()),
        "{log}"
    );
    assert_eq!(
        output_variable(&log, "ProductionUrl"),
        Some(production_url.as_str())
    );
    assert_eq!(output_variable(&log, "Slot"), Some("staging"));
    let previous = before
        .split(',')
        .find_map(|p| p.strip_prefix("production="))
        .unwrap_or_default();
    assert_eq!(
        output_variable(&log, "PreviousRelease"),
        Some(previous),
        "{log}"
    );
    assert_eq!(
        output_variable(&log, "LastKnownGood"),
        Some(previous),
        "{log}"
    );

    // The staging summary is a file of its own, attached, and renders with what a reader looks for.
    let file = out_dir.join("contoso-web-staging.md");
    assert!(
        log.contains(&format!("##vso[task.uploadsummary]{}", file.display())),
        "{log}"
    );
    let html = render(&file);
    for expected in [
        "<h2>staging stage of contoso-web: Succeeded</h2>",
        "<th>Before</th>",
        "<th>After</th>",
        "<td>staging</td>",
        "<td>r1</td>",
        "<th>Time</th>",
        "deploy package",
        "<th>Probes</th>",
        &format!("<a href=\"{staging_url}\">staging slot</a>"),
    ] {
        assert!(html.contains(expected), "{expected} missing from\n{html}");
    }
    assert!(!html.contains("Rehearsal"), "{html}");

    let (log, out_dir) = agent_run(&world, &["production", "--release-id", "r1"], &[]).await;
    assert_eq!(
        output_variable(&log, "AppUrl"),
        Some(production_url.as_str()),
        "{log}"
    );
    assert_eq!(output_variable(&log, "LastKnownGood"), Some("r1"), "{log}");
    let html = render(&out_dir.join("contoso-web-production.md"));
    assert!(html.contains("<th>Check</th>"), "{html}");
    assert!(html.contains("watch"), "{html}");
}

fn render(path: &Path) -> String {
    let markdown = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("no summary {}: {e}", path.display()));
    let mut html = String::new();
    let parser = pulldown_cmark::Parser::new_ext(&markdown, pulldown_cmark::Options::ENABLE_TABLES);
    pulldown_cmark::html::push_html(&mut html, parser);
    html
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_debug_shows_the_libraries_retries_and_a_retry_ends_succeeded_with_issues() {
    let world = World::released(|t| t).await;
    // Azure throttles the first read of the site once, asking to wait a second.
    world.emulator.inject(Fault::Status {
        route: RouteMatch {
            host: Some("management.*".into()),
            method: Some("GET".into()),
            path: None,
            body_contains: None,
        },
        status: 429,
        retry_after_secs: Some(1),
        scope: Some(Scope {
            count: Some(1),
            share: None,
        }),
    });
    let (log, _) = agent_run(
        &world,
        &["staging", "--release-id", "r1"],
        &[("SYSTEM_DEBUG", "true")],
    )
    .await;
    let debug: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.debug]"))
        .collect();
    assert!(
        debug
            .iter()
            .any(|l| l.contains("retrying") && l.contains("retry_after=Some(1s)")),
        "{debug:#?}"
    );
    // The retry that got through is a warning, and the step succeeded with issues.
    assert!(
        log.lines()
            .any(|l| l.starts_with("##vso[task.logissue type=warning")
                && l.contains("succeeded after 1 retry")),
        "{log}"
    );
    assert!(
        log.contains("##vso[task.complete result=SucceededWithIssues;]"),
        "{log}"
    );
    assert_eq!(output_variable(&log, "Result"), Some("SucceededWithIssues"));
    // Nothing the service connection holds reaches the log, debug lines included (but the registration
    // that tells the agent to mask it).
    let shown: String = log
        .lines()
        .filter(|l| !l.starts_with("##vso[task.setsecret]"))
        .collect::<Vec<_>>()
        .join("\n");
    for (name, value) in &world.cli_env() {
        if name.starts_with("ENDPOINT_AUTH_PARAMETER_") && value.len() > 8 {
            assert!(!shown.contains(value.as_str()), "{name} leaked");
        }
    }

    // At trace level, every request: method, host and path, status; never a query or a header.
    let (log, _) = agent_run(
        &world,
        &["plan", "--stage", "staging"],
        &[("INPUT_LOGLEVEL", "trace")],
    )
    .await;
    let requests: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("##vso[task.debug]"))
        .filter(|l| l.contains(" -> "))
        .collect();
    assert!(
        requests
            .iter()
            .any(|l| l.starts_with("GET management.") && l.ends_with("-> 200")),
        "{requests:#?}"
    );
    assert!(requests.iter().all(|l| !l.contains('?')), "{requests:#?}");
    assert!(
        requests
            .iter()
            .all(|l| !l.to_ascii_lowercase().contains("bearer")),
        "{requests:#?}"
    );

    // Without System.Debug, no debug line at all.
    let (log, _) = agent_run(&world, &["plan", "--stage", "staging"], &[]).await;
    assert!(!log.contains("##vso[task.debug]"), "{log}");
}

/// A pull request's release is never staged: its plan of production assumes the staging stage ran and
/// shows the swap, where the same plan outside a pull request refuses until the release is staged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pull_request_plans_production_as_if_staged() {
    let world = World::released(|t| t).await;
    let (log, _) = agent_run(
        &world,
        &["plan", "--stage", "production"],
        &[("BUILD_REASON", "PullRequest")],
    )
    .await;
    assert!(log.contains("task.complete result=Succeeded;"), "{log}");
    assert!(log.contains("assumed for this plan"), "{log}");
    assert!(log.contains("swap staging into production"), "{log}");
    let (log, _) = agent_run(&world, &["plan", "--stage", "production"], &[]).await;
    assert!(log.contains("task.complete result=Failed;"), "{log}");
    assert!(
        log.contains("run the staging stage for this release first"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_pipeline_secrets_are_masked_and_outputs_and_summary_are_set() {
    let world = World::released(|t| t).await;
    let temp = world.dir.path().join("agent-temp");
    std::fs::create_dir_all(&temp).unwrap();
    let out = world
        .cli_command(&["staging", "--release-id", "r1"])
        .env("TF_BUILD", "True")
        .env("AGENT_TEMPDIRECTORY", &temp)
        .output()
        .await
        .unwrap();
    let text = printed(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("##vso[task.complete result=Succeeded;"),
        "{text}"
    );
    // The value-delivered secret reached the slot, and only the masking command ever carried it.
    let secret = world.slot("staging").app_settings["DATABASE__PASSWORD"].clone();
    assert!(secret.starts_with("rehearsal-db-password-"), "{secret}");
    for line in text.lines().filter(|l| l.contains(&secret)) {
        assert!(
            line.starts_with("##vso[task.setsecret]"),
            "secret printed: {line}"
        );
    }
    assert!(text.contains(&format!("##vso[task.setsecret]{secret}")));
    for name in [
        "ReleaseId",
        "AppUrl",
        "Slot",
        "PreviousImageTag",
        "PlanJsonPath",
        "Result",
    ] {
        assert!(
            text.contains(&format!(
                "##vso[task.setvariable variable={name};isoutput=true;]"
            )),
            "output {name} missing: {text}"
        );
    }
    assert!(
        text.contains("##vso[task.setvariable variable=Slot;isoutput=true;]staging\n"),
        "{text}"
    );
    assert!(text.contains("##vso[task.uploadsummary]"), "{text}");
    let plan: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(temp.join("slot-release/plan.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plan["stage"], "staging");
}
