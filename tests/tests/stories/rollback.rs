//! The `rollback` command: back to the last known-good release and idempotent, or a clear refusal when
//! nothing can be restored or the slot holds another release.

use std::collections::BTreeMap;

use slot_release_emulator::Fault;
use slot_release_tests::{World, printed, stdout};

use super::APP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_clearly_when_nothing_can_be_restored() {
    let world = World::released(|t| t).await;
    // An app this tool never released: no journal at all.
    world.replace_tags(&BTreeMap::new()).await;
    let out = world.cli(&["rollback", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    assert!(
        err.contains("cannot be restored") || err.contains("nothing to restore"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_swaps_back_to_the_last_known_good_release_and_is_idempotent() {
    let world = World::released(|t| t.replace("rollback: automatic", "rollback: manual")).await;
    let before = world.slot("production").content_digest;
    world
        .emulator
        .inject(Fault::AppUnhealthyAfterSwap { app: APP.into() });
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_ne!(
        world.slot("production").content_digest,
        before,
        "manual rollback: nothing swapped back yet"
    );
    let out = world.cli(&["rollback", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(world.slot("production").content_digest, before);
    assert!(
        stdout(&out).contains("schema version 2 -> 1"),
        "undoHooks: run undoes the migration of the release taken out: {}",
        stdout(&out)
    );
    let requests = world.emulator.requests().len();
    let out = world.cli(&["rollback", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(stdout(&out).contains("nothing to do"), "{}", stdout(&out));
    assert_eq!(world.slot("production").content_digest, before);
    let swaps = world.emulator.requests()[requests..]
        .iter()
        .filter(|r| r.path.ends_with("/slotsswap"))
        .count();
    assert_eq!(swaps, 0, "the second rollback changes nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_with_restore_swap_back_refuses_when_the_slot_holds_another_release() {
    let world = World::released(|t| t.replace("rollback: automatic", "rollback: manual")).await;
    world
        .emulator
        .inject(Fault::AppUnhealthyAfterSwap { app: APP.into() });
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    world.emulator.clear_faults();
    // Someone staged r2 over the previous release that sat in the staging slot.
    let out = world.cli(&["staging", "--release-id", "r2"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let production = world.slot("production").content_digest;
    let staging = world.slot("staging").content_digest;
    let phase = world.tag("slotrelease.phase");
    let out = world.cli(&["rollback", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = printed(&out);
    assert!(
        err.contains("restore is swapBack") && err.contains("not release previous"),
        "{err}"
    );
    assert_eq!(
        world.slot("production").content_digest,
        production,
        "nothing changed"
    );
    assert_eq!(world.slot("staging").content_digest, staging);
    assert_eq!(
        world.tag("slotrelease.phase"),
        phase,
        "the journal is untouched"
    );
}
