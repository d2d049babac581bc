//! The state machine's canary: the journal's record of production's routing rules, taken once before the
//! first share and kept through the swap, and the failure step that puts them back.

use slot_release_engine::journal::{JournalTags, Phase};
use slot_release_engine::machine::{Damage, Effect, Event, next, recovery};
use slot_release_engine::plan::{Action, Stage};
use slot_release_engine::state::SlotName;

fn journal_at(release: &str, phase: Phase) -> JournalTags {
    JournalTags {
        release: Some(release.into()),
        phase: Some(phase),
        ..JournalTags::default()
    }
}

#[test]
fn a_canary_records_the_rules_before_it_once_and_keeps_them_through_the_swap() {
    let staging = SlotName::new("staging").unwrap();
    let rule = |name: &str, percent: f64| slot_release_engine::state::RoutingRule {
        name: name.into(),
        host: format!("{name}.h"),
        percent,
        other: serde_json::Map::new(),
    };
    let before = [rule("blue", 5.0)];
    let event = |phase: Phase, routing| Event {
        stage: Stage::Production,
        phase,
        release: "r2",
        staging_slot: Some(&staging),
        source_slot: Some(&staging),
        swapped: false,
        image_before: None,
        released: None,
        rollback_target: None,
        routing,
    };
    let (j, effects) = next(
        &journal_at("r2", Phase::Staged),
        &event(Phase::Canary, &before),
    );
    assert_eq!(effects, vec![Effect::WriteTags]);
    assert_eq!(j.phase, Some(Phase::Canary));
    let recorded = j.canary.clone().expect("recorded");
    assert_eq!(
        (recorded.percent, recorded.before.as_slice()),
        (0, &before[..])
    );
    // A resumed canary reads its own share in the live rules: they are not the ones to put back.
    let live = [rule("blue", 5.0), rule("staging", 25.0)];
    let (resumed, _) = next(&j, &event(Phase::Canary, &live));
    assert_eq!(resumed.canary, Some(recorded.clone()));
    // The swap's phases leave the record for the step that puts the rules back.
    let (swapping, _) = next(&resumed, &event(Phase::Swapping, &live));
    assert_eq!(swapping.canary, Some(recorded));
    // Whatever the damage, putting the rules back applies (it does nothing when none were recorded).
    let d = Damage {
        stage: Stage::Production,
        swapped: false,
        applied_preview: false,
        image_set: false,
        hooks_ran: false,
        lock_held: false,
    };
    assert_eq!(recovery([&Action::RestoreRouting], &d), vec![true]);
}
