//! App Service through ARM: sites and slots, app settings (read-modify-write), sticky setting names,
//! site config, swap (with and without preview), restart and tags. Raw REST over the shared pipeline,
//! since no App Service crate exists for azure_core 1.x.

use crate::client::{Call, Inner, LroOptions, body_json, parse_json};
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use url::Url;

const API_VERSION: &str = "2024-11-01";
/// The Tags API's version (`Microsoft.Resources/tags`), which is not App Service's.
const TAGS_API_VERSION: &str = "2021-04-01";

/// A deployment slot name; production is the slot without a `/slots/` segment.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SlotName(Option<String>);

impl SlotName {
    /// The production slot.
    pub fn production() -> Self {
        Self(None)
    }

    /// Parse a slot name; `production` (any case) is the production slot.
    pub fn new(name: &str) -> Result<Self> {
        let n = name.trim();
        if n.eq_ignore_ascii_case("production") {
            return Ok(Self(None));
        }
        if n.is_empty() || n.len() > 59 || !n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "slot name",
                name,
                "use 1-59 letters, digits and hyphens",
            ));
        }
        Ok(Self(Some(n.to_ascii_lowercase())))
    }

    /// True for production.
    pub fn is_production(&self) -> bool {
        self.0.is_none()
    }

    /// The slot segment (`None` for production).
    pub fn slot(&self) -> Option<&str> {
        self.0.as_deref()
    }

    /// The name as Azure's swap bodies use it (`production` for production).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("production")
    }
}

impl fmt::Display for SlotName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An ARM resource id of a site or slot.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResourceId(String);

impl ResourceId {
    /// Parse `/subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}[/slots/{slot}]`.
    pub fn parse(id: &str) -> Result<(AppRef, SlotName)> {
        let bad = || {
            AzureError::invalid(
                "resource id",
                id,
                "expected /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Web/sites/{name}[/slots/{slot}]",
            )
        };
        let parts: Vec<&str> = id.trim_matches('/').split('/').collect();
        let eq = |i: usize, s: &str| parts.get(i).is_some_and(|p| p.eq_ignore_ascii_case(s));
        if !(eq(0, "subscriptions")
            && eq(2, "resourceGroups")
            && eq(4, "providers")
            && eq(5, "Microsoft.Web")
            && eq(6, "sites"))
        {
            return Err(bad());
        }
        let app = AppRef::new(parts[1], parts[3], parts.get(7).copied().ok_or_else(bad)?)?;
        let slot = match (parts.get(8), parts.get(9)) {
            (Some(s), Some(n)) if s.eq_ignore_ascii_case("slots") => SlotName::new(n)?,
            (None, None) => SlotName::production(),
            _ => return Err(bad()),
        };
        Ok((app, slot))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A web app: subscription, resource group and site name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AppRef {
    /// Subscription id.
    pub subscription: String,
    /// Resource group.
    pub resource_group: String,
    /// Site name.
    pub name: String,
}

impl AppRef {
    /// Validate and build.
    pub fn new(subscription: &str, resource_group: &str, name: &str) -> Result<Self> {
        let ok = |s: &str| !s.is_empty() && !s.contains(['/', '?', '#']);
        if !ok(subscription) {
            return Err(AzureError::invalid(
                "subscription id",
                subscription,
                "must be a non-empty id",
            ));
        }
        if !ok(resource_group) {
            return Err(AzureError::invalid(
                "resource group",
                resource_group,
                "must be a non-empty name without '/'",
            ));
        }
        if name.is_empty()
            || name.len() > 60
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        {
            return Err(AzureError::invalid(
                "app name",
                name,
                "use 1-60 letters, digits and hyphens",
            ));
        }
        Ok(Self {
            subscription: subscription.into(),
            resource_group: resource_group.into(),
            name: name.into(),
        })
    }

    /// The resource id of a slot of this app.
    pub fn resource_id(&self, slot: &SlotName) -> ResourceId {
        let mut s = format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Web/sites/{}",
            self.subscription, self.resource_group, self.name
        );
        if let Some(n) = slot.slot() {
            s.push_str("/slots/");
            s.push_str(n);
        }
        ResourceId(s)
    }
}

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
}

