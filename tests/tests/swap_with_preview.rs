//! Swap with preview as it executes, not only as it is planned: production's settings are applied to the
//! source slot before the swap (phase one), the swap completes it, and a swap that fails after phase one
//! resets the source slot's configuration, leaving production on its release.

use slot_release_emulator::Fault;
use slot_release_tests::{World, printed};

/// The app's ARM calls (method and the path after the site), in order, from request `from` on.
fn site_calls(world: &World, from: usize) -> Vec<String> {
    world.emulator.requests()[from..]
        .iter()
        .filter(|r| r.method == "POST")
        .filter_map(|r| {
            let at = r.path.to_ascii_lowercase().find("/sites/contoso-api")?;
            Some(r.path[at + "/sites/contoso-api".len()..].to_ascii_lowercase())
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_settings_reach_the_source_slot_before_the_swap_and_are_reset_when_it_fails() {
    let world = World::released_container(|t| t).await;
    assert!(
        std::fs::read_to_string(world.config())
            .unwrap()
            .contains("strategy: swapWithPreview")
    );

    let from = world.emulator.requests().len();
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let calls = site_calls(&world, from);
    let apply = calls
        .iter()
        .position(|c| c == "/slots/staging/applyslotconfig")
        .unwrap_or_else(|| panic!("no applySlotConfig: {calls:#?}"));
    let swap = calls
        .iter()
        .position(|c| c == "/slots/staging/slotsswap")
        .unwrap_or_else(|| panic!("no swap: {calls:#?}"));
    assert!(apply < swap, "phase one before the swap: {calls:#?}");
    assert!(
        !calls.iter().any(|c| c.ends_with("resetslotconfig")),
        "{calls:#?}"
    );

    // The next swap fails its warm-up after phase one: the source slot's configuration is reset, and
    // production still runs r1.
    world.emulator.inject(Fault::SwapWarmupFails {
        app: "contoso-api".into(),
    });
    let from = world.emulator.requests().len();
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let calls = site_calls(&world, from);
    let apply = calls
        .iter()
        .position(|c| c == "/slots/staging/applyslotconfig")
        .unwrap_or_else(|| panic!("no applySlotConfig: {calls:#?}"));
    let reset = calls
        .iter()
        .position(|c| c == "/slots/staging/resetslotconfig")
        .unwrap_or_else(|| panic!("the failed swap was not reset: {calls:#?}"));
    assert!(apply < reset, "{calls:#?}");
    assert_eq!(
        world
            .emulator
            .snapshot()
            .slot("contoso-api", "production")
            .and_then(|s| s.image.clone())
            .as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
}
