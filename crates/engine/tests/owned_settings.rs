//! Settings the config owns: a name the last release set and this one no longer declares is removed (from
//! the staging slot before the deploy, from production when sticky), and the plan says why; a name added
//! by hand, a first release and a journal from before ownership was recorded remove nothing.

use std::collections::{BTreeMap, BTreeSet};

use slot_release_engine::journal::{JournalTags, Owned};
use slot_release_engine::plan::{Action, Plan, Stage};
use slot_release_engine::release::{self};
use slot_release_engine::state::{LiveState, SlotName};

mod support;
use support::{example, fixture, plan_for};

fn sn(name: &str) -> SlotName {
    SlotName::new(name).unwrap()
}

/// The names release `r1` owned on each slot: everything the example declares, and `OLD_FLAG`.
fn owned_by_r1(loaded: &release::LoadedRelease) -> BTreeMap<SlotName, Owned> {
    let mut owned = BTreeMap::new();
    for (env, slot) in [("staging", "staging"), ("production", "production")] {
        let e = &loaded.spec.environments[env];
        let mut settings: BTreeSet<String> =
            e.settings.keys().chain(e.secrets.keys()).cloned().collect();
        settings.insert("OLD_FLAG".into());
        owned.insert(
            sn(slot),
            Owned {
                release: "r1".into(),
                settings,
                connection_strings: BTreeSet::new(),
            },
        );
    }
    owned
}

fn with_journal(mut live: LiveState, owned: Option<BTreeMap<SlotName, Owned>>) -> LiveState {
    let mut journal = JournalTags::from_tags(&live.tags).unwrap();
    journal.release.get_or_insert_with(|| "r1".into());
    journal.owned = owned;
    journal.apply_to(&mut live.tags);
    live
}

fn put(live: &mut LiveState, slot: &str, name: &str, value: &str) {
    live.slots
        .get_mut(slot)
        .unwrap()
        .settings
        .insert(name.into(), value.into());
}

/// Every removal of a plan as `slot:name`, with its why.
fn removals(plan: &Plan) -> Vec<(String, String)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveSettings { slot, removals } => Some(
                removals
                    .iter()
                    .map(|r| (format!("{slot}:{}", r.name), r.why.clone()))
                    .collect::<Vec<_>>(),
            ),
            _ => None,
        })
        .flatten()
        .collect()
}

fn index_of(plan: &Plan, pick: fn(&Action) -> bool) -> usize {
    plan.steps
        .iter()
        .position(|s| pick(&s.action))
        .unwrap_or_else(|| panic!("no such step:\n{}", plan.render()))
}

