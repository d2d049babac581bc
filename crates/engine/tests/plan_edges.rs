//! The planner's edges that the example plans do not walk: a production stage resumed after its swap, a plan
//! made for a later job (`assume_staged`), `WEBSITE_RUN_FROM_PACKAGE` pointing at a URL, and what each step's
//! reason tells the user, a mistyped stage's suggestion, the build number a plan shows, a retired setting
//! production keeps owning, what the startup check says, a container's startup command written only when
//! it differs, and the note a production plan makes about substituted files. Written against the survivors
//! `cargo mutants` reported on `plan/*.rs`.

use slot_release_config::SlotName;
use slot_release_engine::plan::{self, Action, BuildInfo, Plan, PlanInput, Stage};
use slot_release_engine::release::{self};
use slot_release_engine::state::LiveState;

mod support;
use support::{example, fixture, plan_built};

fn plan_with(
    loaded: &release::LoadedRelease,
    stage: Stage,
    state: &LiveState,
    assume_staged: bool,
) -> Plan {
    plan_built(
        loaded,
        stage,
        state,
        BuildInfo {
            assume_staged,
            ..BuildInfo::default()
        },
    )
}

fn kinds(steps: &[plan::Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match &s.action {
            Action::WriteJournal { phase } => format!("journal {phase}"),
            Action::Swap { source, target } => format!("swap {source}->{target}"),
            other => format!("{other:?}")
                .split([' ', '{', '('])
                .next()
                .unwrap_or_default()
                .to_owned(),
        })
        .collect()
}

fn check<'p>(plan: &'p Plan, name: &str) -> &'p plan::Check {
    plan.preflight
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no `{name}` check\n{}", plan.render()))
}

/// The state after a production run stopped right after its swap: production serves this release.
fn swapped() -> LiveState {
    let mut live = fixture("staged.json");
    let production = live.slots.get_mut(&SlotName::production()).unwrap();
    production.release = Some("20261122.7".into());
    live.tags
        .insert("slotrelease.phase".into(), "swapped".into());
    live
}

#[test]
fn a_production_stage_resumed_after_its_swap_only_watches_and_records() {
    let loaded = example("python-webapp");
    let plan = plan_with(&loaded, Stage::Production, &swapped(), false);
    assert!(
        check(&plan, "staged-release")
            .detail
            .contains("only the watch remains"),
        "{}",
        plan.render()
    );
    assert_eq!(
        kinds(&plan.steps),
        [
            "AcquireLock",
            "journal swapped",
            "Watch",
            "journal released",
            "ReleaseLock"
        ],
        "{}",
        plan.render()
    );
    // The example's production rolls back automatically: a failed watch swaps the previous release back.
    assert_eq!(
        kinds(&plan.on_failure),
        [
            "swap staging->production",
            "journal rolledBack",
            "ReleaseLock"
        ],
        "{}",
        plan.render()
    );
}

#[test]
fn a_resumed_production_with_manual_rollback_records_the_failure_and_swaps_nothing() {
    let mut loaded = example("python-webapp");
    loaded.spec.production.as_mut().unwrap().rollback =
        slot_release_engine::spec::RollbackMode::Manual;
    let plan = plan_with(&loaded, Stage::Production, &swapped(), false);
    assert_eq!(
        kinds(&plan.on_failure),
        ["journal failed", "ReleaseLock"],
        "{}",
        plan.render()
    );
}

#[test]
fn a_production_stage_that_has_not_swapped_yet_plans_the_swap() {
    // Production serves the previous release: the full stage, swap included, not the resumed one.
    let loaded = example("python-webapp");
    let plan = plan_with(&loaded, Stage::Production, &fixture("staged.json"), false);
    assert!(check(&plan, "staged-release").ok, "{}", plan.render());
    assert!(
        kinds(&plan.steps).contains(&"swap staging->production".to_owned()),
        "{}",
        plan.render()
    );
}

