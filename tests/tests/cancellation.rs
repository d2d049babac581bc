//! The agent's cancellation, measured: SIGINT to `node task/index.js` while the run is (a) in the
//! middle of an ARM call the emulator holds for a minute, (b) building the package of a big tree, or
//! (c) in a health gate that would go on for 30 s. Each time the task must stop on its own well inside
//! the agent's 7.5 s grace (3 s), report `Cancelled`, and leave the journal and the lock as
//! `docs/reliability.md` says. Nothing in the binary exits early on a timer, so a step that did not
//! honour the cancel would run into the agent's SIGTERM and kill and fail the bound.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use slot_release_emulator::{Fault, RouteMatch};
use slot_release_tests::{AgentOutcome, AgentResult, World};

const APP: &str = "contoso-web";
/// What "well inside the agent's grace" means here: the stop itself takes well under a second; the
/// rest is node, the process exit and a busy two-core machine.
const STOP_BOUND: Duration = Duration::from_secs(3);
const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs blocking harness work off the runtime threads the emulator serves on.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => panic!("harness thread failed: {e}"),
    }
}

/// How a cancelled run went.
struct Cancelled {
    /// Whether `needle` appeared before the cancel.
    reached: bool,
    /// From the SIGINT to the exit of node.
    stop_time: Duration,
    outcome: AgentOutcome,
}

/// Starts `command` through the entry point, waits for `needle` on stdout, lets `settle` pass (so the
/// step is under way), then cancels the agent's way.
async fn cancel_at(world: &World, command: &str, needle: &str, settle: Duration) -> Cancelled {
    let run = world.run(command).unwrap_or_else(|e| panic!("{e}"));
    let needle = needle.to_owned();
    let done = blocking(move || {
        let mut task = run.spawn()?;
        let reached = task.wait_for_output(&needle, TIMEOUT);
        std::thread::sleep(settle);
        let asked = Instant::now();
        let outcome = task.cancel()?;
        Ok::<_, std::io::Error>((reached, asked.elapsed(), outcome))
    })
    .await;
    let (reached, stop_time, outcome) = done.unwrap_or_else(|e| panic!("{e}"));
    Cancelled {
        reached,
        stop_time,
        outcome,
    }
}

impl Cancelled {
    /// Reached the step, stopped on its own within the bound, and the agent records `Canceled`.
    fn assert_stopped_in_time(&self, what: &str) {
        eprintln!("SIGINT during {what}: stopped in {:?}", self.stop_time);
        let transcript = self.outcome.transcript();
        assert!(self.reached, "the run never reached {what}\n{transcript}");
        assert!(
            !self.outcome.killed,
            "the task ignored SIGINT and SIGTERM and was killed during {what}\n{transcript}"
        );
        assert!(
            self.stop_time < STOP_BOUND,
            "SIGINT during {what}: the task took {:?} to stop (bound {STOP_BOUND:?})\n{transcript}",
            self.stop_time
        );
        assert_eq!(self.outcome.result, AgentResult::Canceled, "{transcript}");
        assert!(
            self.outcome
                .stdout
                .contains("Cancellation requested (SIGINT)"),
            "the binary did not hear the signal node forwarded\n{transcript}"
        );
    }

    fn result_variable(&self) -> Option<&str> {
        self.outcome
            .variables
            .get("Result")
            .map(|v| v.value.as_str())
    }
}

fn production_tags(world: &World) -> std::collections::BTreeMap<String, String> {
    world
        .emulator
        .snapshot()
        .slot(APP, "production")
        .map(|s| s.tags.clone())
        .unwrap_or_default()
}

fn lock_claims(world: &World) -> Vec<String> {
    production_tags(world)
        .into_keys()
        .filter(|k| k.starts_with("slotrelease.claim."))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_an_arm_call_held_by_azure_stops_the_call_at_once() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    // Azure sits on the settings write of the staging slot for a minute.
    world.emulator.inject(Fault::Latency {
        route: RouteMatch {
            host: Some("management.emulator.test".into()),
            method: Some("PUT".into()),
            path: Some("*/slots/staging/config/appsettings".into()),
            body_contains: None,
        },
        millis: 60_000,
        count: None,
    });
    let run = cancel_at(
        &world,
        "staging",
        "##[group]set 5 setting(s) on staging",
        Duration::from_millis(700),
    )
    .await;
    run.assert_stopped_in_time("the settings write");
    let transcript = run.outcome.transcript();
    assert!(
        transcript.contains("cancelled during `set settings on staging`"),
        "the call in flight was not the one cancelled\n{transcript}"
    );
    assert_eq!(run.result_variable(), Some("Cancelled"), "{transcript}");
    // The journal says where the release stopped (it began, nothing was deployed), the lock is back.
    assert_eq!(
        production_tags(&world)
            .get("slotrelease.phase")
            .map(String::as_str),
        Some("staging"),
        "{transcript}"
    );
    assert_eq!(lock_claims(&world), Vec::<String>::new(), "{transcript}");
}

/// Bytes from a 16-letter alphabet in no order: slow to deflate, and never stored as they are.
fn slow_to_deflate(len: usize) -> Vec<u8> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'a' + (state % 16) as u8
        })
        .collect()
}

/// Every file below `dir` whose name ends with one of `endings`.
fn files_ending(dir: &Path, endings: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_ending(&path, endings));
        } else if endings.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_the_package_build_of_a_big_tree_stops_it_and_leaves_nothing() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    // 300 MiB of assets next to the app: a build of many seconds on any machine.
    let block = slow_to_deflate(2 << 20);
    for i in 0..150 {
        let dir = world.sources.join(format!("assets/d{:02}", i % 10));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
        let mut data = format!("{i}\n").into_bytes();
        data.extend_from_slice(&block);
        std::fs::write(dir.join(format!("a{i:03}.txt")), data).unwrap_or_else(|e| panic!("{e}"));
    }
    let tags_before = production_tags(&world);
    let run = cancel_at(
        &world,
        "staging",
        "No package given: building one from",
        Duration::from_millis(700),
    )
    .await;
    run.assert_stopped_in_time("the package build");
    let transcript = run.outcome.transcript();
    assert!(
        transcript.contains("preparing the package was cancelled"),
        "{transcript}"
    );
    // The package is prepared before anything reaches Azure: no lock, no journal, and no partial archive.
    assert_eq!(production_tags(&world), tags_before, "{transcript}");
    let partial = files_ending(&world.sources, &[".zip.part", ".zip"]);
    assert_eq!(partial, Vec::<PathBuf>::new(), "{transcript}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigint_during_a_health_gate_stops_the_gate_at_once() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    // The staging app answers 500: its gate would probe for its whole 30 s.
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: APP.into(),
        slot: "staging".into(),
        after_requests: 0,
    });
    let run = cancel_at(
        &world,
        "staging",
        "##[group]health gate staging/health",
        Duration::from_millis(1500),
    )
    .await;
    run.assert_stopped_in_time("the health gate");
    let transcript = run.outcome.transcript();
    assert_eq!(run.result_variable(), Some("Cancelled"), "{transcript}");
    assert!(
        transcript.contains("health gate of") && transcript.contains("cancelled after"),
        "{transcript}"
    );
    // Deployed and its hook run, not staged: the next run of the release resumes from there.
    assert_eq!(
        production_tags(&world)
            .get("slotrelease.phase")
            .map(String::as_str),
        Some("deployed"),
        "{transcript}"
    );
    assert_eq!(lock_claims(&world), Vec::<String>::new(), "{transcript}");
}
