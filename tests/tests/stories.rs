//! End to end: the real `slot-release` binary against the emulator, for every story and failure path.
//!
//! Each test seeds an emulator from a copy of an example config (production runs the previous release),
//! runs the binary as a pipeline step would, and asserts the emulator's final state: which content and
//! settings are in which slot, the journal, and that production answered healthy throughout.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use slot_release_emulator::Fault;
use slot_release_tests::{World, paths, printed, stdout};

/// The app of the python example.
const APP: &str = "contoso-web";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_release_through_staging_then_production_as_separate_stages() {
    let world = World::released(|t| t).await;
    let before = world.slot("production").content_digest;
    let prober = world.watch_production();
    let record = world.sources.join("record.json");
    let out = world
        .cli(&[
            "staging",
            "--release-id",
            "r1",
            "--record",
            record.to_str().unwrap(),
        ])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    let staged = world.slot("staging");
    assert_eq!(
        staged
            .app_settings
            .get("RELEASE_VERSION")
            .map(String::as_str),
        Some("r1")
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("staged"));
    assert_ne!(staged.content_digest, before);
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    prober.assert_always_healthy().await;
    let production = world.slot("production");
    assert_eq!(
        production.content_digest, staged.content_digest,
        "the staged content serves production"
    );
    assert_eq!(
        world.slot("staging").content_digest,
        before,
        "the previous release waits in staging"
    );
    // Sticky settings stayed with their slots.
    assert_eq!(
        production.app_settings.get("APP_ENV").map(String::as_str),
        Some("production")
    );
    assert_eq!(
        world
            .slot("staging")
            .app_settings
            .get("APP_ENV")
            .map(String::as_str),
        Some("staging")
    );
    assert_eq!(
        world.tag("slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    assert_eq!(
        world.lock_claims(),
        Vec::<String>::new(),
        "the lock is released"
    );
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("r1"), "{body}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
    assert_eq!(record["result"], "succeeded");
    assert_eq!(record["stages"][0]["hooks"][0]["name"], "migrate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_shows_exactly_the_changes_staging_and_production_make() {
    let world = World::released(|t| t).await;
    let out = world
        .cli(&["plan", "--stage", "staging", "--json", "--release-id", "r1"])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned_settings: Vec<String> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"]["type"] == "setSettings")
        .flat_map(|s| s["action"]["changes"].as_array().unwrap().iter())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect();
    let before = world.slot("production");
    world.emulator.clear_requests();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let after_staging = world.slot("staging");
    // Exactly the planned settings were written to the slot, nothing else.
    let written: Vec<String> = after_staging.app_settings.keys().cloned().collect();
    let mut planned = planned_settings.clone();
    planned.sort();
    assert_eq!(written, planned);
    // Production was not touched at all.
    let production = world.slot("production");
    assert_eq!(production.app_settings, before.app_settings);
    assert_eq!(production.content_digest, before.content_digest);
    assert_eq!(production.site_config, before.site_config);
    // Every ARM write went to the staging slot or to the journal's tags and sticky names.
    let writes: Vec<String> = world
        .emulator
        .requests()
        .into_iter()
        .filter(|r| r.host.starts_with("management.") && r.method != "GET")
        .filter(|r| !r.path.ends_with("/list"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    for write in &writes {
        let to_staging = write.contains("/slots/staging");
        let journal = write.starts_with("PATCH")
            && write.ends_with(&format!(
                "/sites/{APP}/providers/Microsoft.Resources/tags/default"
            ));
        let sticky = write.ends_with("/config/slotConfigNames");
        assert!(
            to_staging || journal || sticky,
            "unplanned write: {write} (all: {writes:#?})"
        );
    }

    // The same for production: the planned settings, the swap, the journal; nothing else.
    let out = world
        .cli(&[
            "plan",
            "--stage",
            "production",
            "--json",
            "--release-id",
            "r1",
        ])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned: BTreeMap<String, Option<String>> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"]["type"] == "setSettings")
        .flat_map(|s| s["action"]["changes"].as_array().unwrap().iter())
        .map(|c| {
            let after = &c["after"];
            let plain =
                (after["kind"] == "plain").then(|| after["value"].as_str().unwrap().to_owned());
            (c["name"].as_str().unwrap().to_owned(), plain)
        })
        .collect();
    let swaps_planned = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"]["type"] == "swap")
        .count();
    let before = world.slot("production").app_settings;
    // Names that are not sticky travel with the swap: production gets the staged slot's value.
    let staged = world.slot("staging").app_settings;
    let sticky = world
        .emulator
        .snapshot()
        .apps
        .iter()
        .find(|a| a.name == APP)
        .unwrap()
        .slot_config_names
        .app_setting_names
        .clone();
    world.emulator.clear_requests();
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let after = world.slot("production").app_settings;
    for (name, value) in &after {
        if before.get(name) != Some(value) {
            if !sticky.contains(name) && !planned.contains_key(name) {
                assert_eq!(staged.get(name), Some(value), "{name} came with the swap");
                continue;
            }
            let planned_value = planned
                .get(name)
                .unwrap_or_else(|| panic!("unplanned change of {name}"));
            if let Some(planned_value) = planned_value {
                assert_eq!(planned_value, value, "{name}");
            }
        }
    }
    let requests = world.emulator.requests();
    let swaps = requests
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/slotsswap"))
        .count();
    assert_eq!(swaps, swaps_planned, "exactly the planned swaps");
    for r in requests
        .iter()
        .filter(|r| r.host.starts_with("management.") && r.method != "GET")
    {
        let path = &r.path;
        let allowed = path.ends_with("/list")
            || path.ends_with("/slotsswap")
            || path.ends_with("/config/slotConfigNames")
            || path.ends_with(&format!("/sites/{APP}/config/appsettings"))
            || (r.method == "PATCH"
                && path.ends_with(&format!(
                    "/sites/{APP}/providers/Microsoft.Resources/tags/default"
                )));
        assert!(
            allowed || path.contains("/operations/") || path.contains("/operationresults/"),
            "unplanned write: {} {path}",
            r.method
        );
    }
}

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
    let record = world.sources.join("record.json");
    let out = world
        .cli(&[
            "release",
            "--release-id",
            "r1",
            "--record",
            record.to_str().unwrap(),
        ])
        .await;
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
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
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
    assert!(
        printed(&out).contains("did not pass the health gate"),
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
    let record = world.sources.join("record.json");
    let out = world
        .cli(&[
            "release",
            "--release-id",
            "r1",
            "--record",
            record.to_str().unwrap(),
        ])
        .await;
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
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(record).unwrap()).unwrap();
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
async fn container_rollout_records_the_previous_tag_and_rolls_back_to_it() {
    let world = World::released_container(|t| t).await;
    let app = "contoso-api";
    let image = |w: &World, slot: &str| {
        w.emulator
            .snapshot()
            .slot(app, slot)
            .and_then(|s| s.image.clone())
    };
    let tag = |w: &World, name: &str| {
        w.emulator
            .snapshot()
            .slot(app, "production")
            .and_then(|s| s.tags.get(name).cloned())
    };
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        image(&world, "production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
    assert_eq!(
        tag(&world, "slotrelease.previousImage").as_deref(),
        Some("contoso.azurecr.io/contoso/app:previous"),
        "the tag production ran before is recorded"
    );
    world
        .emulator
        .inject(Fault::AppUnhealthyAfterSwap { app: app.into() });
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        image(&world, "production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1"),
        "production runs the previous known-good tag again"
    );
    assert_eq!(
        tag(&world, "slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );
}

#[test]
fn rehearse_shows_the_release_and_each_failure_path_with_production_healthy() {
    for fail_at in ["none", "migration", "watch"] {
        let dir = tempfile::tempdir().unwrap();
        let record = dir.path().join("record.json");
        let started = Instant::now();
        let out = std::process::Command::new(paths::slot_release_binary().unwrap())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("TMPDIR", dir.path())
            .current_dir(paths::workspace())
            .args([
                "rehearse",
                "--config",
                "examples/python-webapp/release.yml",
                "--fail-at",
                fail_at,
                "--record",
            ])
            .arg(&record)
            .output()
            .unwrap();
        let text = printed(&out);
        assert!(out.status.success(), "--fail-at {fail_at}: {text}");
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "--fail-at {fail_at} took {:?}",
            started.elapsed()
        );
        assert!(
            text.contains("production is healthy") || text.contains("is healthy."),
            "{text}"
        );
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        let expected = match fail_at {
            "none" => "succeeded",
            "watch" => "rolledBack",
            _ => "failed",
        };
        assert_eq!(record["result"], expected, "--fail-at {fail_at}");
    }
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
    let app = "contoso-api";
    let image = |w: &World, slot: &str| {
        w.emulator
            .snapshot()
            .slot(app, slot)
            .and_then(|s| s.image.clone())
    };
    let tag = |w: &World, name: &str| {
        w.emulator
            .snapshot()
            .slot(app, "production")
            .and_then(|s| s.tags.get(name).cloned())
    };
    let staging_before = image(&world, "staging");
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
        image(&world, "production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1")
    );
    assert_eq!(
        image(&world, "staging"),
        staging_before,
        "no slot is touched"
    );
    assert_eq!(swaps(&world), 0, "nothing is swapped");
    assert_eq!(
        tag(&world, "slotrelease.previousImage").as_deref(),
        Some("contoso.azurecr.io/contoso/app:previous")
    );
    assert_eq!(
        tag(&world, "slotrelease.lastKnownGood").as_deref(),
        Some("r1")
    );

    // r2 turns production unhealthy; rollback is manual, so production keeps r2 until `rollback`.
    world.emulator.inject(Fault::AppUnhealthyAfterRequests {
        app: app.into(),
        slot: "production".into(),
        after_requests: 0,
    });
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    assert_eq!(
        image(&world, "production").as_deref(),
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
        image(&world, "production").as_deref(),
        Some("contoso.azurecr.io/contoso/app:r1"),
        "the last known-good tag is back"
    );
    assert_eq!(
        tag(&world, "slotrelease.phase").as_deref(),
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
async fn a_rerun_of_a_succeeded_production_stage_keeps_the_journal_slots_true() {
    let world = World::released(|t| t).await;
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let after_first = world.tag("slotrelease.slots");
    assert_eq!(
        after_first.as_deref(),
        Some("production=r1,staging=previous")
    );
    let out = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    assert_eq!(
        world.tag("slotrelease.slots"),
        after_first,
        "a re-run swaps nothing, so the journal's slots do not change"
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    assert_eq!(world.lock_claims(), Vec::<String>::new());
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
