//! The live state of an app as the plan sees it: slots, settings, connection strings, sticky names, site
//! config, image, tags.
//!
//! It is plain data so that a plan can be computed without I/O. It is read from Azure through the port
//! (`crate::port::read_state`) or loaded from a JSON file (`--state FILE`) for offline plans and tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// A slot's name, validated once where it enters (config, state file, journal) and held as such.
pub use slot_release_config::SlotName;
use slot_release_config::stack::{Stack, WindowsStackFields};

/// Everything the planner needs to know about the app as it is now.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LiveState {
    /// Slots by name; `production` is the production slot. A slot that is absent does not exist.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, SlotState>")]
    pub slots: BTreeMap<SlotName, SlotState>,
    /// App setting names marked slot-specific (sticky) on the site.
    #[serde(default)]
    pub sticky_settings: BTreeSet<String>,
    /// Connection string names marked slot-specific (sticky) on the site.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub sticky_connection_strings: BTreeSet<String>,
    /// Resource tags on the site (the compact part of the journal lives here).
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Deployments or swaps the platform reports as still running.
    #[serde(default)]
    pub in_flight: Vec<String>,
    /// What kind of app the site is and the plan it runs on, from the production site.
    #[serde(default, skip_serializing_if = "Hosting::is_unknown")]
    pub hosting: Hosting,
    /// Production's traffic-routing rules (`experiments.rampUpRules`), in ARM's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routing: Vec<RoutingRule>,
}

/// A rule routing a share of production's traffic to another slot (`experiments.rampUpRules[]`), as ARM
/// holds it: a canary records the rules before it starts and puts exactly these back.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoutingRule {
    /// The slot's name (`name`): the value of the routing cookie that pins a client there.
    pub name: String,
    /// The host traffic goes to (`actionHostName`), as ARM gave it; never built from a name.
    pub host: String,
    /// The share of production's traffic, in percent (`reroutePercentage`).
    pub percent: f64,
    /// The automatic ramp-up fields ARM gave with the rule, kept as they were.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub other: serde_json::Map<String, serde_json::Value>,
}

// Compared by the percent's bits: a rule put back must be the very number read, and a percent is never NaN
// in a rule ARM accepted.
impl PartialEq for RoutingRule {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.host == other.host
            && self.percent.to_bits() == other.percent.to_bits()
            && self.other == other.other
    }
}

impl Eq for RoutingRule {}

impl RoutingRule {
    /// Whether the rule sends traffic to `slot` (by its name or by its host).
    pub fn routes_to(&self, slot: &SlotName, host: Option<&str>) -> bool {
        self.name.eq_ignore_ascii_case(slot.as_str())
            || host.is_some_and(|h| self.host.eq_ignore_ascii_case(h))
    }
}

/// The site's kind and the tier of its plan, as the production site reports them (`kind`,
/// `properties.sku`, `properties.functionAppConfig`): whether the app can have deployment slots at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Hosting {
    /// `kind` holds `functionapp`: an Azure Functions app.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub function_app: bool,
    /// The plan's tier (`Standard`, `PremiumV3`, `ElasticPremium`, `Dynamic`, `FlexConsumption`, …);
    /// `None` when the site did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_tier: Option<String>,
    /// The site carries `functionAppConfig`, which only a Flex Consumption app has.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub function_app_config: bool,
    /// `properties.reserved`: a Linux app.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub linux: bool,
}

impl Hosting {
    fn is_unknown(&self) -> bool {
        *self == Hosting::default()
    }

    /// Why a release through slots cannot run on this app, when it cannot: the plan gives the app no
    /// slot besides production, so there is nowhere to stage and nothing to swap. `None` when slots are
    /// available or the tier is unknown (an offline state; ARM then answers for itself).
    pub fn no_slots(&self) -> Option<NoSlots> {
        let tier = self.plan_tier.as_deref().unwrap_or_default();
        let plan = if self.function_app_config || tier.eq_ignore_ascii_case("FlexConsumption") {
            "Flex Consumption"
        } else if tier.eq_ignore_ascii_case("Dynamic") && self.linux {
            // Windows Consumption keeps one staging slot; Linux Consumption never had one.
            "Linux Consumption"
        } else if ["Free", "Shared", "Basic"]
            .iter()
            .any(|t| tier.eq_ignore_ascii_case(t))
        {
            return Some(NoSlots {
                plan: format!("{tier} App Service"),
                advice: "scale the plan up to Standard, Premium or Isolated, which have deployment slots".into(),
            });
        } else {
            return None;
        };
        let advice = "move the app to an Elastic Premium (EP1-EP3) or a Dedicated App Service plan (Standard, \
             Premium, Isolated), which have deployment slots; releasing without slots (deploying straight to \
             production) is not something this task does"
            .to_owned();
        Some(NoSlots {
            plan: format!("{plan} plan"),
            advice,
        })
    }
}

