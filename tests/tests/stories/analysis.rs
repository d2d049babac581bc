//! Gates that judge traffic: a new version that fails a fifth of its page requests while its
//! `/health` passes is stopped by the staging gate's analysis of Azure Monitor's metrics (no swap,
//! production unchanged, the numbers in the log), and a good version passes the same gate.
//!
//! The test drives traffic at both slots for the whole release, as users (or a load test) would;
//! the emulator counts what each slot's app answered, and the binary reads it back through the
//! Metrics REST API.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use slot_release_engine::state::SlotName;
use slot_release_tests::{World, printed, stdout};
use tokio_util::sync::CancellationToken;

/// The staging gate's analysis of Azure Monitor's metrics.
const METRICS: &str = "      analysis:\n        window: 20s\n        minRequests: 50\n        maxHttp5xxRate: 5%\n        baseline:\n          margin: 2%\n";

/// The staging gate's analysis of the Log Analytics workspace only: the built-in failed-request
/// rate of the slot, and a query of its own.
const LOGS: &str = "      analysis:\n        window: 20s\n        minRequests: 50\n        logs:\n          workspace: 6f1c3f7e-2b1a-4c59-9a51-0d5b6c7e8f90\n          maxFailedRequestRate: 5%\n          query: AppRequests | where AppRoleName == 'contoso-web-staging' and ResultCode startswith '5' | summarize Errors = count()\n          max: 10\n";

/// The python example with the share of failed pages given and a metrics analysis on the staging gate.
async fn world(fail_percent: u32) -> World {
    world_with(fail_percent, METRICS).await
}

/// The python example with the share of failed pages given and `analysis` on the staging gate.
async fn world_with(fail_percent: u32, analysis: &'static str) -> World {
    World::released(move |t| {
        t.replace(
            "      APP_ENV: staging\n",
            &format!("      APP_ENV: staging\n      FAIL_PERCENT: \"{fail_percent}\"\n"),
        )
        .replacen(
            "      successes: 3\n",
            &format!("      successes: 3\n{analysis}"),
            1,
        )
    })
    .await
}

