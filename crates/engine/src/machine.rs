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

use std::collections::BTreeMap;

use crate::journal::{JournalTags, Phase};
use crate::plan::Stage;
use crate::stages::Unfinished;
use crate::state::PRODUCTION;

/// A journal entry corrected from a slot's deployment records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Correction {
    /// The slot.
    pub slot: String,
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
    live: &BTreeMap<String, Option<String>>,
    source: Option<&str>,
) -> (JournalTags, Vec<Correction>) {
    let mut fixed = journal.clone();
    let mut corrections = Vec::new();
    let swapping = matches!(
        journal.phase,
        Some(Phase::Swapping | Phase::Swapped | Phase::RollingBack)
    );
    let Some(source) = source.filter(|s| *s != PRODUCTION && swapping) else {
        return (fixed, corrections);
    };
    for slot in [PRODUCTION, source] {
        let Some(Some(holds)) = live.get(slot) else {
            continue;
        };
        if journal.slot_release(slot) != Some(holds.as_str()) {
            corrections.push(Correction {
                slot: slot.to_owned(),
                journal: journal.slot_release(slot).map(str::to_owned),
                live: holds.clone(),
            });
            fixed.slots.insert(slot.to_owned(), holds.clone());
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
        /// The journal to plan from.
        journal: JournalTags,
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
                Phase::Swapping | Phase::Swapped => Phase::Staged,
                // Stopped while rolling back: the rollback is finished first.
                Phase::RollingBack => return Settlement::RollBackFirst,
                other => other,
            };
            let mut fixed = journal.clone();
            fixed.phase = Some(stand_in);
            Settlement::Resume {
                journal: fixed,
                release,
                stopped_at: phase,
                own,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            journal: journal("r1", to),
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
        j.slots.insert(PRODUCTION.into(), "r1".into());
        j.slots.insert("staging".into(), "r2".into());
        // Azure finished the swap after the run died.
        let live = BTreeMap::from([
            (PRODUCTION.to_owned(), Some("r2".to_owned())),
            ("staging".to_owned(), Some("r1".to_owned())),
        ]);
        let (fixed, corrections) = reconcile(&j, &live, Some("staging"));
        assert_eq!(fixed.slot_release(PRODUCTION), Some("r2"));
        assert_eq!(fixed.slot_release("staging"), Some("r1"));
        assert_eq!(corrections.len(), 2);
        assert_eq!(corrections[0].journal.as_deref(), Some("r1"));

        // Not in a swapping phase, or no source slot, or a slot without records: the journal stands.
        let settled = journal("r2", Phase::Staged);
        assert_eq!(reconcile(&settled, &live, Some("staging")).1, vec![]);
        assert_eq!(reconcile(&j, &live, None).1, vec![]);
        assert_eq!(reconcile(&j, &live, Some(PRODUCTION)).1, vec![]);
        let unknown = BTreeMap::from([(PRODUCTION.to_owned(), None)]);
        assert_eq!(reconcile(&j, &unknown, Some("staging")).1, vec![]);
    }
}