/// The site-config fields the engine reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SiteConfig {
    /// `linuxFxVersion`, e.g. `PYTHON|3.12`.
    pub linux_fx_version: Option<String>,
    /// Startup command.
    pub app_command_line: Option<String>,
    /// Health check path.
    pub health_check_path: Option<String>,
    /// Always On.
    pub always_on: Option<bool>,
    /// Auto-swap target slot.
    pub auto_swap_slot_name: Option<String>,
    /// Traffic routing rules.
    #[serde(skip)]
    pub ramp_up_rules: Vec<RampUpRule>,
}

impl SiteConfig {
    fn from_properties(p: &serde_json::Value) -> Self {
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
    /// Replace the routing rules (empty list clears routing).
    pub ramp_up_rules: Option<Vec<RampUpRule>>,
}

impl SiteConfigPatch {
    fn to_json(&self) -> serde_json::Value {
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
    /// Default host name.
    pub default_host: String,
    /// Kudu (SCM) host name (the `Repository` host).
    pub scm_host: String,
    /// Region.
    pub location: String,
    /// App Service plan id.
    pub server_farm_id: Option<String>,
    /// Site config when the site carries it (`siteConfig` on GET is partial; use `site_config` for all).
    pub site_config: Option<SiteConfig>,
    /// Resource tags.
    pub tags: BTreeMap<String, String>,
}

impl SlotInfo {
    /// True when `kind` contains `linux`.
    pub fn is_linux(&self) -> bool {
        self.kind.iter().any(|k| k == "linux")
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
    fn from_site(slot: SlotName, v: &serde_json::Value) -> Result<Self, String> {
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
            default_host: s(&p["defaultHostName"]),
            scm_host,
            location: s(&v["location"]),
            server_farm_id: p["serverFarmId"].as_str().map(str::to_owned),
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

/// A change to app settings: set these, remove those; everything else is kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SettingsChange {
    /// Settings to add or overwrite.
    pub set: BTreeMap<String, String>,
    /// Settings to remove.
    pub remove: BTreeSet<String>,
}

impl SettingsChange {
    /// Apply to a current dictionary; returns whether anything changed.
    pub fn apply(&self, settings: &mut BTreeMap<String, String>) -> bool {
        let mut changed = false;
        for k in &self.remove {
            changed |= settings.remove(k).is_some();
        }
        for (k, v) in &self.set {
            if settings.get(k) != Some(v) {
                settings.insert(k.clone(), v.clone());
                changed = true;
            }
        }
        changed
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

/// One web app in ARM.
#[derive(Debug, Clone)]
pub struct WebApp {
    pub(crate) inner: Arc<Inner>,
    pub(crate) app: AppRef,
}

impl WebApp {
    /// The app this handle addresses.
    pub fn app(&self) -> &AppRef {
        &self.app
    }

    fn url(&self, slot: Option<&SlotName>, suffix: &str) -> Result<Url> {
        let base = match slot {
            Some(s) => self.app.resource_id(s),
            None => self.app.resource_id(&SlotName::production()),
        };
        let mut u = self
            .inner
            .cloud
            .arm_endpoint
            .join(&format!(
                "{}{suffix}",
                base.as_str().trim_start_matches('/')
            ))
            .map_err(|e| AzureError::invalid("ARM URL", base.as_str(), e.to_string()))?;
        u.query_pairs_mut().append_pair("api-version", API_VERSION);
        Ok(u)
    }

    fn op(&self, what: &str, slot: &SlotName) -> String {
        format!("{what} of {}/{slot}", self.app.name)
    }

    /// Get a site or slot.
    pub async fn get_slot(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<SlotInfo> {
        let op = self.op("get", slot);
        let rsp = self
            .inner
            .send(
                Call::new(&op, Method::Get, self.url(Some(slot), "")?),
                cancel,
            )
            .await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        SlotInfo::from_site(slot.clone(), &v).map_err(|m| AzureError::protocol(&op, m))
    }

    /// Whether a slot exists (404 → false).
    pub async fn slot_exists(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<bool> {
        match self.get_slot(slot, cancel).await {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == crate::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// List the non-production slots (following `nextLink`).
    pub async fn list_slots(&self, cancel: &CancellationToken) -> Result<Vec<SlotInfo>> {
        let op = format!("list slots of {}", self.app.name);
        let mut url = Some(self.url(None, "/slots")?);
        let mut out = vec![];
        while let Some(u) = url.take() {
            let rsp = self
                .inner
                .send(Call::new(&op, Method::Get, u), cancel)
                .await?;
            let v: serde_json::Value = parse_json(&op, &rsp)?;
            for site in v["value"].as_array().into_iter().flatten() {
                let full = site["name"].as_str().unwrap_or_default();
                let short = full.rsplit('/').next().unwrap_or(full);
                let slot = SlotName::new(short)?;
                out.push(
                    SlotInfo::from_site(slot, site).map_err(|m| AzureError::protocol(&op, m))?,
                );
            }
            url = v["nextLink"]
                .as_str()
                .filter(|s| !s.is_empty())
                .and_then(|s| Url::parse(s).ok());
        }
        Ok(out)
    }

    /// Create a slot (cloning nothing) in the production site's plan and region; waits for completion.
    pub async fn create_slot(&self, slot: &SlotName, wait: &LroOptions) -> Result<SlotInfo> {
        if slot.is_production() {
            return Err(AzureError::invalid(
                "slot name",
                "production",
                "the production slot always exists",
            ));
        }
        let prod = self.get_slot(&SlotName::production(), &wait.cancel).await?;
        let body = serde_json::json!({
            "kind": prod.kind.join(","),
            "location": prod.location,
            "properties": { "serverFarmId": prod.server_farm_id },
        });
        let op = self.op("create slot", slot);
        self.inner
            .send_lro(
                Call::new(&op, Method::Put, self.url(Some(slot), "")?).json(body),
                wait,
            )
            .await?;
        self.get_slot(slot, &wait.cancel).await
    }

    /// All app settings of a slot.
    pub async fn app_settings(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        let op = self.op("list app settings", slot);
        let call = Call::new(
            &op,
            Method::Post,
            self.url(Some(slot), "/config/appsettings/list")?,
        )
        .idempotent();
        let rsp = self.inner.send(call, cancel).await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(string_map(&v["properties"]))
    }

    /// Read-modify-write the app settings: only the named settings change, all others are kept.
    /// Returns the settings as written (or as read when nothing changed, in which case nothing is sent).
    pub async fn update_app_settings(
        &self,
        slot: &SlotName,
        changes: &SettingsChange,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        let mut settings = self.app_settings(slot, cancel).await?;
        if !changes.apply(&mut settings) {
            return Ok(settings);
        }
        let op = self.op("update app settings", slot);
        let call = Call::new(
            &op,
            Method::Put,
            self.url(Some(slot), "/config/appsettings")?,
        )
        .json(serde_json::json!({ "properties": settings }));
        let rsp = self.inner.send(call, cancel).await?;
        let v = body_json(&rsp);
        Ok(if v["properties"].is_object() {
            string_map(&v["properties"])
        } else {
            settings
        })
    }

    /// Sticky setting names (site level: they apply to every slot).
    pub async fn slot_config_names(&self, cancel: &CancellationToken) -> Result<SlotConfigNames> {
        let op = format!("get sticky setting names of {}", self.app.name);
        let rsp = self
            .inner
            .send(
                Call::new(&op, Method::Get, self.url(None, "/config/slotConfigNames")?),
                cancel,
            )
            .await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(serde_json::from_value(v["properties"].clone()).unwrap_or_default())
    }

    /// Replace the sticky setting names.
    pub async fn set_slot_config_names(
        &self,
        names: &SlotConfigNames,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = format!("set sticky setting names of {}", self.app.name);
        let call = Call::new(&op, Method::Put, self.url(None, "/config/slotConfigNames")?)
            .json(serde_json::json!({ "properties": names }));
        self.inner.send(call, cancel).await.map(drop)
    }

    /// The full site config of a slot.
    pub async fn site_config(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<SiteConfig> {
        let op = self.op("get site config", slot);
        let rsp = self
            .inner
            .send(
                Call::new(&op, Method::Get, self.url(Some(slot), "/config/web")?),
                cancel,
            )
            .await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(SiteConfig::from_properties(&v["properties"]))
    }

    /// Patch site config (only the given fields); returns the config after the change.
    pub async fn patch_site_config(
        &self,
        slot: &SlotName,
        patch: &SiteConfigPatch,
        cancel: &CancellationToken,
    ) -> Result<SiteConfig> {
        let op = self.op("update site config", slot);
        // PATCH of config/web sets exactly the fields given, so repeating it is harmless.
        let call = Call::new(&op, Method::Patch, self.url(Some(slot), "/config/web")?)
            .json(patch.to_json())
            .idempotent()
            .accept(&[202]);
        let rsp = self.inner.send(call, cancel).await?;
        let v = body_json(&rsp);
        if v["properties"].is_object() {
            Ok(SiteConfig::from_properties(&v["properties"]))
        } else {
            self.site_config(slot, cancel).await
        }
    }

    fn swap_url(&self, source: &SlotName, action: &str) -> Result<Url> {
        self.url(Some(source), &format!("/{action}"))
    }

    fn slot_entity(target: &SlotName, preserve_vnet: Option<bool>) -> serde_json::Value {
        let mut b = serde_json::json!({ "targetSlot": target.as_str() });
        if let Some(p) = preserve_vnet {
            b["preserveVnet"] = p.into();
        }
        b
    }

    /// Swap `source` into `target` and wait for the operation. Transient failures (another operation
    /// in progress, warm-up failed) come back with `is_transient()`; the engine decides on retrying.
    pub async fn swap(
        &self,
        source: &SlotName,
        target: &SlotName,
        opts: &SwapOptions,
    ) -> Result<()> {
        if source == target {
            return Err(AzureError::invalid(
                "swap",
                source.as_str(),
                "a slot cannot be swapped with itself",
            ));
        }
        let op = format!("swap {}/{source} into {target}", self.app.name);
        // Not idempotent: retrying a swap that the server accepted would swap back.
        let call = Call::new(&op, Method::Post, self.swap_url(source, "slotsswap")?)
            .json(Self::slot_entity(target, opts.preserve_vnet));
        self.inner.send_lro(call, &opts.wait).await.map(drop)
    }

    /// Swap with preview, phase 1: apply `target`'s slot-specific config to `source` (and restart it).
    pub async fn apply_slot_config(
        &self,
        source: &SlotName,
        target: &SlotName,
        opts: &SwapOptions,
    ) -> Result<()> {
        let op = format!("apply {target} config to {}/{source}", self.app.name);
        let call = Call::new(&op, Method::Post, self.swap_url(source, "applySlotConfig")?)
            .json(Self::slot_entity(target, opts.preserve_vnet))
            .idempotent();
        self.inner.send_lro(call, &opts.wait).await.map(drop)
    }

    /// Cancel a swap with preview: restore the slot's own config.
    pub async fn reset_slot_config(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = self.op("reset slot config", slot);
        let call =
            Call::new(&op, Method::Post, self.swap_url(slot, "resetSlotConfig")?).idempotent();
        self.inner.send(call, cancel).await.map(drop)
    }

    /// Restart a slot.
    pub async fn restart(&self, slot: &SlotName, cancel: &CancellationToken) -> Result<()> {
        let op = self.op("restart", slot);
        let call = Call::new(&op, Method::Post, self.swap_url(slot, "restart")?);
        self.inner.send(call, cancel).await.map(drop)
    }

    /// Resource tags of a slot.
    pub async fn tags(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        Ok(self.get_slot(slot, cancel).await?.tags)
    }

    /// Replace the resource tags of a slot (used for the release journal).
    pub async fn set_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<()> {
        let op = self.op("set tags", slot);
        let call = Call::new(&op, Method::Patch, self.url(Some(slot), "")?)
            .json(serde_json::json!({ "tags": tags }))
            .idempotent()
            .accept(&[202]);
        self.inner.send(call, cancel).await.map(drop)
    }

    /// The Tags API of a slot (`…/providers/Microsoft.Resources/tags/default`), on its own api-version.
    fn tags_url(&self, slot: &SlotName) -> Result<Url> {
        let mut u = self.url(Some(slot), "/providers/Microsoft.Resources/tags/default")?;
        u.query_pairs_mut()
            .clear()
            .append_pair("api-version", TAGS_API_VERSION);
        Ok(u)
    }

    /// `PATCH` of the Tags API with `operation` (`Merge` or `Delete`): adds, updates or removes only the
    /// tags given, in one request, leaving every other tag as it is, so writers of different tags never
    /// undo each other. Returns the resource's tags after the change.
    async fn patch_tags(
        &self,
        slot: &SlotName,
        operation: &str,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        let op = self.op(&format!("{} tags", operation.to_ascii_lowercase()), slot);
        // Merging the same tags again, or deleting them again, leaves the same set: safe to retry.
        let call = Call::new(&op, Method::Patch, self.tags_url(slot)?)
            .json(serde_json::json!({ "operation": operation, "properties": { "tags": tags } }))
            .idempotent();
        let rsp = self.inner.send(call, cancel).await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(v["properties"]["tags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Adds or updates the given tags of a slot, leaving its other tags alone.
    pub async fn merge_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        self.patch_tags(slot, "Merge", tags, cancel).await
    }

    /// Removes the given tags of a slot; a tag given with a value is removed only while it has that value.
    pub async fn delete_tags(
        &self,
        slot: &SlotName,
        tags: &BTreeMap<String, String>,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        self.patch_tags(slot, "Delete", tags, cancel).await
    }

    /// A Kudu client for a slot, authenticated with the bearer token.
    pub fn kudu(&self, slot: &SlotName) -> crate::kudu::Kudu {
        crate::kudu::Kudu::new(self.clone(), slot.clone())
    }

    /// The SCM site's basic-auth policy and publishing credentials, when basic auth is allowed.
    pub(crate) async fn publishing_credentials(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<Option<(String, crate::connection::Secret)>> {
        let op = self.op("get basic-auth policy", slot);
        let policy = self
            .inner
            .send(
                Call::new(
                    &op,
                    Method::Get,
                    self.url(Some(slot), "/basicPublishingCredentialsPolicies/scm")?,
                ),
                cancel,
            )
            .await;
        let allowed = match policy {
            Ok(rsp) => body_json(&rsp)["properties"]["allow"]
                .as_bool()
                .unwrap_or(false),
            Err(e) if e.kind() == crate::ErrorKind::Cancelled => return Err(e),
            Err(_) => false,
        };
        if !allowed {
            return Ok(None);
        }
        let op = self.op("get publishing credentials", slot);
        let call = Call::new(
            &op,
            Method::Post,
            self.url(Some(slot), "/config/publishingcredentials/list")?,
        )
        .idempotent();
        let wait = LroOptions {
            cancel: cancel.clone(),
            ..LroOptions::default()
        };
        let v = self.inner.send_lro(call, &wait).await?;
        let user = v["properties"]["publishingUserName"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let pass = v["properties"]["publishingPassword"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if user.is_empty() || pass.is_empty() {
            return Err(AzureError::protocol(op, "publishing credentials are empty"));
        }
        Ok(Some((user, crate::connection::Secret::new(pass))))
    }

    pub(crate) fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.as_str().map(str::to_owned).unwrap_or_else(|| {
                            if v.is_null() {
                                String::new()
                            } else {
                                v.to_string()
                            }
                        }),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names() {
        assert!(SlotName::new("Production").expect("ok").is_production());
        assert_eq!(
            SlotName::new("Staging").expect("ok").slot(),
            Some("staging")
        );
        assert!(SlotName::new("a/b").is_err());
        assert_eq!(SlotName::production().to_string(), "production");
    }

    #[test]
    fn resource_ids_round_trip() {
        let app = AppRef::new("s", "rg", "web").expect("ok");
        let id = app.resource_id(&SlotName::new("staging").expect("ok"));
        let (a, s) = ResourceId::parse(id.as_str()).expect("parse");
        assert_eq!(a, app);
        assert_eq!(s.slot(), Some("staging"));
        let (_, p) =
            ResourceId::parse(app.resource_id(&SlotName::production()).as_str()).expect("parse");
        assert!(p.is_production());
        assert!(ResourceId::parse("/subscriptions/s/resourceGroups/rg").is_err());
    }

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
}
