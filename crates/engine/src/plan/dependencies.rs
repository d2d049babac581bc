//! Whether App Service builds the deployed package (`SCM_DO_BUILD_DURING_DEPLOYMENT`), judged on the value
//! the release leaves on the slot: the environment's own setting when the config has one, the live value
//! only when it has none.

use super::*;
use crate::state::SlotState;

/// The setting Kudu reads to run a build (Oryx on Linux) on a push deployment.
pub const SCM_BUILD: &str = "SCM_DO_BUILD_DURING_DEPLOYMENT";

/// Where the value a deployment sees comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Origin {
    /// The environment sets it; the release writes it before the package is deployed.
    Config,
    /// The config does not set it: the slot keeps the value it has.
    Live,
    /// The config no longer declares it and the release removes it (a release owned it).
    Removed,
    /// Set nowhere.
    Unset,
}

/// A setting as the deployment will see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Effective {
    /// The value, when the slot will have one.
    pub(super) value: Option<String>,
    /// Where it comes from.
    pub(super) origin: Origin,
}

impl Effective {
    /// The value of `name` the release leaves on the slot: the environment's, else (unless a planned
    /// removal takes it away) the slot's own.
    pub(super) fn of(
        name: &str,
        env: &EnvironmentSpec,
        live: Option<&SlotState>,
        removed: bool,
    ) -> Self {
        if let Some(v) = env.settings.get(name) {
            return Self {
                value: Some(v.clone()),
                origin: Origin::Config,
            };
        }
        if removed {
            return Self {
                value: None,
                origin: Origin::Removed,
            };
        }
        match live.and_then(|s| s.settings.get(name)) {
            Some(v) => Self {
                value: Some(v.clone()),
                origin: Origin::Live,
            },
            None => Self {
                value: None,
                origin: Origin::Unset,
            },
        }
    }

    /// Kudu's reading: `true` or `1` in any case.
    pub(super) fn is_true(&self) -> bool {
        self.value
            .as_deref()
            .map(str::trim)
            .is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
    }

    /// How the plan names the value and where it comes from.
    pub(super) fn describe(&self, name: &str, env_name: &str, slot: &SlotName) -> String {
        match (&self.origin, &self.value) {
            (Origin::Config, Some(v)) => {
                format!("{name} is {v:?} on {slot} (set by environment {env_name})")
            }
            (Origin::Live, Some(v)) => {
                format!(
                    "{name} is {v:?} on {slot} (the slot's own; environment {env_name} does not set it)"
                )
            }
            (Origin::Removed, _) => {
                format!("{name} is removed from {slot} (the config no longer declares it)")
            }
            _ => format!("{name} is not set on {slot}"),
        }
    }
}

/// Whether a removal step of the plan takes `name` off the slot.
pub(super) fn removes(step: Option<&Step>, name: &str) -> bool {
    matches!(step, Some(Step { action: Action::RemoveSettings { removals, .. }, .. })
        if removals.iter().any(|r| r.name == name))
}

/// The `scm-build` check: the deployed bytes are the ones planned unless App Service builds them.
pub(super) fn scm_build_check(env_name: &str, slot: &SlotName, build: &Effective) -> Check {
    let said = build.describe(SCM_BUILD, env_name, slot);
    if build.is_true() {
        check(
            "scm-build",
            false,
            format!(
                "{said}, but the package is already built; set it to \"false\" for environment {env_name} so the deployed bytes are the ones planned"
            ),
        )
    } else {
        check(
            "scm-build",
            true,
            format!("{said}: the deployed package is used as built"),
        )
    }
}
