//! Build once, deploy many, through the real entry point against the emulator: `build` in one job writes the
//! package and its build record to an output folder; a later job with a fresh checkout and a fresh work
//! folder gets that folder as a downloaded artifact and deploys exactly those bytes with the `package` input,
//! without rebuilding. A package changed after the build, or a garbage one, is refused before any change.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use slot_release_emulator::{SlotSnapshot, StateSnapshot};
use slot_release_tests::example::copy_dir;
use slot_release_tests::{AgentOutcome, AgentResult, AgentRun, World};

const TIMEOUT: Duration = Duration::from_secs(240);
const APP: &str = "contoso-web";

/// Runs blocking harness work off the runtime threads the emulator serves on.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) => panic!("harness thread failed: {e}"),
    }
}

async fn finish(run: AgentRun) -> AgentOutcome {
    blocking(move || run.run(TIMEOUT))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn slot(snapshot: &StateSnapshot, name: &str) -> SlotSnapshot {
    snapshot
        .slot(APP, name)
        .cloned()
        .unwrap_or_else(|| panic!("no slot {name}"))
}

/// The build job: `build` with its output folder outside the checkout, as Build.ArtifactStagingDirectory is.
async fn build(world: &World) -> (PathBuf, serde_json::Value) {
    let artifact = world.dir.path().join("a");
    let run = world
        .run("build")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("outputFolder", &artifact.display().to_string());
    let outcome = finish(run).await;
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    let record = read_json(&artifact.join("slot-release-build.json"));
    (artifact, record)
}

/// A later job: a fresh checkout and work folder, with the build's artifact downloaded into `drop/`.
fn deploy_job(world: &World, artifact: &Path, name: &str) -> PathBuf {
    let job = world.dir.path().join(name);
    let sources = job.join("s");
    world.checkout(&sources).unwrap_or_else(|e| panic!("{e}"));
    copy_dir(artifact, &job.join("drop")).unwrap_or_else(|e| panic!("{e}"));
    job
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staging_in_another_job_deploys_exactly_the_bytes_the_build_recorded() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let (artifact, record) = build(&world).await;
    let sha = record["sha256"].as_str().unwrap_or_default().to_owned();
    assert_eq!(sha.len(), 64, "{record}");
    assert_eq!(record["releaseName"], "20261122-1");
    // The run whose artifact holds the package: the agent's Build.BuildId and System.DefinitionId.
    assert_eq!(record["buildId"], "4242");
    assert_eq!(record["runId"], "4242");
    assert_eq!(record["pipelineId"], "17");

    let job = deploy_job(&world, &artifact, "job2");
    let before = slot(&world.emulator.snapshot(), "staging")
        .deployments
        .len();
    let run = world
        .run_in("staging", &job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"))
        .input("package", &format!("{}/drop/*.zip", job.display()));
    let outcome = finish(run).await;
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    assert!(
        outcome
            .stdout
            .contains("Package verified against its build record"),
        "{}",
        outcome.transcript()
    );
    assert!(
        !outcome.stdout.contains("No package given"),
        "staging rebuilt the package\n{}",
        outcome.transcript()
    );
    assert!(
        !job.join("s/_temp/slot-release/package.zip").exists(),
        "a package was built in the deploying job"
    );
    // The deployment Kudu received holds exactly the bytes the build recorded.
    let staging = slot(&world.emulator.snapshot(), "staging");
    let pushed: Vec<&str> = staging.deployments[before..]
        .iter()
        .filter_map(|d| d.received_sha256.as_deref())
        .collect();
    assert_eq!(pushed, [sha.as_str()], "{:#?}", staging.deployments);

    // Deploy many: production, in a third job, swaps in exactly what staging received.
    let job3 = deploy_job(&world, &artifact, "job3");
    let run = world
        .run_in("production", &job3.join("s"))
        .unwrap_or_else(|e| panic!("{e}"));
    let outcome = finish(run).await;
    assert_eq!(
        outcome.result,
        AgentResult::Succeeded,
        "{}",
        outcome.transcript()
    );
    let production = slot(&world.emulator.snapshot(), "production");
    assert_eq!(
        production.content_digest, staging.content_digest,
        "production serves the built package"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_package_tampered_with_after_the_build_changes_nothing() {
    let world = World::start().await.unwrap_or_else(|e| panic!("{e}"));
    let (artifact, record) = build(&world).await;
    let job = deploy_job(&world, &artifact, "job2");
    // One byte of the downloaded zip changes: still a readable zip, not what the build made.
    let zip = job.join("drop/package.zip");
    let mut bytes = std::fs::read(&zip).unwrap_or_else(|e| panic!("{e}"));
    bytes[40] ^= 0x01;
    std::fs::write(&zip, &bytes).unwrap_or_else(|e| panic!("{e}"));
    let garbage = job.join("garbage.zip");
    std::fs::write(&garbage, b"not a zip").unwrap_or_else(|e| panic!("{e}"));

    let before = world.emulator.snapshot();
    world.emulator.clear_requests();
    let cases = [
        (
            zip.display().to_string(),
            "the package changed after the build",
        ),
        (garbage.display().to_string(), "is not a readable zip"),
        (
            format!("{}/drop/*.json", job.display()),
            "is not a readable zip",
        ),
        (
            format!("{}/nowhere/*.zip", job.display()),
            "nothing matches",
        ),
    ];
    for (package, expected) in cases {
        let run = world
            .run_in("staging", &job.join("s"))
            .unwrap_or_else(|e| panic!("{e}"))
            .input("package", &package);
        let outcome = finish(run).await;
        assert_eq!(
            outcome.result,
            AgentResult::Failed,
            "{}",
            outcome.transcript()
        );
        assert!(
            outcome.transcript().contains(expected),
            "{package}: {expected:?} missing\n{}",
            outcome.transcript()
        );
    }
    let sha = record["sha256"].as_str().unwrap_or_default();
    // Nothing was written to Azure: no tag (lock, journal), no setting, no deployment.
    let after = world.emulator.snapshot();
    for name in ["production", "staging"] {
        let (b, a) = (slot(&before, name), slot(&after, name));
        assert_eq!(a.tags, b.tags, "{name}: tags written");
        assert_eq!(a.app_settings, b.app_settings, "{name}: settings written");
        assert_eq!(
            a.deployments.len(),
            b.deployments.len(),
            "{name}: deployment written"
        );
        assert_eq!(
            a.content_digest, b.content_digest,
            "{name}: content changed"
        );
    }
    let writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/list"))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        // Sign-in is not a write: the Entra token and the pipeline's OIDC token for it.
        .filter(|w| !w.contains("login.") && !w.contains("/oauth2/") && !w.ends_with("/oidctoken"))
        .collect();
    assert!(writes.is_empty(), "written: {writes:#?} (sha {sha})");
}
