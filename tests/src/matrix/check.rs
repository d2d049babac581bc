//! The invariants every matrix case must keep, checked from the emulator's state, production's
//! samples and what the runs printed — never from the engine's own account of itself alone.

use std::fmt;

use slot_release_emulator::StateSnapshot;

use super::run::{
    BASELINE, CANDIDATE, CaseReport, RUN_DEADLINE, RunReport, journal_tags, release_name,
};
use super::{FaultKind, Step, Timing};
use crate::agent::AgentResult;

/// The settings the matrix config gives the same value in both environments: they travel with the
/// content in a swap, so in a slot they are all there or none (a slot whose content no release of this
/// config put there has none).
const TRAVELLING_SETTINGS: [&str; 5] = [
    "DATABASE_PATH",
    "RELEASE_VERSION",
    "RELEASE_MARK",
    "API_KEY",
    "DATABASE__PASSWORD",
];
/// The setting whose value differs per environment: sticky, it never leaves its slot.
const STICKY_SETTING: &str = "APP_ENV";
const SETTLED: [&str; 4] = ["staged", "released", "failed", "rolledBack"];

/// An invariant a case broke.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant.
    pub invariant: &'static str,
    /// What was seen.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.invariant, self.detail)
    }
}

fn violation(invariant: &'static str, detail: String) -> Violation {
    Violation { invariant, detail }
}

/// Every invariant, over one case's report.
pub fn check_case(report: &CaseReport) -> Vec<Violation> {
    let mut out = Vec::new();
    production_always_healthy(report, &mut out);
    for run in &report.runs {
        settings_whole(&run.command, &run.after, &mut out);
        journal_truthful(run, &mut out);
        production_settings_match_content(run, &mut out);
        deadline_kept(run, &mut out);
    }
    cancel_heard(report, &mut out);
    converged(report, &mut out);
    routing_put_back(report, &mut out);
    for leak in &report.leaks {
        out.push(violation("no-leak", leak.clone()));
    }
    out
}

/// Production answered `/health` with `ok` and named a known release at every sample. The only
/// excuses: the case's own fault on production's host (the poller shares the route), and an app
/// the fault made unhealthy after a swap while the run that must swap it back is still running.
fn production_always_healthy(report: &CaseReport, out: &mut Vec<Violation>) {
    let case = report.case;
    let shares_route = case.step == Step::Watch && case.fault.is_transport();
    let mut bad = Vec::new();
    for s in &report.samples {
        let known = s
            .release
            .as_deref()
            .is_some_and(|r| r == BASELINE || r == CANDIDATE);
        if s.health_ok && known {
            continue;
        }
        // A fault set "before" is live from the moment it is injected, which can be just before the
        // run starts: the poller's samples from then hit it too.
        let excused_by_route = shares_route
            && matches!(s.health_status, 0 | 409 | 429 | 500)
            && (s.during_run || case.timing == Timing::Before);
        // Rollback-swap cases make production unhealthy after the swap on purpose, to force it.
        let excused_by_app = (case.fault == FaultKind::UnhealthyAfterSwap
            || case.step == Step::RollbackSwap)
            && s.during_run;
        if !(excused_by_route || excused_by_app) {
            bad.push(format!(
                "{:.1}s: /health {} ok={} release={:?}{}",
                s.at.as_secs_f64(),
                s.health_status,
                s.health_ok,
                s.release,
                if s.during_run {
                    ""
                } else {
                    " (no run in progress)"
                }
            ));
        }
    }
    if report.samples.is_empty() {
        bad.push("production was never sampled".into());
    }
    if !bad.is_empty() {
        let shown: Vec<String> = bad.iter().take(6).cloned().collect();
        out.push(violation(
            "production-healthy",
            format!("{} bad sample(s): {}", bad.len(), shown.join("; ")),
        ));
    }
}

