//! The rollback plan's choices that a user meets and the example plans do not pin: swap back or redeploy
//! the release's artifact, what the package check says, when the plan names the artifact to download,
//! which build number it shows, and when it undoes hooks. Each row was written against a `cargo mutants`
//! survivor of `plan/rollback.rs` and fails when its comparison is turned around.

use std::collections::BTreeMap;

use slot_release_engine::history::{ArtifactSource, Entry, Outcome};
use slot_release_engine::journal::{JournalTags, Phase};
use slot_release_engine::plan::{self, Action, BuildInfo, Plan, PlanInput, Stage};
use slot_release_engine::release::{self, LoadRequest};
use slot_release_engine::spec::ReleaseSpec;
use slot_release_engine::state::{LiveState, SlotName, SlotState};

/// A code app released through its staging slot; the rollback stage's `restore` and `undoHooks` vary.
fn config(restore: &str, undo_hooks: bool) -> String {
    format!(
        r#"
version: 1
app:
  name: web
  resourceGroup: web-rg
  kind: code
  stack: PYTHON|3.12
  startupCommand: python3 app.py
package:
  root: .
environments:
  staging:
    slot: staging
    settings:
      APP_ENV: staging
  production:
    slot: production
    settings:
      APP_ENV: production
stages:
  staging:
    environment: staging
    hooks:
      - name: migrate
        run: python3 migrate.py up
        undo: python3 migrate.py down
    healthCheck:
      path: /health
  production:
    environment: production
    sourceSlot: staging
    strategy: swap
    watch:
      duration: 1m
      healthCheck:
        path: /health
  rollback:
    environment: production
    restore: {restore}
    undoHooks: {undo}
"#,
        undo = if undo_hooks { "run" } else { "skip" }
    )
}

fn spec(restore: &str, undo_hooks: bool) -> ReleaseSpec {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("release.yml");
    std::fs::write(&path, config(restore, undo_hooks)).unwrap();
    std::fs::write(dir.path().join("app.py"), "print('hi')\n").unwrap();
    release::load(
        &path,
        &LoadRequest {
            release_id: Some("rollback-run".into()),
            ..LoadRequest::default()
        },
    )
    .unwrap_or_else(|d| panic!("the config does not load:\n{d}"))
    .spec
}

const R1_SHA: &str = "1111111111111111111111111111111111111111111111111111111111111111";
const OTHER_SHA: &str = "2222222222222222222222222222222222222222222222222222222222222222";

fn entry(id: &str, name: &str) -> Entry {
    Entry {
        id: id.into(),
        name: name.into(),
        released_unix: 1,
        image: None,
        run: Some("pipeline 8, run 601".into()),
        package_sha256: Some(R1_SHA.into()),
        artifact: Some(ArtifactSource {
            pipeline: Some("8".into()),
            run: "601".into(),
            artifact: "slot-release-package".into(),
        }),
        outcome: Outcome::Released,
    }
}

/// Production runs r2, released after r1 (whose build number is `r1_name`): the rollback returns to
/// r1, which the staging slot still holds when `r1_in_staging`, else no slot does.
fn live(r1_name: &str, r1_in_staging: bool) -> LiveState {
    let mut journal = JournalTags {
        release: Some("r2".into()),
        phase: Some(Phase::Released),
        last_known_good: Some("r2".into()),
        history: vec![entry("r1", r1_name), entry("r2", "20261202.1")],
        ..JournalTags::default()
    };
    journal.slots.insert(SlotName::production(), "r2".into());
    let staging = SlotName::new("staging").unwrap();
    let staged = r1_in_staging.then(|| "r1".to_owned());
    if let Some(r1) = &staged {
        journal.slots.insert(staging.clone(), r1.clone());
    }
    let mut tags = BTreeMap::new();
    journal.apply_to(&mut tags);
    let slot = |release: Option<String>| SlotState {
        release,
        linux_fx_version: Some("PYTHON|3.12".into()),
        ..SlotState::default()
    };
    LiveState {
        slots: BTreeMap::from([
            (SlotName::production(), slot(Some("r2".into()))),
            (staging, slot(staged)),
        ]),
        tags,
        ..LiveState::default()
    }
}

