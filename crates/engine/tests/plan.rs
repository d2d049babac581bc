//! Plans of the example release for each stage, from state files: snapshots of the human and JSON forms,
//! the checked-in plan schema, and the rules a plan must follow (secrets never shown, only what differs).

use std::path::Path;

use slot_release_engine::package::PackageFiles;
use slot_release_engine::plan::{self, Action, BuildInfo, Plan, Shown, Stage};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::state::LiveState;

mod support;
use support::{example, fixture, plan_built, plan_for, root};

fn plan_with(
    loaded: &release::LoadedRelease,
    stage: Stage,
    state: &LiveState,
    layout: Option<PackageFiles>,
) -> Plan {
    plan_built(
        loaded,
        stage,
        state,
        BuildInfo {
            layout,
            ..BuildInfo::default()
        },
    )
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
        let plan = plan_for(&loaded, stage, &fixture(state_file));
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
        let plan = plan_for(&loaded, stage, &fixture(file));
        let json = plan.to_json();
        let text = plan.render();
        for value in ["previous-value-not-shown", "staging-value-not-shown"] {
            assert!(
                !json.contains(value) && !text.contains(value),
                "{value} leaked into the {stage} plan"
            );
        }
        let secret_change = setting_changes(&plan)
            .into_iter()
            .find(|(_, c)| c.name == "DATABASE__PASSWORD");
        if stage == Stage::Staging {
            let (slot, change) =
                secret_change.expect("the value-delivered secret is always written");
            assert_eq!(slot, "staging");
            assert!(matches!(change.after, Shown::Secret(_)));
        } else {
            // The same secret in both environments: staging wrote it, it reaches production with the swap.
            assert!(secret_change.is_none(), "{}", plan.render());
        }
    }
}

/// A setting that held a value and is now delivered from Key Vault (here by reference): its old value may
/// be a secret, so the plan shows that it changes, never the value.
#[test]
fn a_value_replaced_by_a_key_vault_reference_is_never_shown() {
    let loaded = example("python-webapp");
    let mut live = fixture("staged.json");
    assert!(live.slots.len() >= 2, "both slots exist");
    for slot in live.slots.values_mut() {
        slot.settings
            .insert("API_KEY".into(), "old-api-key-in-clear-7731".into());
    }
    let mut shown = 0;
    for stage in [Stage::Staging, Stage::Production] {
        let plan = plan_for(&loaded, stage, &live);
        let (json, text) = (plan.to_json(), plan.render());
        assert!(
            !json.contains("old-api-key-in-clear-7731")
                && !text.contains("old-api-key-in-clear-7731"),
            "{stage}: {text}"
        );
        if let Some((_, change)) = setting_changes(&plan)
            .into_iter()
            .find(|(_, c)| c.name == "API_KEY")
        {
            assert!(
                matches!(change.before, Some(Shown::Secret(_))),
                "{change:?}"
            );
            shown += 1;
        }
    }
    assert!(shown > 0, "the change to API_KEY is planned");
}

