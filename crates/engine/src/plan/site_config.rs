//! General settings (`siteConfig`) per environment: the fields that differ from the slot's, as one
//! `SetSiteConfig` step written with one `PATCH config/web`.
//!
//! Where a field is written follows what a swap does with it. App Service swaps only the stack among
//! site config; Always On, HTTP/2, TLS, FTP and the health check path stay with their slot (the
//! contract's "what gets swapped", `docs/release-config.md`). So every field here is written to the
//! environment's own slot: the staging environment's in the staging stage, production's to the
//! production slot in the production stage, never to the slot that is swapped in. The warm-up
//! settings go through the settings path, always sticky (`spec::is_warmup_setting`).

use super::*;
use crate::state::SiteSettings;

/// One general setting that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SiteConfigChange {
    /// The `config/web` field, e.g. `minTlsVersion`.
    pub field: String,
    /// Its value now, when the slot reports one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Its value after the step.
    pub after: String,
}

/// The fields of `wanted` that differ from `live`, in `config/web`'s names.
pub(crate) fn site_config_changes(
    wanted: &SiteSettings,
    live: &SiteSettings,
) -> Vec<SiteConfigChange> {
    let bool_text = |b: bool| b.to_string();
    let fields: [(&str, Option<String>, Option<String>); 7] = [
        (
            "alwaysOn",
            wanted.always_on.map(bool_text),
            live.always_on.map(bool_text),
        ),
        (
            "http20Enabled",
            wanted.http20_enabled.map(bool_text),
            live.http20_enabled.map(bool_text),
        ),
        (
            "minTlsVersion",
            wanted.min_tls_version.clone(),
            live.min_tls_version.clone(),
        ),
        (
            "ftpsState",
            wanted.ftps_state.clone(),
            live.ftps_state.clone(),
        ),
        (
            "healthCheckPath",
            wanted.health_check_path.clone(),
            live.health_check_path.clone(),
        ),
        (
            "acrUseManagedIdentityCreds",
            wanted.acr_use_managed_identity_creds.map(bool_text),
            live.acr_use_managed_identity_creds.map(bool_text),
        ),
        (
            "acrUserManagedIdentityID",
            wanted.acr_user_managed_identity_id.clone(),
            live.acr_user_managed_identity_id.clone(),
        ),
    ];
    fields
        .into_iter()
        .filter_map(|(field, after, before)| {
            let after = after?;
            (before.as_deref() != Some(after.as_str())).then(|| SiteConfigChange {
                field: field.to_owned(),
                before,
                after,
            })
        })
        .collect()
}

/// The change a `SetSiteConfig` step writes: only the fields it lists.
pub(crate) fn site_settings_of(changes: &[SiteConfigChange]) -> SiteSettings {
    let mut out = SiteSettings::default();
    for change in changes {
        let value = change.after.clone();
        match change.field.as_str() {
            "alwaysOn" => out.always_on = Some(value == "true"),
            "http20Enabled" => out.http20_enabled = Some(value == "true"),
            "minTlsVersion" => out.min_tls_version = Some(value),
            "ftpsState" => out.ftps_state = Some(value),
            "healthCheckPath" => out.health_check_path = Some(value),
            "acrUseManagedIdentityCreds" => {
                out.acr_use_managed_identity_creds = Some(value == "true")
            }
            "acrUserManagedIdentityID" => out.acr_user_managed_identity_id = Some(value),
            _ => {}
        }
    }
    out
}

/// Adds the environment's general settings to the plan as one step on the slot it is bound to (the
/// stage's own slot), when any differ.
pub(super) fn push_site_config(
    env: &EnvironmentSpec,
    slot: &SlotName,
    state: &LiveState,
    plan: &mut Plan,
) {
    let live = state
        .slot(slot)
        .map(|s| s.site_config.clone())
        .unwrap_or_default();
    let changes = site_config_changes(&env.site_config, &live);
    if changes.is_empty() {
        return;
    }
    let why = if slot.is_production() {
        "general settings stay with their slot in a swap, so production's are written to production"
    } else {
        "general settings stay with their slot in a swap, so the environment's are written to its slot"
    };
    plan.steps.push(step(
        Action::SetSiteConfig {
            slot: slot.to_owned(),
            changes,
        },
        why,
    ));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_round_trips_to_the_fields_written() {
        let wanted = SiteSettings {
            always_on: Some(false),
            http20_enabled: Some(true),
            min_tls_version: Some("1.3".into()),
            ftps_state: Some("Disabled".into()),
            health_check_path: Some("/h".into()),
            acr_use_managed_identity_creds: Some(true),
            acr_user_managed_identity_id: Some("client-id".into()),
        };
        let changes = site_config_changes(&wanted, &SiteSettings::default());
        assert_eq!(changes.len(), 7);
        assert_eq!(site_settings_of(&changes), wanted);
    }
}
