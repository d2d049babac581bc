//! What a cancelled run still writes, against the in-memory App Service: the journal write under way when
//! the cancel came is finished (the tags and the slot's deployment record), a swap back cut by the cancel
//! is recorded `rollingBack` so the rollback stage settles it, and all of it within the stop's budget
//! (`stages::StopBudget`, from the agent's timing), however slow Azure turns: the budget is the first
//! signal's, shared by every write, and a SIGTERM brings its end forward. Tokio's paused clock measures
//! the stop exactly.

#[allow(dead_code)] // Shared with the model tests, which use all of it.
mod model {
    pub mod fixture;
    pub mod memory;
}

use std::sync::{Arc, Mutex};
use std::time::Duration;

use model::fixture::{Fixture, Run, fixture, run_stage, run_stage_with, staging, world};
use model::memory::{CancelAt, MemSlot, World};
use slot_release_engine::journal::{JournalTags, Phase};
use slot_release_engine::stages::{Command, ReleaseRecord, RunResult, StopBudget, Stopping};
use slot_release_engine::state::SlotName;
use slot_release_pipelines::agent::CancelSignal;
use tokio_util::sync::CancellationToken;

fn release() -> Run {
    Run {
        id: "build-2".into(),
        name: "20261204.1".into(),
        attempt: 1,
    }
}

fn cancel_at(run: u32, what: &str, nth: usize) -> CancelAt {
    CancelAt {
        run,
        what: what.to_owned(),
        nth,
    }
}

fn journal(world: &Arc<Mutex<World>>) -> JournalTags {
    JournalTags::from_tags(&world.lock().unwrap().tags).expect("a readable journal")
}

fn claims(world: &Arc<Mutex<World>>) -> Vec<String> {
    let w = world.lock().unwrap();
    w.tags
        .keys()
        .filter(|k| k.starts_with("slotrelease.claim."))
        .cloned()
        .collect()
}

