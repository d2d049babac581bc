//! A canary's part of the production plan: production's settings applied to the source slot and
//! gated, then each step's share of production's traffic routed to it and held (a pause or a gate); the
//! abort that takes the share back; and the rollback of a canary that stopped.

use super::*;
use crate::spec::CanaryHold;

/// The canary's steps, between production's hooks and the swap, and its preflight.
pub(super) fn plan_canary(
    production: &crate::spec::ProductionSpec,
    state: &LiveState,
    journal: &JournalTags,
    plan: &mut Plan,
) {
    let source = &production.source_slot;
    let host = state.slot(source).and_then(|s| s.host_name.clone());
    plan.preflight
        .push(routing_check(production, state, journal, host.as_deref()));
    let host = host.unwrap_or_default();
    plan.steps.push(step(
        Action::WriteJournal {
            phase: Phase::Canary,
        },
        "production's traffic routing rules are recorded before any of them changes, so an abort puts them back exactly",
    ));
    plan.steps.push(step(
        Action::ApplySlotConfig {
            source: source.to_owned(),
            target: SlotName::production(),
        },
        "the canary serves production's users, so it runs with production's settings, not the staging ones",
    ));
    plan.steps.extend(health_step(
        production.health.as_ref(),
        source,
        "the release must be healthy with production's settings before it takes any production traffic",
    ));
    for canary in &production.canary {
        plan.steps.push(step(
            Action::Route {
                source: source.to_owned(),
                host: host.clone(),
                percent: canary.percent,
            },
            format!(
                "{} % of production's users try the release while the rest keep the one they have",
                canary.percent
            ),
        ));
        plan.steps.push(match &canary.hold {
            CanaryHold::Gate(gate) => step(
                Action::HealthGate {
                    slot: source.to_owned(),
                    gate: (**gate).clone(),
                },
                format!(
                    "the release must stay healthy while it serves {} % of production's traffic",
                    canary.percent
                ),
            ),
            CanaryHold::Pause(pause) => step(
                Action::Pause {
                    seconds: pause.as_secs().max(1),
                },
                format!(
                    "{} % of production's traffic stays on the release for a while before more follows",
                    canary.percent
                ),
            ),
        });
    }
}

/// The canary's routing preflight: a host ARM names for the source slot, no rule of someone else's on
/// it already, and room for the largest share next to the other slots' rules.
fn routing_check(
    production: &crate::spec::ProductionSpec,
    state: &LiveState,
    journal: &JournalTags,
    host: Option<&str>,
) -> Check {
    let source = &production.source_slot;
    let Some(host) = host else {
        return check(
            "canary-routing",
            false,
            format!(
                "ARM names no host for slot {source}, so no traffic can be routed to it; check that the slot exists and the staging stage ran"
            ),
        );
    };
    // A stopped canary of ours left its share in the live rules: the journal's are the ones before it.
    let before = journal
        .canary
        .as_ref()
        .map_or(&state.routing, |c| &c.before);
    if let Some(rule) = before.iter().find(|r| r.routes_to(source, Some(host))) {
        return check(
            "canary-routing",
            false,
            format!(
                "production already routes {} % of its traffic to slot {source} by a rule this release did not write; remove that rule (Deployment slots > Traffic %) so the canary's shares and their abort are the release's own",
                rule.percent
            ),
        );
    }
    let others: f64 = before.iter().map(|r| r.percent).sum();
    let largest = production
        .canary
        .iter()
        .map(|c| c.percent)
        .max()
        .unwrap_or(0);
    if others + f64::from(largest) > 100.0 {
        return check(
            "canary-routing",
            false,
            format!(
                "production already routes {others} % of its traffic to other slots, so the canary's {largest} % would route more than all of it; lower the largest step or the other slots' rules"
            ),
        );
    }
    check(
        "canary-routing",
        true,
        format!(
            "shares {} routed to slot {source} ({host}) on top of {} other rule(s), put back as they are after the swap or on an abort",
            production
                .canary
                .iter()
                .map(|c| format!("{} %", c.percent))
                .collect::<Vec<_>>()
                .join(", "),
            before.len()
        ),
    )
}

/// The failure steps an abort of the canary starts with: the share back to 0 % and the rules as they
/// were, then the source slot's own settings back; production still serves the release it had.
pub(super) fn plan_abort(source: &SlotName, on_failure: &mut Vec<Step>) {
    on_failure.push(step(
        Action::RestoreRouting,
        "abort: production's traffic goes back to the release it serves, with the routing rules as they were before the release",
    ));
    on_failure.push(step(
        Action::ResetSlotConfig {
            source: source.to_owned(),
        },
        "abort: the source slot gets its own settings back",
    ));
}

/// A rollback or a staging stage while a canary's routing is not put back: the rules go back first
/// (production never stopped serving the release it had, so there is nothing to swap back for the canary
/// itself, and no package goes into a slot that serves production's users).
pub(super) fn put_routing_back(spec: &ReleaseSpec, journal: &JournalTags, plan: &mut Plan) {
    if journal.canary.is_none() {
        return;
    }
    let mut first = vec![step(
        Action::RestoreRouting,
        "an unfinished canary routed production traffic to the release: the routing rules go back as they were before it",
    )];
    if journal.phase == Some(Phase::Canary)
        && let Some(source) = spec
            .production
            .as_ref()
            .map(|p| &p.source_slot)
            .filter(|s| !s.is_production())
    {
        first.push(step(
            Action::ResetSlotConfig {
                source: source.clone(),
            },
            "the canary's slot gets its own settings back",
        ));
    }
    match plan
        .steps
        .iter()
        .position(|s| matches!(s.action, Action::AcquireLock))
    {
        Some(at) => {
            plan.steps.splice(at + 1..at + 1, first);
        }
        None => {
            // Settled otherwise (or refused by a preflight): the rules are still a change, made under the
            // lock.
            plan.steps.retain(|s| !matches!(s.action, Action::Nothing));
            plan.steps.insert(
                0,
                step(
                    Action::AcquireLock,
                    "a rollback must not race another release",
                ),
            );
            plan.steps.splice(1..1, first);
            plan.steps
                .push(step(Action::ReleaseLock, "the stage is done"));
        }
    }
}