/// A named change to a staged state, and whether the `staged-release` check still holds after it.
type Case = (&'static str, fn(&mut LiveState), bool);

#[test]
fn the_staged_release_check_needs_slot_release_journal_and_phase_to_agree() {
    let loaded = example("python-webapp");
    let cases: [Case; 5] = [
        ("as staged", |_| {}, true),
        (
            "the slot holds another release",
            |l| {
                let staging = SlotName::new("staging").unwrap();
                l.slots.get_mut(&staging).unwrap().release = Some("20261121.3".into());
            },
            false,
        ),
        (
            "the journal's slot map disagrees",
            |l| {
                l.tags.insert(
                    "slotrelease.slots".into(),
                    "production=20261120.1,staging=20261121.3".into(),
                );
            },
            false,
        ),
        (
            "the phase is not staged",
            |l| {
                l.tags.insert("slotrelease.phase".into(), "released".into());
            },
            false,
        ),
        (
            "the slot does not exist",
            |l| {
                l.slots.remove(&SlotName::new("staging").unwrap());
            },
            false,
        ),
    ];
    for (case, change, ok) in cases {
        let mut live = fixture("staged.json");
        change(&mut live);
        let plan = plan_with(&loaded, Stage::Production, &live, false);
        let staged = check(&plan, "staged-release");
        assert_eq!(staged.ok, ok, "{case}: {}", staged.detail);
        if !ok {
            assert!(
                staged.detail.contains("run the staging stage"),
                "{case}: {}",
                staged.detail
            );
        }
    }
}

#[test]
fn a_plan_for_a_later_job_assumes_the_staging_stage_ran_and_says_so() {
    let loaded = example("python-webapp");
    // Nothing staged yet: a pipeline's plan job runs before its staging job.
    let live = fixture("before-first-release.json");
    let strict = plan_with(&loaded, Stage::Production, &live, false);
    assert!(!check(&strict, "staged-release").ok);
    let assumed = plan_with(&loaded, Stage::Production, &live, true);
    let staged = check(&assumed, "staged-release");
    assert!(staged.ok, "{}", staged.detail);
    assert!(
        staged.detail.starts_with("assumed for this plan"),
        "{}",
        staged.detail
    );
    // Assuming changes nothing when the slot really is staged: the check says what it saw.
    let real = plan_with(&loaded, Stage::Production, &fixture("staged.json"), true);
    assert!(
        check(&real, "staged-release")
            .detail
            .contains("passed its gate"),
        "{}",
        check(&real, "staged-release").detail
    );
}

#[test]
fn run_from_package_is_refused_only_when_it_points_at_a_url() {
    let loaded = example("python-webapp");
    for (value, ok) in [
        ("https://example.blob.core.windows.net/p.zip", false),
        ("http://example.test/p.zip", false),
        ("1", true),
        ("0", true),
    ] {
        let mut live = fixture("staged.json");
        live.slots
            .get_mut(&SlotName::new("staging").unwrap())
            .unwrap()
            .settings
            .insert("WEBSITE_RUN_FROM_PACKAGE".into(), value.into());
        let plan = plan_with(&loaded, Stage::Staging, &live, false);
        assert_eq!(
            check(&plan, "run-from-package").ok,
            ok,
            "{value}: {}",
            plan.render()
        );
        // The value the config declares is the one the slot will have: it wins over the slot's.
        for (declared, ok) in [("1", true), ("https://example.test/p.zip", false)] {
            let mut config = loaded.clone();
            for env in config.spec.environments.values_mut() {
                env.settings
                    .insert("WEBSITE_RUN_FROM_PACKAGE".into(), declared.into());
            }
            let plan = plan_with(&config, Stage::Staging, &live, false);
            let check = check(&plan, "run-from-package");
            assert_eq!(check.ok, ok, "{value} / {declared}: {}", plan.render());
            if !ok {
                assert!(check.detail.contains("the config sets"), "{}", check.detail);
            }
        }
    }
}

#[test]
fn each_settings_step_says_why_it_writes_what_it_writes() {
    let loaded = example("python-webapp");
    let reason = |plan: &Plan, slot: &str| {
        plan.steps
            .iter()
            .find(|s| matches!(&s.action, Action::SetSettings { slot: s, .. } if *s == slot))
            .map(|s| s.reason.clone())
            .unwrap_or_else(|| panic!("no settings step on {slot}\n{}", plan.render()))
    };
    // Staging, with names that travel: what travels and what is sticky.
    let staging = plan_with(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
        false,
    );
    assert!(
        reason(&staging, "staging").contains("travel with the swap"),
        "{}",
        reason(&staging, "staging")
    );
    // Production's own (sticky) settings: production restarts when they change.
    let mut live = fixture("staged.json");
    live.slots
        .get_mut(&SlotName::production())
        .unwrap()
        .settings
        .insert("APP_ENV".into(), "changed".into());
    let production = plan_with(&loaded, Stage::Production, &live, false);
    assert!(
        reason(&production, "production").contains("restarts production"),
        "{}",
        reason(&production, "production")
    );
}

#[test]
fn a_mistyped_stage_is_suggested_only_when_a_letter_or_two_away() {
    use std::str::FromStr;
    assert_eq!(Stage::closest("stagign"), Some("staging"));
    assert_eq!(Stage::closest("prodution"), Some("production"));
    // Letters of a stage's name, but far from it: no suggestion (a missing letter costs one, as any edit).
    for far in ["stg", "rod", "a"] {
        assert_eq!(Stage::closest(far), None, "{far}");
    }
    let err = Stage::from_str("stagign").unwrap_err().to_string();
    assert!(err.contains("did you mean `staging`"), "{err}");
}

#[test]
fn the_plan_names_the_build_number_only_when_it_is_not_the_identity() {
    let loaded = example("python-webapp");
    let state = fixture("staged.json");
    let plan_named = |name: &str| {
        plan::compute(PlanInput {
            target: None,
            spec: &loaded.spec,
            stage: Stage::Staging,
            environment: None,
            state: &state,
            build: &BuildInfo {
                release_id: "build-4711.def-8".into(),
                release_name: Some(name.into()),
                ..BuildInfo::default()
            },
        })
        .unwrap()
    };
    let plan = plan_named("20261122.7");
    assert_eq!(plan.release_name.as_deref(), Some("20261122.7"));
    assert!(plan.render().contains("20261122.7"), "{}", plan.render());
    assert_eq!(plan_named("build-4711.def-8").release_name, None);
}

#[test]
fn production_keeps_owning_a_retired_name_the_staged_slot_still_holds() {
    let loaded = example("python-webapp");
    let mut live = fixture("staged.json");
    let staging = SlotName::new("staging").unwrap();
    // The staged release's config took OLD_FLAG out, but the staging slot still holds it: after the swap
    // it is in production, so production's ownership keeps it for the next release to remove.
    let mut journal = slot_release_engine::journal::JournalTags::from_tags(&live.tags).unwrap();
    journal.owned = Some(
        [(
            staging.clone(),
            slot_release_engine::journal::Owned {
                release: "20261120.1".into(),
                settings: ["OLD_FLAG".to_owned()].into(),
                ..Default::default()
            },
        )]
        .into(),
    );
    journal.apply_to(&mut live.tags);
    live.slots
        .get_mut(&staging)
        .unwrap()
        .settings
        .insert("OLD_FLAG".into(), "on".into());
    let plan = plan_with(&loaded, Stage::Production, &live, false);
    let owns = plan.owns.as_ref().expect("production records what it owns");
    assert_eq!(owns.slot, SlotName::production());
    assert!(
        owns.settings.contains("OLD_FLAG"),
        "{:?}\n{}",
        owns.settings,
        plan.render()
    );
}

/// The staging plan's `startup-command` check for `loaded` on `live`, the package laid out as `files`.
fn startup_detail(
    loaded: &release::LoadedRelease,
    live: &LiveState,
    files: Option<&[&str]>,
) -> plan::Check {
    let plan = plan::compute(PlanInput {
        target: None,
        spec: &loaded.spec,
        stage: Stage::Staging,
        environment: None,
        state: live,
        build: &BuildInfo {
            release_id: loaded.release_id.clone(),
            layout: files.map(|f| {
                slot_release_engine::package::PackageFiles::from_names(f.iter().copied(), None)
            }),
            ..BuildInfo::default()
        },
    })
    .unwrap();
    check(&plan, "startup-command").clone()
}

#[test]
fn the_startup_check_says_what_runs_a_container_and_how_to_start_a_node_app() {
    let mut container = example("container-app");
    container.spec.app.startup_command = None;
    let c = startup_detail(&container, &LiveState::default(), None);
    assert_eq!(
        (c.ok, c.detail.as_str()),
        (true, "the image's entry point runs")
    );
    container.spec.app.startup_command = Some("./serve --port 8000".into());
    let c = startup_detail(&container, &LiveState::default(), None);
    assert!(
        c.detail
            .ends_with("given the startup command \"./serve --port 8000\""),
        "{}",
        c.detail
    );
    // A Node app with nothing the image finds: the fix suggested is Node's, not Python's.
    let mut node = example("python-webapp");
    node.spec.app.stack = Some("NODE|20-lts".into());
    node.spec.app.startup_command = None;
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.startup_command = None;
    }
    let c = startup_detail(&node, &live, Some(&["lib/main.js"]));
    assert!(!c.ok, "{}", c.detail);
    assert!(
        c.detail
            .contains("`npm start`, or add scripts.start to package.json"),
        "{}",
        c.detail
    );
}

