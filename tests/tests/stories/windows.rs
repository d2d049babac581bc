//! A Windows code app (issue 16): a Node app that IIS runs through the iisnode handler of its own
//! `web.config`, released build -> staging -> production in separate jobs. The stack comes from the live
//! app (CURRENT_STACK, nodeVersion), no startup command is asked for, `web.config` lands in the slot byte
//! for byte, the staging slot is offline (Kudu's app_offline.htm, 503) while its deployment runs, and
//! production, which the product never deploys into, answers throughout.

use std::time::Duration;

use slot_release_emulator::{AppOs, EmulatorOptions};
use slot_release_engine::state::SlotName;
use slot_release_tests::{AgentOutcome, AgentRun, Example, World};

use super::jobs::{finish, job, succeeded};
use tokio_util::sync::CancellationToken;

const APP: &str = "win-node-web";

async fn windows_world() -> World {
    World::builder()
        .example(Example::WindowsNode)
        .previous_release()
        .emulator(|o: &mut EmulatorOptions| {
            // Long enough steps that a probe sees the slot offline while Kudu deploys.
            o.deployment_step_delay = Duration::from_millis(600);
            for app in o
                .seed
                .subscriptions
                .iter_mut()
                .flat_map(|s| s.resource_groups.iter_mut())
                .flat_map(|rg| rg.apps.iter_mut())
                .filter(|a| a.name == APP)
            {
                app.os = AppOs::Windows;
                for slot in &mut app.slots {
                    slot.site_config.insert("linuxFxVersion".into(), "".into());
                    slot.site_config.insert("nodeVersion".into(), "~20".into());
                    slot.metadata.insert("CURRENT_STACK".into(), "node".into());
                }
            }
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

/// Runs `run` while probing `slot`'s `/health` every 100 ms; returns the outcome and every status seen,
/// in order, with the bodies of those that were not 200.
async fn probing(world: &World, slot: &str, run: AgentRun) -> (AgentOutcome, Vec<(u16, String)>) {
    let run = finish(run);
    tokio::pin!(run);
    let mut seen = Vec::new();
    loop {
        tokio::select! {
            outcome = &mut run => return (outcome, seen),
            () = tokio::time::sleep(Duration::from_millis(100)) => {
                match world.get(slot, "/health").await {
                    Some((200, _)) => seen.push((200, String::new())),
                    Some((status, body)) => seen.push((status, body)),
                    None => seen.push((0, String::new())),
                }
            }
        }
    }
}

/// `web.config` as the slot's `wwwroot` holds it, read through Kudu's command API.
async fn slot_web_config(world: &World, slot: &str) -> String {
    let slot = SlotName::new(slot).unwrap_or_else(|e| panic!("{e}"));
    let out = world
        .port
        .run_command(
            &slot,
            "cat web.config",
            Duration::from_secs(30),
            &CancellationToken::new(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.exit_code, 0, "{}", out.output);
    out.output
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_windows_node_app_releases_with_its_web_config_untouched() {
    let world = windows_world().await;
    let web_config = std::fs::read_to_string(world.sources.join("web.config")).expect("web.config");
    let (status, body) = world
        .get("production", "/health")
        .await
        .expect("production");
    assert_eq!(status, 200, "the previous release runs under IIS: {body}");

    let artifact = world.dir.path().join("a");
    let run = world
        .run("build")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("outputFolder", &artifact.display().to_string());
    succeeded(&finish(run).await);

    // Staging job: the staging slot goes offline while Kudu deploys into it (IIS answers with
    // app_offline.htm), then serves the release.
    let staging_job = job(&world, &artifact, "job2");
    let run = world
        .run_in("staging", &staging_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"))
        .input("package", &format!("{}/drop/*.zip", staging_job.display()));
    let (outcome, seen) = probing(&world, "staging", run).await;
    succeeded(&outcome);
    // The stack was read from the live Windows app, and IIS needs no startup command.
    assert!(
        outcome.stdout.contains(
            "ok   startup-command: NODE ~20 (Windows) runs the deployed app itself; no startup command is needed"
        ),
        "{}",
        outcome.transcript()
    );
    assert!(
        seen.iter()
            .any(|(s, body)| *s == 503 && body.contains("being deployed")),
        "staging was never offline during its deployment: {seen:?}"
    );
    let release = world
        .setting("staging", "RELEASE_VERSION")
        .expect("the release's version on staging");
    let (status, body) = world.get("staging", "/health").await.expect("staging");
    assert_eq!(status, 200);
    assert!(body.contains(&release), "{body}");
    assert_eq!(slot_web_config(&world, "staging").await, web_config);

    // Production job: a swap, never a deployment into production, so production never goes offline.
    let production_job = job(&world, &artifact, "job3");
    let run = world
        .run_in("production", &production_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (outcome, seen) = probing(&world, "production", run).await;
    succeeded(&outcome);
    assert!(
        seen.iter().all(|(s, _)| *s == 200),
        "production did not answer throughout: {seen:?}"
    );
    let (status, body) = world
        .get("production", "/health")
        .await
        .expect("production");
    assert_eq!(status, 200);
    assert!(body.contains(&release), "{body}");
    assert_eq!(slot_web_config(&world, "production").await, web_config);
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
}