/// The phases of the slot's deployment records for `release`, oldest first.
fn record_phases(world: &Arc<Mutex<World>>, slot: &SlotName, release: &str) -> Vec<String> {
    let w = world.lock().unwrap();
    w.slots
        .get(slot)
        .map(|s| {
            s.records
                .iter()
                .filter(|r| r.release == release)
                .map(|r| r.phase.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Every slot the journal names holds that release, by its own records (the next run reads them).
fn journal_matches_the_slots(world: &Arc<Mutex<World>>) -> Result<(), String> {
    let journal = journal(world);
    let w = world.lock().unwrap();
    for (slot, named) in &journal.slots {
        let holds = w.slots.get(slot).and_then(MemSlot::release);
        if holds.as_deref() != Some(named.as_str()) {
            return Err(format!(
                "the journal says {slot} holds {named}, its records say {holds:?}"
            ));
        }
    }
    Ok(())
}

/// Staging of the release, then its production stage, with `before_production` applied to the world
/// between the two.
async fn stage_then_release(
    fx: &Fixture,
    world: &Arc<Mutex<World>>,
    before_production: impl FnOnce(&mut World),
) -> ReleaseRecord {
    let epoch = tokio::time::Instant::now();
    let staged = run_stage(fx, world, 1, Command::Staging, &release(), epoch).await;
    assert!(staged.succeeded(), "staging: {:?}", staged.error);
    before_production(&mut world.lock().unwrap());
    run_stage(fx, world, 2, Command::Production, &release(), epoch).await
}

#[tokio::test(start_paused = true)]
async fn a_journal_write_under_way_at_the_cancel_is_finished_with_its_deployment_record() {
    let fx = fixture();
    let cases = [
        (Command::Staging, Phase::Deployed, staging()),
        (Command::Staging, Phase::Staged, staging()),
        (Command::Production, Phase::Released, SlotName::production()),
    ];
    for (command, phase, slot) in cases {
        let world = Arc::new(Mutex::new(world(7)));
        let what = format!("merge tags (phase {})", phase.as_str());
        let record = if command == Command::Staging {
            world.lock().unwrap().cancel_at.push(cancel_at(1, &what, 1));
            let epoch = tokio::time::Instant::now();
            run_stage(&fx, &world, 1, command, &release(), epoch).await
        } else {
            stage_then_release(&fx, &world, |w| w.cancel_at.push(cancel_at(2, &what, 1))).await
        };
        let case = format!("{command:?} cancelled while writing {phase}");
        assert_eq!(
            record.result,
            RunResult::Cancelled,
            "{case}: {:?}",
            record.error
        );
        assert!(
            world
                .lock()
                .unwrap()
                .cancelled_at
                .contains_key(&if command == Command::Staging { 1 } else { 2 }),
            "{case}: the cancel never came"
        );
        // The journal's tags and the record that goes with them, both written after the cancel.
        let journal = journal(&world);
        assert_eq!(journal.phase, Some(phase), "{case}");
        assert_eq!(journal.release.as_deref(), Some("build-2"), "{case}");
        let phases = record_phases(&world, &slot, "build-2");
        assert!(
            phases.iter().any(|p| p == phase.as_str()),
            "{case}: {slot} has no {phase} record of build-2, only {phases:?}"
        );
        journal_matches_the_slots(&world).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(
            claims(&world),
            Vec::<String>::new(),
            "{case}: the lock was not given back"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_swap_back_cut_by_the_cancel_is_journalled_so_the_rollback_stage_settles_it() {
    let fx = fixture();
    let world = Arc::new(Mutex::new(world(7)));
    // Production turns unhealthy after the swap: the watch fails and the swap back starts, and the
    // cancel comes while Azure runs it (the second swap of the production job).
    let record = stage_then_release(&fx, &world, |w| {
        w.unhealthy.insert("build-2".into());
        w.cancel_at
            .push(cancel_at(2, "swap staging into production", 2));
    })
    .await;
    // The run failed (its watch) before it was cancelled; the stop is what this is about.
    assert_ne!(record.result, RunResult::RolledBack, "{:?}", record.error);
    assert!(world.lock().unwrap().cancelled_at.contains_key(&2));
    let production = || {
        world
            .lock()
            .unwrap()
            .slots
            .get(&SlotName::production())
            .and_then(MemSlot::release)
    };
    // Azure finished the swap back; the run cannot know it, and says so in the journal, while it still
    // holds the lock: it gives the lock back last.
    assert_eq!(production().as_deref(), Some("r1"));
    assert_eq!(journal(&world).phase, Some(Phase::RollingBack));
    assert_eq!(claims(&world), Vec::<String>::new());
    let order: Vec<String> = {
        let w = world.lock().unwrap();
        let of_run_2 = w.calls.iter().filter(|c| c.run == 2);
        of_run_2
            .filter(|c| c.what.starts_with("merge tags (phase") || c.what == "delete tags")
            .map(|c| c.what.clone())
            .collect()
    };
    assert_eq!(
        order.last().map(String::as_str),
        Some("delete tags"),
        "{order:?}"
    );

    // The pipeline's next run, the rollback stage, reconciles the slots from their records and settles.
    world.lock().unwrap().unhealthy.clear();
    let epoch = tokio::time::Instant::now();
    let rollback = Run {
        id: "rollback-1".into(),
        name: "20261204.1-rollback".into(),
        attempt: 1,
    };
    let settled = run_stage(&fx, &world, 3, Command::Rollback, &rollback, epoch).await;
    assert!(
        matches!(settled.result, RunResult::Succeeded | RunResult::RolledBack),
        "{:?} {:?}",
        settled.result,
        settled.error
    );
    let journal = journal(&world);
    assert!(
        journal.phase.is_some_and(|p| p.is_settled()),
        "{:?}",
        journal.phase
    );
    assert_eq!(production().as_deref(), Some("r1"));
    journal_matches_the_slots(&world).unwrap();
}

/// A staging run cancelled while writing `staged`, with Azure slow for every write a stop makes; returns
/// how long the run took from the cancel to its end.
async fn stop_against_a_slow_azure(
    stopping: Stopping,
    then: impl FnOnce(CancellationToken, Stopping) -> tokio::task::JoinHandle<()>,
) -> Duration {
    let fx = fixture();
    let world = Arc::new(Mutex::new(world(7)));
    {
        let mut w = world.lock().unwrap();
        w.cancel_at
            .push(cancel_at(1, "merge tags (phase staged)", 1));
        for call in ["write a record", "read tags", "delete tags"] {
            w.slow_when_stopping
                .push((call.to_owned(), Duration::from_secs(30)));
        }
    }
    let cancel = CancellationToken::new();
    let signals = then(cancel.clone(), stopping.clone());
    let epoch = tokio::time::Instant::now();
    let record = run_stage_with(
        &fx,
        &world,
        1,
        Command::Staging,
        &release(),
        epoch,
        (cancel, stopping),
    )
    .await;
    let ended = tokio::time::Instant::now();
    signals.abort();
    assert_eq!(record.result, RunResult::Cancelled, "{:?}", record.error);
    let cancelled = world.lock().unwrap().cancelled_at[&1];
    ended - cancelled
}

const BUDGET: StopBudget = StopBudget {
    after_interrupt: Duration::from_secs(2),
    after_terminate: Duration::from_millis(500),
};

#[tokio::test(start_paused = true)]
async fn the_stops_writes_share_the_budget_of_the_signal_however_slow_azure_is() {
    // The record, the lock's read and its delete would each take 30 s: all of them end with the
    // budget, 2 s after the cancel, not 2 s each.
    let took =
        stop_against_a_slow_azure(Stopping::new(BUDGET), |_, _| tokio::spawn(async {})).await;
    assert_eq!(took, BUDGET.after_interrupt, "the stop took {took:?}");
}

#[tokio::test(start_paused = true)]
async fn a_sigterm_during_the_stop_ends_it_within_what_the_sigterm_leaves() {
    // The agent's order: SIGINT (the cancel), then SIGTERM; here 300 ms later, so the writes end
    // 500 ms after the SIGTERM, before the budget of the SIGINT would have.
    let took = stop_against_a_slow_azure(Stopping::new(BUDGET), |cancel, stopping| {
        tokio::spawn(async move {
            cancel.cancelled().await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            stopping.heard(CancelSignal::Terminate);
        })
    })
    .await;
    assert_eq!(took, Duration::from_millis(800), "the stop took {took:?}");
}