/// Every setting change of a plan, with the slot it is written to.
fn setting_changes(plan: &Plan) -> Vec<(String, plan::SettingChange)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSettings { slot, changes } => Some(
                changes
                    .iter()
                    .map(|c| (slot.to_string(), c.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn names(changes: &[(String, plan::SettingChange)]) -> Vec<String> {
    changes
        .iter()
        .map(|(slot, c)| format!("{slot}:{}", c.name))
        .collect()
}

#[test]
fn only_settings_that_differ_are_planned() {
    let loaded = example("python-webapp");
    // Staged by this version: only APP_ENV (different per environment) is sticky, and production has it.
    let plan = plan_for(&loaded, Stage::Production, &fixture("staged.json"));
    assert!(setting_changes(&plan).is_empty(), "{}", plan.render());

    // Production's own value differs: only that sticky name is written, on production.
    let mut live = fixture("staged.json");
    live.slots
        .get_mut("production")
        .unwrap()
        .settings
        .insert("APP_ENV".into(), "prod-old".into());
    let plan = plan_for(&loaded, Stage::Production, &live);
    assert_eq!(names(&setting_changes(&plan)), ["production:APP_ENV"]);
}

#[test]
fn settings_with_the_same_value_in_both_environments_travel_with_the_swap() {
    let loaded = example("python-webapp");
    let travelling: Vec<String> = loaded.spec.travelling_settings().into_iter().collect();
    assert_eq!(
        travelling,
        [
            "API_KEY",
            "DATABASE_PATH",
            "DATABASE__PASSWORD",
            "RELEASE_VERSION"
        ]
    );

    // Staging writes every name, sticky only where production's value differs.
    let mut live = fixture("before-first-release.json");
    live.sticky_settings.clear();
    let plan = plan_for(&loaded, Stage::Staging, &live);
    let changes = setting_changes(&plan);
    assert!(changes.iter().all(|(slot, _)| slot == "staging"));
    let sticky: Vec<&str> = changes
        .iter()
        .filter(|(_, c)| c.becomes_sticky)
        .map(|(_, c)| c.name.as_str())
        .collect();
    assert_eq!(sticky, ["APP_ENV"], "{}", plan.render());

    // A slot staged when every name was sticky: the production stage lets the travelling ones go
    // (on the staged slot, values unchanged) and never writes production.
    let mut live = fixture("staged.json");
    live.sticky_settings = [
        "APP_ENV",
        "DATABASE_PATH",
        "RELEASE_VERSION",
        "API_KEY",
        "DATABASE__PASSWORD",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    let plan = plan_for(&loaded, Stage::Production, &live);
    let changes = setting_changes(&plan);
    assert_eq!(
        names(&changes),
        [
            "staging:API_KEY",
            "staging:DATABASE_PATH",
            "staging:RELEASE_VERSION"
        ],
        "{}",
        plan.render()
    );
    assert!(
        changes
            .iter()
            .all(|(_, c)| c.becomes_travelling && !c.becomes_sticky)
    );

    // Different vaults, or a value only one environment has, keep a name sticky.
    let mut split = example("python-webapp");
    split
        .spec
        .environments
        .get_mut("production")
        .unwrap()
        .settings
        .insert("RELEASE_VERSION".into(), "pinned".into());
    split.spec.environments.get_mut("production").unwrap().vault = Some("prod-kv".into());
    let travelling: Vec<String> = split.spec.travelling_settings().into_iter().collect();
    assert_eq!(travelling, ["DATABASE_PATH"]);
}

fn startup_check(plan: &Plan) -> &plan::Check {
    plan.preflight
        .iter()
        .find(|c| c.name == "startup-command")
        .expect("a startup-command check")
}

/// The blank-command rule uses the live stack when the config names none, and the package's layout.
#[test]
fn a_blank_startup_command_is_judged_on_the_effective_stack_and_the_package() {
    let mut loaded = example("python-webapp");
    loaded.spec.app.startup_command = None;
    loaded.spec.app.stack = None;
    let nested =
        || PackageFiles::from_names(["application/single_app/app.py", "requirements.txt"], None);
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.startup_command = None;
        slot.linux_fx_version = Some("PYTHON|3.12".into());
    }
    // The live stack detects Flask's app.py at the root only: a nested app serves the default page.
    let plan = plan_with(&loaded, Stage::Staging, &live, Some(nested()));
    let c = startup_check(&plan);
    assert!(!c.ok, "{}", plan.render());
    assert!(
        c.detail.contains("PYTHON|3.12") && c.detail.contains("app.py"),
        "{}",
        c.detail
    );
    assert!(c.detail.contains("app.startupCommand"), "{}", c.detail);
    // A root app.py is what the image finds.
    let flat = PackageFiles::from_names(["app.py"], None);
    let plan = plan_with(&loaded, Stage::Staging, &live, Some(flat));
    assert!(startup_check(&plan).ok, "{}", plan.render());
    assert!(startup_check(&plan).detail.contains("gunicorn app:app"));
    // A configured command runs whatever the layout.
    loaded.spec.app.startup_command = Some("python -m gunicorn -c gunicorn.conf.py app:app".into());
    let plan = plan_with(&loaded, Stage::Staging, &live, Some(nested()));
    assert!(startup_check(&plan).ok, "{}", plan.render());
    loaded.spec.app.startup_command = None;
    // With no stack anywhere, nothing tells what will run.
    for slot in live.slots.values_mut() {
        slot.linux_fx_version = None;
    }
    let plan = plan_with(&loaded, Stage::Staging, &live, Some(nested()));
    let c = startup_check(&plan);
    assert!(
        !c.ok && c.detail.contains("cannot tell what will run"),
        "{}",
        c.detail
    );
    // A .NET stack needs no command.
    loaded.spec.app.stack = Some("DOTNETCORE|8.0".into());
    let plan = plan_with(&loaded, Stage::Staging, &live, Some(nested()));
    assert!(startup_check(&plan).ok, "{}", plan.render());
}

/// A Windows slot's stack comes from CURRENT_STACK and its version field: IIS runs the app.
#[test]
fn a_windows_slot_needs_no_startup_command() {
    let mut loaded = example("python-webapp");
    loaded.spec.app.startup_command = None;
    loaded.spec.app.stack = None;
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.startup_command = None;
        slot.linux_fx_version = None;
        slot.windows = Some(slot_release_engine::state::WindowsStack {
            current_stack: Some("python".into()),
            python_version: Some("3.4".into()),
            ..Default::default()
        });
    }
    let plan = plan_with(
        &loaded,
        Stage::Staging,
        &live,
        Some(PackageFiles::default()),
    );
    let c = startup_check(&plan);
    assert!(c.ok && c.detail.contains("Windows"), "{}", c.detail);
}

#[test]
fn an_unfinished_release_is_reported_in_preflight() {
    let loaded = example("python-webapp");
    let mut live = fixture("staged.json");
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
    let mut live = fixture("after-release.json");
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

/// The container example after release 20261122.7 failed its watch with manual rollback: production runs it,
/// the staging slot holds the last known-good release 4700, and the journal recorded 4700's image.
fn container_after_failed_release() -> LiveState {
    LiveState::from_json(
        r#"{"slots": {"production": {"linuxFxVersion": "DOCKER|contoso.azurecr.io/contoso/app:20261122.7", "release": "20261122.7"},
                      "staging": {"linuxFxVersion": "DOCKER|contoso.azurecr.io/contoso/app:4700", "release": "4700"}},
            "tags": {"slotrelease.phase": "failed", "slotrelease.release": "20261122.7",
                     "slotrelease.lastKnownGood": "4700",
                     "slotrelease.previousImage": "contoso.azurecr.io/contoso/app:4700",
                     "slotrelease.slots": "production=20261122.7,staging=4700"}}"#,
    )
    .unwrap()
}

fn restore_actions(plan: &Plan) -> Vec<&'static str> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::Swap { .. } => Some("swap"),
            Action::SetImage { .. } => Some("set-image"),
            _ => None,
        })
        .collect()
}

