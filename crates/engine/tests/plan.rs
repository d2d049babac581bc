//! Plans of the example release for each stage, from state files: snapshots of the human and JSON forms,
//! the checked-in plan schema, and the rules a plan must follow (secrets never shown, only what differs).

use std::path::{Path, PathBuf};

use slot_release_engine::plan::{self, Action, BuildInfo, Plan, PlanInput, Shown, Stage};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::state::LiveState;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn example(name: &str) -> release::LoadedRelease {
    let request = LoadRequest {
        release_id: Some("20261122.7".to_owned()),
        variables: [
            ("BUILD_BUILDNUMBER", "20261122.7"),
            ("BUILD_BUILDID", "4711"),
            (
                "STAGING_URL",
                "https://contoso-api-staging.azurewebsites.net",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect(),
        syntax_only: false,
    };
    let path = root().join("examples").join(name).join("release.yml");
    release::load(&path, &request)
        .unwrap_or_else(|d| panic!("{} does not load:\n{d}", path.display()))
}

fn state(name: &str) -> LiveState {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    LiveState::from_file(&path).unwrap()
}

fn plan_for(loaded: &release::LoadedRelease, stage: Stage, state: &LiveState) -> Plan {
    plan::compute(PlanInput {
        spec: &loaded.spec,
        stage,
        environment: None,
        state,
        build: &BuildInfo {
            release_id: loaded.release_id.clone(),
            package_sha256: None,
        },
    })
    .unwrap()
}

fn settings(insta_name: &str) -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_suffix(insta_name);
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn python_webapp_plans_for_each_stage() {
    let loaded = example("python-webapp");
    let cases = [
        ("build", Stage::Build, "before-first-release.json"),
        ("staging", Stage::Staging, "before-first-release.json"),
        ("production", Stage::Production, "staged.json"),
        ("rollback", Stage::Rollback, "after-release.json"),
    ];
    for (name, stage, state_file) in cases {
        let plan = plan_for(&loaded, stage, &state(state_file));
        // The package root is an absolute path on this machine; the snapshot shows it relative.
        let text = plan
            .render()
            .replace(&root().display().to_string(), "<repo>");
        settings(name).bind(|| {
            insta::assert_snapshot!("python_webapp_plan", text);
        });
        let json = plan
            .to_json()
            .replace(&root().display().to_string(), "<repo>");
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        settings(name).bind(|| {
            insta::assert_json_snapshot!("python_webapp_plan_json", value);
        });
    }
}

#[test]
fn container_app_production_plan() {
    let loaded = example("container-app");
    let state = LiveState::from_json(
        r#"{"slots": {"production": {"linuxFxVersion": "DOCKER|contoso.azurecr.io/contoso/app:4700", "release": "4700"},
                      "staging": {"linuxFxVersion": "DOCKER|contoso.azurecr.io/contoso/app:4711", "release": "20261122.7"}},
            "tags": {"slotrelease.phase": "staged", "slotrelease.slots": "staging=20261122.7,production=4700"}}"#,
    )
    .unwrap();
    let staging = plan_for(&loaded, Stage::Staging, &state);
    let set_image = staging.steps.iter().find_map(|s| match &s.action {
        Action::SetImage { after, .. } => Some(after.clone()),
        _ => None,
    });
    assert_eq!(
        set_image,
        None,
        "the staging slot already runs tag 4711: {}",
        staging.render()
    );
    let production = plan_for(&loaded, Stage::Production, &state);
    settings("container-production").bind(|| {
        insta::assert_snapshot!("container_app_plan", production.render());
    });
}

#[test]
fn secret_values_never_appear_in_a_plan() {
    let loaded = example("python-webapp");
    for (stage, file) in [
        (Stage::Staging, "before-first-release.json"),
        (Stage::Production, "staged.json"),
    ] {
        let plan = plan_for(&loaded, stage, &state(file));
        let json = plan.to_json();
        let text = plan.render();
        for value in ["previous-value-not-shown", "staging-value-not-shown"] {
            assert!(
                !json.contains(value) && !text.contains(value),
                "{value} leaked into the {stage} plan"
            );
        }
        let secret_change = plan.steps.iter().find_map(|s| match &s.action {
            Action::SetSettings { changes, .. } => changes
                .iter()
                .find(|c| c.name == "DATABASE__PASSWORD")
                .cloned(),
            _ => None,
        });
        let change = secret_change.expect("the value-delivered secret is always written");
        assert!(matches!(change.after, Shown::Secret(_)));
    }
}

#[test]
fn only_settings_that_differ_are_planned() {
    let loaded = example("python-webapp");
    let plan = plan_for(&loaded, Stage::Production, &state("staged.json"));
    let names: Vec<String> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSettings { changes, .. } => {
                Some(changes.iter().map(|c| c.name.clone()).collect::<Vec<_>>())
            }
            _ => None,
        })
        .flatten()
        .collect();
    // APP_ENV, DATABASE_PATH and API_KEY already hold the wanted values and are sticky.
    assert_eq!(names, ["DATABASE__PASSWORD", "RELEASE_VERSION"]);
}

#[test]
fn a_missing_startup_command_fails_preflight_before_any_change() {
    let mut loaded = example("python-webapp");
    loaded.spec.app.startup_command = None;
    let plan = plan_for(&loaded, Stage::Staging, &LiveState::default());
    let problems: Vec<&str> = plan.problems().map(|c| c.name.as_str()).collect();
    assert!(problems.contains(&"startup-command"), "{}", plan.render());
}

#[test]
fn an_unfinished_release_is_reported_in_preflight() {
    let loaded = example("python-webapp");
    let mut live = state("staged.json");
    live.tags
        .insert("slotrelease.phase".into(), "swapping".into());
    let plan = plan_for(&loaded, Stage::Production, &live);
    let journal = plan.preflight.iter().find(|c| c.name == "journal").unwrap();
    assert!(!journal.ok);
    assert!(journal.detail.contains("swapping"), "{}", journal.detail);
}

#[test]
fn rollback_refuses_when_nothing_can_be_restored() {
    let loaded = example("python-webapp");
    let plan = plan_for(&loaded, Stage::Rollback, &LiveState::default());
    let check = plan.problems().next().expect("a refusal");
    assert_eq!(check.name, "last-known-good");
    assert!(plan.steps.is_empty());
}

#[test]
fn rollback_is_idempotent() {
    let loaded = example("python-webapp");
    let mut live = state("after-release.json");
    live.tags.insert(
        "slotrelease.slots".into(),
        "production=20261120.1,staging=20261122.7".into(),
    );
    live.tags
        .insert("slotrelease.phase".into(), "rolledBack".into());
    let plan = plan_for(&loaded, Stage::Rollback, &live);
    assert!(
        matches!(plan.steps.as_slice(), [step] if step.action == Action::Nothing),
        "{}",
        plan.render()
    );
}

#[test]
fn plan_schema_is_up_to_date() {
    let path = root().join("docs/plan.schema.json");
    let expected = format!(
        "{}\n",
        serde_json::to_string_pretty(&plan::json_schema()).unwrap()
    );
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != expected {
        std::fs::write(&path, &expected).unwrap();
        panic!("docs/plan.schema.json was stale and has been rewritten; review and commit it");
    }
}