#[test]
fn a_container_slots_startup_command_is_written_only_when_it_differs() {
    let mut container = example("container-app");
    container.spec.app.startup_command = Some("./serve --port 8000".into());
    let with_command = |command: &str| {
        let slot = slot_release_engine::state::SlotState {
            startup_command: Some(command.into()),
            ..Default::default()
        };
        LiveState {
            slots: [
                (SlotName::production(), slot.clone()),
                (SlotName::new("staging").unwrap(), slot),
            ]
            .into(),
            ..LiveState::default()
        }
    };
    let sets_command = |live: &LiveState| {
        plan_with(&container, Stage::Staging, live, false)
            .steps
            .iter()
            .any(|s| matches!(s.action, Action::SetStartupCommand { .. }))
    };
    assert!(sets_command(&with_command("./old")));
    // The same command again would only restart the slot.
    assert!(!sets_command(&with_command("./serve --port 8000")));
}

#[test]
fn a_staging_slot_with_nothing_that_travels_is_not_told_production_restarts() {
    let mut loaded = example("python-webapp");
    // Every staging value differs from production's, and staging takes no secret: nothing travels.
    let staging = loaded.spec.environments.get_mut("staging").unwrap();
    staging.secrets.clear();
    for value in staging.settings.values_mut() {
        value.push_str("-staging");
    }
    assert!(loaded.spec.travelling_settings().is_empty());
    let plan = plan_with(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
        false,
    );
    let reason = plan
        .steps
        .iter()
        .find(|s| matches!(&s.action, Action::SetSettings { slot, .. } if *slot == "staging"))
        .map(|s| s.reason.as_str())
        .unwrap_or_else(|| panic!("no settings step\n{}", plan.render()));
    assert!(reason.starts_with("settings written as sticky"), "{reason}");
    assert!(!reason.contains("restarts production"), "{reason}");
}

