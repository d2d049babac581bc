//! The rehearsal's canary: under `--fail-at canary` a config released by plain swap is rehearsed as a
//! canary (10 % gated on the production health check and on an analysis of the slot's traffic, then the
//! swap), and the release fails a fifth of its requests (never its health path) once production routes a
//! share of its traffic to it, so the metric gate catches what the probes miss and the abort shows: the
//! share back to 0 %, the rules as before. While any canary runs, synthetic users request production, so
//! a gate's analysis has traffic to judge.

use std::time::Duration;

use slot_release_emulator::{Emulator, Fault};
use slot_release_engine::analysis::Analysis;
use slot_release_engine::port::Port;
use slot_release_engine::spec::{CanaryHold, CanaryStep, ReleaseSpec, Strategy};
use slot_release_engine::state::SlotName;
use tokio_util::sync::CancellationToken;

/// The share of the release's requests that fail under `--fail-at canary`.
const FAILING_PERCENT: u8 = 20;

/// Turns a production stage through a slot into a canary, unless it is one: one step of 10 % gated on the
/// production health check. Returns what changed, for the log; `None` when nothing did (already a canary,
/// or production takes its image directly and has no slot to route to).
pub fn make_canary(spec: &mut ReleaseSpec) -> Option<String> {
    let production = spec.production.as_mut()?;
    if production.strategy == Strategy::Canary || production.source_slot.is_production() {
        return None;
    }
    let mut gate = production.health.clone()?;
    // What the probes cannot see: the slot's share of production's users, from Azure Monitor's metrics.
    gate.check.analysis = Some(Analysis {
        window: Duration::from_secs(6),
        min_requests: 10,
        max_http5xx_percent: Some(5.0),
        max_average_response_ms: None,
        baseline_margin_percent: Some(2.0),
        logs: None,
    });
    production.strategy = Strategy::Canary;
    production.canary = vec![CanaryStep {
        percent: 10,
        hold: CanaryHold::Gate(Box::new(gate)),
    }];
    Some(format!(
        "Rehearsal: production is released as a canary: 10 % of its traffic to slot {} gated on {} and on its 5xx rate (at most 5 %, and 2 points over production's), then the swap",
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

/// Makes `slot` fail a fifth of its requests, never `health_path`, from the moment production first routes
/// a share of its traffic to it: a bug only real users find, which the canary's metric gate must catch.
/// Ends with `done`.
pub async fn fail_when_routed(
    emulator: &Emulator,
    app: &str,
    slot: &str,
    health_path: &str,
    done: CancellationToken,
) {
    loop {
        if routed(emulator, app) {
            emulator.inject(Fault::AppFailsShare {
                app: app.to_owned(),
                slot: slot.to_owned(),
                percent: FAILING_PERCENT,
                except_path: Some(health_path.to_owned()),
            });
            return;
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(50)) => {}
            () = done.cancelled() => return,
        }
    }
}

/// Production's users while a canary runs: requests to production's own address, one after another,
/// until `done`; the front end gives each its share as App Service does (no routing cookie is kept). A
/// rehearsal has no users of its own, and a gate's analysis fails on too few requests.
pub async fn users(port: &dyn Port, done: CancellationToken) {
    let url = match port.slot_url(&SlotName::production(), &done).await {
        Ok(base) => match base.join("/") {
            Ok(url) => url,
            Err(_) => return,
        },
        Err(_) => return,
    };
    let prober = port.prober();
    let page = slot_release_engine::health::HealthCheck::new("/");
    while !done.is_cancelled() {
        tokio::select! {
            _ = prober.probe(&url, &page) => {}
            () = done.cancelled() => return,
        }
        tokio::select! {
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
            () = done.cancelled() => return,
        }
    }
}
