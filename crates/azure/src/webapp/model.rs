//! What ARM returns and takes for a web app: a slot's state and site config (parsed from the site JSON),
//! config patches, app settings changes, sticky setting names and swap options.

use crate::client::LroOptions;
use crate::error::Result;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use super::names::SlotName;

/// A traffic-routing rule (`siteConfig.experiments.rampUpRules[]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RampUpRule {
    /// Host of the slot receiving traffic.
    pub action_host_name: String,
    /// Share of traffic, in percent.
    pub reroute_percentage: f64,
    /// Slot name.
    pub name: String,
    /// The automatic ramp-up fields (`changeStep`, `changeIntervalInMinutes`, …) as ARM gave them: kept so
    /// a rule read and written back is the rule it was, not one with its ramp-up dropped.
    #[serde(flatten, default)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// The site-config fields the engine reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SiteConfig {
    /// `linuxFxVersion`, e.g. `PYTHON|3.12`.
    pub linux_fx_version: Option<String>,
    /// Startup command.
    pub app_command_line: Option<String>,
    /// `windowsFxVersion` (a Windows container: `DOCKER|image`).
    pub windows_fx_version: Option<String>,
    /// `netFrameworkVersion` (Windows .NET), e.g. `v8.0`.
    pub net_framework_version: Option<String>,
    /// `javaVersion` (Windows Java).
    pub java_version: Option<String>,
    /// `phpVersion` (Windows PHP).
    pub php_version: Option<String>,
    /// `nodeVersion` (Windows Node).
    pub node_version: Option<String>,
    /// `pythonVersion` (Windows Python).
    pub python_version: Option<String>,
    /// Health check path.
    pub health_check_path: Option<String>,
    /// Always On.
    pub always_on: Option<bool>,
    /// HTTP/2 to clients.
    pub http20_enabled: Option<bool>,
    /// Lowest TLS version accepted (`1.0` … `1.3`).
    pub min_tls_version: Option<String>,
    /// FTP access (`AllAllowed`, `FtpsOnly`, `Disabled`).
    pub ftps_state: Option<String>,
    /// Auto-swap target slot.
    pub auto_swap_slot_name: Option<String>,
    /// Pull the container image with the app's managed identity.
    pub acr_use_managed_identity_creds: Option<bool>,
    /// The client ID of the user-assigned identity that pulls the image (ARM spells it `ID`).
    #[serde(rename = "acrUserManagedIdentityID")]
    pub acr_user_managed_identity_id: Option<String>,
    /// Traffic routing rules.
    #[serde(skip)]
    pub ramp_up_rules: Vec<RampUpRule>,
}

impl SiteConfig {
    pub(super) fn from_properties(p: &serde_json::Value) -> Self {
        let mut c: SiteConfig = serde_json::from_value(p.clone()).unwrap_or_default();
        c.ramp_up_rules = p
            .pointer("/experiments/rampUpRules")
            .and_then(|r| serde_json::from_value(r.clone()).ok())
            .unwrap_or_default();
        c
    }
}

/// A change to site config; `None` fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SiteConfigPatch {
    /// New `linuxFxVersion`.
    pub linux_fx_version: Option<String>,
    /// New startup command (empty string clears it).
    pub app_command_line: Option<String>,
    /// New health check path (empty string clears it).
    pub health_check_path: Option<String>,
    /// New Always On.
    pub always_on: Option<bool>,
    /// New HTTP/2 setting.
    pub http20_enabled: Option<bool>,
    /// New lowest TLS version.
    pub min_tls_version: Option<String>,
    /// New FTP access.
    pub ftps_state: Option<String>,
    /// Replace the routing rules (empty list clears routing).
    pub ramp_up_rules: Option<Vec<RampUpRule>>,
    /// New `acrUseManagedIdentityCreds`.
    pub acr_use_managed_identity_creds: Option<bool>,
    /// New `acrUserManagedIdentityID`.
    pub acr_user_managed_identity_id: Option<String>,
}

