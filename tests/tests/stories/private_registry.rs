//! Private registries: the release's image sits in a registry the emulator keeps private. With the
//! password in Key Vault, each stage writes the `DOCKER_REGISTRY_SERVER_*` settings before the image and
//! the password shows nowhere but in the setting meant for it; with the app's managed identity, each slot
//! gets `acrUseManagedIdentityCreds`; with neither, the pull is refused, the staging gate stops the
//! release and production keeps running the previous image. Each stage runs as its own process through
//! the task's entry point, as a pipeline's stages do.

use std::time::Duration;

use slot_release_emulator::{ImageMapping, PrivateImage, RunState};
use slot_release_tests::{AgentOutcome, AgentResult, Example, World};

/// The tag the world's runs release (`Build.BuildId`).
const IMAGE: &str = "contoso.azurecr.io/contoso/app:4242";
const PREVIOUS: &str = "contoso.azurecr.io/contoso/app:previous";
const PASSWORD: &str = "acr-pull-pw-5e91c7";

/// The container example with `block` in both environments; the release's tag is private (pulled
/// with `puller` / [`PASSWORD`] or the managed identity), the previous release's stays public so that
/// production runs before the release.
async fn world_with(block: &'static str) -> World {
    World::builder()
        .example(Example::Container)
        .previous_release()
        .quick()
        .edit(move |t| {
            t.replace(
                "    slot: staging\n",
                &format!("    slot: staging\n{block}"),
            )
            .replace(
                "    slot: production\n",
                &format!("    slot: production\n{block}"),
            )
        })
        .vault(&[("acr-password", PASSWORD)])
        .emulator(|o| {
            let public = o.images[0].clone();
            o.images.insert(
                0,
                ImageMapping {
                    pattern: IMAGE.to_owned(),
                    private: Some(PrivateImage {
                        server: "contoso.azurecr.io".into(),
                        username: Some("puller".into()),
                        password: Some(PASSWORD.into()),
                        identity: true,
                    }),
                    ..public
                },
            );
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

async fn run(world: &World, command: &str) -> AgentOutcome {
    let run = world.run(command).unwrap_or_else(|e| panic!("{e}"));
    tokio::task::spawn_blocking(move || run.run(Duration::from_secs(240)))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn assert_no_leak(world: &World, outcome: &AgentOutcome) {
    assert!(
        world.vault_values.iter().any(|v| v == PASSWORD),
        "the password is not declared to the leak detector"
    );
    let mut leaks = world.leaks(outcome, &[&world.sources]);
    // Everything written to Azure but the one setting meant for the password: other settings, site
    // config, tags, deployment records.
    leaks.extend(world.leak_detector(outcome).scan_state(
        &world.emulator.snapshot(),
        &["DOCKER_REGISTRY_SERVER_PASSWORD"],
    ));
    let report: Vec<String> = leaks.iter().map(ToString::to_string).collect();
    assert!(
        leaks.is_empty(),
        "the registry password leaked:\n{}\n{}",
        report.join("\n"),
        outcome.transcript()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_is_pulled_with_credentials_whose_password_comes_from_key_vault() {
    let world = world_with(
        "    registry:\n      server: contoso.azurecr.io\n      credentials:\n        username: puller\n        passwordSecret: acr-password\n",
    )
    .await;
    let staging = run(&world, "staging").await;
    assert_eq!(
        staging.result,
        AgentResult::Succeeded,
        "{}",
        staging.transcript()
    );
    let slot = world.slot("staging");
    assert_eq!(slot.image.as_deref(), Some(IMAGE));
    assert_eq!(
        slot.app_settings
            .get("DOCKER_REGISTRY_SERVER_URL")
            .map(String::as_str),
        Some("https://contoso.azurecr.io")
    );
    assert_eq!(
        slot.app_settings
            .get("DOCKER_REGISTRY_SERVER_USERNAME")
            .map(String::as_str),
        Some("puller")
    );
    assert_eq!(
        slot.app_settings
            .get("DOCKER_REGISTRY_SERVER_PASSWORD")
            .map(String::as_str),
        Some(PASSWORD),
        "written by value: App Service pulls before any Key Vault reference resolves"
    );
    // The plan names the secret it comes from, never its value.
    assert!(
        staging.stdout.contains("DOCKER_REGISTRY_SERVER_PASSWORD"),
        "{}",
        staging.transcript()
    );
    assert!(
        staging.stdout.contains("acr-password"),
        "{}",
        staging.transcript()
    );
    assert_no_leak(&world, &staging);

    let production = run(&world, "production").await;
    assert_eq!(
        production.result,
        AgentResult::Succeeded,
        "{}",
        production.transcript()
    );
    assert_eq!(world.image("production").as_deref(), Some(IMAGE));
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);
    // Both environments pull alike, so the settings travelled with the swap, the password with them.
    assert_eq!(
        world
            .setting("production", "DOCKER_REGISTRY_SERVER_PASSWORD")
            .as_deref(),
        Some(PASSWORD)
    );
    assert_no_leak(&world, &production);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_is_pulled_with_the_apps_managed_identity() {
    let world =
        world_with("    registry:\n      server: contoso.azurecr.io\n      identity: system\n")
            .await;
    let staging = run(&world, "staging").await;
    assert_eq!(
        staging.result,
        AgentResult::Succeeded,
        "{}",
        staging.transcript()
    );
    let identity = |slot: &str| {
        world
            .slot(slot)
            .site_config
            .get("acrUseManagedIdentityCreds")
            .cloned()
    };
    assert_eq!(identity("staging"), Some(serde_json::json!(true)));
    assert!(
        !world
            .slot("staging")
            .app_settings
            .contains_key("DOCKER_REGISTRY_SERVER_PASSWORD")
    );
    let production = run(&world, "production").await;
    assert_eq!(
        production.result,
        AgentResult::Succeeded,
        "{}",
        production.transcript()
    );
    // The flag stays with its slot in a swap, so production's was written to production first.
    assert_eq!(identity("production"), Some(serde_json::json!(true)));
    assert_eq!(world.image("production").as_deref(), Some(IMAGE));
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_image_without_a_way_to_pull_fails_the_staging_gate_and_production_is_untouched()
{
    let world = world_with("").await;
    let before = world.slot("production");
    let staging = run(&world, "staging").await;
    assert_eq!(
        staging.result,
        AgentResult::Failed,
        "{}",
        staging.transcript()
    );
    // The pull was refused as unauthorized, and the slot answered App Service's error page.
    match &world.slot("staging").running {
        RunState::Failed { reason } => assert!(reason.contains("unauthorized"), "{reason}"),
        other => panic!("the staging slot is {other:?}"),
    }
    let (status, body) = world.get("staging", "/health").await.unwrap();
    assert_eq!(status, 503);
    assert!(body.contains("Application Error"), "{body}");
    // The gate says why, from the slot's docker log.
    assert!(
        staging
            .stdout
            .contains("App Service could not pull the image")
            && staging
                .stdout
                .contains("unauthorized: authentication required"),
        "{}",
        staging.transcript()
    );
    // Production: the same image, answering, and nothing written to it.
    assert_eq!(world.image("production").as_deref(), Some(PREVIOUS));
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);
    let after = world.slot("production");
    assert_eq!(
        after.app_settings, before.app_settings,
        "production's settings"
    );
    assert_eq!(
        after.site_config, before.site_config,
        "production's site config"
    );
}
