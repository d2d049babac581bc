//! Secrets in bulk (`secrets.select`): a vault's listing becomes the plan's secret pulls before any
//! change, `secrets.map` wins its settings, what the listing left out is shown, and a clash of names
//! or a selection that was never listed fails the stage's preflight, naming what clashed.

use std::path::Path;

use slot_release_engine::plan::{self, Action, BuildInfo, Plan, PlanInput, Stage};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::selection::{self, SecretSelection, SkippedSecret, VaultListing};
use slot_release_engine::spec::{ReleaseSpec, SecretDelivery};
use slot_release_engine::state::LiveState;

fn example() -> ReleaseSpec {
    let request = LoadRequest {
        release_id: Some("20261122.7".to_owned()),
        variables: [("BUILD_BUILDNUMBER", "20261122.7")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect(),
        ..LoadRequest::default()
    };
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/python-webapp/release.yml");
    release::load(&path, &request)
        .unwrap_or_else(|d| panic!("the example does not load:\n{d}"))
        .spec
}

/// The example with its staging environment selecting `app-*` (prefix cut off, upper snake case) and
/// the vault listing `listing`.
fn selecting(listing: Result<&VaultListing, String>) -> ReleaseSpec {
    let mut spec = example();
    let env = spec.environments.get_mut("staging").expect("staging");
    env.select = Some(SecretSelection {
        prefix: Some("app-".into()),
        strip_prefix: true,
        upper_snake: true,
        delivery: SecretDelivery::Value,
    });
    selection::apply(env, listing);
    spec
}

fn listing(names: &[&str]) -> VaultListing {
    VaultListing {
        names: names.iter().map(|n| (*n).to_owned()).collect(),
        skipped: vec![
            SkippedSecret {
                name: "app-old-token".into(),
                reason: "disabled".into(),
            },
            SkippedSecret {
                name: "app-last-year".into(),
                reason: "expired".into(),
            },
            SkippedSecret {
                name: "unrelated-old".into(),
                reason: "disabled".into(),
            },
        ],
    }
}

fn staging_plan(spec: &ReleaseSpec) -> Plan {
    plan::compute(PlanInput {
        target: None,
        spec,
        stage: Stage::Staging,
        environment: None,
        state: &LiveState::default(),
        build: &BuildInfo {
            release_id: "20261122.7".into(),
            ..BuildInfo::default()
        },
    })
    .expect("a plan")
}

fn selection_check(plan: &Plan) -> &plan::Check {
    plan.preflight
        .iter()
        .find(|c| c.name == "secret-selection")
        .expect("a secret-selection check")
}

#[test]
fn the_listing_becomes_pulls_before_the_lock_with_the_skipped_ones_shown() {
    let spec = selecting(Ok(&listing(&[
        "app-db-url",
        "app-session-key",
        "shared-key",
    ])));
    let plan = staging_plan(&spec);
    assert!(selection_check(&plan).ok, "{:?}", plan.preflight);
    // The check says what the selection took, not only that it passed.
    assert!(
        selection_check(&plan)
            .detail
            .starts_with("secrets.select took 2 secret(s), skipped "),
        "{:?}",
        selection_check(&plan)
    );
    // The pull comes first: before the lock and before anything is written.
    let Action::PullSecrets {
        secrets, skipped, ..
    } = &plan.steps[0].action
    else {
        panic!("the first step pulls secrets: {:?}", plan.steps[0]);
    };
    let selected: Vec<(&str, &str)> = secrets
        .iter()
        .filter(|s| s.selected)
        .map(|s| (s.setting.as_str(), s.secret.as_str()))
        .collect();
    assert_eq!(
        selected,
        [("DB_URL", "app-db-url"), ("SESSION_KEY", "app-session-key")]
    );
    // The map's own secrets are still pulled, and not marked selected.
    assert!(
        secrets
            .iter()
            .any(|s| !s.selected && s.setting == "API_KEY" && s.secret == "api-key")
    );
    let skipped: Vec<(&str, &str)> = skipped
        .iter()
        .map(|s| (s.name.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(
        skipped,
        [("app-old-token", "disabled"), ("app-last-year", "expired")]
    );
    let text = plan.render();
    assert!(text.contains("app-db-url (selected, as DB_URL)"), "{text}");
    assert!(text.contains("skipped app-old-token (disabled)"), "{text}");
    // Selected secrets delivered as values are written as secrets, never shown.
    let written: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSettings { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .filter(|c| c.name == "DB_URL")
        .map(|c| c.after.to_string())
        .collect();
    assert_eq!(written, ["<secret contoso-kv/app-db-url>"]);
}

#[test]
fn a_setting_the_map_names_wins_over_the_selection() {
    // `app-api-key` would become API_KEY, which the map takes from `api-key`; `app-db-password` is a
    // secret the map itself delivers (under DATABASE__PASSWORD) when listed under the prefix too.
    let mut spec = example();
    let env = spec.environments.get_mut("staging").expect("staging");
    env.secrets
        .get_mut("DATABASE__PASSWORD")
        .expect("mapped")
        .secret = "app-db-password".into();
    env.select = Some(SecretSelection {
        prefix: Some("app-".into()),
        strip_prefix: true,
        upper_snake: true,
        delivery: SecretDelivery::Value,
    });
    selection::apply(
        env,
        Ok(&listing(&["app-api-key", "app-db-password", "app-extra"])),
    );
    assert_eq!(env.secrets["API_KEY"].secret, "api-key");
    assert!(!env.secrets.contains_key("DB_PASSWORD"));
    let selected = env.selected.as_ref().expect("selected");
    assert_eq!(
        selected.secrets.keys().collect::<Vec<_>>(),
        ["EXTRA"],
        "{selected:?}"
    );
    assert!(selected.problems.is_empty());
}

#[test]
fn two_secrets_or_a_secret_and_a_plain_setting_on_one_name_fail_the_preflight_naming_both() {
    // Key Vault keeps names unique without case, but App Service does not tell DB-URL from db-url
    // either, so a clash is caught however the listing spells them.
    let spec = selecting(Ok(&listing(&["app-db-url", "APP-DB-URL", "app-app-env"])));
    let check = selection_check(&staging_plan(&spec)).clone();
    assert!(!check.ok);
    assert!(
        check.detail.contains("app-db-url and APP-DB-URL") && check.detail.contains("DB_URL"),
        "{}",
        check.detail
    );
    // APP_ENV is a plain setting of the staging environment.
    assert!(
        check.detail.contains("app-app-env") && check.detail.contains("APP_ENV"),
        "{}",
        check.detail
    );
}

#[test]
fn a_selection_that_could_not_be_listed_fails_the_preflight() {
    let spec = selecting(Err("403 Forbidden: no list permission".into()));
    let check = selection_check(&staging_plan(&spec)).clone();
    assert!(!check.ok);
    assert!(
        check.detail.contains("no list permission"),
        "{}",
        check.detail
    );

    let mut unlisted = example();
    unlisted
        .environments
        .get_mut("staging")
        .expect("staging")
        .select = Some(SecretSelection {
        prefix: None,
        strip_prefix: false,
        upper_snake: true,
        delivery: SecretDelivery::KeyVaultReference,
    });
    let check = selection_check(&staging_plan(&unlisted)).clone();
    assert!(
        !check.ok && check.detail.contains("not listed"),
        "{}",
        check.detail
    );
}

#[test]
fn the_name_rule_and_prefix_decide_the_setting() {
    let mut selection = SecretSelection {
        prefix: Some("app-".into()),
        strip_prefix: false,
        upper_snake: true,
        delivery: SecretDelivery::Value,
    };
    assert_eq!(
        selection.setting_for("app-db-password").as_deref(),
        Some("APP_DB_PASSWORD")
    );
    assert_eq!(selection.setting_for("App-Db").as_deref(), Some("APP_DB"));
    assert_eq!(selection.setting_for("other-db"), None);
    selection.strip_prefix = true;
    assert_eq!(
        selection.setting_for("app-db-password").as_deref(),
        Some("DB_PASSWORD")
    );
    // Nothing is left of a secret named just the prefix: it feeds no setting.
    assert_eq!(selection.setting_for("app-"), None);
    selection.upper_snake = false;
    assert_eq!(
        selection.setting_for("app-db-password").as_deref(),
        Some("db-password")
    );
    selection.prefix = None;
    assert_eq!(
        selection.setting_for("db-password").as_deref(),
        Some("db-password")
    );
}
