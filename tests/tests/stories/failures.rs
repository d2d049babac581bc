//! Releases that fail, and what they leave: a failing hook undone, a gate or watch that fails, a swap that
//! fails at warm-up, the settings put back, and refusals before the first change; production stays healthy.

use std::time::{Duration, Instant};

use slot_release_emulator::Fault;
use slot_release_tests::{World, printed, stdout};

use super::APP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_hook_runs_the_undo_of_the_hooks_before_it_and_does_not_swap() {
    // A second hook that fails after the migration ran.
    let world = World::released(|t| {
        t.replace(
            "        undo: python3 migrate.py down\n",
            "        undo: python3 migrate.py down\n      - name: smoke\n        run: echo smoke failed; exit 3\n        where: agent\n        timeout: 30s\n        undo: echo nothing to undo\n",
        )
    })
    .await;
    let before = world.slot("production").content_digest;
    let prober = world.watch_production();
    let out = world.cli_recorded(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    prober.assert_always_healthy().await;
    assert!(
        stdout(&out).contains("Undo of hook migrate"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "production was not swapped"
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("failed"));
    let record = world.record();
    let hooks = &record["stages"][1]["hooks"];
    assert_eq!(hooks[0]["name"], "migrate");
    assert_eq!(hooks[0]["undone"], true);
    assert_eq!(hooks[1]["name"], "smoke");
    assert!(
        hooks[1]["output"]
            .as_str()
            .unwrap()
            .contains("smoke failed"),
        "{hooks}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_health_gate_never_swaps() {
    let world = World::released(|t| t).await;
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: APP.into(),
        slot: "staging".into(),
        after_requests: 0,
    });
    let before = world.slot("production").content_digest;
    let prober = world.watch_production();
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    prober.assert_always_healthy().await;
    // The slot answers 500 from the first probe: the gate stops after failAfter of them, not at its
    // timeout.
    assert!(
        printed(&out).contains("failed the health gate early: 5 consecutive probe(s)"),
        "{}",
        printed(&out)
    );
    assert_eq!(world.slot("production").content_digest, before);
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("previous")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unhealthy_watch_swaps_back_automatically() {
    let world = World::released(|t| t).await;
    let before = world.slot("production").content_digest;
    world
        .emulator
        .inject(Fault::AppUnhealthyAfterSwap { app: APP.into() });
    let out = world.cli_recorded(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "the previous release is back"
    );
    let (status, _) = world.get("production", "/health").await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("rolledBack")
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("previous")
    );
    let record = world.record();
    assert_eq!(record["result"], "rolledBack");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_failing_at_warm_up_leaves_production_and_the_staged_slot_as_they_were() {
    let world = World::released(|t| t).await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let before = world.slot("production").content_digest;
    let staged = world.slot("staging").content_digest;
    world
        .emulator
        .inject(Fault::SwapWarmupFails { app: APP.into() });
    let prober = world.watch_production();
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    prober.assert_always_healthy().await;
    assert_eq!(world.slot("production").content_digest, before);
    assert_eq!(world.slot("staging").content_digest, staged);
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("staged"),
        "production can be retried"
    );
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(
        out.status.success(),
        "the retry succeeds: {}",
        printed(&out)
    );
    assert_eq!(world.slot("production").content_digest, staged);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_health_timeout_input_bounds_the_staging_gate() {
    // The example's staging gate allows 15s here; the override cuts a failing gate short.
    let world = World::released(|t| t).await;
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: APP.into(),
        slot: "staging".into(),
        after_requests: 0,
    });
    let started = Instant::now();
    let out = world
        .cli(&[
            "staging",
            "--release-id",
            "r1",
            "--health-timeout-seconds",
            "2",
        ])
        .await;
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("within 2s"), "{}", stdout(&out));
    assert!(
        printed(&out).contains("did not pass the health gate"),
        "{}",
        printed(&out)
    );
    assert!(
        took < Duration::from_secs(12),
        "the 15s of the config did not apply: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_swap_puts_back_the_production_settings_written_before_it() {
    let world = World::released(|t| t).await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let before = world.slot("production").app_settings.clone();
    assert_ne!(
        before.get("RELEASE_VERSION").map(String::as_str),
        Some("r1")
    );
    world
        .emulator
        .inject(Fault::SwapWarmupFails { app: APP.into() });
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        world.slot("production").app_settings,
        before,
        "production runs its own release with its own settings"
    );
    assert_eq!(world.lock_claims(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_automatic_rollback_puts_back_the_production_settings() {
    let world = World::released(|t| t).await;
    let before = world.slot("production").app_settings.clone();
    world
        .emulator
        .inject(Fault::AppUnhealthyAfterSwap { app: APP.into() });
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("rolledBack")
    );
    assert_eq!(world.slot("production").app_settings, before);
}

/// Azure allows 50 tags on a site and the journal needs several: a site full of other tags is refused
/// in preflight, before the first change, with what to do, instead of failing a journal write mid-release.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_without_room_for_the_journal_is_refused_before_any_change() {
    let world = World::released(|t| t).await;
    let mut tags = world
        .port
        .tags(&tokio_util::sync::CancellationToken::new())
        .await
        .unwrap();
    // Exactly full: the previous release's journal plus other tags; this run's lock needs one more.
    for i in 0..50 - tags.len() {
        tags.insert(format!("team-tag-{i:02}"), "kept".into());
    }
    world.replace_tags(&tags).await;
    let before = world.emulator.snapshot();
    world.emulator.clear_requests();

    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(!out.status.success());
    let text = printed(&out);
    assert!(text.contains("journal-tags"), "{text}");
    assert!(text.contains("at most 50"), "{text}");
    assert!(text.contains("remove at least"), "{text}");
    let writes: Vec<String> = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/list") && !r.path.contains("/token"))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect();
    assert!(writes.is_empty(), "nothing is changed: {writes:?}");
    let after = world.emulator.snapshot();
    for slot in ["production", "staging"] {
        assert_eq!(
            after.slot(APP, slot).map(|s| &s.app_settings),
            before.slot(APP, slot).map(|s| &s.app_settings),
            "{slot} settings unchanged"
        );
    }
    assert_eq!(world.lock_claims(), Vec::<String>::new());
}

