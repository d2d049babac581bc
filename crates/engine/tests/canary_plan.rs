//! The canary's plans: each share routed between production's settings on the slot and the swap, the
//! abort that starts the failure steps, the routing preflight, and the rollback of a stopped canary.

mod support;

use slot_release_engine::journal::Phase;
use slot_release_engine::plan::{Action, Plan, Stage};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::state::{LiveState, RoutingRule, SlotName};
use support::*;

const HOST: &str = "contoso-web-staging-k2x9.westeurope-01.azurewebsites.net";

/// The Python example with `strategy: canary`: 10 % gated, 50 % paused, then the swap.
fn canary_example() -> LoadedRelease {
    let text = std::fs::read_to_string(root().join("examples/python-webapp/release.yml"))
        .unwrap()
        .replace(
            "    strategy: swap\n",
            "    strategy: canary\n    canary:\n      steps:\n        - percent: 10\n          healthCheck:\n            path: /health\n            interval: 1s\n            timeout: 20s\n        - percent: 50\n          pause: 30s\n        - percent: 100\n",
        );
    assert!(text.contains("strategy: canary"));
    // One file per test thread: the tests run in parallel.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("canary-plan-{:?}", std::thread::current().id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("release.yml");
    std::fs::write(&path, text).unwrap();
    load(&path)
}

fn rule(name: &str, host: &str, percent: f64) -> RoutingRule {
    RoutingRule {
        name: name.into(),
        host: host.into(),
        percent,
        other: serde_json::Map::new(),
    }
}

/// The staged fixture, the staging slot's host as ARM names it, and a rule of another slot's.
fn staged() -> LiveState {
    let mut state = fixture("staged.json");
    state
        .slots
        .get_mut(&SlotName::new("staging").unwrap())
        .unwrap()
        .host_name = Some(HOST.into());
    state.routing = vec![rule("blue", "contoso-web-blue.h", 5.0)];
    state
}

fn outline(steps: &[slot_release_engine::plan::Step]) -> Vec<String> {
    steps
        .iter()
        .map(|s| match &s.action {
            Action::WriteJournal { phase } => format!("journal {phase}"),
            Action::ApplySlotConfig { source, .. } => format!("apply {source}"),
            Action::ResetSlotConfig { source } => format!("reset {source}"),
            Action::HealthGate { slot, .. } => format!("gate {slot}"),
            Action::Route {
                source,
                host,
                percent,
            } => format!("route {percent} {source} {host}"),
            Action::Pause { seconds } => format!("pause {seconds}"),
            Action::RestoreRouting => "restore routing".into(),
            Action::Swap { source, .. } => format!("swap {source}"),
            Action::Watch { .. } => "watch".into(),
            Action::AcquireLock => "lock".into(),
            Action::ReleaseLock => "unlock".into(),
            Action::UndoHook { name, .. } => format!("undo {name}"),
            _ => "other".into(),
        })
        .collect()
}

fn problems(plan: &Plan) -> Vec<(String, String)> {
    plan.problems()
        .map(|c| (c.name.clone(), c.detail.clone()))
        .collect()
}

#[test]
fn a_canary_routes_each_share_between_production_settings_on_the_slot_and_the_swap() {
    let loaded = canary_example();
    let plan = plan_for(&loaded, Stage::Production, &staged());
    assert_eq!(problems(&plan), vec![], "{}", plan.render());
    let steps = outline(&plan.steps);
    let from = steps.iter().position(|s| s == "journal canary").unwrap();
    assert_eq!(
        steps[from..],
        [
            "journal canary".to_owned(),
            "apply staging".into(),
            "gate staging".into(),
            format!("route 10 staging {HOST}"),
            "gate staging".into(),
            format!("route 50 staging {HOST}"),
            "pause 30".into(),
            "journal swapping".into(),
            "swap staging".into(),
            "restore routing".into(),
            "journal swapped".into(),
            "watch".into(),
            "journal released".into(),
            "unlock".into(),
        ]
    );
    // The step's own gate, not the watch's: its timeout is the step's.
    let gates: Vec<u64> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::HealthGate { gate, .. } => Some(gate.timeout.as_secs()),
            _ => None,
        })
        .collect();
    assert_eq!(gates[gates.len() - 1], 20);
    // An abort takes the share back and the slot's own settings before anything else.
    assert_eq!(
        outline(&plan.on_failure)[..2],
        ["restore routing".to_owned(), "reset staging".into()]
    );
    let rendered = plan.render();
    assert!(
        rendered.contains("canary: route 10 % of production traffic to staging"),
        "{rendered}"
    );
}