/// No slot holds part of a release's settings, or another slot's sticky value.
fn settings_whole(command: &str, snapshot: &StateSnapshot, out: &mut Vec<Violation>) {
    for slot in ["production", "staging"] {
        let Some(s) = snapshot.slot("contoso-web", slot) else {
            continue;
        };
        let present: Vec<&str> = TRAVELLING_SETTINGS
            .iter()
            .copied()
            .filter(|k| s.app_settings.contains_key(*k))
            .collect();
        if !present.is_empty() && present.len() != TRAVELLING_SETTINGS.len() {
            out.push(violation(
                "settings-whole",
                format!("after `{command}`, {slot} holds only {present:?} of a release's settings"),
            ));
        }
        // While a swap runs, its phase 1 gives the source slot the target's sticky values on purpose
        // (the warm-up runs with them); only a swap that ended may not leave them there.
        let swapping = snapshot
            .apps
            .iter()
            .any(|a| a.name == "contoso-web" && a.busy.is_some());
        // So does a canary stopped half-way: its slot serves production's users with production's values
        // until the next run resets it (which this check then sees).
        let canary = slot == "staging"
            && journal_tags(snapshot)
                .get("slotrelease.phase")
                .is_some_and(|p| p == "canary");
        if let Some(env) = s.app_settings.get(STICKY_SETTING)
            && env != slot
            && !swapping
            && !canary
        {
            out.push(violation(
                "settings-whole",
                format!("after `{command}`, {slot} holds {STICKY_SETTING}={env}: a sticky value crossed slots"),
            ));
        }
        if let Some(version) = s.app_settings.get("RELEASE_VERSION") {
            let mark = s.app_settings.get("RELEASE_MARK").map(String::as_str);
            if mark != Some(format!("mark-{version}").as_str()) {
                out.push(violation(
                    "settings-whole",
                    format!(
                        "after `{command}`, {slot} mixes releases: RELEASE_VERSION={version}, RELEASE_MARK={mark:?}"
                    ),
                ));
            }
        }
    }
}

/// When the journal's phase is settled, it names the release whose package each slot really holds.
fn journal_truthful(run: &RunReport, out: &mut Vec<Violation>) {
    let command = &run.command;
    let tags = journal_tags(&run.after);
    let phase = tags.get("slotrelease.phase").cloned().unwrap_or_default();
    if !SETTLED.contains(&phase.as_str()) {
        return;
    }
    let slots = tags.get("slotrelease.slots").cloned().unwrap_or_default();
    for pair in slots.split(',').filter(|p| !p.is_empty()) {
        let Some((slot, release)) = pair.split_once('=') else {
            out.push(violation(
                "journal-truthful",
                format!("after `{command}`, unreadable slots tag {slots:?}"),
            ));
            continue;
        };
        let actual = run.content.get(slot).cloned().flatten();
        let release = release_name(release);
        if actual.as_deref() != Some(release.as_str()) {
            out.push(violation(
                "journal-truthful",
                format!(
                    "after `{command}` (phase {phase}), the journal says {slot} holds {release}, the slot holds the package of {actual:?}"
                ),
            ));
        }
    }
    if phase == "released" {
        let lkg = tags
            .get("slotrelease.lastKnownGood")
            .map(|id| release_name(id));
        let production = run.content.get("production").cloned().flatten();
        if lkg != production {
            out.push(violation(
                "journal-truthful",
                format!(
                    "after `{command}`, the journal's last known-good is {lkg:?}, production holds the package of {production:?}"
                ),
            ));
        }
    }
}

/// Once settled, production's settings belong to the release whose package it runs: a failed swap or a
/// rollback must not leave the old code running with the new release's settings.
fn production_settings_match_content(run: &RunReport, out: &mut Vec<Violation>) {
    let tags = journal_tags(&run.after);
    let phase = tags.get("slotrelease.phase").cloned().unwrap_or_default();
    if !SETTLED.contains(&phase.as_str()) {
        return;
    }
    let package = run.content.get("production").cloned().flatten();
    let settings = run
        .after
        .slot("contoso-web", "production")
        .and_then(|s| s.app_settings.get("RELEASE_VERSION"))
        .cloned();
    // A package of a release always arrives with that release's travelling settings.
    if let Some(package) = &package
        && settings.as_ref() != Some(package)
    {
        let settings = settings.as_deref().unwrap_or("no release");
        out.push(violation(
            "settings-whole",
            format!(
                "after `{}` (phase {phase}), production runs the package of {package} with the settings of {settings}",
                run.command
            ),
        ));
    }
}

/// Every run ended on its own within its deadline; a cancelled one within the agent's grace period.
fn deadline_kept(run: &RunReport, out: &mut Vec<Violation>) {
    if run.outcome.killed {
        out.push(violation(
            "deadline",
            format!(
                "`{}` had to be killed after {:.1}s (a wait without a deadline, or a cancellation not honoured)",
                run.command,
                run.outcome.elapsed.as_secs_f64()
            ),
        ));
    } else if run.outcome.elapsed > RUN_DEADLINE {
        out.push(violation(
            "deadline",
            format!(
                "`{}` took {:.1}s, more than the {}s its waits allow",
                run.command,
                run.outcome.elapsed.as_secs_f64(),
                RUN_DEADLINE.as_secs()
            ),
        ));
    }
}

