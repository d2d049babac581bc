//! A private registry in plans: what the pull needs is written to the slot before its image changes,
//! the managed identity through `config/web` and credentials as `DOCKER_REGISTRY_SERVER_*` settings,
//! the password pulled from Key Vault by value and shown as a secret, never as a value.

use slot_release_engine::plan::{Action, Plan, Shown, SiteConfigChange, Stage};
use slot_release_engine::release::LoadedRelease;
use slot_release_engine::spec::SecretDelivery;
use slot_release_engine::state::SlotName;

mod support;
use support::{fixture, plan_for, root};

/// The container example with `block` added to both environments.
fn load(block: &str) -> (LoadedRelease, tempfile::TempDir) {
    let text = std::fs::read_to_string(root().join("examples/container-app/release.yml")).unwrap();
    let text = text
        .replace(
            "    slot: staging\n",
            &format!("    slot: staging\n{block}"),
        )
        .replace(
            "    slot: production\n",
            &format!("    slot: production\n{block}"),
        );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("release.yml");
    std::fs::write(&config, text).unwrap();
    (support::load(&config), dir)
}

/// Where each kind of step sits in the plan (the first of its kind).
fn position(plan: &Plan, wanted: fn(&Action) -> bool) -> usize {
    plan.steps
        .iter()
        .position(|s| wanted(&s.action))
        .unwrap_or_else(|| panic!("no such step in\n{}", plan.render()))
}

fn site_changes(plan: &Plan, on: &SlotName) -> Vec<SiteConfigChange> {
    plan.steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSiteConfig { slot, changes } if slot == on => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[test]
fn a_user_assigned_identity_is_turned_on_before_the_image_changes() {
    let (loaded, _dir) = load(
        "    registry:\n      server: contoso.azurecr.io\n      identity:\n        userAssigned: 7f1c-client\n",
    );
    let plan = plan_for(&loaded, Stage::Staging, &fixture("staged.json"));
    let staging = SlotName::new("staging").unwrap();
    let fields: Vec<(String, String)> = site_changes(&plan, &staging)
        .into_iter()
        .map(|c| (c.field, c.after))
        .collect();
    assert_eq!(
        fields,
        [
            ("acrUseManagedIdentityCreds".to_owned(), "true".to_owned()),
            (
                "acrUserManagedIdentityID".to_owned(),
                "7f1c-client".to_owned()
            ),
        ]
    );
    let site = position(&plan, |a| matches!(a, Action::SetSiteConfig { .. }));
    let image = position(&plan, |a| matches!(a, Action::SetImage { .. }));
    assert!(site < image, "{}", plan.render());
    // Production's is written to production before the swap: it stays with its slot.
    let plan = plan_for(&loaded, Stage::Production, &fixture("staged.json"));
    let on_production = site_changes(&plan, &SlotName::production());
    assert!(
        on_production
            .iter()
            .any(|c| c.field == "acrUseManagedIdentityCreds" && c.after == "true"),
        "{}",
        plan.render()
    );
    let site = position(&plan, |a| matches!(a, Action::SetSiteConfig { .. }));
    let swap = position(&plan, |a| {
        matches!(a, Action::Swap { .. } | Action::ApplySlotConfig { .. })
    });
    assert!(site < swap, "{}", plan.render());
}

#[test]
fn credentials_are_settings_with_the_password_pulled_by_value_and_shown_as_a_secret() {
    let (loaded, _dir) = load(
        "    registry:\n      server: contoso.azurecr.io\n      credentials:\n        username: puller\n        passwordSecret: acr-password\n",
    );
    let plan = plan_for(&loaded, Stage::Staging, &fixture("staged.json"));
    let pulled: Vec<(String, String, SecretDelivery)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::PullSecrets { secrets, .. } => Some(secrets.clone()),
            _ => None,
        })
        .flatten()
        .map(|p| (p.setting, p.secret, p.delivery))
        .filter(|p| p.0.starts_with("DOCKER_"))
        .collect();
    assert_eq!(
        pulled,
        [(
            "DOCKER_REGISTRY_SERVER_PASSWORD".to_owned(),
            "acr-password".to_owned(),
            SecretDelivery::Value
        )]
    );
    let settings: Vec<(String, Shown)> = plan
        .steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::SetSettings { changes, .. } => Some(changes.clone()),
            _ => None,
        })
        .flatten()
        .filter(|c| c.name.starts_with("DOCKER_"))
        .map(|c| (c.name, c.after))
        .collect();
    assert_eq!(settings.len(), 3, "{}", plan.render());
    assert!(settings.contains(&(
        "DOCKER_REGISTRY_SERVER_URL".to_owned(),
        Shown::Plain("https://contoso.azurecr.io".to_owned())
    )));
    assert!(settings.contains(&(
        "DOCKER_REGISTRY_SERVER_USERNAME".to_owned(),
        Shown::Plain("puller".to_owned())
    )));
    assert!(matches!(
        settings
            .iter()
            .find(|s| s.0 == "DOCKER_REGISTRY_SERVER_PASSWORD"),
        Some((_, Shown::Secret(_)))
    ));
    // Credentials turn the identity pull off: App Service would use the identity and ignore them.
    let fields: Vec<(String, String)> = site_changes(&plan, &SlotName::new("staging").unwrap())
        .into_iter()
        .map(|c| (c.field, c.after))
        .collect();
    assert_eq!(
        fields,
        [("acrUseManagedIdentityCreds".to_owned(), "false".to_owned())]
    );
    let set = position(&plan, |a| matches!(a, Action::SetSettings { .. }));
    let image = position(&plan, |a| matches!(a, Action::SetImage { .. }));
    assert!(set < image, "{}", plan.render());
}

#[test]
fn a_sitecontainers_app_with_a_registry_is_refused_before_any_change() {
    let (loaded, _dir) =
        load("    registry:\n      server: contoso.azurecr.io\n      identity: system\n");
    let mut live = fixture("staged.json");
    for slot in live.slots.values_mut() {
        slot.linux_fx_version = Some("SITECONTAINERS".into());
        slot.site_containers = vec![slot_release_engine::state::SiteContainerState {
            name: "main".into(),
            image: "contoso.azurecr.io/contoso/app:previous".into(),
            is_main: true,
        }];
    }
    let plan = plan_for(&loaded, Stage::Staging, &live);
    let check = plan
        .preflight
        .iter()
        .find(|c| c.name == "registry")
        .unwrap_or_else(|| panic!("no registry check in\n{}", plan.render()));
    assert!(!check.ok, "{}", plan.render());
    assert!(check.detail.contains("authType"), "{}", check.detail);
}
