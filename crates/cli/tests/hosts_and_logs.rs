//! The real binary against hosts as App Service names them: a slot host shortened because site plus
//! slot exceed a DNS label (the product must probe the host ARM names, never one built from a
//! pattern), and apps whose startup command fails (the gate ends at once and quotes the app's log).

mod support;

use slot_release_emulator::HostNameStyle;
use support::*;

/// 40 characters, the most of a site name Microsoft keeps in a shortened slot host.
const LONG_SITE: &str = "contoso-storefront-web-application-north";
/// With the site, 64 characters: one more than a DNS label holds.
const LONG_SLOT: &str = "integration-staging-env";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_host_shortened_by_app_service_is_the_one_probed() {
    assert!(LONG_SITE.len() + 1 + LONG_SLOT.len() > 63);
    let dir = tempfile::tempdir().unwrap();
    let config = python_example(dir.path(), |t| {
        t.replace("name: contoso-web", &format!("name: {LONG_SITE}"))
            .replace("    slot: staging\n", &format!("    slot: {LONG_SLOT}\n"))
    });
    // Classic host names: the unshortened `<site>-<slot>.azurewebsites…` is what a product building
    // hosts from a pattern would probe, and it does not exist.
    let world = World::start_with(config, dir, |o| {
        o.seed.host_name_style = HostNameStyle::Classic;
    })
    .await;
    let out = world.run(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", stderr(&out));

    // The slot was created by the run, so its host came from ARM's answer about the new slot.
    let host = world.emulator.app_host(LONG_SITE, LONG_SLOT);
    let label = host.split('.').next().unwrap_or_default();
    assert_eq!(label.len(), 63, "{host}");
    assert!(
        label.starts_with(&format!("{LONG_SITE}-integration-stagin")),
        "the slot name is cut: {host}"
    );
    let requests = world.emulator.requests();
    let probes = requests
        .iter()
        .filter(|r| r.method == "GET" && r.path == "/health")
        .collect::<Vec<_>>();
    assert!(!probes.is_empty(), "the gate probed");
    assert!(
        probes.iter().all(|r| r.host == host && r.status == 200),
        "every probe went to {host}: {probes:?}"
    );
    let deploys = requests
        .iter()
        .filter(|r| r.path == "/api/publish")
        .collect::<Vec<_>>();
    assert!(
        deploys
            .iter()
            .all(|r| r.host == world.emulator.scm_host(LONG_SITE, LONG_SLOT)),
        "the package went to the SCM host ARM names: {deploys:?}"
    );
}
