//! The rehearsal's canary: a config released by plain swap is rehearsed as a canary (10 % gated on the
//! production health check, then the swap), and `--fail-at canary` makes the release fail once production
//! routes a share of its traffic to it, so the abort shows: the share back to 0 %, the rules as before.

use std::time::Duration;

use slot_release_emulator::{Emulator, Fault};
use slot_release_engine::spec::{CanaryHold, CanaryStep, ReleaseSpec, Strategy};
use tokio_util::sync::CancellationToken;

/// Turns a production stage through a slot into a canary, unless it is one: one step of 10 % gated on the
/// production health check. Returns what changed, for the log; `None` when nothing did (already a canary,
/// or production takes its image directly and has no slot to route to).
pub fn make_canary(spec: &mut ReleaseSpec) -> Option<String> {
    let production = spec.production.as_mut()?;
    if production.strategy == Strategy::Canary || production.source_slot.is_production() {
        return None;
    }
    let gate = production.health.clone()?;
    production.strategy = Strategy::Canary;
    production.canary = vec![CanaryStep {
        percent: 10,
        hold: CanaryHold::Gate(Box::new(gate)),
    }];
    Some(format!(
        "Rehearsal: production is released as a canary: 10 % of its traffic to slot {} gated on {}, then the swap",
        production.source_slot,
        production
            .health
            .as_ref()
            .map_or("/", |g| g.check.path.as_str())
    ))
}

/// Whether production routes a share of its traffic to another slot now.
pub fn routed(emulator: &Emulator, app: &str) -> bool {
    emulator
        .snapshot()
        .slot(app, "production")
        .and_then(|p| {
            p.site_config
                .get("experiments")?
                .get("rampUpRules")?
                .as_array()
                .cloned()
        })
        .is_some_and(|rules| {
            rules.iter().any(|r| {
                r.get("reroutePercentage")
                    .and_then(serde_json::Value::as_f64)
                    .is_some_and(|p| p > 0.0)
            })
        })
}

/// Makes `slot` fail every request from the moment production first routes a share of its traffic to it:
/// a bug only real users find, which the canary's step gate must catch. Ends with `done`.
pub async fn fail_when_routed(emulator: &Emulator, app: &str, slot: &str, done: CancellationToken) {
    loop {
        if routed(emulator, app) {
            emulator.inject(Fault::AppUnhealthyAfterRequests {
                app: app.to_owned(),
                slot: slot.to_owned(),
                after_requests: 0,
            });
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = done.cancelled() => return,
        }
    }
}
