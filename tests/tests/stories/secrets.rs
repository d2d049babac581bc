//! Secrets taken in bulk (`secrets.select`), through the task's entry point: the app gets exactly the
//! enabled secrets under the prefix, under their mapped names, delivered by value or by reference; the
//! log and the plan name each one left out and why; no value shows anywhere a person could read it.

use std::time::Duration;

use slot_release_emulator::SeedSecret;
use slot_release_tests::world::secret;
use slot_release_tests::{AgentResult, World};

const DB_URL: &str = "postgres://app:sel-db-9c1e4f@db/app";
const SESSION_KEY: &str = "sel-session-key-3b7d02";
/// Values of secrets the selection leaves out: they must reach neither the app nor any output.
const OLD_TOKEN: &str = "sel-disabled-token-a41f";
const LAST_YEAR: &str = "sel-expired-value-77e0";
const OTHER: &str = "sel-outside-prefix-5d29";

fn with(secret: SeedSecret, edit: impl FnOnce(&mut SeedSecret)) -> SeedSecret {
    let mut secret = secret;
    edit(&mut secret);
    secret
}

/// Stages the python example with its staging environment selecting `app-*` (names in upper snake
/// case) delivered as `delivery` says, and checks what the app and every output show.
async fn stage_with_selection(delivery: &str) {
    let block = format!(
        "      vault: contoso-kv\n      delivery: {delivery}\n      select: {{prefix: app-}}\n      names: upperSnake\n"
    );
    let world = World::builder()
        .quick()
        // The first `vault:` is the staging environment's.
        .edit(move |t| t.replacen("      vault: contoso-kv\n", &block, 1))
        .vault_secret(secret("app-db-url", DB_URL))
        .vault_secret(secret("app-session-key", SESSION_KEY))
        .vault_secret(with(secret("app-old-token", OLD_TOKEN), |s| {
            s.enabled = false
        }))
        .vault_secret(with(secret("app-last-year", LAST_YEAR), |s| {
            s.exp = Some(1_600_000_000)
        }))
        .vault_secret(secret("other-key", OTHER))
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"));
    let run = world.run("staging").unwrap_or_else(|e| panic!("{e}"));
    let outcome = tokio::task::spawn_blocking(move || run.run(Duration::from_secs(240)))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"));
    // The skipped secrets are warnings: the step succeeds with issues, so the user sees them.
    assert_eq!(
        outcome.result,
        AgentResult::SucceededWithIssues,
        "{}",
        outcome.transcript()
    );

    // Exactly the enabled secrets under the prefix, under their mapped names, as delivered.
    let settings = world.slot("staging").app_settings;
    let wanted = |secret: &str, value: &str| match delivery {
        "value" => value.to_owned(),
        _ => format!("@Microsoft.KeyVault(VaultName=contoso-kv;SecretName={secret})"),
    };
    assert_eq!(
        settings.get("APP_DB_URL"),
        Some(&wanted("app-db-url", DB_URL)),
        "{settings:?}"
    );
    assert_eq!(
        settings.get("APP_SESSION_KEY"),
        Some(&wanted("app-session-key", SESSION_KEY)),
        "{settings:?}"
    );
    for left_out in [
        "APP_OLD_TOKEN",
        "APP_LAST_YEAR",
        "OTHER_KEY",
        "APP_OTHER_KEY",
    ] {
        assert!(!settings.contains_key(left_out), "{left_out}: {settings:?}");
    }
    assert!(
        !settings
            .values()
            .any(|v| [OLD_TOKEN, LAST_YEAR, OTHER].iter().any(|s| v.contains(s))),
        "{settings:?}"
    );

    // The log warns about each one left out, naming it and why; the unrelated one is not mentioned.
    let warnings: Vec<&str> = outcome
        .commands_named("task.logissue")
        .filter(|c| c.property("type") == Some("warning"))
        .map(|c| c.data.as_str())
        .collect();
    for (name, why) in [("app-old-token", "disabled"), ("app-last-year", "expired")] {
        let line = format!(
            "Environment staging: secret {name} of vault contoso-kv is {why} and is not delivered"
        );
        assert!(warnings.iter().any(|w| *w == line), "{line}\n{warnings:?}");
    }
    assert!(
        !outcome.stdout.contains("other-key"),
        "{}",
        outcome.transcript()
    );
    // The plan lists the selected and the skipped ones.
    for shown in [
        "app-db-url (selected, as APP_DB_URL)",
        "app-session-key (selected, as APP_SESSION_KEY)",
        "skipped app-old-token (disabled)",
        "skipped app-last-year (expired)",
    ] {
        assert!(
            outcome.stdout.contains(shown),
            "{shown}\n{}",
            outcome.transcript()
        );
    }

    // No value (of the delivered secrets or of those left out) in stdout, stderr, the ##vso stream,
    // the summaries, any file the run wrote, or the journal.
    let leaks = world.leaks(&outcome, &[&world.sources]);
    let report: Vec<String> = leaks.iter().map(ToString::to_string).collect();
    assert!(
        leaks.is_empty(),
        "secrets leaked:\n{}\n{}",
        report.join("\n"),
        outcome.transcript()
    );
    for value in [DB_URL, SESSION_KEY, OLD_TOKEN, LAST_YEAR, OTHER] {
        assert!(
            world.vault_values.iter().any(|v| v == value),
            "{value} is not declared to the leak detector"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_secrets_reach_the_app_by_value_and_skipped_ones_are_named() {
    stage_with_selection("value").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn selected_secrets_reach_the_app_by_reference_and_skipped_ones_are_named() {
    stage_with_selection("keyVaultReference").await;
}
