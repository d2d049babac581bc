//! The release's state machine, as pure functions: what a run does with the journal it finds before it plans.
//!
//! `stages` reads the live state, asks these functions, logs their notes and interprets their answers; the
//! decisions themselves know no HTTP, no clock and no process, so every transition is tested in a table
//! (below) and the model tests (`tests/model.rs`) drive the executor around them through every interleaving.
//!
//! Two decisions are made before every stage but the build:
//! - [`reconcile`]: a run stopped during a swap leaves the journal's slots stale (Azure finishes a swap it
//!   accepted). The deployment records travel with the content, so the slots' records win.
//! - [`settle`]: a journal whose phase is not settled belongs to a release that stopped half-way. The run
//!   resumes it (its own release, or `--resume`), rolls it back first (`--rollback-unfinished`, or a stop
//!   during a rollback), or refuses and says what to do.
//!
//! And two while a stage runs:
//! - [`next`]: the journal after a phase is reached (which slot holds which release, the last known-good
//!   release, the history), and the effects that record it: put production's settings back, write the
//!   tags, write the slot's deployment record. The executor interprets the effects in order.
//! - [`recovery`]: after a failure, which of the plan's failure steps apply to what the stage had done.

use std::collections::BTreeMap;

use crate::history;
use crate::journal::{CanaryRecord, JournalTags, Phase};
use crate::plan::{Action, Stage};
use crate::stages::Unfinished;
use crate::state::SlotName;

/// A journal entry corrected from a slot's deployment records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The slot.
    pub slot: SlotName,
    /// What the journal said it held.
    pub journal: Option<String>,
    /// What its deployment records say.
    pub live: String,
}

/// The journal with its slots corrected from the slots' own records, when a swap may have ended after the
/// run that started it died (phases `swapping`, `swapped`, `rollingBack`). `live` is the release each slot's
/// records name; `source` the slot production swaps from.
pub fn reconcile(
    journal: &JournalTags,
    live: &BTreeMap<SlotName, Option<String>>,
    source: Option<&SlotName>,
) -> (JournalTags, Vec<Correction>) {
    let mut fixed = journal.clone();
    let mut corrections = Vec::new();
    let swapping = matches!(
        journal.phase,
        Some(Phase::Swapping | Phase::Swapped | Phase::RollingBack)
    );
    let Some(source) = source.filter(|s| !s.is_production() && swapping) else {
        return (fixed, corrections);
    };
    for slot in [&SlotName::production(), source] {
        let Some(Some(holds)) = live.get(slot) else {
            continue;
        };
        if journal.slot_release(slot) != Some(holds.as_str()) {
            corrections.push(Correction {
                slot: slot.clone(),
                journal: journal.slot_release(slot).map(str::to_owned),
                live: holds.clone(),
            });
            fixed.slots.insert(slot.clone(), holds.clone());
        }
    }
    (fixed, corrections)
}

/// What a run does with the journal it found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settlement {
    /// Nothing is unfinished: plan from the journal as it is.
    Settled,
    /// Resume the unfinished release: plan from `journal`, whose phase is the settled stand-in the plan
    /// starts from (production's own deployment record then says whether its swap happened).
    Resume {
        /// The journal to plan from (boxed: the other answers are small).
        journal: Box<JournalTags>,
        /// The release resumed.
        release: String,
        /// Where it stopped.
        stopped_at: Phase,
        /// Whether this run's own release is resumed without being asked (a retried job).
        own: bool,
    },
    /// Roll the unfinished release back first, then run.
    RollBackFirst,
    /// Refuse: another release stopped half-way, and the run was not told what to do with it.
    Refuse {
        /// The unfinished release.
        release: String,
        /// Where it stopped.
        phase: Phase,
    },
}