/// A run the harness cancelled heard the agent's SIGINT through node and ended by its own report:
/// `Canceled`, having said it heard the signal, or its own result when it had finished its work as the
/// signal came. A SIGINT that reaches node before its handlers are installed kills node instead (no
/// report), leaving the binary to run on unheard, and the case would measure nothing it names.
fn cancel_heard(report: &CaseReport, out: &mut Vec<Violation>) {
    if report.case.fault != FaultKind::Cancel {
        return;
    }
    // Only a run still going when the SIGINT was sent: the agent records every such step `Canceled`.
    let Some(first) = report
        .runs
        .first()
        .filter(|r| r.interrupted && r.outcome.result == AgentResult::Canceled)
    else {
        return;
    };
    let heard = first
        .outcome
        .stdout
        .contains("Cancellation requested (SIGINT)");
    let reported = first.outcome.reported;
    if reported.is_none() || (reported == Some(AgentResult::Canceled) && !heard) {
        out.push(violation(
            "cancel-heard",
            format!(
                "the cancelled `{}` did not stop on the SIGINT (heard: {heard}, reported: {reported:?}, exit {:?})",
                first.command, first.outcome.exit_code
            ),
        ));
    }
}

/// The pipeline's next run finished the job without manual repair: it succeeded (or rolled back),
/// and left a settled journal without a lock.
/// After the pipeline's next run, production takes all its traffic again: no routing rule is left (the
/// matrix's app had none before), and the journal holds no canary's rules to put back.
fn routing_put_back(report: &CaseReport, out: &mut Vec<Violation>) {
    let Some(last) = report.runs.last() else {
        return;
    };
    let rules: Vec<serde_json::Value> = last
        .after
        .apps
        .iter()
        .filter(|a| a.name == "contoso-web")
        .flat_map(|a| &a.slots)
        .filter(|s| s.name == "production")
        .filter_map(|s| {
            s.site_config
                .get("experiments")?
                .get("rampUpRules")?
                .as_array()
                .cloned()
        })
        .flatten()
        .collect();
    if !rules.is_empty() {
        out.push(violation(
            "routing-put-back",
            format!(
                "after `{}`, production still routes traffic: {rules:?}",
                last.command
            ),
        ));
    }
    if journal_tags(&last.after).contains_key("slotrelease.canary") {
        out.push(violation(
            "routing-put-back",
            format!(
                "after `{}`, the journal still holds a canary's rules",
                last.command
            ),
        ));
    }
}

fn converged(report: &CaseReport, out: &mut Vec<Violation>) {
    let Some(last) = report.runs.last() else {
        out.push(violation("converges", "no second run".into()));
        return;
    };
    let result = last
        .outcome
        .variables
        .get("Result")
        .map(|v| v.value.clone());
    if !matches!(
        result.as_deref(),
        Some("Succeeded" | "SucceededWithIssues" | "RolledBack")
    ) {
        let message = last.outcome.complete_message.clone().unwrap_or_default();
        out.push(violation(
            "converges",
            format!(
                "the pipeline's next run (`{}`) ended with Result={result:?}: {message}",
                last.command
            ),
        ));
    }
    let tags = journal_tags(&last.after);
    let phase = tags.get("slotrelease.phase").cloned().unwrap_or_default();
    if !SETTLED.contains(&phase.as_str()) {
        out.push(violation(
            "converges",
            format!(
                "after `{}`, the journal is left at phase {phase:?}",
                last.command
            ),
        ));
    }
    let claims: Vec<&String> = tags
        .keys()
        .filter(|k| k.starts_with("slotrelease.claim."))
        .collect();
    if !claims.is_empty() {
        out.push(violation(
            "converges",
            format!(
                "after `{}`, the release lock is still claimed: {claims:?}",
                last.command
            ),
        ));
    }
    if let Some(sample) = report.samples.last()
        && let Some(production) = last
            .after
            .slot("contoso-web", "production")
            .and_then(|s| s.app_settings.get("RELEASE_VERSION"))
        && sample.release.as_ref() != Some(production)
    {
        out.push(violation(
            "converges",
            format!(
                "production's settings name {production}, its page names {:?}",
                sample.release
            ),
        ));
    }
}