/// A plan without deployment slots, and what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoSlots {
    /// The plan, as a reader knows it (`Flex Consumption plan`).
    pub plan: String,
    /// What to do instead.
    pub advice: String,
}

/// One slot of the app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SlotState {
    /// App settings as they are now. Values of secret settings are never printed from here.
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// Connection strings as they are now, by name. Their values are never printed from here.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub connection_strings: BTreeMap<String, ConnectionStringState>,
    /// The stack or container image (`linuxFxVersion`, e.g. `PYTHON|3.12` or `DOCKER|repo:tag`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub linux_fx_version: Option<String>,
    /// A Windows app's stack fields; absent for a Linux app, whose stack is `linux_fx_version`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows: Option<WindowsStack>,
    /// The startup command (`appCommandLine`); `None` or empty means none is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub startup_command: Option<String>,
    /// The release the slot is known to hold, from the journal's deployment record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The SHA-256 of the package that release deployed, per the same record (code apps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_sha256: Option<String>,
    /// Where that package can be downloaded again, per the same record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::history::ArtifactSource>,
    /// The host name the slot answers on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// General settings (`siteConfig`) as they are now; a field the platform did not report is `None`.
    #[serde(default, skip_serializing_if = "SiteSettings::is_empty")]
    pub site_config: SiteSettings,
    /// A sitecontainers app's containers (`linuxFxVersion: SITECONTAINERS`): the main one and its sidecars.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub site_containers: Vec<SiteContainerState>,
}

/// One sitecontainer of a slot, as far as a release reads it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteContainerState {
    /// Its name.
    pub name: String,
    /// Its image reference.
    pub image: String,
    /// Whether it is the main container (`isMain`), the one a release rolls out; the others are sidecars.
    #[serde(default)]
    pub is_main: bool,
}

/// A connection string as a slot holds it. The value is a secret for printing purposes (it usually holds
/// a password): `Debug` leaves it out, and a plan only says whether it changes.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionStringState {
    /// The type, as ARM spells it (`SQLAzure`, `Custom`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// The value.
    pub value: String,
}

impl std::fmt::Debug for ConnectionStringState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionStringState")
            .field("kind", &self.kind)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// The general settings of a slot a release manages (App Service `config/web`). In the live state they
/// are what the slot has; in a change, `None` leaves the field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteSettings {
    /// `alwaysOn`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_on: Option<bool>,
    /// `http20Enabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http20_enabled: Option<bool>,
    /// `minTlsVersion`, as ARM spells it (`1.2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_version: Option<String>,
    /// `ftpsState` (`AllAllowed`, `FtpsOnly`, `Disabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftps_state: Option<String>,
    /// `healthCheckPath`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    /// `acrUseManagedIdentityCreds`: the slot pulls its image with the app's managed identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_use_managed_identity_creds: Option<bool>,
    /// `acrUserManagedIdentityID`: the client ID of the user-assigned identity that pulls the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_user_managed_identity_id: Option<String>,
}

impl SiteSettings {
    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == SiteSettings::default()
    }
}

/// The site config and metadata fields that name a Windows app's stack (see
/// [`slot_release_config::stack::WindowsStackFields`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WindowsStack {
    /// `windowsFxVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub windows_fx_version: Option<String>,
    /// `metadata.CURRENT_STACK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_stack: Option<String>,
    /// `netFrameworkVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub net_framework_version: Option<String>,
    /// `javaVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub java_version: Option<String>,
    /// `phpVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub php_version: Option<String>,
    /// `nodeVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_version: Option<String>,
    /// `pythonVersion`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
}