/// Requests `/` on staging and production, one after another, until the returned flag is set.
/// Staging is created by the release, so its address is asked for until ARM names it.
fn drive_traffic(world: &World) -> (Arc<AtomicBool>, tokio::task::JoinHandle<u64>) {
    let port = world.port.clone();
    let http = world.http();
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let task = tokio::spawn(async move {
        let mut urls = std::collections::BTreeMap::new();
        let mut sent = 0;
        while !stopped.load(Ordering::Relaxed) {
            for slot in ["staging", "production"] {
                if !urls.contains_key(slot) {
                    let name = SlotName::new(slot).expect("slot");
                    if let Ok(base) = port.slot_url(&name, &CancellationToken::new()).await {
                        urls.insert(slot, base.join("/").expect("url"));
                    }
                }
                if let Some(url) = urls.get(slot) {
                    // A slot that is restarting holds a request until its app answers: users give up
                    // sooner, and so does this driver, to keep the traffic flowing.
                    let _ = http
                        .get(url.clone())
                        .timeout(Duration::from_secs(1))
                        .send()
                        .await;
                    sent += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        sent
    });
    (stop, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_failing_a_fifth_of_its_pages_is_stopped_by_the_metric_gate() {
    let world = world(20).await;
    let before = world.slot("production").content_digest;
    let (stop, traffic) = drive_traffic(&world);
    let out = world.cli_recorded(&["release", "--release-id", "r1"]).await;
    stop.store(true, Ordering::Relaxed);
    let sent = traffic.await.expect("traffic");
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let log = stdout(&out);
    // The probes of /health passed; the traffic did not.
    assert!(log.contains("Health gate for staging passed"), "{log}");
    assert!(log.contains("analysis of staging: requests pass:"), "{log}");
    let rate = log
        .lines()
        .find(|l| l.contains("analysis of staging: http5xxRate FAIL:"))
        .unwrap_or_else(|| panic!("no failed 5xx rate in the log:\n{log}"));
    assert!(rate.contains("answered 5xx ="), "{rate}");
    assert!(rate.contains("> 5.00%"), "{rate}");
    assert!(
        log.contains("analysis of staging: baseline FAIL: slot "),
        "{log}"
    );
    assert!(
        printed(&out).contains("staging failed the traffic analysis"),
        "{}",
        printed(&out)
    );
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "production was not swapped"
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("failed"));
    let record = world.record();
    let gate = &record["stages"][1]["health"][0];
    assert_eq!(gate["kind"], "gate", "{record}");
    assert_eq!(gate["passed"], false, "{record}");
    assert!(sent > 100, "traffic was driven: {sent} requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_version_passes_the_same_gate_and_is_swapped_in() {
    let world = world(0).await;
    let (stop, traffic) = drive_traffic(&world);
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic");
    assert!(out.status.success(), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains("analysis of staging: http5xxRate pass: 0 of "),
        "{log}"
    );
    assert!(log.contains("analysis of staging: baseline pass:"), "{log}");
    assert!(log.contains("Traffic analysis of staging passed"), "{log}");
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    let (status, body) = world
        .get("production", "/")
        .await
        .expect("production answers");
    assert_eq!(status, 200);
    assert!(body.contains("r1"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plan_shows_the_analysis_with_its_thresholds() {
    let world = world(0).await;
    let out = world
        .cli(&["plan", "--stage", "staging", "--release-id", "r1"])
        .await;
    assert!(out.status.success(), "{}", printed(&out));
    assert!(
        stdout(&out).contains(
            "then its traffic over 20s from Azure Monitor: at least 50 request(s), 5xx rate <= 5%, 5xx rate <= production's + 2%"
        ),
        "{}",
        stdout(&out)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_analytics_query_gate_catches_the_same_bad_version() {
    let world = world_with(20, LOGS).await;
    let before = world.slot("production").content_digest;
    let (stop, traffic) = drive_traffic(&world);
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic");
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let log = stdout(&out);
    let rate = log
        .lines()
        .find(|l| l.contains("analysis of staging: logs.failedRequestRate FAIL:"))
        .unwrap_or_else(|| panic!("no failed logged rate in the log:\n{log}"));
    assert!(
        rate.contains("logged request(s) of role contoso-web-staging failed ="),
        "{rate}"
    );
    assert!(rate.contains("> 5.00%"), "{rate}");
    assert!(
        log.contains("analysis of staging: logs.query FAIL: the query returned "),
        "{log}"
    );
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "production was not swapped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_version_passes_the_log_analytics_query_gate() {
    let world = world_with(0, LOGS).await;
    let (stop, traffic) = drive_traffic(&world);
    let out = world.cli(&["release", "--release-id", "r1"]).await;
    stop.store(true, Ordering::Relaxed);
    traffic.await.expect("traffic");
    assert!(out.status.success(), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains("analysis of staging: logs.failedRequestRate pass: 0 of "),
        "{log}"
    );
    assert!(
        log.contains("analysis of staging: logs.query pass: the query returned 0 <= 10"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watch_whose_traffic_analysis_fails_swaps_production_back() {
    // Production after the swap serves far fewer requests than the watch's analysis needs: it
    // cannot be judged, so it is not called healthy, and the swap is reversed as for a failed probe.
    let world = World::released(|t| {
        t.replace(
            "        bodyContains: ok\n    rollback: automatic\n",
            "        bodyContains: ok\n        analysis:\n          window: 5s\n          minRequests: 10000\n          maxHttp5xxRate: 5%\n    rollback: automatic\n",
        )
    })
    .await;
    let before = world.slot("production").content_digest;
    let out = world.cli_recorded(&["release", "--release-id", "r1"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains("stayed healthy for 3s"),
        "the probes passed:\n{log}"
    );
    assert!(
        log.contains("analysis of production: requests FAIL: "),
        "{log}"
    );
    assert!(log.contains("are fewer than the 10000 needed"), "{log}");
    assert_eq!(
        world.slot("production").content_digest,
        before,
        "the previous release is back"
    );
    assert_eq!(
        world.tag("slotrelease.phase").as_deref(),
        Some("rolledBack")
    );
    assert_eq!(world.record()["result"], "rolledBack");
}
