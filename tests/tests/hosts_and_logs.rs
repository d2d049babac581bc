//! The real binary against hosts as App Service names them: a slot host shortened because site plus
//! slot exceed a DNS label (the product must probe the host ARM names, never one built from a
//! pattern), and apps whose startup command fails (the gate ends at once and quotes the app's log).

use slot_release_emulator::HostNameStyle;
use slot_release_engine::state::SlotName;
use slot_release_tests::{Example, World, printed};
use tokio_util::sync::CancellationToken;

/// 40 characters, the most of a site name Microsoft keeps in a shortened slot host.
const LONG_SITE: &str = "contoso-storefront-web-application-north";
/// With the site, 64 characters: one more than a DNS label holds.
const LONG_SLOT: &str = "integration-staging-env";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slot_host_shortened_by_app_service_is_the_one_probed() {
    assert!(LONG_SITE.len() + 1 + LONG_SLOT.len() > 63);
    // Classic host names: the unshortened `<site>-<slot>.azurewebsites…` is what a product building
    // hosts from a pattern would probe, and it does not exist.
    let world = World::builder()
        .previous_release()
        .quick()
        .edit(|t| {
            t.replace("name: contoso-web", &format!("name: {LONG_SITE}"))
                .replace("    slot: staging\n", &format!("    slot: {LONG_SLOT}\n"))
        })
        .emulator(|o| o.seed.host_name_style = HostNameStyle::Classic)
        .start()
        .await
        .unwrap();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(out.status.success(), "{}", printed(&out));

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

/// A startup command that prints a secret the app reads from Key Vault, then fails as a missing
/// dependency does (`-S`: no site-packages, so `gunicorn` is missing on every machine).
const CRASHING: &str = r#"startupCommand: "echo connecting with $DATABASE__PASSWORD; python3 -S -c 'import gunicorn'""#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_app_fails_the_gate_at_once_quoting_its_log() {
    let world = World::released(|t| t.replace("startupCommand: python3 app.py", CRASHING)).await;
    let started = std::time::Instant::now();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    let took = started.elapsed();
    let text = printed(&out);
    assert!(!out.status.success(), "{text}");
    // The gate allows 15 s; a crashed app fails it within seconds of the first probe.
    assert!(
        took < std::time::Duration::from_secs(12),
        "took {took:?}: {text}"
    );
    let probes = text.matches("] probe ").count();
    assert!(
        probes <= 2,
        "{probes} probes of an app that cannot answer: {text}"
    );

    // The error quotes the exit status, the time, and the app's last line.
    let error = text
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line: {text}"));
    let host = world.emulator.app_host("contoso-web", "staging");
    let stable = volatile_filtered(&error.replace(&host, "<staging host>"));
    insta::assert_snapshot!("crashed_app_gate_error", stable);
    assert!(
        text.contains("last lines of the app's log (staging):"),
        "{text}"
    );

    // The secret the app printed is masked; its value appears nowhere.
    let secret = world.emulator.seed().subscriptions[0].resource_groups[0].vaults[0]
        .secrets
        .iter()
        .find(|s| s.name == "db-password")
        .map(|s| s.value.expose().to_owned())
        .expect("the seeded db-password");
    assert!(text.contains("connecting with ***"), "{text}");
    assert!(!text.contains(&secret), "the secret leaked: {text}");
}

/// The error line with its volatile values filtered: the emulator's port and the seconds the app
/// ran (`:<port>`, `after <time> s`).
fn volatile_filtered(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(|c: char| c.is_ascii_digit()) {
        let (before, from) = rest.split_at(at);
        let len = from
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(from.len());
        out.push_str(before);
        out.push_str(if before.ends_with("<staging host>:") {
            "<port>"
        } else if before.ends_with(" after ") {
            "<time>"
        } else {
            &from[..len]
        });
        rest = &from[len..];
    }
    out.push_str(rest);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_swap_whose_warm_up_meets_a_crashed_app_says_why() {
    let world = World::released(|t| t).await;
    let change = slot_release_engine::port::SiteChange {
        startup_command: Some("echo starting; python3 -S -c 'import gunicorn'".to_owned()),
        linux_fx_version: None,
    };
    let cancel = Default::default();
    let staging = SlotName::new("staging").unwrap();
    // The example creates its staging slot; here it is created as the staging stage would.
    world.port.create_slot(&staging, &cancel).await.unwrap();
    world
        .port
        .set_site(&staging, &change, &CancellationToken::new())
        .await
        .unwrap();
    let err = world
        .port
        .swap(&staging, &SlotName::production(), &cancel)
        .await
        .expect_err("the warm-up cannot pass");
    let text = format!("{err}");
    assert!(
        text.contains("the app of staging is down: the startup command exited with status 1"),
        "{text}"
    );
    assert!(
        text.ends_with("ModuleNotFoundError: No module named 'gunicorn') failed"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_the_gate_at_once() {
    // No image mapping: every image fails like a bad pull.
    let world = World::builder()
        .example(Example::Container)
        .previous_release()
        .quick()
        .emulator(|o| o.images.clear())
        .start()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let out = world.cli(&["staging", "--release-id", "r1"]).await;
    let text = printed(&out);
    assert!(!out.status.success(), "{text}");
    // The example's gate allows 2 minutes.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "{text}"
    );
    assert!(
        text.contains("did not pass the health gate: App Service could not pull the image: DockerApiException:"),
        "{text}"
    );
    assert!(
        text.contains("pull access denied for 'contoso.azurecr.io/contoso/app:r1'"),
        "{text}"
    );
}
