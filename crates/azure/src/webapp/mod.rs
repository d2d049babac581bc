//! App Service through ARM: sites and slots, app settings and connection strings (read-modify-write),
//! sticky setting and connection-string names, site config, swap (with and without preview), restart,
//! start, stop, slot deletion and tags. Raw REST over the shared pipeline,
//! since no App Service crate exists for azure_core 1.x.

mod containers;
mod lifecycle;
mod metrics;
mod model;
mod names;
mod routing;
mod swap;
mod tags;

pub use containers::SiteContainer;
pub use metrics::{METRICS_API_VERSION, MetricPoint, MetricSeries, MetricsQuery};
pub use model::{
    ConnectionString, ConnectionStringsChange, MapChange, RampUpRule, SettingsChange, SiteConfig,
    SiteConfigPatch, SlotConfigNames, SlotInfo, StickyKind, SwapOptions,
};
pub use names::{AppRef, ResourceId, SlotName};

use crate::client::{Call, Inner, LroOptions, body_json, parse_json};
use crate::error::{AzureError, Result};
use azure_core::http::Method;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use url::Url;

const API_VERSION: &str = "2024-11-01";

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

    pub(super) fn url(&self, slot: Option<&SlotName>, suffix: &str) -> Result<Url> {
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

    pub(super) fn op(&self, what: &str, slot: &SlotName) -> String {
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

    /// A function app slot's default function key (`host/default/listkeys`, `functionKeys.default`): a
    /// secret, held as one from the moment it is parsed.
    pub async fn function_key(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<crate::SecretValue> {
        let op = self.op("list the Functions host keys", slot);
        let call = Call::new(
            &op,
            Method::Post,
            self.url(Some(slot), "/host/default/listkeys")?,
        )
        .idempotent();
        let rsp = self.inner.send(call, cancel).await?;
        let mut v: serde_json::Value = parse_json(&op, &rsp)?;
        match v["functionKeys"]["default"].take() {
            serde_json::Value::String(key) if !key.is_empty() => Ok(crate::SecretValue::new(key)),
            _ => Err(AzureError::protocol(
                &op,
                "the answer has no functionKeys.default".to_owned(),
            )),
        }
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

    /// All connection strings of a slot (`POST config/connectionstrings/list`).
    pub async fn connection_strings(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, ConnectionString>> {
        let op = self.op("list connection strings", slot);
        let call = Call::new(
            &op,
            Method::Post,
            self.url(Some(slot), "/config/connectionstrings/list")?,
        )
        .idempotent();
        let rsp = self.inner.send(call, cancel).await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(connection_string_map(&v["properties"]))
    }

    /// Read-modify-write the connection strings: only the named ones change, all others are kept (the
    /// PUT replaces the whole map). Returns them as written, or as read when nothing changed, in which
    /// case nothing is sent. The caller keeps other writers out between the read and the write (the
    /// release lock).
    pub async fn update_connection_strings(
        &self,
        slot: &SlotName,
        changes: &ConnectionStringsChange,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, ConnectionString>> {
        let mut strings = self.connection_strings(slot, cancel).await?;
        if !changes.apply(&mut strings) {
            return Ok(strings);
        }
        let op = self.op("update connection strings", slot);
        let call = Call::new(
            &op,
            Method::Put,
            self.url(Some(slot), "/config/connectionstrings")?,
        )
        .json(serde_json::json!({ "properties": strings }));
        let rsp = self.inner.send(call, cancel).await?;
        let v = body_json(&rsp);
        Ok(if v["properties"].is_object() {
            connection_string_map(&v["properties"])
        } else {
            strings
        })
    }

    /// The slot's metadata (`POST config/metadata/list`): on Windows, `CURRENT_STACK` names the stack the
    /// portal shows, which the version fields alone do not tell (every Windows site has a
    /// `netFrameworkVersion`).
    pub async fn metadata(
        &self,
        slot: &SlotName,
        cancel: &CancellationToken,
    ) -> Result<BTreeMap<String, String>> {
        let op = self.op("list metadata", slot);
        let call = Call::new(
            &op,
            Method::Post,
            self.url(Some(slot), "/config/metadata/list")?,
        )
        .idempotent();
        let rsp = self.inner.send(call, cancel).await?;
        let v: serde_json::Value = parse_json(&op, &rsp)?;
        Ok(string_map(&v["properties"]))
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

    /// Read-modify-write one list of sticky names: `stick` added (after the names already listed, which
    /// keep their order), `unstick` taken out, the other lists as they are (the PUT replaces all three).
    /// Nothing is sent when nothing changes. Returns the names as they are now.
    pub async fn update_sticky_names(
        &self,
        kind: StickyKind,
        stick: &BTreeSet<String>,
        unstick: &BTreeSet<String>,
        cancel: &CancellationToken,
    ) -> Result<SlotConfigNames> {
        let mut current = self.slot_config_names(cancel).await?;
        let list = match kind {
            StickyKind::AppSettings => &mut current.app_setting_names,
            StickyKind::ConnectionStrings => &mut current.connection_string_names,
        };
        let have: BTreeSet<String> = list.iter().cloned().collect();
        let mut wanted = have.clone();
        wanted.extend(stick.iter().cloned());
        wanted.retain(|n| !unstick.contains(n));
        if wanted == have {
            return Ok(current);
        }
        list.retain(|n| wanted.contains(n));
        list.extend(
            stick
                .iter()
                .filter(|n| wanted.contains(*n) && !have.contains(*n))
                .cloned(),
        );
        self.set_slot_config_names(&current, cancel).await?;
        Ok(current)
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

fn connection_string_map(v: &serde_json::Value) -> BTreeMap<String, ConnectionString> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), ConnectionString::from_json(v)))
                .collect()
        })
        .unwrap_or_default()
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