#[test]
fn a_name_the_last_release_owned_is_removed_from_staging_before_the_deploy_and_the_plan_says_why() {
    let loaded = example("python-webapp");
    let mut live = with_journal(fixture("after-release.json"), Some(owned_by_r1(&loaded)));
    // After release 1's swap the travelling OLD_FLAG is in both slots; a setting added by hand is too.
    put(&mut live, "staging", "OLD_FLAG", "1");
    put(&mut live, "production", "OLD_FLAG", "1");
    put(&mut live, "staging", "HAND_MADE", "x");
    let plan = plan_for(&loaded, Stage::Staging, &live);
    let removed = removals(&plan);
    assert_eq!(
        removed.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        ["staging:OLD_FLAG"],
        "{}",
        plan.render()
    );
    assert!(
        removed[0].1.contains("owned by release r1"),
        "{}",
        removed[0].1
    );
    let text = plan.render();
    assert!(
        text.contains("OLD_FLAG: removed: owned by release r1"),
        "{text}"
    );
    let json = serde_json::to_string(&plan).unwrap();
    assert!(json.contains(r#""type":"removeSettings""#), "{json}");
    assert!(
        index_of(&plan, |a| matches!(a, Action::RemoveSettings { .. }))
            < index_of(&plan, |a| matches!(a, Action::DeployPackage { .. }))
    );
    // The name stays owned while a slot still holds it, so the next release cleans up after the swap.
    let owns = plan.owns.as_ref().unwrap();
    assert_eq!(owns.slot, sn("staging"));
    assert!(owns.settings.contains("OLD_FLAG") && !owns.settings.contains("HAND_MADE"));
    // What the journal keeps of it once the stage ran: the same names, under this release.
    let kept = owns.to_owned_names("r2");
    assert_eq!(kept.release, "r2");
    assert_eq!(kept.settings, owns.settings);
    assert_eq!(kept.connection_strings, owns.connection_strings);

    // Held by staging alone and not sticky: removed, and the sticky list is left as it is.
    live.slots
        .get_mut(&SlotName::production())
        .unwrap()
        .settings
        .remove("OLD_FLAG");
    let plan = plan_for(&loaded, Stage::Staging, &live);
    let unsticks: Vec<bool> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RemoveSettings { removals, .. } => Some(removals.iter().map(|r| r.unsticks)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(unsticks, [false], "{}", plan.render());
}

#[test]
fn a_retired_name_that_a_swap_moved_to_the_other_slot_is_still_removed() {
    let loaded = example("python-webapp");
    // Release 2 took OLD_FLAG out but production still held it at its staging: it stays owned on
    // production. After release 2's swap OLD_FLAG sits in staging only.
    let mut owned = owned_by_r1(&loaded);
    owned
        .get_mut(&sn("staging"))
        .unwrap()
        .settings
        .remove("OLD_FLAG");
    let mut live = with_journal(fixture("after-release.json"), Some(owned));
    put(&mut live, "staging", "OLD_FLAG", "1");
    let plan = plan_for(&loaded, Stage::Staging, &live);
    assert_eq!(removals(&plan).len(), 1, "{}", plan.render());
    // Gone from every slot once removed: no longer owned.
    assert!(!plan.owns.unwrap().settings.contains("OLD_FLAG"));
}

#[test]
fn production_loses_only_sticky_names_and_the_sticky_list_is_cleaned_when_no_slot_keeps_them() {
    let loaded = example("python-webapp");
    let mut live = with_journal(fixture("staged.json"), Some(owned_by_r1(&loaded)));
    put(&mut live, "production", "OLD_FLAG", "1");
    live.sticky_settings.insert("OLD_FLAG".into());
    let plan = plan_for(&loaded, Stage::Production, &live);
    let step = plan
        .steps
        .iter()
        .find_map(|s| match &s.action {
            Action::RemoveSettings { slot, removals } => Some((slot.clone(), removals.clone())),
            _ => None,
        })
        .unwrap_or_else(|| panic!("{}", plan.render()));
    assert_eq!(step.0, SlotName::production());
    assert_eq!(step.1.len(), 1);
    assert!(step.1[0].unsticks, "no other slot holds OLD_FLAG");
    assert!(
        index_of(&plan, |a| matches!(a, Action::RemoveSettings { .. }))
            < index_of(&plan, |a| matches!(a, Action::Swap { .. }))
    );

    // Not sticky: it leaves production with the swap; removing it there would only restart production.
    live.sticky_settings.remove("OLD_FLAG");
    let plan = plan_for(&loaded, Stage::Production, &live);
    assert!(removals(&plan).is_empty(), "{}", plan.render());
    assert!(plan.owns.unwrap().settings.contains("OLD_FLAG"));
}

#[test]
fn a_first_release_and_an_old_journal_remove_nothing_and_an_old_journal_says_so_once() {
    let loaded = example("python-webapp");
    let mut first = fixture("before-first-release.json");
    // No journal at all: Slot Release never released this app.
    first.tags.clear();
    if let Some(s) = first.slots.get_mut("staging") {
        s.settings.insert("OLD_FLAG".into(), "1".into());
    }
    let plan = plan_for(&loaded, Stage::Staging, &first);
    assert!(removals(&plan).is_empty());
    assert!(plan.preflight.iter().all(|c| c.name != "owned-settings"));
    assert!(plan.owns.is_some(), "a first release records what it owns");

    let mut old = with_journal(fixture("after-release.json"), None);
    put(&mut old, "staging", "OLD_FLAG", "1");
    let plan = plan_for(&loaded, Stage::Staging, &old);
    assert!(removals(&plan).is_empty(), "{}", plan.render());
    let notes: Vec<_> = plan
        .preflight
        .iter()
        .filter(|c| c.name == "owned-settings")
        .collect();
    assert_eq!(notes.len(), 1, "{}", plan.render());
    assert!(notes[0].ok && notes[0].detail.contains("none is removed"));
}

#[test]
fn the_owned_names_round_trip_through_the_tags() {
    let loaded = example("python-webapp");
    let live = with_journal(LiveState::default(), Some(owned_by_r1(&loaded)));
    let journal = JournalTags::from_tags(&live.tags).unwrap();
    assert_eq!(journal.owned, Some(owned_by_r1(&loaded)));
}
