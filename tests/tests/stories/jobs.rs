//! The stories that run build, staging and production as separate agent jobs, each with its own
//! checkout and work folder as Azure Pipelines gives them: a job run to its end, and a later job's
//! folder with the build's artifact downloaded into `drop/`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use slot_release_tests::example::copy_dir;
use slot_release_tests::{AgentOutcome, AgentResult, AgentRun, World};

/// How long one job may take (a stage with its gate, on a loaded 2-core machine).
pub(crate) const TIMEOUT: Duration = Duration::from_secs(240);

/// Runs a job on a blocking thread (the harness waits on the process) and returns its outcome.
pub(crate) async fn finish(run: AgentRun) -> AgentOutcome {
    match tokio::task::spawn_blocking(move || run.run(TIMEOUT)).await {
        Ok(outcome) => outcome.unwrap_or_else(|e| panic!("{e}")),
        Err(e) => panic!("harness thread failed: {e}"),
    }
}

/// The job succeeded; its transcript is shown when it did not.
pub(crate) fn succeeded(outcome: &AgentOutcome) {
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
}

/// A later job: a fresh checkout and work folder, with the build's artifact downloaded into `drop/`.
pub(crate) fn job(world: &World, artifact: &Path, name: &str) -> PathBuf {
    let job = world.dir.path().join(name);
    world
        .checkout(&job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"));
    copy_dir(artifact, &job.join("drop")).unwrap_or_else(|e| panic!("{e}"));
    job
}