/// The rollback plan, given a package of digest `given` (`--package`), or planned for a later job that
/// will be given the recorded one (`package_later`).
fn rollback(spec: &ReleaseSpec, state: &LiveState, given: Option<&str>, later: bool) -> Plan {
    plan::compute(PlanInput {
        target: None,
        spec,
        stage: Stage::Rollback,
        environment: None,
        state,
        build: &BuildInfo {
            release_id: "rollback-run".into(),
            package_sha256: given.map(str::to_owned),
            package_later: later,
            ..BuildInfo::default()
        },
    })
    .expect("a plan")
}

fn check<'p>(plan: &'p Plan, name: &str) -> Option<&'p plan::Check> {
    plan.preflight.iter().find(|c| c.name == name)
}

/// How the plan restores production: `swap`, `redeploy` or `refused`.
fn method(plan: &Plan) -> &'static str {
    let deploys = plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::DeployPackage { .. }));
    let swaps = plan
        .steps
        .iter()
        .any(|s| matches!(s.action, Action::Swap { .. }));
    match (plan.problems().next().is_some(), deploys, swaps) {
        (true, _, _) => "refused",
        (false, true, _) => "redeploy",
        (false, false, true) => "swap",
        _ => "nothing",
    }
}

fn undoes_hooks(plan: &Plan) -> bool {
    plan.steps
        .iter()
        .any(|s| matches!(s.action, Action::UndoHook { .. }))
}

#[test]
fn a_release_still_in_its_slot_is_swapped_back_even_when_its_package_is_given() {
    let spec = spec("swapBack", false);
    let plan = rollback(&spec, &live("20261201.1", true), Some(R1_SHA), false);
    assert_eq!(method(&plan), "swap", "{}", plan.render());
    // Nothing to download: the slot holds it.
    assert_eq!(plan.artifact, None);
    assert!(check(&plan, "package").is_none(), "{:?}", plan.preflight);
}

#[test]
fn a_release_in_no_slot_is_redeployed_only_from_a_package_given_or_promised_to_its_job() {
    let spec = spec("swapBack", false);
    let state = live("20261201.1", false);
    // No package: refused, saying where the artifact is.
    let plan = rollback(&spec, &state, None, false);
    assert_eq!(method(&plan), "refused", "{}", plan.render());
    let refusal = check(&plan, "last-known-good").expect("the refusal");
    assert!(!refusal.ok);
    assert!(
        refusal
            .detail
            .contains("download artifact slot-release-package of run 601"),
        "{}",
        refusal.detail
    );
    // Planned for the job that will download it: a redeploy, and the job is told which package.
    let plan = rollback(&spec, &state, None, true);
    assert_eq!(method(&plan), "redeploy", "{}", plan.render());
    assert!(plan.artifact.is_some());
    let package = check(&plan, "package").expect("a package check");
    assert!(package.ok && package.detail.contains("needs its package"));
}

#[test]
fn the_package_check_says_whether_the_package_given_is_the_releases() {
    let spec = spec("swapBack", false);
    let state = live("20261201.1", false);
    let plan = rollback(&spec, &state, Some(R1_SHA), false);
    assert_eq!(method(&plan), "redeploy", "{}", plan.render());
    let package = check(&plan, "package").expect("a package check");
    assert!(package.ok);
    assert!(
        package
            .detail
            .starts_with("the package given is release 20261201.1 (r1)'s"),
        "{}",
        package.detail
    );
    let plan = rollback(&spec, &state, Some(OTHER_SHA), false);
    let package = check(&plan, "package").expect("a package check");
    assert!(!package.ok);
    assert!(
        package.detail.contains(&format!(
            "is not release 20261201.1 (r1)'s package (sha256 {R1_SHA})"
        )),
        "{}",
        package.detail
    );
}

