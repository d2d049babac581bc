//! App Service platform facts the ARM layer and the runtime share: connection string types (the
//! spec's `ConnectionStringType` enum) and the environment prefixes App Service gives them, plan
//! SKUs with their tiers and slot limits, a Flex Consumption app's default `functionAppConfig`, and the
//! shapes of a slot's sitecontainers and Functions host keys.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The type of a connection string, spelled as the spec's `ConnStringValueTypePair.type` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ConnectionStringType {
    /// `MySql`.
    MySql,
    /// `SQLServer`.
    #[serde(rename = "SQLServer")]
    SqlServer,
    /// `SQLAzure`.
    #[serde(rename = "SQLAzure")]
    SqlAzure,
    /// `Custom`.
    Custom,
    /// `NotificationHub`.
    NotificationHub,
    /// `ServiceBus`.
    ServiceBus,
    /// `EventHub`.
    EventHub,
    /// `ApiHub`.
    ApiHub,
    /// `DocDb`.
    DocDb,
    /// `RedisCache`.
    RedisCache,
    /// `PostgreSQL`.
    #[serde(rename = "PostgreSQL")]
    PostgreSql,
}

const ALL_TYPES: [ConnectionStringType; 11] = [
    ConnectionStringType::MySql,
    ConnectionStringType::SqlServer,
    ConnectionStringType::SqlAzure,
    ConnectionStringType::Custom,
    ConnectionStringType::NotificationHub,
    ConnectionStringType::ServiceBus,
    ConnectionStringType::EventHub,
    ConnectionStringType::ApiHub,
    ConnectionStringType::DocDb,
    ConnectionStringType::RedisCache,
    ConnectionStringType::PostgreSql,
];

impl ConnectionStringType {
    /// The name ARM answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MySql => "MySql",
            Self::SqlServer => "SQLServer",
            Self::SqlAzure => "SQLAzure",
            Self::Custom => "Custom",
            Self::NotificationHub => "NotificationHub",
            Self::ServiceBus => "ServiceBus",
            Self::EventHub => "EventHub",
            Self::ApiHub => "ApiHub",
            Self::DocDb => "DocDb",
            Self::RedisCache => "RedisCache",
            Self::PostgreSql => "PostgreSQL",
        }
    }

    /// Reads a type as App Service does: the name in any case, or the enum's ordinal (its
    /// serializer accepts both).
    pub(crate) fn parse(v: &serde_json::Value) -> Option<Self> {
        if let Some(n) = v.as_u64() {
            return usize::try_from(n)
                .ok()
                .and_then(|i| ALL_TYPES.get(i).copied());
        }
        let s = v.as_str()?;
        ALL_TYPES
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }

    /// The prefix of the environment variable the app process sees the connection string under.
    pub(crate) fn env_prefix(self) -> &'static str {
        match self {
            Self::MySql => "MYSQLCONNSTR_",
            Self::SqlServer => "SQLCONNSTR_",
            Self::SqlAzure => "SQLAZURECONNSTR_",
            Self::Custom => "CUSTOMCONNSTR_",
            Self::NotificationHub => "NOTIFICATIONHUBCONNSTR_",
            Self::ServiceBus => "SERVICEBUSCONNSTR_",
            Self::EventHub => "EVENTHUBCONNSTR_",
            Self::ApiHub => "APIHUBCONNSTR_",
            Self::DocDb => "DOCDBCONNSTR_",
            Self::RedisCache => "REDISCACHECONNSTR_",
            Self::PostgreSql => "POSTGRESQLCONNSTR_",
        }
    }
}

/// One connection string of a slot: `{"value": "...", "type": "SQLAzure"}` as ARM carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConnectionString {
    /// The connection string.
    pub value: String,
    /// Its type, which picks the environment prefix.
    #[serde(rename = "type")]
    pub kind: ConnectionStringType,
}

/// One `sitecontainers/{name}` of a slot.
#[derive(Debug, Clone)]
pub(crate) struct SiteContainer {
    /// The name as first written.
    pub(crate) name: String,
    /// Its ARM `properties`.
    pub(crate) properties: serde_json::Map<String, serde_json::Value>,
}

/// The image of a sitecontainers slot's main container (`isMain: true`): the one that serves the site
/// and the only one the emulator runs.
pub(crate) fn main_image(containers: &BTreeMap<String, SiteContainer>) -> Option<String> {
    containers
        .values()
        .find(|c| c.properties.get("isMain") == Some(&serde_json::Value::Bool(true)))
        .and_then(|c| c.properties.get("image"))
        .and_then(|v| v.as_str())
        .map(str::to_owned)
}

/// A function app slot's host keys (`host/default/listkeys`): secrets.
#[derive(Debug, Clone)]
pub(crate) struct HostKeys {
    pub(crate) master: crate::seed::SecretString,
    pub(crate) default: crate::seed::SecretString,
}