impl SiteConfigPatch {
    pub(super) fn to_json(&self) -> serde_json::Value {
        let mut p = serde_json::Map::new();
        if let Some(v) = &self.linux_fx_version {
            p.insert("linuxFxVersion".into(), v.clone().into());
        }
        if let Some(v) = &self.app_command_line {
            p.insert("appCommandLine".into(), v.clone().into());
        }
        if let Some(v) = &self.health_check_path {
            p.insert("healthCheckPath".into(), v.clone().into());
        }
        if let Some(v) = self.always_on {
            p.insert("alwaysOn".into(), v.into());
        }
        if let Some(v) = self.http20_enabled {
            p.insert("http20Enabled".into(), v.into());
        }
        if let Some(v) = &self.min_tls_version {
            p.insert("minTlsVersion".into(), v.clone().into());
        }
        if let Some(v) = &self.ftps_state {
            p.insert("ftpsState".into(), v.clone().into());
        }
        if let Some(v) = self.acr_use_managed_identity_creds {
            p.insert("acrUseManagedIdentityCreds".into(), v.into());
        }
        if let Some(v) = &self.acr_user_managed_identity_id {
            p.insert("acrUserManagedIdentityID".into(), v.clone().into());
        }
        if let Some(r) = &self.ramp_up_rules {
            p.insert(
                "experiments".into(),
                serde_json::json!({ "rampUpRules": r }),
            );
        }
        serde_json::json!({ "properties": p })
    }
}

/// What the engine needs to know about a site or slot.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotInfo {
    /// Which slot.
    pub slot: SlotName,
    /// `kind` as comma-separated tokens (`app`, `linux`, `container`, …).
    pub kind: Vec<String>,
    /// `Running` or `Stopped`.
    pub state: String,
    /// `properties.reserved`: true for a Linux app.
    pub reserved: bool,
    /// Default host name.
    pub default_host: String,
    /// Kudu (SCM) host name (the `Repository` host).
    pub scm_host: String,
    /// Region.
    pub location: String,
    /// App Service plan id.
    pub server_farm_id: Option<String>,
    /// `properties.sku`: the tier of the plan the site runs on (`Standard`, `ElasticPremium`,
    /// `Dynamic`, `FlexConsumption`, …), as the site reports it, so no read of the plan (which may sit
    /// in a resource group the service connection cannot read) is needed.
    pub plan_tier: Option<String>,
    /// Whether the site carries `properties.functionAppConfig`, which only a Flex Consumption app has.
    pub function_app_config: bool,
    /// Site config when the site carries it (`siteConfig` on GET is partial; use `site_config` for all).
    pub site_config: Option<SiteConfig>,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
}

impl SlotInfo {
    /// True when `kind` contains `linux` or the site is `reserved` (ARM's flag for a Linux app: some
    /// answers leave `linux` out of `kind`).
    pub fn is_linux(&self) -> bool {
        self.reserved || self.kind.iter().any(|k| k == "linux")
    }

    /// True when `kind` contains `functionapp`: an Azure Functions app.
    pub fn is_function_app(&self) -> bool {
        self.kind.iter().any(|k| k == "functionapp")
    }

    /// True when `kind` contains `container`.
    pub fn is_container(&self) -> bool {
        self.kind.iter().any(|k| k == "container")
    }

