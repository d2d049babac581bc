//! Sitecontainers apps (`linuxFxVersion: SITECONTAINERS`): an image rollout puts the new image on the
//! staging slot's main container only, the sidecar kept byte for byte, gates and swaps; the plan names
//! the main container and the sidecars it keeps. A Docker Compose app is refused before any change.

use slot_release_tests::{World, printed, stdout};

const SIDECAR_IMAGE: &str = "mcr.microsoft.com/opentelemetry/collector:0.98";

/// The container example's app turned into a sitecontainers app in both slots: a main container running
/// the previous image and an OpenTelemetry sidecar.
async fn sitecontainers_world(fx: &'static str) -> World {
    World::builder()
        .example(slot_release_tests::Example::Container)
        .previous_release()
        .quick()
        .emulator(move |o| {
            for app in &mut o.seed.subscriptions[0].resource_groups[0].apps {
                // Both slots run the previous release's image as their main container.
                let image = app
                    .slots
                    .iter()
                    .find_map(|s| {
                        s.site_config
                            .get("linuxFxVersion")
                            .and_then(|v| v.as_str())
                            .and_then(|v| v.strip_prefix("DOCKER|"))
                    })
                    .map(str::to_owned);
                for slot in &mut app.slots {
                    slot.site_config
                        .insert("linuxFxVersion".into(), fx.into());
                    if let Some(image) = image.clone() {
                        let main = serde_json::json!({
                            "image": image, "isMain": true, "targetPort": "8080", "authType": "Anonymous"
                        });
                        let sidecar = serde_json::json!({
                            "image": SIDECAR_IMAGE, "isMain": false, "targetPort": "4317",
                            "environmentVariables": [{"name": "OTEL_LEVEL", "value": "info"}]
                        });
                        slot.site_containers
                            .insert("main".into(), main.as_object().cloned().unwrap());
                        slot.site_containers
                            .insert("otel".into(), sidecar.as_object().cloned().unwrap());
                    }
                }
            }
        })
        .start()
        .await
        .unwrap_or_else(|e| panic!("the world did not start: {e}"))
}

fn sidecar(world: &World, slot: &str) -> serde_json::Value {
    let snapshot = world.emulator.snapshot();
    let s = snapshot.slot(&world.app, slot).expect("slot");
    let mut props = s.site_containers["otel"].clone();
    // ARM's own stamps; everything the app owner set must be as it was.
    props.remove("lastModifiedTime");
    props.remove("createdTime");
    serde_json::Value::Object(props)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sitecontainers_rollout_changes_the_main_container_and_keeps_the_sidecar() {
    let world = sitecontainers_world("SITECONTAINERS").await;
    let previous = world.image("production");
    assert!(previous.is_some(), "the main container runs an image");
    let sidecar_before = sidecar(&world, "staging");

    let plan = world
        .cli(&["plan", "--stage", "staging", "--release-id", "r1"])
        .await;
    assert!(plan.status.success(), "{}", printed(&plan));
    let text = stdout(&plan);
    assert!(
        text.contains("the image goes to its main container main; sidecars kept as they are: otel"),
        "{text}"
    );
    assert!(
        text.contains("main container main of the sitecontainers app"),
        "{text}"
    );

    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
    assert_eq!(
        world
            .setting("production", "ASPNETCORE_ENVIRONMENT")
            .as_deref(),
        Some("Production")
    );
    // The sidecar the release never touched went to production with the swap, as it was.
    assert_eq!(sidecar(&world, "production"), sidecar_before);
    let puts: Vec<String> = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method == "PUT" && r.path.contains("/sitecontainers/"))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        !puts.is_empty() && puts.iter().all(|p| p.ends_with("/sitecontainers/main")),
        "{puts:?}"
    );
    assert_eq!(
        world.tag("slotrelease.previousImage"),
        previous,
        "the main container's previous image is recorded"
    );

    // r2 released, r3 staged over r1: r1 is in no slot, and the rollback puts its image back on the
    // staging slot's main container, gates it and swaps it in; the sidecar is still the one it was.
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let out = world.cli(&["staging", "--release-id", "r3"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let out = world
        .cli(&["rollback", "--release-id", "rb", "--to", "r1"])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1"),
        "{}",
        stdout(&out)
    );
    assert_eq!(sidecar(&world, "production"), sidecar_before);
    assert_eq!(sidecar(&world, "staging"), sidecar_before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_docker_compose_app_is_refused_before_any_change_with_its_retirement() {
    let world = sitecontainers_world("COMPOSE|dmVyc2lvbjogJzMn").await;
    let requests = world.emulator.requests().len();
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let text = printed(&out);
    assert!(
        text.contains("retires on 2027-03-31")
            && text.contains("migrate the app to sitecontainers"),
        "{text}"
    );
    let changes = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/list"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect::<Vec<_>>();
    assert!(
        changes.iter().all(|c| !c.contains("/sites/")),
        "nothing on the app changed: {changes:?}"
    );
}
