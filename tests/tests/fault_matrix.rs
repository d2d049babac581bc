//! The fault matrix as a test: stage steps × emulator faults (and SIGKILL, and the agent's
//! cancellation) × timing, each case run through the real entry point, followed by the run the
//! pipeline would make next, and checked against the release invariants and the leak detector.
//!
//! CI runs a seeded sample whose seed changes every day (printed first, so a failure can be replayed);
//! `SLOT_RELEASE_MATRIX=full` runs every case;
//! `SLOT_RELEASE_MATRIX_SEED=<n>` repeats a sample; `SLOT_RELEASE_MATRIX_CASE=<id>[,<id>…]` replays
//! cases by the id a failure prints; `SLOT_RELEASE_MATRIX_SHOW=1` prints every run's output.
#![cfg(target_os = "linux")]

use std::time::{Duration, Instant};

use slot_release_tests::matrix::{self, Case};

/// The seed of the sample: the day (UTC days since 1970), so each day's CI explores other cases and a run
/// is repeatable within the day; set `SLOT_RELEASE_MATRIX_SEED` to draw a given sample, or
/// `SLOT_RELEASE_MATRIX=full` for every case.
fn default_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_secs() / 86_400)
}

/// Cases that still break an invariant, each with the open bug that explains it. A listed case must
/// still fail (so the list shrinks as bugs are fixed); any other case must pass. docs/reliability.md
/// keeps the same list for people.
const KNOWN_VIOLATIONS: &[(&str, &str)] = &[];

/// Cases that once broke an invariant and were fixed: every sampled run includes them, so the fix stays.
const REGRESSIONS: &[&str] = &[
    // Cancelled during the automatic swap back: the journal was written `failed` with the slots as
    // before the swap, which Azure then finished, so the rollback stage refused.
    "rollback-swap/cancel/during",
];

/// Cases of the sample besides the SIGKILL and the cancellation case.
const SAMPLED_OTHERS: usize = 4;
/// Past this, a sampled run starts no new case (CI's budget is about five minutes on two cores).
const SAMPLE_BUDGET: Duration = Duration::from_secs(300);