    /// Read a `Site`; a body without the fields every site has (`properties.state`,
    /// `properties.defaultHostName`) is not a site (a proxy's page, a broken answer) and is refused.
    /// Hosts are taken as ARM names them and never built from the site's name: apps with unique
    /// default host names (`<site>-<hash>.<region>.azurewebsites.net`) and shortened slot hosts
    /// cannot be guessed.
    pub(super) fn from_site(slot: SlotName, v: &serde_json::Value) -> Result<Self, String> {
        let p = &v["properties"];
        for field in ["state", "defaultHostName"] {
            if p[field].as_str().is_none_or(str::is_empty) {
                return Err(format!("the site has no properties.{field}"));
            }
        }
        let s = |x: &serde_json::Value| x.as_str().unwrap_or_default().to_owned();
        let scm_host = p["hostNameSslStates"]
            .as_array()
            .and_then(|a| {
                a.iter().find(|h| {
                    h["hostType"]
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("Repository"))
                })
            })
            .map(|h| s(&h["name"]))
            .filter(|h| !h.is_empty())
            // Without a Repository entry, the enabled host whose second label is `scm`.
            .or_else(|| {
                p["enabledHostNames"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(serde_json::Value::as_str)
                    .find(|h| {
                        h.split('.')
                            .nth(1)
                            .is_some_and(|l| l.eq_ignore_ascii_case("scm"))
                    })
                    .map(str::to_owned)
            })
            .unwrap_or_default();
        Ok(Self {
            slot,
            kind: s(&v["kind"])
                .split(',')
                .map(|k| k.trim().to_ascii_lowercase())
                .filter(|k| !k.is_empty())
                .collect(),
            state: s(&p["state"]),
            reserved: p["reserved"].as_bool().unwrap_or(false),
            default_host: s(&p["defaultHostName"]),
            scm_host,
            location: s(&v["location"]),
            server_farm_id: p["serverFarmId"].as_str().map(str::to_owned),
            plan_tier: p["sku"]
                .as_str()
                .filter(|t| !t.is_empty())
                .map(str::to_owned),
            function_app_config: p["functionAppConfig"].is_object(),
            site_config: p
                .get("siteConfig")
                .filter(|c| c.is_object())
                .map(SiteConfig::from_properties),
            tags: v["tags"]
                .as_object()
                .map(|t| {
                    t.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Sticky (slot-specific) setting names of an app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SlotConfigNames {
    /// Sticky app setting names.
    pub app_setting_names: Vec<String>,
    /// Sticky connection string names.
    pub connection_string_names: Vec<String>,
    /// Sticky storage mount names.
    pub azure_storage_config_names: Vec<String>,
}

/// Which list of sticky names a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickyKind {
    /// `appSettingNames`.
    AppSettings,
    /// `connectionStringNames`.
    ConnectionStrings,
}

/// A change to one of a slot's whole-map configs (app settings, connection strings): set these, remove
/// those; everything else is kept. ARM's PUT replaces the whole map, so the change is applied to what was
/// just read and the result written back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MapChange<V> {
    /// Entries to add or overwrite.
    pub set: BTreeMap<String, V>,
    /// Entries to remove.
    pub remove: BTreeSet<String>,
}

impl<V> Default for MapChange<V> {
    fn default() -> Self {
        MapChange {
            set: BTreeMap::new(),
            remove: BTreeSet::new(),
        }
    }
}

impl<V: Clone + PartialEq> MapChange<V> {
    /// Apply to a current map; returns whether anything changed.
    pub fn apply(&self, current: &mut BTreeMap<String, V>) -> bool {
        let mut changed = false;
        for k in &self.remove {
            changed |= current.remove(k).is_some();
        }
        for (k, v) in &self.set {
            if current.get(k) != Some(v) {
                current.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        changed
    }
}

/// A change to app settings.
pub type SettingsChange = MapChange<String>;

/// A change to connection strings.
pub type ConnectionStringsChange = MapChange<ConnectionString>;

/// A connection string as ARM keeps it (`ConnStringValueTypePair`): its value and its type, spelled as
/// ARM's `ConnectionStringType` (`SQLAzure`, `Custom`, …). The value usually holds a password, so
/// `Debug` leaves it out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectionString {
    /// The value.
    pub value: String,
    /// The type.
    #[serde(rename = "type")]
    pub kind: String,
}

impl std::fmt::Debug for ConnectionString {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectionString")
            .field("value", &"<redacted>")
            .field("kind", &self.kind)
            .finish()
    }
}

impl ConnectionString {
    /// Reads one entry of a `ConnectionStringDictionary`; a type ARM gives as its enum's ordinal is
    /// kept as that number's text.
    pub(super) fn from_json(v: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| {
            v.as_str().map(str::to_owned).unwrap_or_else(|| {
                if v.is_null() {
                    String::new()
                } else {
                    v.to_string()
                }
            })
        };
        ConnectionString {
            value: text(&v["value"]),
            kind: text(&v["type"]),
        }
    }
}

/// Options of a swap.
#[derive(Debug, Clone, Default)]
pub struct SwapOptions {
    /// `preserveVnet`; omitted from the body when `None` (as the official task does).
    pub preserve_vnet: Option<bool>,
    /// Deadline and cancellation of the wait.
    pub wait: LroOptions,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_change_keeps_others() {
        let mut m = BTreeMap::from([
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
        ]);
        let c = SettingsChange {
            set: BTreeMap::from([("C".into(), "3".into())]),
            remove: BTreeSet::from(["A".into()]),
        };
        assert!(c.apply(&mut m));
        assert_eq!(
            m,
            BTreeMap::from([
                ("B".to_owned(), "2".to_owned()),
                ("C".to_owned(), "3".to_owned())
            ])
        );
        assert!(!c.apply(&mut m));
    }

    #[test]
    fn a_connection_string_never_shows_its_value_in_debug() {
        let cs = ConnectionString::from_json(
            &serde_json::json!({"value": "Server=db;Password=hunter2", "type": "SQLAzure"}),
        );
        assert_eq!(cs.kind, "SQLAzure");
        let shown = format!("{cs:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("SQLAzure"),
            "{shown}"
        );
    }

    #[test]
    fn the_scm_host_is_read_from_arm_never_built_from_the_name() {
        let site = |p: serde_json::Value| serde_json::json!({"kind":"app","properties":p});
        // A unique default host name: nothing in it can be derived from the site's name.
        let unique = site(serde_json::json!({"state":"Running",
            "defaultHostName":"shop-ds27dh7271aah175.westus-01.azurewebsites.net",
            "enabledHostNames":["shop-ds27dh7271aah175.westus-01.azurewebsites.net",
                "shop-ds27dh7271aah175.scm.westus-01.azurewebsites.net"]}));
        let s = SlotInfo::from_site(SlotName::production(), &unique).expect("a site");
        assert_eq!(
            s.scm_host,
            "shop-ds27dh7271aah175.scm.westus-01.azurewebsites.net"
        );
        // No SCM host named at all: none is made up (Kudu then refuses with a message).
        let bare = site(serde_json::json!({"state":"Running","defaultHostName":"a.h"}));
        let s = SlotInfo::from_site(SlotName::production(), &bare).expect("a site");
        assert_eq!(s.scm_host, "");
    }

    #[test]
    fn site_parsing_prefers_repository_host() {
        let v = serde_json::json!({"kind":"app,Linux","location":"x","properties":{"state":"Running","defaultHostName":"a.h",
            "hostNameSslStates":[{"name":"a.h","hostType":"Standard"},{"name":"a.scm.h","hostType":"Repository"}],
            "siteConfig":{"linuxFxVersion":"PYTHON|3.12","experiments":{"rampUpRules":[{"actionHostName":"a-s.h","reroutePercentage":10.0,"name":"s"}]}}},
            "tags":{"k":"v"}});
        let s = SlotInfo::from_site(SlotName::production(), &v).expect("a site");
        assert!(SlotInfo::from_site(SlotName::production(), &serde_json::json!({})).is_err());
        assert_eq!(s.scm_host, "a.scm.h");
        assert_eq!(s.default_host, "a.h");
        assert!(s.is_linux());
        let cfg = s.site_config.expect("config");
        assert_eq!(cfg.linux_fx_version.as_deref(), Some("PYTHON|3.12"));
        assert_eq!(cfg.ramp_up_rules.len(), 1);
        assert_eq!(s.tags["k"], "v");
    }

    #[test]
    fn a_function_app_reads_its_kind_plan_tier_and_flex_config() {
        let flex = serde_json::json!({"kind":"functionapp,linux","properties":{"state":"Running",
            "defaultHostName":"f.h","sku":"FlexConsumption",
            "functionAppConfig":{"deployment":{"storage":{"type":"blobContainer"}}}}});
        let s = SlotInfo::from_site(SlotName::production(), &flex).expect("a site");
        assert!(s.is_function_app() && s.function_app_config);
        assert_eq!(s.plan_tier.as_deref(), Some("FlexConsumption"));
        // The GetWebApp example: a web app on Standard, no functionAppConfig (ARM may send it as null).
        let web = serde_json::json!({"kind":"app","properties":{"state":"Running",
            "defaultHostName":"w.h","sku":"Standard","functionAppConfig":null}});
        let s = SlotInfo::from_site(SlotName::production(), &web).expect("a site");
        assert!(!s.is_function_app() && !s.function_app_config);
        assert_eq!(s.plan_tier.as_deref(), Some("Standard"));
    }
}
