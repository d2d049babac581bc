//! Releases that go through: staging then production as separate stages, exactly the changes the plan
//! shows, a rehearsal of each failure path, and a re-run of a stage that already succeeded.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use slot_release_tests::{World, paths, printed};

use super::APP;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_release_through_staging_then_production_as_separate_stages() {
    let world = World::released(|t| t).await;
    let before = world.slot("production").content_digest;
    let prober = world.watch_production();
    let out = world.cli_recorded(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));
    let staged = world.slot("staging");
    assert_eq!(
        world.setting("staging", "RELEASE_VERSION").as_deref(),
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
        world.setting("staging", "APP_ENV").as_deref(),
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
    let record = world.record();
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

#[test]
fn rehearse_shows_the_release_and_each_failure_path_with_production_healthy() {
    for fail_at in ["none", "migration", "watch", "canary"] {
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
        if fail_at == "canary" {
            // The abort path: a share was routed, then given back; nothing was swapped.
            assert!(
                text.contains("Canary: 10 % of production traffic now goes to slot staging")
                    && text.contains("Canary: 0 % of production traffic goes to the canary now")
                    && text.contains("production's traffic routing rules were put back"),
                "{text}"
            );
            // The probes of the health path passed; the analysis of the slot's share of the
            // synthetic users failed it.
            assert!(
                text.contains("analysis of staging: http5xxRate FAIL:")
                    && text.contains("the metric gate stopped it"),
                "{text}"
            );
            assert!(!text.contains("] swap staging into production"), "{text}");
        }
    }
}

/// `--quick` runs the same path with short gates and watch, says so, and the plan it ran shows the waits
/// it used; a staging slot that answers 500 fails its gate early rather than at its timeout.
#[test]
fn a_quick_rehearsal_shortens_the_waits_and_says_so() {
    for fail_at in ["watch", "health"] {
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
                "--quick",
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
            text.contains("Quick rehearsal, waits shortened")
                && text.contains("watch 3s instead of 10s")
                && text.contains("(Quick profile: gates and watch shortened"),
            "{text}"
        );
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        let steps = |stage: usize| record["stages"][stage]["plan"]["steps"].as_array().cloned();
        let gate = steps(1)
            .unwrap_or_default()
            .into_iter()
            .find(|s| s["action"]["gate"].is_object())
            .unwrap_or_else(|| panic!("no gate in the staging plan: {record}"));
        assert_eq!(gate["action"]["gate"]["intervalMs"], 250, "{gate}");
        assert_eq!(gate["action"]["gate"]["successesNeeded"], 2, "{gate}");
        if fail_at == "watch" {
            assert_eq!(record["result"], "rolledBack");
            let watch = steps(2)
                .unwrap_or_default()
                .into_iter()
                .find(|s| s["action"]["watch"].is_object())
                .unwrap_or_else(|| panic!("no watch in the production plan: {record}"));
            assert_eq!(watch["action"]["watch"]["windowMs"], 3000, "{watch}");
        } else {
            assert_eq!(record["result"], "failed");
            assert!(text.contains("failed the health gate early"), "{text}");
            // The gate's 20 s deadline was not waited out.
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "took {:?}: {text}",
                started.elapsed()
            );
        }
    }
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
