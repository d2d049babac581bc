//! What a cancelled run still writes, against the in-memory App Service: all of it within the stop's budget
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

use model::fixture::{Run, fixture, run_stage_with, world};
use model::memory::CancelAt;
use slot_release_engine::stages::{Command, RunResult, StopBudget, Stopping};
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
