//! Canary releases end to end, with the real binary, the emulator and the example's app processes: a good
//! release routed 10 % then 50 % of production's traffic completes with the swap and the routing rules
//! as they were; a release whose page fails is stopped at 10 %, with every rule put back exactly; and one
//! that fails a fifth of its pages while its health path passes is stopped at 10 % by the metric gate.

use std::time::Duration;

use slot_release_engine::state::{RoutingRule, SlotName};
use slot_release_tests::{World, printed, stdout};
use tokio_util::sync::CancellationToken;

/// A canary of 10 % (gated on the page) and 50 % (a pause), then the swap.
fn canary(text: String) -> String {
    let canary = "    strategy: canary\n    canary:\n      steps:\n        - percent: 10\n          healthCheck:\n            path: /\n            interval: 1s\n            successes: 2\n            failAfter: 2\n            timeout: 20s\n        - percent: 50\n          pause: 3s\n        - percent: 100\n";
    assert!(text.contains("    strategy: swap\n"));
    text.replace("    strategy: swap\n", canary)
}

/// A rule of another slot's, with the ramp-up fields a portal user may have set, that every canary must
/// leave exactly as it found it.
fn blue() -> RoutingRule {
    let mut other = serde_json::Map::new();
    other.insert("changeStep".into(), serde_json::json!(1.5));
    other.insert("maxReroutePercentage".into(), serde_json::json!(12.5));
    RoutingRule {
        name: "blue".into(),
        host: "contoso-web-blue-q81v.westeurope-01.azurewebsites.emulator.test".into(),
        percent: 2.5,
        other,
    }
}

