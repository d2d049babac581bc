//! Azure Functions apps (issue 16): a function app on an Elastic Premium plan released build -> staging ->
//! production through the Node entry point, each stage a separate job with its own checkout and work
//! folder, the gate probing the custom handler the emulator's Functions host runs; and a Flex Consumption
//! app refused before any change, the emulator's request log showing no write.

use std::time::Duration;

use slot_release_emulator::EmulatorOptions;
use slot_release_tests::{AgentOutcome, AgentRun, Example, World, printed};

use super::jobs::{finish, job, succeeded};

const APP: &str = "contoso-func";

/// The functions example's app, as its previous release left it, made a function app on `sku`.
async fn function_world(sku: &'static str) -> World {
    World::builder()
        .example(Example::Functions)
        .previous_release()
        .emulator(move |o: &mut EmulatorOptions| {
            o.deployment_step_delay = Duration::from_millis(20);
            for app in o
                .seed
                .subscriptions
                .iter_mut()
                .flat_map(|s| s.resource_groups.iter_mut())
                .flat_map(|rg| rg.apps.iter_mut())
                .filter(|a| a.name == APP)
            {
                app.function_app = true;
                app.plan.sku = sku.to_owned();
            }
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

/// The body of the slot's HTTP-triggered `health` function, which the custom handler serves.
async fn health(world: &World, slot: &str) -> String {
    let (status, body) = world
        .get(slot, "/api/health")
        .await
        .unwrap_or_else(|| panic!("{slot} did not answer"));
    assert_eq!(status, 200, "{slot}: {body}");
    body
}

/// Runs `run` while probing production's `/api/health`; every answer that was not the function's 200
/// is returned.
async fn probing(world: &World, run: AgentRun) -> (AgentOutcome, Vec<String>) {
    let run = finish(run);
    tokio::pin!(run);
    let mut bad = Vec::new();
    loop {
        tokio::select! {
            outcome = &mut run => return (outcome, bad),
            () = tokio::time::sleep(Duration::from_millis(200)) => {
                match world.get("production", "/api/health").await {
                    Some((200, body)) if body.starts_with("ok ") => {}
                    other => bad.push(format!("{other:?}")),
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_functions_app_on_premium_releases_build_staging_production_in_separate_jobs() {
    let world = function_world("EP1").await;
    // The previous release's handler answers on production, through the Functions host's routes.
    assert_eq!(health(&world, "production").await, "ok previous");
    let (status, _) = world.get("production", "/api/hello").await.unwrap();
    assert_eq!(status, 401, "a function-level route wants a key");

    // Build job: the package and its record, outside the checkout.
    let artifact = world.dir.path().join("a");
    let run = world
        .run("build")
        .unwrap_or_else(|e| panic!("{e}"))
        .input("outputFolder", &artifact.display().to_string());
    succeeded(&finish(run).await);

    // Staging job: the Functions host check instead of a startup command, the gate on the handler.
    world.emulator.clear_requests();
    let staging_job = job(&world, &artifact, "job2");
    let run = world
        .run_in("staging", &staging_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"))
        .input("package", &format!("{}/drop/*.zip", staging_job.display()));
    let outcome = finish(run).await;
    succeeded(&outcome);
    for wanted in [
        "hosting-plan: an Azure Functions app on ElasticPremium plan tier",
        "functions-host: the Functions host runs the package (FUNCTIONS_WORKER_RUNTIME=custom",
        "from host.json at its root; no startup command is needed",
    ] {
        assert!(
            outcome.stdout.contains(wanted),
            "{wanted:?}\n{}",
            outcome.transcript()
        );
    }
    assert!(!outcome.stdout.contains("startup-command"));
    let release = world
        .setting("staging", "RELEASE_VERSION")
        .expect("the release's version on staging");
    assert_ne!(release, "previous");
    assert_eq!(health(&world, "staging").await, format!("ok {release}"));
    assert_eq!(health(&world, "production").await, "ok previous");
    // The staging gate needed no key, so the host keys were not read.
    assert_eq!(listkeys(&world), Vec::<String>::new());
    let leaks = world.leaks(&outcome, &[&staging_job]);
    assert!(leaks.is_empty(), "{leaks:#?}");

    // Production job: the swap, production answering throughout, the watch probing a function that
    // wants a key with production's default function key.
    let production_job = job(&world, &artifact, "job3");
    let run = world
        .run_in("production", &production_job.join("s"))
        .unwrap_or_else(|e| panic!("{e}"));
    let (outcome, bad) = probing(&world, run).await;
    succeeded(&outcome);
    assert!(bad.is_empty(), "production did not answer: {bad:?}");
    assert_eq!(health(&world, "production").await, format!("ok {release}"));
    assert_eq!(health(&world, "staging").await, "ok previous");
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    assert!(
        outcome
            .stdout
            .contains("watch production/api/hello with the slot's function key"),
        "{}",
        outcome.transcript()
    );
    // Read for production only, when the watch began; never printed, written or journaled (the host
    // keys are among the credentials the leak scan looks for).
    let keys = listkeys(&world);
    assert!(
        !keys.is_empty() && keys.iter().all(|p| !p.contains("/slots/")),
        "{keys:?}"
    );
    let leaks = world.leaks(&outcome, &[&production_job]);
    assert!(leaks.is_empty(), "{leaks:#?}");
    // Registered with the agent (task.setsecret) the moment it was read, so any print is masked.
    let key = world
        .emulator
        .credentials()
        .into_iter()
        .find(|c| c.label == format!("default host key of {APP} slot production"))
        .expect("production's default function key");
    assert!(
        outcome
            .registered_secrets
            .iter()
            .any(|s| s == key.value.expose()),
        "the function key was not registered as a secret"
    );
}

/// The `listkeys` calls the emulator has seen since its log was last cleared.
fn listkeys(world: &World) -> Vec<String> {
    world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/host/default/listkeys"))
        .map(|r| r.path)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flex_consumption_app_is_refused_before_any_change() {
    let world = function_world("FC1").await;
    let before = world.emulator.snapshot();
    world.emulator.clear_requests();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(!out.status.success(), "{}", printed(&out));
    let text = printed(&out);
    for wanted in [
        // Its own error, not a list of failed checks.
        "error: staging stage: contoso-func runs on a Flex Consumption plan, which has no deployment slots",
        "Nothing was changed",
        "Elastic Premium (EP1-EP3) or a Dedicated App Service plan",
        "not something this task does",
    ] {
        assert!(text.contains(wanted), "{wanted:?} not in:\n{text}");
    }
    // Nothing but reads reached ARM, Kudu or the app (ARM reads settings with `POST …/list`).
    let writes: Vec<String> = world
        .emulator
        .requests()
        .iter()
        .filter(|r| !r.host.starts_with("login.") && r.method != "GET")
        .filter(|r| !(r.method == "POST" && r.path.ends_with("/list")))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect();
    assert!(writes.is_empty(), "writes before the refusal: {writes:#?}");
    let after = world.emulator.snapshot();
    let app = |s: &slot_release_emulator::StateSnapshot| {
        s.apps
            .iter()
            .find(|a| a.name == APP)
            .map(|a| {
                a.slots
                    .iter()
                    .map(|slot| {
                        (
                            slot.name.clone(),
                            slot.content_digest.clone(),
                            slot.app_settings.clone(),
                            slot.tags.clone(),
                            slot.site_config.clone(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .expect("the app")
    };
    assert_eq!(app(&after), app(&before));
    assert_eq!(app(&after).len(), 1, "no slot was created");

    // `plan` shows the same refusal as a failed check, and so does a whole release.
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(!out.status.success(), "{}", printed(&out));
    assert!(
        printed(&out).contains("hosting-plan: contoso-func runs on a Flex Consumption plan"),
        "{}",
        printed(&out)
    );
}
