//! The request log: every request the emulator answered, oldest first, bounded so a long-running
//! emulator (a rehearsal, `slot-release emulator` left open, a benchmark) holds a fixed amount of
//! memory. When full, the oldest record makes room for the newest.

use std::collections::VecDeque;

use crate::state::RequestRecord;

/// How many requests the log keeps: the newest 10,000 (a few MB), far more than any test or
/// release makes between two reads or clears of the log.
pub const REQUEST_LOG_CAPACITY: usize = 10_000;

/// A ring buffer of [`RequestRecord`]s.
#[derive(Debug)]
pub(crate) struct RequestLog {
    records: VecDeque<RequestRecord>,
    capacity: usize,
}

impl Default for RequestLog {
    fn default() -> Self {
        Self::with_capacity(REQUEST_LOG_CAPACITY)
    }
}

impl RequestLog {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            records: VecDeque::with_capacity(capacity.min(1024)),
            capacity: capacity.max(1),
        }
    }

    /// Adds a record, dropping the oldest when the log is full.
    pub(crate) fn push(&mut self, record: RequestRecord) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
        }
        self.records.push_back(record);
    }

    /// Every record kept, oldest first.
    pub(crate) fn to_vec(&self) -> Vec<RequestRecord> {
        self.records.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.records.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(path: &str) -> RequestRecord {
        RequestRecord {
            version: "HTTP/1.1".into(),
            method: "GET".into(),
            host: "h".into(),
            path: path.into(),
            api_version: None,
            status: 200,
            time: String::new(),
            duration_ms: 0,
        }
    }

    #[test]
    fn the_oldest_record_makes_room_when_full() {
        let mut log = RequestLog::with_capacity(3);
        for p in ["/1", "/2", "/3", "/4", "/5"] {
            log.push(record(p));
        }
        let paths: Vec<String> = log.to_vec().into_iter().map(|r| r.path).collect();
        assert_eq!(paths, ["/3", "/4", "/5"]);
        log.clear();
        assert!(log.to_vec().is_empty());
    }

    #[test]
    fn the_default_capacity_is_the_documented_one() {
        let mut log = RequestLog::default();
        for i in 0..REQUEST_LOG_CAPACITY + 5 {
            log.push(record(&format!("/{i}")));
        }
        let all = log.to_vec();
        assert_eq!(all.len(), REQUEST_LOG_CAPACITY);
        assert_eq!(all[0].path, "/5");
    }
}
