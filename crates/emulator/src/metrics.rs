//! Azure Monitor's platform metrics of App Service, counted from what the slots' front end actually
//! answered: every request a slot served (its status class and its response time) lands in the slot's
//! one-minute bucket, the finest time grain Azure Monitor keeps. The store is bounded: a day of buckets
//! per slot, the oldest dropped first, so an emulator left running holds a fixed amount of memory.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// Buckets kept per slot: one day of minutes, Azure's own retention being far longer than any release.
pub(crate) const MINUTES_KEPT: usize = 24 * 60;

/// One minute of one slot's traffic.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Bucket {
    /// The minute, as Unix seconds divided by 60.
    pub(crate) minute: i64,
    /// Requests served, by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub(crate) by_class: [u64; 5],
    /// Sum, least and greatest of the response times, in seconds (Azure's unit for `HttpResponseTime`).
    pub(crate) time_sum: f64,
    pub(crate) time_min: f64,
    pub(crate) time_max: f64,
}

impl Bucket {
    pub(crate) fn requests(&self) -> u64 {
        self.by_class.iter().sum()
    }
}

/// Requests kept one by one for the Log Analytics query API (`AppRequests`), the newest last; the
/// oldest go first past this many, so memory stays bounded like the buckets'.
pub(crate) const REQUESTS_KEPT: usize = 100_000;

/// One request a slot's app answered, as Application Insights records it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Served {
    pub(crate) app: String,
    pub(crate) slot: String,
    /// E.g. `GET /health`.
    pub(crate) name: String,
    pub(crate) status: u16,
    pub(crate) elapsed: Duration,
    /// When it was answered, Unix milliseconds.
    pub(crate) at_ms: i64,
}

/// Every slot's buckets, keyed by app and slot (lowercase, as the state keys them), and the latest
/// requests one by one.
#[derive(Debug, Default)]
pub(crate) struct Store {
    series: HashMap<(String, String), VecDeque<Bucket>>,
    served: VecDeque<Served>,
}

impl Store {
    /// Counts one request `slot` of `app` answered with `status` after `elapsed`, at Unix time `at`.
    pub(crate) fn record(
        &mut self,
        app: &str,
        slot: &str,
        status: u16,
        elapsed: Duration,
        at: i64,
    ) {
        let minute = at.div_euclid(60);
        let series = self
            .series
            .entry((app.to_owned(), slot.to_owned()))
            .or_default();
        if series.back().is_none_or(|b| b.minute < minute) {
            if series.len() == MINUTES_KEPT {
                series.pop_front();
            }
            series.push_back(Bucket {
                minute,
                time_min: f64::INFINITY,
                ..Bucket::default()
            });
        }
        // A request that finished a moment before one recorded already (two handlers racing across a
        // minute boundary) lands in its own minute when it is still kept.
        let Some(bucket) = series.iter_mut().rev().find(|b| b.minute <= minute) else {
            return;
        };
        if bucket.minute != minute {
            return;
        }
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        bucket.by_class[class] += 1;
        let secs = elapsed.as_secs_f64();
        bucket.time_sum += secs;
        bucket.time_min = bucket.time_min.min(secs);
        bucket.time_max = bucket.time_max.max(secs);
    }

    /// Keeps one request for the logs (the buckets count it through [`Store::record`]).
    pub(crate) fn keep(&mut self, served: Served) {
        if self.served.len() == REQUESTS_KEPT {
            self.served.pop_front();
        }
        self.served.push_back(served);
    }

    /// The requests kept, oldest first, answered in `[from_ms, to_ms)`.
    pub(crate) fn served(&self, from_ms: i64, to_ms: i64) -> Vec<Served> {
        self.served
            .iter()
            .filter(|s| s.at_ms >= from_ms && s.at_ms < to_ms)
            .cloned()
            .collect()
    }

    /// The buckets of a slot whose minute lies in `[from_minute, to_minute)`, oldest first.
    pub(crate) fn buckets(
        &self,
        app: &str,
        slot: &str,
        from_minute: i64,
        to_minute: i64,
    ) -> Vec<Bucket> {
        self.series
            .get(&(app.to_owned(), slot.to_owned()))
            .map(|s| {
                s.iter()
                    .filter(|b| b.minute >= from_minute && b.minute < to_minute)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Forgets a deleted slot's traffic (a slot created again under the name starts from nothing, as
    /// a new Azure resource does).
    pub(crate) fn forget(&mut self, app: &str, slot: &str) {
        self.series.remove(&(app.to_owned(), slot.to_owned()));
        self.served.retain(|s| s.app != app || s.slot != slot);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn requests_land_in_their_minute_by_status_class() {
        let mut s = Store::default();
        s.record("a", "staging", 200, MS * 10, 600);
        s.record("a", "staging", 503, MS * 30, 659);
        s.record("a", "staging", 404, MS * 20, 660);
        s.record("a", "production", 200, MS, 600);
        let b = s.buckets("a", "staging", 10, 12);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].minute, 10);
        assert_eq!(b[0].by_class, [0, 1, 0, 0, 1]);
        assert!((b[0].time_sum - 0.040).abs() < 1e-9);
        assert!((b[0].time_min - 0.010).abs() < 1e-9);
        assert!((b[0].time_max - 0.030).abs() < 1e-9);
        assert_eq!(b[1].by_class, [0, 0, 0, 1, 0]);
        assert_eq!(
            s.buckets("a", "staging", 11, 12).len(),
            1,
            "the end is open"
        );
        assert_eq!(s.buckets("a", "production", 0, 100)[0].requests(), 1);
    }

    #[test]
    fn a_day_of_minutes_is_kept_and_no_more() {
        let mut s = Store::default();
        for minute in 0..(MINUTES_KEPT as i64 + 10) {
            s.record("a", "production", 200, MS, minute * 60);
        }
        let kept = s.buckets("a", "production", 0, i64::MAX);
        assert_eq!(kept.len(), MINUTES_KEPT);
        assert_eq!(kept[0].minute, 10, "the oldest went first");
    }

    #[test]
    fn a_late_request_joins_its_own_minute_or_is_dropped() {
        let mut s = Store::default();
        s.record("a", "production", 200, MS, 60);
        s.record("a", "production", 200, MS, 120);
        s.record("a", "production", 500, MS, 119);
        s.record("a", "production", 500, MS, 0);
        let b = s.buckets("a", "production", 0, 10);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].by_class, [0, 1, 0, 0, 1]);
        assert_eq!(b[1].by_class, [0, 1, 0, 0, 0]);
        s.forget("a", "production");
        assert!(s.buckets("a", "production", 0, 10).is_empty());
    }
}