impl HostKeys {
    /// Fresh keys, as the Functions host generates them.
    pub(crate) fn generate() -> Self {
        use base64::Engine;
        let key = || {
            let mut bytes = Vec::with_capacity(40);
            bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
            bytes.extend_from_slice(&uuid::Uuid::new_v4().as_bytes()[..8]);
            crate::seed::SecretString::new(
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
            )
        };
        Self {
            master: key(),
            default: key(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skus_read_with_their_tier_and_slot_limit() {
        for (name, canonical, tier, family, linux_slots) in [
            ("s1", "S1", "Standard", "S", 6),
            ("P1V3", "P1v3", "PremiumV3", "Pv3", 21),
            ("EP1", "EP1", "ElasticPremium", "EP", 3),
            ("B1", "B1", "Basic", "B", 1),
            ("F1", "F1", "Free", "F", 1),
            ("FC1", "FC1", "FlexConsumption", "FC", 1),
            ("Y1", "Y1", "Dynamic", "Y", 1),
        ] {
            let sku = Sku::parse(name).expect(name);
            assert_eq!(
                (sku.name.as_str(), sku.tier, sku.family.as_str()),
                (canonical, tier, family)
            );
            assert_eq!(sku.slot_limit(true), linux_slots, "{name}");
        }
        assert_eq!(Sku::parse("Y1").map(|s| s.slot_limit(false)), Some(2));
        for bad in ["", "S", "Q1", "P1v9"] {
            assert!(Sku::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn types_read_as_app_service_reads_them() {
        for t in ALL_TYPES {
            let json = serde_json::to_value(t).expect("serialises");
            assert_eq!(json, t.as_str());
            assert_eq!(ConnectionStringType::parse(&json), Some(t));
        }
        assert_eq!(
            ConnectionStringType::parse(&"sqlazure".into()),
            Some(ConnectionStringType::SqlAzure)
        );
        assert_eq!(
            ConnectionStringType::parse(&10.into()),
            Some(ConnectionStringType::PostgreSql)
        );
        assert_eq!(ConnectionStringType::parse(&"Oracle".into()), None);
        assert_eq!(ConnectionStringType::parse(&11.into()), None);
    }
}

/// An App Service plan SKU as ARM describes it (`sku` of `Microsoft.Web/serverfarms`) and how
/// many slots, production included, an app on it may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Sku {
    /// `S1`, `P1v3`, `EP1`, `FC1`, …
    pub(crate) name: String,
    /// `Standard`, `PremiumV3`, `ElasticPremium`, `FlexConsumption`, …
    pub(crate) tier: &'static str,
    /// `S`, `Pv3`, `EP`, `FC`, …
    pub(crate) family: String,
}

impl Sku {
    /// Reads a SKU name (any case); `None` for names App Service does not sell.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        let upper = name.to_ascii_uppercase();
        let (letters, rest) = upper.split_at(upper.find(|c: char| c.is_ascii_digit())?);
        let (size, suffix) = rest.split_at(
            rest.find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len()),
        );
        if size.is_empty() {
            return None;
        }
        let tier = match (letters, suffix) {
            ("F", "") => "Free",
            ("D", "") => "Shared",
            ("B", "") => "Basic",
            ("S", "") => "Standard",
            ("P", "") => "Premium",
            ("P", "V2") => "PremiumV2",
            ("P", "V3") => "PremiumV3",
            ("P", "MV3") => "PremiumMV3",
            ("P", "V4") => "PremiumV4",
            ("P", "MV4") => "PremiumMV4",
            ("I", "") => "Isolated",
            ("I", "V2") => "IsolatedV2",
            ("EP", "") => "ElasticPremium",
            ("Y", "") => "Dynamic",
            ("FC", "") => "FlexConsumption",
            _ => return None,
        };
        let canonical = format!("{letters}{size}{}", suffix.to_ascii_lowercase());
        let family = format!("{letters}{}", suffix.to_ascii_lowercase());
        Some(Self {
            name: canonical,
            tier,
            family,
        })
    }

    /// `S1`, the default.
    pub(crate) fn standard() -> Self {
        Self {
            name: "S1".into(),
            tier: "Standard",
            family: "S".into(),
        }
    }

    /// How many slots, production included, an app on this SKU may have (the App Service and
    /// Functions limits: none besides production on Free, Shared, Basic and Flex Consumption).
    pub(crate) fn slot_limit(&self, linux: bool) -> usize {
        match self.tier {
            "Standard" => 6,
            "ElasticPremium" => 3,
            "Dynamic" if linux => 1,
            "Dynamic" => 2,
            "Free" | "Shared" | "Basic" | "FlexConsumption" => 1,
            _ => 21,
        }
    }
}

/// The `functionAppConfig` of a Flex Consumption app created with the defaults: its package in a
/// blob container, the Python runtime, and the default scale.
pub(crate) fn default_function_app_config(app: &str) -> serde_json::Value {
    serde_json::json!({
        "deployment": {"storage": {
            "type": "blobContainer",
            "value": format!("https://{}storage.blob.core.windows.net/app-package-{app}", app.replace('-', "")),
            "authentication": {"type": "SystemAssignedIdentity", "userAssignedIdentityResourceId": null, "storageAccountConnectionStringName": null}
        }},
        "runtime": {"name": "python", "version": "3.11"},
        "scaleAndConcurrency": {"alwaysReady": [], "maximumInstanceCount": 100, "instanceMemoryMB": 2048, "triggers": null}
    })
}
