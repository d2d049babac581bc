//! How long a cancelled run has for the writes it must still make, derived from the agent's cancellation
//! timing, and the token that ends those writes when the time is up.
//!
//! The agent sends SIGINT, then SIGTERM 7.5 s later, then kills 2.5 s after that
//! ([`CancelTiming::AGENT`]). A stopping run still restores production's own settings, finishes the journal
//! write under way and gives the lock back; those writes share one deadline, set by the first signal and
//! brought forward by a later one that leaves less (a SIGTERM on its own leaves 2.5 s), so each write is
//! bounded by what is left of the budget rather than by a fixed grace of its own.

use std::sync::Arc;
use std::time::Duration;

use slot_release_pipelines::agent::{CancelSignal, CancelTiming};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How long `main` lets background work (a hung HTTP call) finish once the run returned; part of
/// [`EXIT_RESERVE`].
pub const RUNTIME_SHUTDOWN: Duration = Duration::from_millis(500);

/// What the binary needs between the end of the stop's writes and its exit, kept free of them: the
/// release record, summary and output variables written, [`RUNTIME_SHUTDOWN`], and node's own exit.
pub const EXIT_RESERVE: Duration = Duration::from_millis(1500);

/// How long the writes a stop must still make may take after each of the agent's signals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopBudget {
    /// After SIGINT (Windows: Ctrl-C).
    pub after_interrupt: Duration,
    /// After SIGTERM (Windows: Ctrl-Break).
    pub after_terminate: Duration,
}

impl StopBudget {
    /// What `timing` leaves after each signal, less [`EXIT_RESERVE`]: the writes end before the agent's
    /// next, harsher step, with the time to report and exit still ahead.
    pub fn within(timing: CancelTiming) -> StopBudget {
        let budget = |signal| timing.next_step_after(signal).saturating_sub(EXIT_RESERVE);
        StopBudget {
            after_interrupt: budget(CancelSignal::Interrupt),
            after_terminate: budget(CancelSignal::Terminate),
        }
    }

    /// The budget after `signal`.
    pub fn after(self, signal: CancelSignal) -> Duration {
        match signal {
            CancelSignal::Interrupt => self.after_interrupt,
            CancelSignal::Terminate => self.after_terminate,
        }
    }
}

impl Default for StopBudget {
    /// The agent's: 6 s after SIGINT, 1 s after SIGTERM.
    fn default() -> Self {
        StopBudget::within(CancelTiming::AGENT)
    }
}

/// The deadline of a run's stop, shared by whoever hears the signals (the binary) and the run (the
/// token of its stopping writes). Clones share it.
#[derive(Debug, Clone)]
pub struct Stopping {
    budget: StopBudget,
    /// When the stop's writes must be done; none until the run is cancelled.
    deadline: Arc<watch::Sender<Option<Instant>>>,
}

impl Default for Stopping {
    fn default() -> Self {
        Stopping::new(StopBudget::default())
    }
}

impl Stopping {
    /// A run not stopping yet, with `budget` for when it does.
    pub fn new(budget: StopBudget) -> Stopping {
        Stopping {
            budget,
            deadline: Arc::new(watch::Sender::new(None)),
        }
    }

    /// The budget this stop is measured against.
    pub fn budget(&self) -> StopBudget {
        self.budget
    }

    /// `signal` was heard (call it before cancelling the run's token): the stop's writes end within what
    /// it leaves, or sooner when an earlier signal left less. Returns what is left.
    pub fn heard(&self, signal: CancelSignal) -> Duration {
        let end = Instant::now() + self.budget.after(signal);
        self.deadline.send_if_modified(|deadline| match deadline {
            Some(at) if *at <= end => false,
            _ => {
                *deadline = Some(end);
                true
            }
        });
        self.left().unwrap_or_default()
    }

    /// What is left for the stop's writes; `None` while the run is not stopping.
    pub fn left(&self) -> Option<Duration> {
        self.deadline
            .borrow()
            .map(|at| at.saturating_duration_since(Instant::now()))
    }