#[test]
fn the_production_plan_names_the_substituted_settings_whose_value_differs() {
    let mut loaded = example("python-webapp");
    let production = plan_with(&loaded, Stage::Production, &fixture("staged.json"), false);
    assert!(
        production
            .preflight
            .iter()
            .all(|c| c.name != "substitution"),
        "no substitution, no note:\n{}",
        production.render()
    );
    loaded
        .spec
        .environments
        .get_mut("staging")
        .unwrap()
        .substitute = Some(slot_release_config::Substitute {
        json: vec!["appsettings.json".into()],
        xml: false,
    });
    let plan = plan_with(&loaded, Stage::Production, &fixture("staged.json"), false);
    let note = check(&plan, "substitution");
    assert!(note.ok, "a note, not a refusal");
    // APP_ENV differs between the environments; DATABASE_PATH and RELEASE_VERSION do not.
    assert!(
        note.detail
            .contains("keep staging's values for any of these names they hold: APP_ENV;"),
        "{}",
        note.detail
    );
    let same = loaded
        .spec
        .environments
        .get("staging")
        .unwrap()
        .settings
        .clone();
    loaded
        .spec
        .environments
        .get_mut("production")
        .unwrap()
        .settings = same;
    let plan = plan_with(&loaded, Stage::Production, &fixture("staged.json"), false);
    assert!(
        check(&plan, "substitution")
            .detail
            .contains("every name has the same value in production"),
        "{}",
        plan.render()
    );
}