/// A secret the vault does not have fails the run before it takes the lock or writes anything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_secret_fails_before_the_lock_and_changes_nothing() {
    let world = World::released(|t| t).await;
    let text = std::fs::read_to_string(world.config()).unwrap();
    std::fs::write(
        world.config(),
        text.replace("secret: db-password", "secret: db-password-gone"),
    )
    .unwrap();
    let before = world.emulator.snapshot();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        printed(&out).contains("db-password-gone"),
        "{}",
        printed(&out)
    );
    assert!(
        !stdout(&out).contains("take the release lock ("),
        "the lock was never taken: {}",
        stdout(&out)
    );
    let after = world.emulator.snapshot();
    for slot in ["production", "staging"] {
        assert_eq!(
            after.slot(APP, slot).map(|s| (&s.tags, &s.app_settings)),
            before.slot(APP, slot).map(|s| (&s.tags, &s.app_settings)),
            "{slot} unchanged"
        );
    }
}

/// Issue 16: with `stack:` omitted the live stack (PYTHON|3.12) decides, and with no startup command App
/// Service would serve its default page for a package whose entry file it does not find: refused before
/// any change, naming what was looked for and how to fix it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blank_startup_command_with_no_detectable_app_is_refused_before_any_change() {
    let world = World::released(|t| {
        t.replace("  stack: PYTHON|3.12\n", "")
            .replace("  startupCommand: python3 app.py\n", "")
    })
    .await;
    let cancel = tokio_util::sync::CancellationToken::new();
    // The staging slot does not exist yet (the stage creates it): production's config is what it starts from.
    for slot in ["production"] {
        let change = slot_release_engine::port::SiteChange {
            startup_command: Some(String::new()),
            linux_fx_version: None,
        };
        world
            .port
            .set_site(&slot.parse().unwrap(), &change, &cancel)
            .await
            .unwrap();
    }
    // The app's entry file where Python's image does not look.
    let dir = world.config().parent().unwrap().to_path_buf();
    std::fs::rename(dir.join("app.py"), dir.join("main.py")).unwrap();
    let before = world.emulator.snapshot();
    world.emulator.clear_requests();

    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(!out.status.success());
    let text = printed(&out);
    assert!(text.contains("startup-command"), "{text}");
    assert!(text.contains("PYTHON|3.12"), "{text}");
    assert!(
        text.contains("app.py") && text.contains("app.startupCommand"),
        "{text}"
    );
    let writes: Vec<String> = world
        .emulator
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/list") && !r.path.contains("/token"))
        .map(|r| format!("{} {}{}", r.method, r.host, r.path))
        .collect();
    assert!(writes.is_empty(), "nothing is changed: {writes:?}");
    let after = world.emulator.snapshot();
    for slot in ["production", "staging"] {
        assert_eq!(
            after
                .slot(APP, slot)
                .map(|s| (&s.app_settings, &s.content_digest)),
            before
                .slot(APP, slot)
                .map(|s| (&s.app_settings, &s.content_digest)),
            "{slot} unchanged"
        );
    }
}