impl SlotState {
    /// The stack the slot runs, as App Service names it; `None` when its site config names none (or a
    /// `linuxFxVersion` no runtime has).
    pub fn stack(&self) -> Option<Stack> {
        match &self.windows {
            Some(w) => Stack::from_windows(&WindowsStackFields {
                windows_fx_version: w.windows_fx_version.as_deref(),
                current_stack: w.current_stack.as_deref(),
                net_framework_version: w.net_framework_version.as_deref(),
                java_version: w.java_version.as_deref(),
                php_version: w.php_version.as_deref(),
                node_version: w.node_version.as_deref(),
                python_version: w.python_version.as_deref(),
            }),
            None => self
                .linux_fx_version
                .as_deref()
                .and_then(|fx| Stack::parse_linux(fx).ok()),
        }
    }

    /// The image tag when the slot runs a container (`DOCKER|repo:tag`), or a sitecontainers app's main
    /// container's image.
    pub fn image(&self) -> Option<&str> {
        if self.runs_site_containers() {
            return self.main_container().map(|c| c.image.as_str());
        }
        self.linux_fx_version
            .as_deref()
            .and_then(|fx| fx.strip_prefix("DOCKER|"))
    }

    /// Whether the slot is a sitecontainers app (`linuxFxVersion: SITECONTAINERS`).
    pub fn runs_site_containers(&self) -> bool {
        self.linux_fx_version
            .as_deref()
            .is_some_and(|fx| fx.trim().eq_ignore_ascii_case("SITECONTAINERS"))
    }

    /// A sitecontainers app's main container.
    pub fn main_container(&self) -> Option<&SiteContainerState> {
        self.site_containers.iter().find(|c| c.is_main)
    }

    /// A sitecontainers app's sidecars, by name: what an image rollout leaves as it is.
    pub fn sidecars(&self) -> Vec<&str> {
        self.site_containers
            .iter()
            .filter(|c| !c.is_main)
            .map(|c| c.name.as_str())
            .collect()
    }

    /// The startup command, with an empty string read as none.
    pub fn startup_command(&self) -> Option<&str> {
        self.startup_command
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
    }
}

impl LiveState {
    /// The slot called `name`, if it exists.
    pub fn slot(&self, name: &SlotName) -> Option<&SlotState> {
        self.slots.get(name)
    }

    /// The production slot, if the state has it.
    pub fn production(&self) -> Option<&SlotState> {
        self.slots.get(&SlotName::production())
    }

    /// Loads a state file (`--state FILE`).
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::StateFileRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text).map_err(|source| Error::StateFileInvalid {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Parses a state document.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_and_startup_command_are_read_from_site_config() {
        let slot = SlotState {
            linux_fx_version: Some("DOCKER|contoso.azurecr.io/web:20260101".into()),
            startup_command: Some("  ".into()),
            ..SlotState::default()
        };
        assert_eq!(slot.image(), Some("contoso.azurecr.io/web:20260101"));
        assert_eq!(slot.startup_command(), None);
    }

    #[test]
    fn plans_without_slots_are_named_and_the_others_pass() {
        let hosting = |function_app, tier: &str, flex, linux| Hosting {
            function_app,
            plan_tier: Some(tier.to_owned()).filter(|t| !t.is_empty()),
            function_app_config: flex,
            linux,
        };
        for (h, plan) in [
            (
                hosting(true, "FlexConsumption", true, true),
                Some("Flex Consumption plan"),
            ),
            // functionAppConfig alone tells Flex, whatever the tier says.
            (hosting(true, "", true, true), Some("Flex Consumption plan")),
            (
                hosting(true, "Dynamic", false, true),
                Some("Linux Consumption plan"),
            ),
            (hosting(true, "Dynamic", false, false), None),
            (hosting(true, "ElasticPremium", false, true), None),
            (hosting(true, "Standard", false, true), None),
            (hosting(false, "PremiumV3", false, true), None),
            (
                hosting(false, "Basic", false, true),
                Some("Basic App Service"),
            ),
            (hosting(false, "", false, true), None),
        ] {
            assert_eq!(h.no_slots().map(|n| n.plan).as_deref(), plan, "{h:?}");
        }
    }

    #[test]
    fn unknown_fields_in_a_state_file_are_refused() {
        let err = LiveState::from_json(r#"{"slots": {}, "slotz": 1}"#).unwrap_err();
        assert!(err.to_string().contains("slotz"), "{err}");
    }
}
