//! Checks on `stages.production.canary`: present exactly when `strategy: canary`, percents from 1 to 100
//! and increasing, each share held by a pause or a gate, and a slot to route the traffic to.

use super::Checker;
use crate::model::{CanaryStep, ReleaseConfig, SwapStrategy};
use crate::source::join_index;

const BASE: &str = "stages.production.canary";

/// Checks the production stage's canary against its strategy and its steps.
pub(crate) fn check_canary(config: &ReleaseConfig, c: &mut Checker<'_>) {
    let production = &config.stages.production;
    let canary = production.strategy == SwapStrategy::Canary;
    match (&production.canary, canary) {
        (None, true) => c.error(
            "stages.production.strategy",
            "canary-steps-missing",
            "`strategy: canary` has no steps: `stages.production.canary` is missing".into(),
            "add `canary.steps`, e.g. `[{percent: 10, pause: 5m}, {percent: 50, healthCheck: \
             {path: /health}}, {percent: 100}]`"
                .into(),
        ),
        (Some(_), false) => c.error_key(
            BASE,
            "canary-without-strategy",
            "`canary` is set, but `strategy` is not `canary`, so its steps would never run".into(),
            "set `strategy: canary`, or remove `canary`".into(),
        ),
        _ => {}
    }
    if !canary {
        return;
    }
    if production.source_slot.is_none() {
        c.error(
            "stages.production.strategy",
            "canary-without-slot",
            "`strategy: canary` routes a share of production's traffic to the source slot, but \
             `stages.production` has no `sourceSlot`"
                .into(),
            "add `sourceSlot` and stage the release in that slot first, or remove `strategy` (a \
             container app then takes the image on production directly)"
                .into(),
        );
    }
    if let Some(steps) = production.canary.as_ref() {
        check_steps(&steps.steps, c);
    }
}

fn check_steps(steps: &[CanaryStep], c: &mut Checker<'_>) {
    let base = format!("{BASE}.steps");
    if steps.is_empty() {
        c.error(
            &base,
            "canary-steps-empty",
            "the canary has no steps".into(),
            "list the shares of traffic to route before the swap, e.g. `{percent: 10, pause: 5m}`"
                .into(),
        );
        return;
    }
    let mut previous = 0;
    for (index, step) in steps.iter().enumerate() {
        let path = join_index(&base, index);
        let percent_path = format!("{path}.percent");
        if step.percent == 0 || step.percent > 100 {
            c.error(
                &percent_path,
                "canary-percent-range",
                format!("a canary step routes {} %", step.percent),
                "use a percent from 1 to 99 for a step, or 100 for the last one (the swap)".into(),
            );
            continue;
        }
        if step.percent <= previous {
            c.error(
                &percent_path,
                "canary-percent-order",
                format!(
                    "this step routes {} %, but the step before it already routed {previous} %",
                    step.percent
                ),
                "list the steps with increasing percents, e.g. 10, 25, 50, 100".into(),
            );
        }
        previous = previous.max(step.percent);
        if step.percent == 100 {
            if step.pause.is_some() || step.health_check.is_some() {
                c.error(
                    &percent_path,
                    "canary-complete-step-held",
                    "the 100 % step completes the swap, so it has nothing to pause or gate".into(),
                    "remove its `pause` or `healthCheck`; production's `watch` checks the release \
                     after the swap"
                        .into(),
                );
            }
            continue;
        }
        match (step.pause, &step.health_check) {
            (Some(pause), None) => {
                if pause.is_zero() {
                    c.error(
                        &format!("{path}.pause"),
                        "duration-not-positive",
                        "this duration is zero".into(),
                        "durations must be positive, e.g. `30s` or `5m`".into(),
                    );
                }
            }
            (None, Some(health)) => {
                // A step's gate judges the source slot while it takes its share of production's traffic.
                super::semantic::check_health(
                    &format!("{path}.healthCheck"),
                    health,
                    super::semantic::Role::Gate(super::analysis::Judged::Slot),
                    c,
                );
            }
            (Some(_), Some(_)) => c.error(
                &percent_path,
                "canary-step-pause-and-gate",
                format!(
                    "the {} % step has both a `pause` and a `healthCheck`",
                    step.percent
                ),
                "keep one: `pause` holds the share for a time, `healthCheck` until the slot \
                 passes the gate"
                    .into(),
            ),
            (None, None) => c.error(
                &percent_path,
                "canary-step-unheld",
                format!(
                    "the {} % step has neither a `pause` nor a `healthCheck`, so the next step \
                     would follow at once",
                    step.percent
                ),
                "add `pause: 5m` to hold the share for a time, or a `healthCheck` the source slot \
                 must pass while it serves that share"
                    .into(),
            ),
        }
    }
}