#[test]
fn the_plan_shows_the_targets_build_number_only_when_it_differs_from_its_identity() {
    let spec = spec("swapBack", false);
    let plan = rollback(&spec, &live("20261201.1", true), None, false);
    assert_eq!(plan.release_id, "r1");
    assert_eq!(plan.release_name.as_deref(), Some("20261201.1"));
    // The identity as its own name, or no name: nothing more to show.
    for same in ["r1", ""] {
        let plan = rollback(&spec, &live(same, true), None, false);
        assert_eq!(plan.release_name, None, "name {same:?}");
    }
}

#[test]
fn hooks_are_undone_after_a_swap_back_when_asked_and_never_after_a_redeploy() {
    let swap = live("20261201.1", true);
    let no_slot = live("20261201.1", false);
    let asked = spec("swapBack", true);
    let plan = rollback(&asked, &swap, None, false);
    assert_eq!(method(&plan), "swap");
    assert!(undoes_hooks(&plan), "{}", plan.render());
    // A redeployed release ran its own hooks: nothing of the release taken out is undone after them.
    let plan = rollback(&asked, &no_slot, Some(R1_SHA), false);
    assert_eq!(method(&plan), "redeploy");
    assert!(!undoes_hooks(&plan), "{}", plan.render());
    // Not asked: no undo.
    let plan = rollback(&spec("swapBack", false), &swap, None, false);
    assert_eq!(method(&plan), "swap");
    assert!(!undoes_hooks(&plan), "{}", plan.render());
}

#[test]
fn a_release_in_no_slot_runs_again_from_the_package_kudu_kept_when_the_slot_runs_from_its_package()
{
    let spec = spec("swapBack", false);
    let mut state = live("20261201.1", false);
    let staging = SlotName::new("staging").unwrap();
    state
        .slots
        .get_mut(&staging)
        .unwrap()
        .settings
        .insert("WEBSITE_RUN_FROM_PACKAGE".into(), "1".into());
    for later in [false, true] {
        let plan = rollback(&spec, &state, None, later);
        assert!(plan.problems().next().is_none(), "{}", plan.render());
        let kinds: Vec<&Action> = plan.steps.iter().map(|s| &s.action).collect();
        let kept = kinds
            .iter()
            .position(|a| matches!(a, Action::UseKeptPackage { slot, sha256 } if *slot == staging && sha256 == R1_SHA))
            .unwrap_or_else(|| panic!("no kept package step\n{}", plan.render()));
        let gate = kinds
            .iter()
            .position(|a| matches!(a, Action::HealthGate { slot, .. } if *slot == staging));
        let swap = kinds
            .iter()
            .position(|a| matches!(a, Action::Swap { .. }))
            .expect("a swap");
        assert!(
            gate.is_some_and(|g| kept < g && g < swap),
            "{}",
            plan.render()
        );
        assert!(
            !kinds
                .iter()
                .any(|a| matches!(a, Action::DeployPackage { .. }))
        );
        // Nothing to download: the slot keeps it.
        assert_eq!(plan.artifact, None, "later: {later}");
        let package = check(&plan, "package").expect("a package check");
        assert!(package.ok && package.detail.contains("runs from its package"));
    }
    // A package given is deployed, verified against the history, as anywhere else.
    let plan = rollback(&spec, &state, Some(R1_SHA), false);
    assert_eq!(method(&plan), "redeploy", "{}", plan.render());
    // A slot that does not run from its package keeps nothing.
    state
        .slots
        .get_mut(&staging)
        .unwrap()
        .settings
        .insert("WEBSITE_RUN_FROM_PACKAGE".into(), "0".into());
    assert_eq!(method(&rollback(&spec, &state, None, false)), "refused");
}