/// Decides what a run of `stage` for release `mine` does with `journal`, as the user asked (`unfinished`).
pub fn settle(
    journal: &JournalTags,
    stage: Stage,
    mine: &str,
    unfinished: Unfinished,
) -> Settlement {
    let Some(phase) = journal.phase.filter(|p| !p.is_settled()) else {
        return Settlement::Settled;
    };
    if matches!(stage, Stage::Rollback | Stage::Build) {
        // The rollback stage plans its own way out of any phase; the build touches no app.
        return Settlement::Settled;
    }
    let release = journal.release.clone().unwrap_or_default();
    // A retry of the very release that stopped (the pipeline re-running a killed or cancelled job)
    // continues it: refusing would leave the pipeline no way forward.
    let own = unfinished == Unfinished::Refuse && release == mine;
    let unfinished = if own { Unfinished::Resume } else { unfinished };
    match unfinished {
        Unfinished::Refuse => Settlement::Refuse { release, phase },
        Unfinished::Rollback => Settlement::RollBackFirst,
        Unfinished::Resume => {
            let stand_in = match phase {
                Phase::Staging | Phase::Deployed => Phase::Failed,
                // A stopped canary starts over from its first step, production's traffic rules recorded.
                Phase::Canary | Phase::Swapping | Phase::Swapped => Phase::Staged,
                // Stopped while rolling back: the rollback is finished first.
                Phase::RollingBack => return Settlement::RollBackFirst,
                other => other,
            };
            let mut fixed = journal.clone();
            fixed.phase = Some(stand_in);
            Settlement::Resume {
                journal: Box::new(fixed),
                release,
                stopped_at: phase,
                own,
            }
        }
    }
}

/// What a stage reports to the journal: it reached `phase`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// The stage running.
    pub stage: Stage,
    /// The phase reached.
    pub phase: Phase,
    /// The stage's release (for the rollback stage, its own run's identity, not the target's).
    pub release: &'a str,
    /// The slot staging deploys to; none when the config has no staging stage.
    pub staging_slot: Option<&'a SlotName>,
    /// The slot production swaps from (`production` itself when it takes its image directly); none when the
    /// config has no production stage.
    pub source_slot: Option<&'a SlotName>,
    /// Whether this run swapped a slot into production.
    pub swapped: bool,
    /// The image production ran before this release, when the stage swapped it out (containers): what a
    /// rollback puts back.
    pub image_before: Option<&'a str>,
    /// `released`: the history entry of the release that passed its watch.
    pub released: Option<history::Entry>,
    /// The rollback stage: the release production returned to (else the last known-good one).
    pub rollback_target: Option<&'a str>,
    /// Production's traffic-routing rules as the stage read them: what `canary` records to put back.
    pub routing: &'a [crate::state::RoutingRule],
}

/// What recording a phase takes, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Put back the production settings a release wrote (production runs an earlier release again).
    RestoreProductionSettings,
    /// Write the journal's tags.
    WriteTags,
    /// Write the full record into this slot's deployment history, with the content it describes.
    PutRecord {
        /// The slot.
        slot: SlotName,
    },
}