#[test]
fn rollback_restores_the_way_the_config_says() {
    use slot_release_engine::spec::Restore;
    let mut loaded = example("container-app");
    let state = container_after_failed_release();

    // The example says `restore: lastKnownGood`: the recorded tag goes back although a swap was possible,
    // through the staging slot and its gate, never onto production directly.
    let plan = plan_for(&loaded, Stage::Rollback, &state);
    assert_eq!(plan.problems().count(), 0, "{}", plan.render());
    assert_eq!(
        restore_actions(&plan),
        ["set-image", "swap"],
        "{}",
        plan.render()
    );
    assert!(
        plan.steps.iter().any(|s| matches!(
            &s.action,
            Action::SetImage { slot, after, .. }
                if slot == "staging" && after == "contoso.azurecr.io/contoso/app:4700"
        )),
        "{}",
        plan.render()
    );
    settings("container-last-known-good").bind(|| {
        insta::assert_snapshot!("container_rollback_plan", plan.render());
    });

    // `swapBack`: the verified slot is swapped back, no image is touched.
    let rollback = loaded.spec.rollback.as_mut().unwrap();
    rollback.restore = Restore::SwapBack;
    let plan = plan_for(&loaded, Stage::Rollback, &state);
    assert_eq!(plan.problems().count(), 0, "{}", plan.render());
    assert_eq!(restore_actions(&plan), ["swap"], "{}", plan.render());
    let restore = plan.preflight.iter().find(|c| c.name == "restore").unwrap();
    assert!(restore.detail.contains("swapBack"), "{}", restore.detail);

    // `swapBack` when the slot no longer holds the last known-good release: refused, with the way out.
    let mut moved = state.clone();
    moved.tags.insert(
        "slotrelease.slots".into(),
        "production=20261122.7,staging=20261122.7".into(),
    );
    let plan = plan_for(&loaded, Stage::Rollback, &moved);
    let refusal = plan.problems().next().expect("a refusal");
    assert_eq!(refusal.name, "last-known-good");
    assert!(
        refusal.detail.contains("swapBack") && refusal.detail.contains("lastKnownGood"),
        "{}",
        refusal.detail
    );
    assert!(restore_actions(&plan).is_empty());

    // `lastKnownGood` with no recorded tag: refused rather than guessing an image.
    loaded.spec.rollback.as_mut().unwrap().restore = Restore::LastKnownGood;
    let mut untagged = state.clone();
    untagged.tags.remove("slotrelease.previousImage");
    let plan = plan_for(&loaded, Stage::Rollback, &untagged);
    let refusal = plan.problems().next().expect("a refusal");
    assert!(
        refusal.detail.contains("no previous image"),
        "{}",
        refusal.detail
    );
}