    /// The token of the writes a stop must still make: cancelled when the stop's deadline passes, not by
    /// the cancel itself. A cancel no signal announced (the run's own timeout, a test) counts as the
    /// agent's SIGINT. The guard ends the timer with the run.
    pub(crate) fn settle_token(&self, run: &CancellationToken) -> (CancellationToken, DropGuard) {
        let settle = CancellationToken::new();
        let (run, timer, stopping) = (run.clone(), settle.clone(), self.clone());
        let mut moved = self.deadline.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                () = run.cancelled() => {}
                () = timer.cancelled() => return,
            }
            if stopping.left().is_none() {
                stopping.heard(CancelSignal::Interrupt);
            }
            // Until the deadline, which a later signal may bring forward.
            loop {
                let deadline = *moved.borrow_and_update();
                let Some(at) = deadline else { break };
                tokio::select! {
                    () = tokio::time::sleep_until(at) => break,
                    changed = moved.changed() => {
                        if changed.is_err() {
                            break;
                        }
                    }
                    () = timer.cancelled() => return,
                }
            }
            timer.cancel();
        });
        let guard = settle.clone().drop_guard();
        (settle, guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget() -> StopBudget {
        StopBudget {
            after_interrupt: Duration::from_secs(6),
            after_terminate: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_agents_budget_ends_before_its_next_signal_with_the_exit_reserve_free() {
        let agent = StopBudget::default();
        let timing = CancelTiming::AGENT;
        assert_eq!(agent.after_interrupt + EXIT_RESERVE, timing.sigint_timeout);
        assert_eq!(agent.after_terminate + EXIT_RESERVE, timing.sigterm_timeout);
        assert!(RUNTIME_SHUTDOWN < EXIT_RESERVE);
        // A timing shorter than the reserve leaves nothing, rather than wrapping around.
        let tight = StopBudget::within(CancelTiming {
            sigint_timeout: Duration::from_secs(1),
            sigterm_timeout: Duration::ZERO,
        });
        assert_eq!(tight.after_terminate, Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_settle_token_outlives_the_cancel_by_the_budget_of_the_signal() {
        let stopping = Stopping::new(budget());
        let run = CancellationToken::new();
        let (settle, _guard) = stopping.settle_token(&run);
        assert_eq!(stopping.left(), None);
        let start = Instant::now();
        stopping.heard(CancelSignal::Interrupt);
        run.cancel();
        settle.cancelled().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn a_later_sigterm_brings_the_deadline_forward_and_a_later_sigint_does_not_extend_it() {
        let stopping = Stopping::new(budget());
        let run = CancellationToken::new();
        let (settle, _guard) = stopping.settle_token(&run);
        let start = Instant::now();
        stopping.heard(CancelSignal::Interrupt);
        run.cancel();
        tokio::time::sleep(Duration::from_secs(2)).await;
        // What is left of the first signal's budget, not a new one.
        assert_eq!(
            stopping.heard(CancelSignal::Interrupt),
            Duration::from_secs(4)
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(
            stopping.heard(CancelSignal::Terminate),
            Duration::from_secs(1)
        );
        settle.cancelled().await;
        assert_eq!(start.elapsed(), Duration::from_secs(4));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancel_no_signal_announced_gets_the_sigint_budget_and_a_run_that_ends_stops_the_timer()
     {
        let stopping = Stopping::new(budget());
        let run = CancellationToken::new();
        let (settle, guard) = stopping.settle_token(&run);
        let start = Instant::now();
        run.cancel();
        settle.cancelled().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        drop(guard);

        let stopping = Stopping::new(budget());
        let run = CancellationToken::new();
        let (settle, guard) = stopping.settle_token(&run);
        drop(guard);
        // The run ended without a cancel: its token is cancelled by the guard, nothing waits.
        assert!(settle.is_cancelled());
    }
}