/// The journal once `event` is recorded, and the effects that record it. Pure: the same journal and event
/// give the same answer, and the table in the tests below covers every phase of every stage.
pub fn next(journal: &JournalTags, event: &Event<'_>) -> (JournalTags, Vec<Effect>) {
    let mut j = journal.clone();
    let release = event.release.to_owned();
    let mut effects = Vec::new();
    // A swap into production happened (`production` as the source: the image was set on it directly).
    let production = SlotName::production();
    let swap_source = event.source_slot.filter(|s| !s.is_production());
    match event.phase {
        Phase::Deployed | Phase::Staged => {
            if let Some(slot) = event.staging_slot {
                j.slots.insert(slot.clone(), release.clone());
            }
        }
        // The rules before the first canary of this release, and only those: a resumed canary finds the
        // earlier run's shares in the live rules, which are not the ones to put back.
        Phase::Canary if j.canary.is_none() => {
            j.canary = Some(Box::new(CanaryRecord {
                percent: 0,
                before: event.routing.to_vec(),
            }));
        }
        Phase::Swapped => {
            if let Some(image) = event.image_before {
                j.previous_image = Some(image.to_owned());
            }
            match (event.source_slot, swap_source) {
                (Some(_), None) => {
                    j.slots.insert(production, release.clone());
                }
                // Only a swap that moved this release into production exchanges the slots: a re-run (or a
                // resumed run) finds them exchanged already and must not exchange them back.
                (_, Some(source)) if j.production_release() != Some(release.as_str()) => {
                    j.swap(source, &production);
                }
                _ => {}
            }
        }
        Phase::Released => {
            j.last_known_good = Some(release.clone());
            if let Some(entry) = event.released.clone() {
                history::push(&mut j.history, entry);
            }
            // Production's settings are this release's for good now.
            j.previous_settings.clear();
        }
        Phase::RolledBack if event.stage == Stage::Rollback => {
            // Production runs an earlier release again, so it gets that release's settings back.
            effects.push(Effect::RestoreProductionSettings);
            let taken_out = j.production_release().map(str::to_owned);
            // Only a swap moves releases between slots; an image change or a closed journal does not.
            if event.swapped
                && let Some(source) = swap_source
            {
                j.swap(source, &production);
            }
            let target = event
                .rollback_target
                .filter(|t| !t.is_empty())
                .map(str::to_owned)
                .or_else(|| j.last_known_good.clone());
            if let Some(target) = target {
                // The release taken out stays in the history, marked, so a plain `rollback` after the next
                // release never returns to it.
                if let Some(out) = taken_out.filter(|out| *out != target) {
                    history::mark_rolled_back(&mut j.history, &out);
                }
                j.slots.insert(production, target.clone());
                j.last_known_good = Some(target);
            }
        }
        Phase::RolledBack => match (event.source_slot, swap_source) {
            // The swap back undoes the exchange recorded at `swapped`, and only that one.
            (_, Some(source)) => {
                if j.production_release() == Some(release.as_str()) {
                    j.swap(source, &production);
                }
            }
            (Some(_), None) => {
                if let Some(lkg) = j.last_known_good.clone() {
                    j.slots.insert(production, lkg);
                }
            }
            (None, None) => {}
        },
        Phase::Failed if event.stage == Stage::Staging => {
            if let Some(slot) = event.staging_slot {
                j.slots.remove(slot);
            }
        }
        _ => {}
    }
    if event.stage != Stage::Rollback {
        j.release = Some(release);
    }
    j.phase = Some(event.phase);
    effects.push(Effect::WriteTags);
    // The full record goes with the content it describes: the deployment history of the slot.
    let record_slot = match event.phase {
        Phase::Deployed | Phase::Staged | Phase::Failed if event.stage == Stage::Staging => {
            event.staging_slot.cloned()
        }
        Phase::Released => Some(SlotName::production()),
        _ => None,
    };
    effects.extend(record_slot.map(|slot| Effect::PutRecord { slot }));
    (j, effects)
}

/// What a stage had done when it failed, as far as its recovery is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    /// The stage that failed.
    pub stage: Stage,
    /// It swapped a slot into production.
    pub swapped: bool,
    /// It applied production's settings to the source slot (swap with preview, phase one).
    pub applied_preview: bool,
    /// It set an image.
    pub image_set: bool,
    /// Hooks with something to undo ran.
    pub hooks_ran: bool,
    /// It holds the release lock.
    pub lock_held: bool,
}

