//! The quick profile (`rehearse --quick`): the same release path with short gates and a short watch, so a
//! pull-request run proves the path in seconds. Only the waits the config chooses are shortened; what Azure
//! paces (the emulator's `Retry-After`, deployments) stays as Azure would answer.

use std::time::Duration;

use slot_release_engine::health::Gate;
use slot_release_engine::spec::{GateAt, ReleaseSpec};

/// A gate probes at least this often in the quick profile.
pub const INTERVAL: Duration = Duration::from_millis(250);
/// A gate needs at most this many consecutive successes.
pub const SUCCESSES: u32 = 2;
/// A gate gives up after at most this long.
pub const GATE_TIMEOUT: Duration = Duration::from_secs(20);
/// Production is watched for at most this long.
pub const WATCH: Duration = Duration::from_secs(3);

/// Shortens the spec's gates and watch; returns one line per change, for the log, so the run shows
/// that its waits are not the config's.
pub fn apply(spec: &mut ReleaseSpec) -> Vec<String> {
    let mut changes = Vec::new();
    for (at, gate) in spec.gates_mut() {
        let what = match at {
            GateAt::Staging => "staging gate",
            GateAt::Production => "production gate and watch probes",
            GateAt::Rollback => "rollback gate",
            GateAt::Canary => "canary step gate",
        };
        shorten_gate(what, gate, &mut changes);
    }
    if let Some(production) = spec.production.as_mut()
        && production.watch_window > WATCH
    {
        changes.push(format!(
            "watch {} instead of {}",
            humantime::format_duration(WATCH),
            humantime::format_duration(production.watch_window)
        ));
        production.watch_window = WATCH;
    }
    changes
}

fn shorten_gate(what: &str, gate: &mut Gate, changes: &mut Vec<String>) {
    let before = (gate.check.interval, gate.successes_needed, gate.timeout);
    gate.check.interval = gate.check.interval.min(INTERVAL);
    gate.successes_needed = gate.successes_needed.min(SUCCESSES);
    gate.timeout = gate.timeout.min(GATE_TIMEOUT);
    if before != (gate.check.interval, gate.successes_needed, gate.timeout) {
        changes.push(format!(
            "{what}: every {}, {} success(es), within {} (release.yml: every {}, {}, within {})",
            humantime::format_duration(gate.check.interval),
            gate.successes_needed,
            humantime::format_duration(gate.timeout),
            humantime::format_duration(before.0),
            before.1,
            humantime::format_duration(before.2),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(interval_ms: u64, successes: u32, timeout_s: u64) -> Gate {
        let mut gate = Gate::new("/health");
        gate.check.interval = Duration::from_millis(interval_ms);
        gate.successes_needed = successes;
        gate.timeout = Duration::from_secs(timeout_s);
        gate
    }

    #[test]
    fn a_slow_gate_is_shortened_and_the_change_is_said() {
        let mut g = gate(5_000, 3, 300);
        let mut changes = Vec::new();
        shorten_gate("staging gate", &mut g, &mut changes);
        assert_eq!(
            (g.check.interval, g.successes_needed, g.timeout),
            (INTERVAL, SUCCESSES, GATE_TIMEOUT)
        );
        assert_eq!(
            changes,
            [
                "staging gate: every 250ms, 2 success(es), within 20s (release.yml: every 5s, 3, within 5m)"
            ]
        );
    }

    #[test]
    fn a_gate_already_quick_is_left_as_it_is_and_not_mentioned() {
        let mut g = gate(100, 1, 5);
        let mut changes = Vec::new();
        shorten_gate("staging gate", &mut g, &mut changes);
        assert_eq!(g, gate(100, 1, 5));
        assert!(changes.is_empty());
    }
}
