//! Container apps: the image rolled out and the previous tag recorded, and an app without a staging slot
//! that takes the image on production and restores the last known-good tag.

use slot_release_emulator::Fault;
use slot_release_tests::{World, printed, stdout};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_rollout_records_the_previous_tag_and_rolls_back_to_it() {
    let world = World::released_container(|t| t).await;
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
    assert_eq!(
        world.tag("slotrelease.previousImage").as_deref(),
        Some("contoso.azurecr.io/contoso/app:previous"),
        "the tag production ran before is recorded"
    );
    world.emulator.inject(Fault::AppUnhealthyAfterSwap {
        app: world.app.clone(),
    });
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1"),
        "production runs the previous known-good tag again"
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_app_without_a_staging_slot_takes_the_image_on_production_and_restores_the_last_known_good_tag()
 {
    // No `sourceSlot`: production takes the image itself; the rollback is left to `rollback`, which
    // restores `lastKnownGood` (the example's choice) from the tag the journal recorded.
    let world = World::released_container(|text| {
        assert!(text.contains("restore: lastKnownGood"));
        text.replace("    sourceSlot: staging\n", "")
            .replace("    strategy: swapWithPreview\n", "")
            .replace("    rollback: automatic\n", "    rollback: manual\n")
    })
    .await;
    let staging_before = world.image("staging");
    let swaps = |w: &World| {
        w.emulator
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/slotsswap") || r.path.ends_with("/applySlotConfig"))
            .count()
    };

    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("the staging stage is skipped"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
    assert_eq!(world.image("staging"), staging_before, "no slot is touched");
    assert_eq!(swaps(&world), 0, "nothing is swapped");
    assert_eq!(
        world.tag("slotrelease.previousImage").as_deref(),
        Some("contoso.azurecr.io/contoso/app:previous")
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );

    // r2 turns production unhealthy; rollback is manual, so production keeps r2 until `rollback`.
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: world.app.clone(),
        slot: "production".into(),
        after_requests: 0,
    });
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r2")
    );
    world.emulator.clear_faults();

    let out = world.cli(&["rollback", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("restore is lastKnownGood")
            || stdout(&out).contains("stages.rollback.restore is lastKnownGood"),
        "the plan says how it restores: {}",
        stdout(&out)
    );
    assert_eq!(
        world.image("production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1"),
        "the last known-good tag is back"
    );
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("rolledBack")
    );
    assert_eq!(swaps(&world), 0);
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);

    let out = world.cli(&["rollback", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains("nothing to do"),
        "idempotent: {}",
        stdout(&out)
    );
}