/// Which of the plan's failure steps apply, one answer per step, in order. Pure: the executor runs the
/// steps answered `true` (and stops restoring when a restore itself fails, which only it can know).
pub fn recovery<'a>(steps: impl IntoIterator<Item = &'a Action>, damage: &Damage) -> Vec<bool> {
    // Decided once: executing the swap back changes what the stage did, but the checks after it still
    // concern the release that was taken out.
    let production_changed = damage.swapped || damage.image_set;
    let mut undone = false;
    steps
        .into_iter()
        .map(|action| match action {
            Action::Swap { .. } => damage.swapped,
            Action::ResetSlotConfig { .. } => damage.applied_preview && !damage.swapped,
            Action::SetImage { .. } => damage.image_set && !damage.swapped,
            Action::HealthGate { slot, .. } if slot.is_production() => production_changed,
            Action::UndoHook { .. } => {
                // One undo step undoes every hook that ran; only the first applies.
                let first = !undone;
                undone = true;
                // In production, hooks are undone only after a rollback, never after a refused swap.
                let relevant = damage.stage != Stage::Production || production_changed;
                first && relevant && damage.hooks_ran
            }
            Action::WriteJournal {
                phase: Phase::RolledBack,
            } => production_changed,
            Action::ReleaseLock => damage.lock_held,
            // Puts back what the journal recorded, and nothing when it recorded none.
            Action::RestoreRouting => true,
            _ => true,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRODUCTION: &str = "production";

    fn sn(name: &str) -> SlotName {
        SlotName::new(name).unwrap()
    }

    fn journal(release: &str, phase: Phase) -> JournalTags {
        JournalTags {
            release: Some(release.into()),
            phase: Some(phase),
            ..JournalTags::default()
        }
    }

    /// Every (phase × stage × whose release × what the user asked) that matters, in one table.
    #[test]
    fn settle_table() {
        use Phase::*;
        use Unfinished::{Refuse as R, Resume as Res, Rollback as Rb};
        let resume = |from: Phase, to: Phase, own: bool| Settlement::Resume {
            journal: Box::new(journal("r1", to)),
            release: "r1".into(),
            stopped_at: from,
            own,
        };
        let refuse = |phase: Phase| Settlement::Refuse {
            release: "r1".into(),
            phase,
        };
        let cases: Vec<(Phase, Stage, &str, Unfinished, Settlement)> = vec![
            // Settled phases: nothing to do, whatever was asked.
            (Staged, Stage::Production, "r2", R, Settlement::Settled),
            (Released, Stage::Staging, "r2", R, Settlement::Settled),
            (Failed, Stage::Staging, "r2", Rb, Settlement::Settled),
            (
                RolledBack,
                Stage::Production,
                "r1",
                Res,
                Settlement::Settled,
            ),
            // The rollback stage and the build never settle: they plan their own way.
            (Swapping, Stage::Rollback, "r2", R, Settlement::Settled),
            (Deployed, Stage::Build, "r2", R, Settlement::Settled),
            // Another release stopped half-way: refuse unless told.
            (Staging, Stage::Staging, "r2", R, refuse(Staging)),
            (Swapped, Stage::Production, "r2", R, refuse(Swapped)),
            (Staging, Stage::Staging, "r2", Rb, Settlement::RollBackFirst),
            (
                Deployed,
                Stage::Staging,
                "r2",
                Res,
                resume(Deployed, Failed, false),
            ),
            // This run's own release resumes without being asked.
            (
                Staging,
                Stage::Staging,
                "r1",
                R,
                resume(Staging, Failed, true),
            ),
            (
                Deployed,
                Stage::Staging,
                "r1",
                R,
                resume(Deployed, Failed, true),
            ),
            (
                Swapping,
                Stage::Production,
                "r1",
                R,
                resume(Swapping, Staged, true),
            ),
            (
                Swapped,
                Stage::Production,
                "r1",
                R,
                resume(Swapped, Staged, true),
            ),
            // A stopped canary starts over from its first step; another release's run is refused or
            // rolls it back first (which puts the routing rules back).
            (
                Canary,
                Stage::Production,
                "r1",
                R,
                resume(Canary, Staged, true),
            ),
            (
                Canary,
                Stage::Staging,
                "r2",
                R,
                Settlement::Refuse {
                    release: "r1".into(),
                    phase: Canary,
                },
            ),
            (Canary, Stage::Staging, "r2", Rb, Settlement::RollBackFirst),
            // Stopped during a rollback: the rollback is finished first, even for its own release.
            (
                RollingBack,
                Stage::Production,
                "r1",
                R,
                Settlement::RollBackFirst,
            ),
            (
                RollingBack,
                Stage::Staging,
                "r2",
                Res,
                Settlement::RollBackFirst,
            ),
        ];
        for (i, (phase, stage, mine, asked, expected)) in cases.into_iter().enumerate() {
            assert_eq!(
                settle(&journal("r1", phase), stage, mine, asked),
                expected,
                "case {i}: {phase} / {stage} / {mine} / {asked:?}"
            );
        }
    }

    #[test]
    fn reconcile_goes_by_the_slots_only_after_a_swap_may_have_run() {
        let mut j = journal("r2", Phase::Swapping);
        j.slots.insert(sn(PRODUCTION), "r1".into());
        j.slots.insert(sn("staging"), "r2".into());
        // Azure finished the swap after the run died.
        let live = BTreeMap::from([
            (sn(PRODUCTION), Some("r2".to_owned())),
            (sn("staging"), Some("r1".to_owned())),
        ]);
        let (fixed, corrections) = reconcile(&j, &live, Some(&sn("staging")));
        assert_eq!(fixed.slot_release(&sn(PRODUCTION)), Some("r2"));
        assert_eq!(fixed.slot_release(&sn("staging")), Some("r1"));
        assert_eq!(corrections.len(), 2);
        assert_eq!(corrections[0].journal.as_deref(), Some("r1"));

        // Not in a swapping phase, or no source slot, or a slot without records: the journal stands.
        let settled = journal("r2", Phase::Staged);
        assert_eq!(reconcile(&settled, &live, Some(&sn("staging"))).1, vec![]);
        assert_eq!(reconcile(&j, &live, None).1, vec![]);
        assert_eq!(reconcile(&j, &live, Some(&sn(PRODUCTION))).1, vec![]);
        let unknown = BTreeMap::from([(sn(PRODUCTION), None)]);
        assert_eq!(reconcile(&j, &unknown, Some(&sn("staging"))).1, vec![]);
    }

    fn slots(pairs: &[(&str, &str)]) -> BTreeMap<SlotName, String> {
        pairs
            .iter()
            .map(|(k, v)| (sn(k), (*v).to_owned()))
            .collect()
    }

    fn entry(id: &str) -> history::Entry {
        history::Entry {
            id: id.into(),
            name: format!("n-{id}"),
            released_unix: 7,
            image: None,
            run: None,
            package_sha256: None,
            artifact: None,
            outcome: history::Outcome::Released,
        }
    }

    /// Every phase each stage records, from a journal where production runs r1 and (after `swapped`) the
    /// release r2 of this run was exchanged with it: the slots, the known-good release, the history and the
    /// effects, in one table.
    #[test]
    fn next_table() {
        let staging = sn("staging");
        let production = sn(PRODUCTION);
        use Phase::*;
        let put = |slot: &str| Effect::PutRecord { slot: sn(slot) };
        let event = |stage: Stage, phase: Phase| Event {
            stage,
            phase,
            release: "r2",
            staging_slot: Some(&staging),
            source_slot: Some(&staging),
            swapped: false,
            image_before: None,
            released: None,
            rollback_target: None,
            routing: &[],
        };
        let mut before = journal("r1", Released);
        before.slots = slots(&[(PRODUCTION, "r1"), ("staging", "r0")]);
        before.last_known_good = Some("r1".into());
        before.history = vec![entry("r0"), entry("r1")];
        let mut swapped = before.clone();
        swapped.slots = slots(&[(PRODUCTION, "r2"), ("staging", "r1")]);
        swapped
            .previous_settings
            .insert("A".into(), Some("1".into()));

        struct Case<'a> {
            from: &'a JournalTags,
            event: Event<'a>,
            slots: &'a [(&'a str, &'a str)],
            release: &'a str,
            lkg: &'a str,
            effects: Vec<Effect>,
        }
        let cases = vec![
            // Staging: the slot holds the release from `deployed` on, and loses it when it fails.
            Case {
                from: &before,
                event: event(Stage::Staging, Staging),
                slots: &[(PRODUCTION, "r1"), ("staging", "r0")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &before,
                event: event(Stage::Staging, Deployed),
                slots: &[(PRODUCTION, "r1"), ("staging", "r2")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags, put("staging")],
            },
            Case {
                from: &before,
                event: event(Stage::Staging, Failed),
                slots: &[(PRODUCTION, "r1")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags, put("staging")],
            },
            // A production stage that fails (before its swap) leaves the staged slot and its record as
            // they are: the release is still staged there for a retry.
            Case {
                from: &before,
                event: event(Stage::Production, Failed),
                slots: &[(PRODUCTION, "r1"), ("staging", "r0")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            // Production: `swapped` exchanges the slots once; a re-run finds them exchanged.
            Case {
                from: &before,
                event: event(Stage::Production, Swapped),
                slots: &[(PRODUCTION, "r0"), ("staging", "r1")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &swapped,
                event: event(Stage::Production, Swapped),
                slots: &[(PRODUCTION, "r2"), ("staging", "r1")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &before,
                event: Event {
                    source_slot: Some(&production),
                    ..event(Stage::Production, Swapped)
                },
                slots: &[(PRODUCTION, "r2"), ("staging", "r0")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &swapped,
                event: Event {
                    released: Some(entry("r2")),
                    ..event(Stage::Production, Released)
                },
                slots: &[(PRODUCTION, "r2"), ("staging", "r1")],
                release: "r2",
                lkg: "r2",
                effects: vec![Effect::WriteTags, put(PRODUCTION)],
            },
            // The automatic swap back undoes the recorded exchange, and only that one.
            Case {
                from: &swapped,
                event: event(Stage::Production, RolledBack),
                slots: &[(PRODUCTION, "r1"), ("staging", "r2")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &before,
                event: event(Stage::Production, RolledBack),
                slots: &[(PRODUCTION, "r1"), ("staging", "r0")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            // No staging slot: the rollback put the last known-good image back on production.
            Case {
                from: &swapped,
                event: Event {
                    source_slot: Some(&production),
                    ..event(Stage::Production, RolledBack)
                },
                slots: &[(PRODUCTION, "r1"), ("staging", "r1")],
                release: "r2",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            // The rollback stage: it keeps the journal's release, swaps when it swapped, and production runs
            // its target, which becomes the known-good release; settings go back first.
            Case {
                from: &swapped,
                event: event(Stage::Rollback, RollingBack),
                slots: &[(PRODUCTION, "r2"), ("staging", "r1")],
                release: "r1",
                lkg: "r1",
                effects: vec![Effect::WriteTags],
            },
            Case {
                from: &swapped,
                event: Event {
                    swapped: true,
                    rollback_target: Some("r1"),
                    routing: &[],
                    ..event(Stage::Rollback, RolledBack)
                },
                slots: &[(PRODUCTION, "r1"), ("staging", "r2")],
                release: "r1",
                lkg: "r1",
                effects: vec![Effect::RestoreProductionSettings, Effect::WriteTags],
            },
            Case {
                from: &swapped,
                event: Event {
                    rollback_target: Some("r0"),
                    routing: &[],
                    ..event(Stage::Rollback, RolledBack)
                },
                slots: &[(PRODUCTION, "r0"), ("staging", "r1")],
                release: "r1",
                lkg: "r0",
                effects: vec![Effect::RestoreProductionSettings, Effect::WriteTags],
            },
        ];
        for (i, case) in cases.into_iter().enumerate() {
            let (after, effects) = next(case.from, &case.event);
            let what = format!("case {i}: {} / {}", case.event.stage, case.event.phase);
            assert_eq!(after.slots, slots(case.slots), "{what}");
            assert_eq!(after.phase, Some(case.event.phase), "{what}");
            assert_eq!(after.release.as_deref(), Some(case.release), "{what}");
            assert_eq!(after.last_known_good.as_deref(), Some(case.lkg), "{what}");
            assert_eq!(effects, case.effects, "{what}");
        }
    }

    #[test]
    fn next_keeps_the_history_and_the_settings_to_restore() {
        let staging = sn("staging");
        let mut j = journal("r2", Phase::Swapped);
        j.slots = slots(&[(PRODUCTION, "r2"), ("staging", "r1")]);
        j.history = vec![entry("r1")];
        j.previous_settings.insert("A".into(), Some("1".into()));
        let released = Event {
            stage: Stage::Production,
            phase: Phase::Released,
            release: "r2",
            staging_slot: Some(&staging),
            source_slot: Some(&staging),
            swapped: true,
            image_before: Some("repo:1"),
            released: Some(entry("r2")),
            rollback_target: None,
            routing: &[],
        };
        let (after, _) = next(&j, &released);
        // Released: in the history, and production's settings are this release's for good.
        assert_eq!(after.history.len(), 2);
        assert!(after.previous_settings.is_empty());
        // `image_before` is recorded at the swap only.
        assert_eq!(after.previous_image, None);
        let (swapped, _) = next(
            &j,
            &Event {
                phase: Phase::Swapped,
                released: None,
                ..released.clone()
            },
        );
        assert_eq!(swapped.previous_image.as_deref(), Some("repo:1"));
        // Rolled back from r2 to r1: r2 stays in the history, marked; the settings to restore are left
        // for the effect that restores them.
        let (back, effects) = next(
            &after,
            &Event {
                stage: Stage::Rollback,
                phase: Phase::RolledBack,
                release: "r9",
                rollback_target: Some("r1"),
                routing: &[],
                released: None,
                ..released.clone()
            },
        );
        assert_eq!(back.history[1].outcome, history::Outcome::RolledBack);
        assert_eq!(back.history[0].outcome, history::Outcome::Released);
        assert_eq!(
            back.release.as_deref(),
            Some("r2"),
            "a rollback keeps the journal's release"
        );
        assert_eq!(effects[0], Effect::RestoreProductionSettings);
        let mut with_settings = after.clone();
        with_settings.previous_settings.insert("B".into(), None);
        let (kept, _) = next(
            &with_settings,
            &Event {
                stage: Stage::Rollback,
                phase: Phase::RolledBack,
                rollback_target: Some("r1"),
                routing: &[],
                released: None,
                ..released
            },
        );
        assert_eq!(kept.previous_settings.len(), 1);
    }

    #[test]
    fn recovery_table() {
        let swap = Action::Swap {
            source: sn("staging"),
            target: sn(PRODUCTION),
        };
        let reset = Action::ResetSlotConfig {
            source: sn("staging"),
        };
        let image = Action::SetImage {
            slot: sn(PRODUCTION),
            before: None,
            after: "repo:1".into(),
        };
        let gate = |slot: &str| Action::HealthGate {
            slot: sn(slot),
            gate: crate::health::Gate::new("/health"),
        };
        let undo = |name: &str| Action::UndoHook {
            name: name.into(),
            run_where: crate::spec::HookWhere::Agent,
            command: String::new(),
        };
        let rolled_back = Action::WriteJournal {
            phase: Phase::RolledBack,
        };
        let failed = Action::WriteJournal {
            phase: Phase::Failed,
        };
        let steps = [
            swap,
            reset,
            image,
            gate(PRODUCTION),
            gate("staging"),
            undo("migrate"),
            undo("seed"),
            rolled_back,
            failed,
            Action::ReleaseLock,
        ];
        let d = |stage, swapped, applied_preview, image_set, hooks_ran, lock_held| Damage {
            stage,
            swapped,
            applied_preview,
            image_set,
            hooks_ran,
            lock_held,
        };
        let t = true;
        let f = false;
        #[rustfmt::skip]
        let cases = [
            // The swap happened: swap back, gate production, undo the hooks once, record rolledBack.
            (d(Stage::Production, t, t, f, t, t), [t, f, f, t, t, t, f, t, t, t]),
            // Preview applied but no swap: reset the slot's config; production untouched, hooks kept.
            (d(Stage::Production, f, t, f, t, t), [f, t, f, f, t, f, f, f, t, t]),
            // An image set directly: put the previous one back.
            (d(Stage::Production, f, f, t, f, t), [f, f, t, t, t, f, f, t, t, t]),
            // Staging: hooks are undone although production never changed.
            (d(Stage::Staging, f, f, f, t, t), [f, f, f, f, t, t, f, f, t, t]),
            // No hook ran: nothing to undo; no lock held: nothing to give back.
            (d(Stage::Staging, f, f, f, f, f), [f, f, f, f, t, f, f, f, t, f]),
        ];
        for (i, (damage, expected)) in cases.into_iter().enumerate() {
            assert_eq!(recovery(&steps, &damage), expected, "case {i}: {damage:?}");
        }
    }
}
