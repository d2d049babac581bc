//! Checks on an environment's `siteConfig:`: paths from the site root, real HTTP statuses, warm-up
//! settings not also written by hand, and Always On turned off where production pays for it.

use super::Checker;
use crate::model::{Environment, ReleaseConfig};
use crate::site_config::{RESTART_WARMUP_PATH, SWAP_WARMUP_PATH, SWAP_WARMUP_STATUSES};
use crate::source::{join_index, join_key};

/// Checks every environment's `siteConfig`.
pub(crate) fn check_site_configs(config: &ReleaseConfig, c: &mut Checker<'_>) {
    for (name, environment) in &config.environments {
        let Some(site) = &environment.site_config else {
            continue;
        };
        let base = format!("{}.siteConfig", join_key("environments", name.as_str()));
        if let Some(path) = &site.health_check_path {
            rooted(&format!("{base}.healthCheckPath"), path, c);
        }
        if site.always_on == Some(false) && serves_production(environment) {
            c.warning(
                &format!("{base}.alwaysOn"),
                "always-on-off-in-production",
                "Always On is turned off for the production slot: App Service unloads it after 20 \
                 minutes without requests, and the next request waits for the app to start"
                    .into(),
                "set `alwaysOn: true` (Basic plans and higher), or remove the line if the plan is \
                 Free or Shared, where Always On does not exist"
                    .into(),
            );
        }
        let Some(warmup) = &site.warmup else {
            continue;
        };
        if let Some(path) = &warmup.path {
            rooted(&format!("{base}.warmup.path"), path, c);
        }
        for (index, status) in warmup.statuses.iter().enumerate() {
            if !(100..=599).contains(status) {
                c.error(
                    &join_index(&format!("{base}.warmup.statuses"), index),
                    "invalid-status",
                    format!("{status} is not an HTTP status code"),
                    "HTTP status codes are between 100 and 599".into(),
                );
            }
        }
        for (setting, _) in warmup.settings() {
            if environment.settings.keys().any(|k| k.as_str() == setting) {
                c.error_key(
                    &join_key(
                        &format!("{}.settings", join_key("environments", name.as_str())),
                        setting,
                    ),
                    "warmup-setting-twice",
                    format!("`{setting}` is written by `siteConfig.warmup` and by `settings`"),
                    format!(
                        "remove `{setting}` from `settings`; `warmup.path` writes \
                         {SWAP_WARMUP_PATH} and {RESTART_WARMUP_PATH}, `warmup.statuses` writes \
                         {SWAP_WARMUP_STATUSES}"
                    ),
                );
            }
        }
    }
}

/// Whether the environment is bound to the production slot.
fn serves_production(environment: &Environment) -> bool {
    environment.slot.is_production()
}

fn rooted(path: &str, value: &str, c: &mut Checker<'_>) {
    if !value.starts_with('/') {
        c.error(
            path,
            "site-path-relative",
            format!("the path `{value}` does not start with `/`"),
            "write the path from the site root, e.g. `/health`".into(),
        );
    }
}
