//! The `##vso` stream a real staging run writes, through the real entry point against the emulator, as a
//! snapshot: every logging command, section and fold the agent reads, in order. Values that change from run
//! to run (ports, host-name hashes, durations, times, temp paths, issued tokens) are filtered; progress
//! lines (their count follows the clock) are checked apart.
#![cfg(unix)]

use std::time::Duration;

use slot_release_tests::{AgentResult, World};

const TIMEOUT: Duration = Duration::from_secs(240);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_staging_run_writes_this_vso_stream() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let sources = world.sources.display().to_string();
    let run = world
        .run("staging")
        .unwrap_or_else(|e| panic!("{e}"))
        .env("BUILD_BUILDNUMBER", "20261205.1")
        .env("BUILD_BUILDID", "4711")
        .env("SYSTEM_DEFINITIONID", "12")
        .env(
            "SYSTEM_COLLECTIONID",
            "c0ffee00-0000-4000-8000-000000000001",
        );
    let outcome = tokio::task::spawn_blocking(move || run.run(TIMEOUT))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    // The stage's own progress (packaging before it reports its own, from 0 again).
    let mut progress = Vec::new();
    let mut stream = Vec::new();
    for line in outcome.stdout.lines() {
        if let Some(rest) = line.strip_prefix("##vso[task.setprogress value=") {
            let (value, message) = rest.split_once(";]").unwrap_or_default();
            if message.starts_with("staging:") {
                progress.push(value.parse::<u8>().unwrap());
            }
        } else if line.starts_with("##vso[task.setsecret]") {
            // Secrets the emulator issues (tokens) differ per run, and so does the number of their
            // encodings; what is registered is the leak tests' business, the snapshot keeps where.
            stream.push("##vso[task.setsecret]<secrets>".to_owned());
        } else if line.starts_with("##") {
            stream.push(line.replace(&sources, "<sources>"));
        }
    }
    // Progress only moves forward, and reaches the end of the stage.
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "{progress:?}");
    assert_eq!(progress.last(), Some(&100), "{progress:?}");
    let mut settings = insta::Settings::clone_current();
    for (pattern, replacement) in [
        (r"-[a-z0-9]{16}\.", "-<hash>."),
        (r":\d{4,5}\b", ":<port>"),
        (r"\b\d+(\.\d+)? ?(ms|s)\b", "<duration>"),
        (
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?(\.\d+)?Z?",
            "<time>",
        ),
        (r"\b\d{2}:\d{2}(:\d{2})? UTC", "<time> UTC"),
        (r"\b[0-9a-f]{64}\b", "<sha256>"),
        (r"deploy package [0-9a-f]{12}", "deploy package <sha12>"),
    ] {
        settings.add_filter(pattern, replacement);
    }
    stream.dedup();
    settings.bind(|| insta::assert_snapshot!(stream.join("\n")));
}