fn selection() -> (u64, Vec<Case>, bool) {
    let seed = std::env::var("SLOT_RELEASE_MATRIX_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(default_seed);
    if let Ok(ids) = std::env::var("SLOT_RELEASE_MATRIX_CASE") {
        let cases = ids
            .split(',')
            .map(|id| Case::parse(id).unwrap_or_else(|| panic!("unknown matrix case {id:?}")))
            .collect();
        return (seed, cases, true);
    }
    if std::env::var("SLOT_RELEASE_MATRIX").is_ok_and(|v| v == "full") {
        return (seed, matrix::all_cases(), true);
    }
    // Every case listed as a known violation first, so CI notices the day one is fixed, then the sample.
    let mut cases: Vec<Case> = KNOWN_VIOLATIONS
        .iter()
        .map(|(id, _)| Case::parse(id).unwrap_or_else(|| panic!("unknown matrix case {id:?}")))
        .collect();
    for id in REGRESSIONS {
        let case = Case::parse(id).unwrap_or_else(|| panic!("unknown matrix case {id:?}"));
        if !cases.contains(&case) {
            cases.push(case);
        }
    }
    for case in matrix::sample(seed, SAMPLED_OTHERS) {
        if !cases.contains(&case) {
            cases.push(case);
        }
    }
    (seed, cases, false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fault_matrix_keeps_production_serving_and_converges() {
    let (seed, cases, unbounded) = selection();
    eprintln!(
        "fault matrix: seed {seed}, {} case(s): {}",
        cases.len(),
        cases
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
    let started = Instant::now();
    let mut failures = Vec::new();
    let (mut run, mut injected, mut faulted) = (0usize, 0, 0);
    let (mut untriggered, mut skipped) = (Vec::new(), Vec::new());
    for case in &cases {
        if !unbounded && started.elapsed() > SAMPLE_BUDGET {
            eprintln!("fault matrix: budget spent, {case} not started");
            skipped.push(case.to_string());
            continue;
        }
        let case_started = Instant::now();
        let report = match matrix::run_case(*case).await {
            Ok(report) => report,
            Err(e) => {
                failures.push(format!("{case}: the case could not run: {e}"));
                continue;
            }
        };
        run += 1;
        injected += report.faults_injected;
        faulted += report.faulted_requests;
        // A fault aimed at requests the run never made proves as little as one that never fired.
        if !report.triggered || report.step_hits == Some(0) {
            untriggered.push(case.to_string());
        }
        let violations = matrix::check_case(&report);
        let id = case.to_string();
        let known = KNOWN_VIOLATIONS
            .iter()
            .find(|(k, _)| *k == id)
            .map(|(_, why)| *why);
        let results: Vec<String> = report
            .runs
            .iter()
            .map(|r| {
                format!(
                    "{}={}",
                    r.command,
                    r.outcome
                        .variables
                        .get("Result")
                        .map_or("(none)", |v| v.value.as_str())
                )
            })
            .collect();
        eprintln!(
            "fault matrix: {case}: {} in {:.1}s, triggered={}, step hits={}, {} fault(s), {} faulted request(s), {} violation(s)",
            results.join(" then "),
            case_started.elapsed().as_secs_f64(),
            report.triggered,
            report
                .step_hits
                .map_or_else(|| "n/a".to_owned(), |n| n.to_string()),
            report.faults_injected,
            report.faulted_requests,
            violations.len()
        );
        if std::env::var_os("SLOT_RELEASE_MATRIX_SHOW").is_some() {
            // Replaying one case to see what it did, not only whether it kept the invariants.
            for r in &report.runs {
                eprintln!(
                    "--- `{}` (interrupted: {}):\n{}",
                    r.command, r.interrupted, r.outcome.stdout
                );
            }
        }
        match (known, violations.is_empty()) {
            (Some(why), false) => {
                eprintln!("fault matrix: {case}: known violation ({why}):");
                for v in &violations {
                    eprintln!("    {v}");
                }
                continue;
            }
            (Some(why), true) => {
                failures.push(format!(
                    "{case}: listed in KNOWN_VIOLATIONS ({why}) but it now keeps every invariant; \
                     remove it from the list (and from docs/reliability.md)"
                ));
                continue;
            }
            (None, _) => {}
        }
        if !violations.is_empty() {
            let mut text = format!("{case}:");
            for v in &violations {
                text.push_str(&format!("\n    {v}"));
            }
            for r in &report.runs {
                let tail: Vec<&str> = r.outcome.stdout.lines().rev().take(25).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                let journal: Vec<String> = matrix::journal_tags(&r.after)
                    .into_iter()
                    .filter(|(k, _)| k.starts_with("slotrelease."))
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                text.push_str(&format!(
                    "\n    --- `{}` (interrupted: {}); packages by slot after it: {:?}; journal: {}; last lines:\n      {}",
                    r.command,
                    r.interrupted,
                    r.content,
                    journal.join(" "),
                    tail.join("\n      ")
                ));
            }
            failures.push(text);
        }
    }
    // A case whose fault never fired, or that the budget skipped, proved nothing: reported, never passed.
    let proven = run
        .saturating_sub(untriggered.len())
        .saturating_sub(failures.len());
    eprintln!(
        "fault matrix (seed {seed}): {run} case(s) run, {injected} fault(s) injected, {faulted} request(s) faulted, \
         {proven} passed with their fault fired, {} with violations, {} not proven (the step was never reached, or its fault struck none of its requests: {}), \
         {} skipped by the time budget ({}), {:.0}s",
        failures.len(),
        untriggered.len(),
        untriggered.join(", "),
        skipped.len(),
        skipped.join(", "),
        started.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "fault matrix (seed {seed}) found violations; replay with \
         SLOT_RELEASE_MATRIX_CASE=<id> cargo test -p slot-release-tests --test fault_matrix\n{}",
        failures.join("\n")
    );
    assert!(run > 0 || cases.is_empty(), "no case ran");
}