#[test]
fn the_routing_preflight_refuses_a_rule_it_did_not_write_on_the_slot_and_shares_over_all() {
    let loaded = canary_example();
    let mut state = staged();
    state.routing.push(rule("staging", HOST, 20.0));
    let refused = problems(&plan_for(&loaded, Stage::Production, &state));
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0].0, "canary-routing");
    assert!(refused[0].1.contains("20 %"), "{}", refused[0].1);

    let mut state = staged();
    state.routing = vec![rule("blue", "b.h", 30.0), rule("green", "g.h", 25.0)];
    let refused = problems(&plan_for(&loaded, Stage::Production, &state));
    assert_eq!(refused[0].0, "canary-routing");
    assert!(refused[0].1.contains("55 %"), "{}", refused[0].1);

    // A host ARM does not name is never made up.
    let mut state = staged();
    state
        .slots
        .get_mut(&SlotName::new("staging").unwrap())
        .unwrap()
        .host_name = None;
    let refused = problems(&plan_for(&loaded, Stage::Production, &state));
    assert_eq!(refused[0].0, "canary-routing");
}

/// The journal of a canary that stopped at 50 %: the rules before it, and the share it routed.
fn stopped_canary() -> LiveState {
    let mut state = staged();
    state.routing = vec![
        rule("blue", "contoso-web-blue.h", 5.0),
        rule("staging", HOST, 50.0),
    ];
    state
        .tags
        .insert("slotrelease.phase".into(), "canary".into());
    state.tags.insert(
        "slotrelease.canary".into(),
        r#"{"p":50,"before":[{"name":"blue","host":"contoso-web-blue.h","percent":5.0}]}"#.into(),
    );
    state
}

#[test]
fn a_resumed_canary_starts_over_on_the_rules_recorded_before_it() {
    let loaded = canary_example();
    // The preflight judges the recorded rules: the canary's own 50 % is not someone else's rule.
    let plan = plan_for(&loaded, Stage::Production, &stopped_canary());
    let problems: Vec<_> = problems(&plan)
        .into_iter()
        .filter(|(name, _)| name == "canary-routing")
        .collect();
    assert_eq!(problems, vec![]);
}

#[test]
fn a_rollback_of_a_stopped_canary_puts_the_rules_back_and_swaps_nothing() {
    let loaded = canary_example();
    let plan = plan_for(&loaded, Stage::Rollback, &stopped_canary());
    assert_eq!(problems(&plan), vec![], "{}", plan.render());
    let steps = outline(&plan.steps);
    assert_eq!(
        steps,
        [
            "lock",
            "restore routing",
            "reset staging",
            "journal rolledBack",
            "unlock"
        ],
        "{}",
        plan.render()
    );
    // A journal with no canary recorded plans no routing step.
    let mut state = stopped_canary();
    state.tags.remove("slotrelease.canary");
    state
        .tags
        .insert("slotrelease.phase".into(), Phase::Swapping.to_string());
    let plan = plan_for(&loaded, Stage::Rollback, &state);
    assert!(!outline(&plan.steps).contains(&"restore routing".to_owned()));
}

#[test]
fn a_staging_stage_after_a_stopped_canary_takes_the_share_back_before_it_deploys() {
    let loaded = canary_example();
    let mut state = stopped_canary();
    // As a resumed run plans it: the settled stand-in, the canary's record kept.
    state
        .tags
        .insert("slotrelease.phase".into(), "staged".into());
    let plan = plan_for(&loaded, Stage::Staging, &state);
    let steps = outline(&plan.steps);
    let lock = steps.iter().position(|s| s == "lock").expect("a lock");
    assert_eq!(steps[lock + 1], "restore routing", "{}", plan.render());
    // Without a canary recorded, staging plans no routing step.
    state.tags.remove("slotrelease.canary");
    let plan = plan_for(&loaded, Stage::Staging, &state);
    assert!(!outline(&plan.steps).contains(&"restore routing".to_owned()));
}