async fn routing(world: &World) -> Vec<RoutingRule> {
    world
        .port
        .read_state(&[], &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .routing
}

async fn staging_host(world: &World) -> String {
    let staging = SlotName::new("staging").unwrap();
    let state = world
        .port
        .read_state(std::slice::from_ref(&staging), &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    state
        .slot(&staging)
        .and_then(|s| s.host_name.clone())
        .expect("a host")
}

/// Makes the next release fail `percent` % of its pages (never `/health`): both environments carry the
/// setting, so it travels with the release and production keeps its own until a swap.
fn fail_pages(world: &World, percent: u32) {
    let text = std::fs::read_to_string(world.config()).unwrap();
    let failing = text.replace(
        "      RELEASE_VERSION: $(Build.BuildNumber)\n",
        &format!(
            "      RELEASE_VERSION: $(Build.BuildNumber)\n      FAIL_PERCENT: \"{percent}\"\n"
        ),
    );
    assert_ne!(failing, text);
    std::fs::write(world.config(), failing).unwrap();
}

async fn seed_blue(world: &World) {
    world
        .port
        .set_routing(&[blue()], &CancellationToken::new())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(routing(world).await, vec![blue()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_canary_routes_ten_then_fifty_percent_swaps_and_puts_the_rules_back() {
    let world = World::released(canary).await;
    seed_blue(&world).await;

    // The rules as the run changes them, read from ARM while it runs.
    let seen = std::sync::Mutex::new(Vec::<Vec<RoutingRule>>::new());
    let run = world.cli(&["release", "--release-id", "r1"]);
    let watch = async {
        loop {
            let rules = routing(&world).await;
            {
                let mut seen = seen.lock().unwrap();
                if seen.last() != Some(&rules) {
                    seen.push(rules);
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let out = tokio::select! {
        out = run => out,
        () = watch => unreachable!(),
    };
    assert!(out.status.success(), "{}", printed(&out));
    let host = staging_host(&world).await;
    let log = stdout(&out);
    for share in [10, 50] {
        let line =
            format!("Canary: {share} % of production traffic now goes to slot staging ({host})");
        assert!(log.contains(&line), "no {line:?} in:\n{log}");
    }

    // While the pause held 50 %, production routed it to the host ARM names, next to the blue rule.
    let shares: Vec<Vec<(String, f64)>> = seen
        .lock()
        .unwrap()
        .iter()
        .map(|rules| rules.iter().map(|r| (r.name.clone(), r.percent)).collect())
        .collect();
    let fifty = seen
        .lock()
        .unwrap()
        .iter()
        .find_map(|rules| {
            rules
                .iter()
                .find(|r| r.name == "staging" && r.percent == 50.0)
                .cloned()
        })
        .unwrap_or_else(|| panic!("50 % was never routed: {shares:?}"));
    assert_eq!(fifty.host, host);
    assert!(
        shares
            .iter()
            .all(|rules| rules.contains(&("blue".into(), 2.5))),
        "{shares:?}"
    );

    // Done: production serves the release, no share goes to staging, the blue rule is as it was.
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("r1"), "{body}");
    assert_eq!(routing(&world).await, vec![blue()]);
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("released"));
    assert_eq!(world.tag("slotrelease.canary"), None);
    assert_eq!(world.lock_claims(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_whose_page_fails_stops_at_ten_percent_and_puts_the_rules_back_exactly() {
    let world = World::released(canary).await;
    seed_blue(&world).await;
    // The next release's pages fail (its health endpoint does not).
    fail_pages(&world, 100);
    let (_, before) = world.get("production", "/").await.unwrap();
    let digest = world.slot("production").content_digest;

    let out = world.cli(&["release", "--release-id", "r2"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains("Canary: 10 % of production traffic now goes to slot staging"),
        "{log}"
    );
    assert!(
        !log.contains("Canary: 50 %"),
        "the canary went on after its gate failed:\n{log}"
    );
    assert!(
        log.contains(
            "Canary: 0 % of production traffic goes to the canary now (it routed 10 % last)"
        ),
        "{log}"
    );

    // Production never changed and takes all its traffic; the rules are exactly the ones before.
    assert_eq!(routing(&world).await, vec![blue()]);
    assert_eq!(world.slot("production").content_digest, digest);
    let (status, after) = world.get("production", "/").await.unwrap();
    assert_eq!((status, after), (200, before));
    assert_eq!(world.setting("production", "FAIL_PERCENT"), None);
    // The slot has its own settings back, and the release waits there, staged, for another try.
    assert_eq!(
        world.setting("staging", "APP_ENV").as_deref(),
        Some("staging")
    );
    assert_eq!(world.tag("slotrelease.phase").as_deref(), Some("staged"));
    assert_eq!(world.tag("slotrelease.canary"), None);
    assert_eq!(world.lock_claims(), Vec::<String>::new());
}

/// A canary of 10 % held by a gate whose probes of `/health` pass but whose analysis of Azure Monitor's
/// metrics judges the slot's share of production's traffic, then 50 % (a pause), then the swap.
fn canary_with_metric_gate(text: String) -> String {
    let canary = "    strategy: canary\n    canary:\n      steps:\n        - percent: 10\n          healthCheck:\n            path: /health\n            interval: 1s\n            successes: 2\n            timeout: 30s\n            analysis:\n              window: 12s\n              minRequests: 20\n              maxHttp5xxRate: 5%\n              baseline:\n                margin: 2%\n        - percent: 50\n          pause: 3s\n        - percent: 100\n";
    assert!(text.contains("    strategy: swap\n"));
    text.replace("    strategy: swap\n", canary)
}

/// Production's users: requests to production's own address, one after another, until `stop`; the
/// front end sends each its share as App Service does (no routing cookie is kept, so each request is
/// routed afresh). Returns how many were sent.
fn users(world: &World, stop: CancellationToken) -> tokio::task::JoinHandle<u64> {
    let port = world.port.clone();
    let http = world.http();
    tokio::spawn(async move {
        let url = port
            .slot_url(&SlotName::production(), &CancellationToken::new())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .join("/")
            .unwrap_or_else(|e| panic!("{e}"));
        let mut sent = 0;
        while !stop.is_cancelled() {
            let _ = http
                .get(url.clone())
                .timeout(Duration::from_secs(1))
                .send()
                .await;
            sent += 1;
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sent
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_failing_a_fifth_of_its_pages_is_stopped_at_ten_percent_by_the_metric_gate() {
    let world = World::released(canary_with_metric_gate).await;
    seed_blue(&world).await;
    // The next release fails every fifth page while its /health passes: only the traffic shows it.
    fail_pages(&world, 20);
    let digest = world.slot("production").content_digest;

    let stop = CancellationToken::new();
    let traffic = users(&world, stop.clone());
    let out = world.cli(&["release", "--release-id", "r2"]).await;
    stop.cancel();
    let sent = traffic.await.expect("traffic");
    assert_eq!(out.status.code(), Some(1), "{}", printed(&out));
    let log = stdout(&out);
    assert!(
        log.contains("Canary: 10 % of production traffic now goes to slot staging"),
        "{log}"
    );
    // The probes passed; the metrics of the slot's share did not, and the log gives their numbers.
    let rate = log
        .lines()
        .find(|l| l.contains("http5xxRate FAIL:"))
        .unwrap_or_else(|| panic!("no failed 5xx rate in the log:\n{log}"));
    assert!(rate.contains("answered 5xx ="), "{rate}");
    assert!(rate.contains("> 5.00%"), "{rate}");
    assert!(
        !log.contains("Canary: 50 %"),
        "the canary went on after its analysis failed:\n{log}"
    );
    assert!(
        log.contains(
            "Canary: 0 % of production traffic goes to the canary now (it routed 10 % last)"
        ),
        "{log}"
    );

    // Production still serves the old release with 0 % routed to staging, and the rules are exactly
    // the ones before the release.
    assert_eq!(routing(&world).await, vec![blue()]);
    assert_eq!(world.slot("production").content_digest, digest);
    let (status, body) = world.get("production", "/").await.unwrap();
    assert_eq!(status, 200);
    assert!(!body.contains("r2"), "{body}");
    assert_eq!(world.setting("production", "FAIL_PERCENT"), None);
    assert_eq!(world.tag("slotrelease.canary"), None);
    assert_eq!(world.lock_claims(), Vec::<String>::new());
    assert!(
        sent > 200,
        "production's users were simulated: {sent} requests"
    );
}