#[test]
fn rollback_of_a_code_app_with_last_known_good_refuses_to_redeploy_a_package_it_does_not_have() {
    use slot_release_engine::spec::Restore;
    let mut loaded = example("python-webapp");
    loaded.spec.rollback.as_mut().unwrap().restore = Restore::LastKnownGood;
    let plan = plan_for(&loaded, Stage::Rollback, &fixture("after-release.json"));
    let refusal = plan.problems().next().expect("a refusal");
    assert_eq!(refusal.name, "last-known-good");
    assert!(
        refusal.detail.contains("package") && refusal.detail.contains("slot staging holds it"),
        "{}",
        refusal.detail
    );
    assert!(restore_actions(&plan).is_empty(), "{}", plan.render());
}

/// The container example with no staging slot in production: `sourceSlot` left out.
fn direct_container_example() -> release::LoadedRelease {
    let text = std::fs::read_to_string(root().join("examples/container-app/release.yml"))
        .unwrap()
        .replace("    sourceSlot: staging\n", "")
        .replace("    strategy: swapWithPreview\n", "");
    assert!(!text.contains("sourceSlot"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("direct-container");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("release.yml");
    std::fs::write(&path, text).unwrap();
    let request = LoadRequest {
        release_id: Some("20261122.7".to_owned()),
        run_identity: None,
        variables: [
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
        sources: None,
        ..LoadRequest::default()
    };
    release::load(&path, &request).unwrap_or_else(|d| panic!("does not load:\n{d}"))
}

#[test]
fn a_container_app_without_a_source_slot_sets_the_image_on_production_directly() {
    let loaded = direct_container_example();
    let state = LiveState::from_json(
        r#"{"slots": {"production": {"linuxFxVersion": "DOCKER|contoso.azurecr.io/contoso/app:4700", "release": "4700"}},
            "tags": {"slotrelease.phase": "released", "slotrelease.lastKnownGood": "4700",
                     "slotrelease.slots": "production=4700"}}"#,
    )
    .unwrap();
    let plan = plan_for(&loaded, Stage::Production, &state);
    assert_eq!(plan.problems().count(), 0, "{}", plan.render());
    let set_image: Vec<(&str, Option<&str>, &str)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetImage {
                slot,
                before,
                after,
            } => Some((slot.as_str(), before.as_deref(), after.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(
        set_image,
        [(
            "production",
            Some("contoso.azurecr.io/contoso/app:4700"),
            "contoso.azurecr.io/contoso/app:4711"
        )]
    );
    assert!(
        !plan.steps.iter().chain(&plan.on_failure).any(|s| matches!(
            s.action,
            Action::Swap { .. } | Action::ApplySlotConfig { .. }
        )),
        "nothing is swapped: {}",
        plan.render()
    );
    assert!(
        plan.on_failure.iter().any(|s| matches!(&s.action,
            Action::SetImage { slot, after, .. } if slot == "production" && after == "contoso.azurecr.io/contoso/app:4700")),
        "an unhealthy watch puts the previous tag back: {}",
        plan.render()
    );
    settings("direct-container-production").bind(|| {
        insta::assert_snapshot!("container_app_plan", plan.render());
    });
}

#[test]
fn a_health_timeout_override_bounds_every_gate_and_shows_in_the_plan() {
    use slot_release_engine::Error;
    use slot_release_engine::spec::HealthTimeout;
    let mut loaded = example("python-webapp");
    loaded
        .spec
        .override_health_timeout(HealthTimeout::from_secs(17).unwrap())
        .unwrap();
    let gates = |plan: &Plan| -> Vec<u64> {
        plan.steps
            .iter()
            .chain(&plan.on_failure)
            .filter_map(|s| match &s.action {
                Action::HealthGate { gate, .. } => Some(gate.timeout.as_secs()),
                _ => None,
            })
            .collect()
    };
    let staging = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    assert_eq!(gates(&staging), [17], "{}", staging.render());
    assert!(staging.render().contains("within 17s"));
    let production = plan_for(&loaded, Stage::Production, &fixture("staged.json"));
    assert!(!gates(&production).is_empty());
    assert!(
        gates(&production).iter().all(|&s| s == 17),
        "{}",
        production.render()
    );
    // The watch is a window, not a gate: its length stays the config's.
    let watch = production.steps.iter().find_map(|s| match &s.action {
        Action::Watch { watch, .. } => Some(watch.window.as_secs()),
        _ => None,
    });
    assert_eq!(
        watch,
        Some(
            loaded
                .spec
                .production
                .as_ref()
                .unwrap()
                .watch_window
                .as_secs()
        )
    );
    let rollback = plan_for(&loaded, Stage::Rollback, &fixture("after-release.json"));
    assert_eq!(gates(&rollback), [17], "{}", rollback.render());

    // A deadline that leaves no room for a second probe is refused with the gate named.
    let mut loaded = example("python-webapp");
    let interval = loaded
        .spec
        .staging
        .as_ref()
        .unwrap()
        .health
        .as_ref()
        .unwrap()
        .check
        .interval;
    let err = loaded
        .spec
        .override_health_timeout(HealthTimeout::from_secs(interval.as_secs()).unwrap())
        .unwrap_err();
    assert!(matches!(err, Error::HealthTimeoutTooShort { .. }), "{err}");
    assert!(err.to_string().contains("healthCheck"), "{err}");
    assert!(matches!(
        HealthTimeout::from_secs(0),
        Err(Error::HealthTimeoutZero)
    ));
}

#[test]
fn rollback_with_nothing_to_swap_changes_nothing_but_still_puts_settings_back() {
    let loaded = example("python-webapp");
    let mut live = fixture("after-release.json");
    live.tags.insert(
        "slotrelease.slots".into(),
        "production=20261120.1,staging=20261122.7".into(),
    );
    live.tags
        .insert("slotrelease.phase".into(), "staged".into());
    // A lock tag an older version left behind is inert: the lock is the claims now (crate::lock), and a
    // rollback with nothing to restore changes nothing, so it takes no lock.
    live.tags
        .insert("slotrelease.lock".into(), "20261122.7;4102444800".into());
    let plan = plan_for(&loaded, Stage::Rollback, &live);
    let actions: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
    assert!(
        matches!(actions.as_slice(), [Action::Nothing]),
        "{}",
        plan.render()
    );
    // It also wrote production's settings before a swap that never happened.
    live.tags.insert(
        "slotrelease.previousSettings".into(),
        r#"{"RELEASE_VERSION":"20261120.1"}"#.into(),
    );
    let plan = plan_for(&loaded, Stage::Rollback, &live);
    let actions: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
    assert!(
        matches!(
            actions.as_slice(),
            [
                Action::AcquireLock,
                Action::WriteJournal { .. },
                Action::ReleaseLock
            ]
        ),
        "{}",
        plan.render()
    );
}
