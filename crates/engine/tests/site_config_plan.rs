//! General settings (`siteConfig`) in plans: nothing when the slot already has them, one step with each
//! differing field, and each environment's written to its own slot because none of them swaps.

use slot_release_engine::plan::{Action, Plan, SiteConfigChange, Stage};
use slot_release_engine::state::{SiteSettings, SlotName};

mod support;
use support::{example, fixture, plan_for};

/// Every `SetSiteConfig` step of a plan: its slot and changes.
fn site_steps(plan: &Plan) -> Vec<(SlotName, Vec<SiteConfigChange>)> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSiteConfig { slot, changes } => Some((slot.clone(), changes.clone())),
            _ => None,
        })
        .collect()
}

fn change(field: &str, before: Option<&str>, after: &str) -> SiteConfigChange {
    SiteConfigChange {
        field: field.to_owned(),
        before: before.map(str::to_owned),
        after: after.to_owned(),
    }
}

fn every_field() -> SiteSettings {
    SiteSettings {
        always_on: Some(true),
        http20_enabled: Some(true),
        min_tls_version: Some("1.3".into()),
        ftps_state: Some("Disabled".into()),
        health_check_path: Some("/healthz".into()),
        ..SiteSettings::default()
    }
}

#[test]
fn nothing_is_planned_when_the_slot_already_has_the_settings() {
    let mut loaded = example("python-webapp");
    for env in loaded.spec.environments.values_mut() {
        env.site_config = every_field();
    }
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.site_config = every_field();
    }
    for stage in [Stage::Staging, Stage::Production] {
        let plan = plan_for(&loaded, stage, &live);
        assert_eq!(site_steps(&plan), [], "{stage}");
    }
}

#[test]
fn each_differing_field_is_one_change_with_before_and_after() {
    let mut loaded = example("python-webapp");
    loaded
        .spec
        .environments
        .get_mut("production")
        .unwrap()
        .site_config = every_field();
    let mut live = fixture("staged.json");
    let prod = live.slots.get_mut(&SlotName::production()).unwrap();
    prod.site_config = SiteSettings {
        always_on: Some(false),
        http20_enabled: Some(true),
        min_tls_version: Some("1.2".into()),
        ftps_state: Some("AllAllowed".into()),
        health_check_path: None,
        ..SiteSettings::default()
    };
    let plan = plan_for(&loaded, Stage::Production, &live);
    assert_eq!(
        site_steps(&plan),
        [(
            SlotName::production(),
            vec![
                change("alwaysOn", Some("false"), "true"),
                change("minTlsVersion", Some("1.2"), "1.3"),
                change("ftpsState", Some("AllAllowed"), "Disabled"),
                change("healthCheckPath", None, "/healthz"),
            ]
        )]
    );
    // The text and JSON forms show each change.
    let text = plan.render();
    assert!(
        text.contains(
            "set general settings on production: alwaysOn false -> true, minTlsVersion 1.2 -> 1.3"
        ),
        "{text}"
    );
    let json: serde_json::Value = serde_json::from_str(&plan.to_json()).unwrap();
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["action"]["type"] == "setSiteConfig")
        .expect("a setSiteConfig step");
    assert_eq!(step["action"]["changes"][3]["field"], "healthCheckPath");
    assert!(step["action"]["changes"][3].get("before").is_none());
}

#[test]
fn general_settings_stay_with_their_slot_so_each_is_written_to_its_own() {
    let mut loaded = example("python-webapp");
    loaded
        .spec
        .environments
        .get_mut("staging")
        .unwrap()
        .site_config = SiteSettings {
        always_on: Some(true),
        ..SiteSettings::default()
    };
    loaded
        .spec
        .environments
        .get_mut("production")
        .unwrap()
        .site_config = SiteSettings {
        http20_enabled: Some(true),
        min_tls_version: Some("1.3".into()),
        ..SiteSettings::default()
    };
    let live = fixture("staged.json");
    // Staging writes the staging environment's to the staging slot, and none of production's.
    let staging = plan_for(
        &loaded,
        Stage::Staging,
        &fixture("before-first-release.json"),
    );
    assert_eq!(
        site_steps(&staging),
        [(
            SlotName::new("staging").unwrap(),
            vec![change("alwaysOn", None, "true")]
        )]
    );
    // Production writes production's to the production slot, under the lock and before the swap, and
    // nothing to the slot swapped in (it would stay behind in the swap).
    let production = plan_for(&loaded, Stage::Production, &live);
    assert_eq!(
        site_steps(&production),
        [(
            SlotName::production(),
            vec![
                change("http20Enabled", None, "true"),
                change("minTlsVersion", None, "1.3"),
            ]
        )]
    );
    let at = |want: fn(&Action) -> bool| production.steps.iter().position(|s| want(&s.action));
    let site = at(|a| matches!(a, Action::SetSiteConfig { .. })).unwrap();
    assert!(at(|a| matches!(a, Action::AcquireLock)).unwrap() < site);
    assert!(site < at(|a| matches!(a, Action::Swap { .. })).unwrap());
    // A rollback swaps content back; general settings were never swapped, so it writes none.
    let rollback = plan_for(&loaded, Stage::Rollback, &fixture("after-release.json"));
    assert_eq!(site_steps(&rollback), []);
}

#[test]
fn warmup_settings_are_sticky_even_when_both_environments_agree() {
    let loaded = example("python-webapp");
    let travelling = loaded.spec.travelling_settings();
    // The example's DATABASE_PATH is equal in both environments and travels; the warm-up ones never do.
    assert!(travelling.contains("DATABASE_PATH"), "{travelling:?}");
    let mut loaded = loaded;
    for env in loaded.spec.environments.values_mut() {
        env.settings
            .insert("WEBSITE_SWAP_WARMUP_PING_PATH".into(), "/health".into());
    }
    assert!(
        !loaded
            .spec
            .travelling_settings()
            .contains("WEBSITE_SWAP_WARMUP_PING_PATH")
    );
}
