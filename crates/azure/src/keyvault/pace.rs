//! How fast a vault is read: the vault's documented request budget, kept on our side so a wide wave
//! of reads does not draw 429s, and the per-batch throttle that halves the reads in flight when the
//! vault throttles anyway (another client shares the vault's budget).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most `limit` requests start in any `window`: a log of the last `limit` start times. A token
/// bucket would allow twice the limit inside one of the vault's fixed windows (a full bucket, then
/// the refill), which is what Key Vault counts; the log cannot. Memory: `limit` instants.
#[derive(Debug)]
pub(super) struct Budget {
    limit: usize,
    window: Duration,
    starts: Mutex<VecDeque<Instant>>,
}

impl Budget {
    pub(super) fn new(limit: usize, window: Duration) -> Self {
        let limit = limit.max(1);
        Self {
            limit,
            window,
            starts: Mutex::new(VecDeque::with_capacity(limit.min(4096))),
        }
    }

    /// Waits until one more request fits the budget, and counts it.
    pub(super) async fn take(&self) {
        loop {
            let wait = {
                let Ok(mut starts) = self.starts.lock() else {
                    return;
                };
                let now = Instant::now();
                while starts
                    .front()
                    .is_some_and(|t| now.duration_since(*t) >= self.window)
                {
                    starts.pop_front();
                }
                if starts.len() < self.limit {
                    starts.push_back(now);
                    return;
                }
                // Full: the oldest start leaves the window first.
                starts
                    .front()
                    .map(|t| self.window.saturating_sub(now.duration_since(*t)))
                    .unwrap_or_default()
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }
}

/// Throttle state shared by the concurrent reads of one batch.
pub(super) struct Throttle {
    pub(super) semaphore: tokio::sync::Semaphore,
    limit: Mutex<usize>,
    pause_until: Mutex<Option<Instant>>,
}

impl Throttle {
    pub(super) fn new(limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            semaphore: tokio::sync::Semaphore::new(limit),
            limit: Mutex::new(limit),
            pause_until: Mutex::new(None),
        }
    }

    /// Reads allowed in flight now.
    #[cfg(test)]
    pub(super) fn limit(&self) -> usize {
        self.limit.lock().map(|l| *l).unwrap_or(0)
    }

    /// Lowers the reads in flight to at most `to` (over HTTP/1.1 each read is its own connection).
    pub(super) fn cap(&self, to: usize) {
        self.retire_to(to.max(1));
    }

    pub(super) fn on_throttled(&self, wait: Duration) {
        if let Ok(mut p) = self.pause_until.lock() {
            let until = Instant::now() + wait;
            if p.is_none_or(|cur| cur < until) {
                *p = Some(until);
            }
        }
        // Halve the concurrency (never below 1).
        let current = self.limit.lock().map(|l| *l).unwrap_or(1);
        self.retire_to((current / 2).max(1));
    }

    /// Retires permits down to `target`. Permits held by reads in flight cannot be forgotten now, so
    /// only the ones free are, and the limit records what was actually retired.
    fn retire_to(&self, target: usize) {
        if let Ok(mut l) = self.limit.lock()
            && *l > target
        {
            let retired = self.semaphore.forget_permits(*l - target);
            *l -= retired;
        }
    }

    pub(super) fn pause(&self) -> Option<Duration> {
        let p = self.pause_until.lock().ok()?;
        p.and_then(|u| u.checked_duration_since(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_budget_lets_a_window_through_at_once_and_holds_the_next() {
        let window = Duration::from_millis(300);
        let budget = Budget::new(3, window);
        let t = Instant::now();
        for _ in 0..3 {
            budget.take().await;
        }
        assert!(
            t.elapsed() < window / 2,
            "a window's worth goes out at once: {:?}",
            t.elapsed()
        );
        budget.take().await;
        assert!(
            t.elapsed() >= window,
            "the fourth waits for the first to leave the window: {:?}",
            t.elapsed()
        );
    }

    #[test]
    fn throttling_halves_and_a_cap_lowers_the_reads_in_flight() {
        let th = Throttle::new(4000);
        th.cap(100);
        assert_eq!(th.limit(), 100);
        assert_eq!(th.semaphore.available_permits(), 100);
        th.on_throttled(Duration::from_secs(60));
        assert_eq!(th.limit(), 50);
        assert!(th.pause().is_some(), "a 429 pauses every read of the batch");
        th.cap(1000);
        assert_eq!(th.limit(), 50, "a cap never raises the limit");
    }
}
