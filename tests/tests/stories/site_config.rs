//! General settings (`siteConfig`) end to end: production's are written to the production slot (they do
//! not swap), the plan shows each change with its value before and after, and a release that changes
//! nothing plans no general-settings step.

use slot_release_engine::state::{SiteSettings, SlotName};
use slot_release_tests::{World, printed, stdout};
use tokio_util::sync::CancellationToken;

const SITE: &str = "    siteConfig:
      alwaysOn: true
      minTlsVersion: \"1.2\"
      healthCheckPath: /healthz
      warmup:
        path: /health
        statuses: [200]
";

const WARMUP: [&str; 3] = [
    "WEBSITE_SWAP_WARMUP_PING_PATH",
    "WEBSITE_WARMUP_PATH",
    "WEBSITE_SWAP_WARMUP_PING_STATUSES",
];

fn step_with(plan: &serde_json::Value, kind: &str) -> Vec<serde_json::Value> {
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["action"]["type"] == kind)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn production_general_settings_are_written_shown_before_and_after_and_not_rewritten() {
    let world = World::released(|t| {
        t.replace(
            "    slot: production\n",
            &format!("    slot: production\n{SITE}"),
        )
    })
    .await;
    // Production accepts TLS 1.0 and has no warm-up settings before this release (the baseline seeds
    // the config's), so each field and each warm-up setting changes.
    let none = CancellationToken::new();
    world
        .port
        .remove_settings(
            &SlotName::production(),
            &WARMUP.map(str::to_owned).into(),
            &none,
        )
        .await
        .unwrap();
    world
        .port
        .set_site_config(
            &SlotName::production(),
            &SiteSettings {
                min_tls_version: Some("1.0".into()),
                ..SiteSettings::default()
            },
            &none,
        )
        .await
        .unwrap();

    let staged = world.cli(&["staging", "--release-id", "r1"]).await;
    assert!(staged.status.success(), "{}", printed(&staged));
    assert!(
        !stdout(&staged).contains("set general settings"),
        "the staging environment has no siteConfig:\n{}",
        stdout(&staged)
    );
    let released = world.cli(&["production", "--release-id", "r1"]).await;
    assert!(released.status.success(), "{}", printed(&released));
    let log = stdout(&released);
    for line in [
        "set general settings on production: alwaysOn false -> true, minTlsVersion 1.0 -> 1.2, healthCheckPath (unset) -> /healthz",
        "WEBSITE_SWAP_WARMUP_PING_PATH: (unset) -> \"/health\" [sticky]",
        "WEBSITE_WARMUP_PATH: (unset) -> \"/health\" [sticky]",
        "WEBSITE_SWAP_WARMUP_PING_STATUSES: (unset) -> \"200\" [sticky]",
    ] {
        assert!(log.contains(line), "no `{line}` in:\n{log}");
    }

    // The production slot holds them after the swap; the staging slot got none of them.
    let production = world.slot("production");
    assert_eq!(production.site_config["alwaysOn"], true);
    assert_eq!(production.site_config["minTlsVersion"], "1.2");
    assert_eq!(production.site_config["healthCheckPath"], "/healthz");
    for (name, value) in [
        ("WEBSITE_SWAP_WARMUP_PING_PATH", "/health"),
        ("WEBSITE_WARMUP_PATH", "/health"),
        ("WEBSITE_SWAP_WARMUP_PING_STATUSES", "200"),
    ] {
        assert_eq!(
            production.app_settings.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
        assert!(
            !world.slot("staging").app_settings.contains_key(name),
            "{name}"
        );
    }
    assert_eq!(world.slot("staging").site_config["alwaysOn"], false);

    // The next release changes none of them: its production plan has no general-settings step, and
    // no warm-up setting to write.
    let staged = world.cli(&["staging", "--release-id", "r2"]).await;
    assert!(staged.status.success(), "{}", printed(&staged));
    let planned = world
        .cli(&[
            "plan",
            "--stage",
            "production",
            "--json",
            "--release-id",
            "r2",
        ])
        .await;
    assert!(planned.status.success(), "{}", printed(&planned));
    let plan: serde_json::Value = serde_json::from_slice(&planned.stdout).unwrap();
    assert_eq!(
        step_with(&plan, "setSiteConfig"),
        Vec::<serde_json::Value>::new()
    );
    assert!(
        !step_with(&plan, "swap").is_empty(),
        "a real release: {plan:#}"
    );
    for step in step_with(&plan, "setSettings") {
        assert!(
            !step.to_string().contains("WARMUP"),
            "the warm-up settings are rewritten: {step:#}"
        );
    }
    let released = world.cli(&["production", "--release-id", "r2"]).await;
    assert!(released.status.success(), "{}", printed(&released));
    assert!(
        !stdout(&released).contains("set general settings"),
        "{}",
        stdout(&released)
    );
    assert_eq!(
        world.slot("production").site_config["healthCheckPath"],
        "/healthz"
    );
}
