//! An environment's connection strings (`connectionStrings:`): each with its App Service type, a value
//! written in release.yml or a secret of the environment's Key Vault, and an optional say on whether it
//! stays with its slot in a swap.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::model::Delivery;
use crate::types::SecretRef;

/// One connection string of the environment's slot (App Service `config/connectionstrings`). Its value
/// is never printed: plans show its name, its type and where the value comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConnectionString {
    /// The value, e.g. `Server=tcp:contoso.database.windows.net;Database=app`. May use `$(...)`
    /// variables. Give either `value` or `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The Key Vault secret holding the value (`secret-name` or `secret-name/version`), in the vault of
    /// the environment's `secrets.vault`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// How the secret reaches the app: `keyVaultReference` or `value`; defaults to `secrets.delivery`.
    /// Only with `secret`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivery: Option<Delivery>,
    /// The type, as App Service names it: `SQLAzure`, `SQLServer`, `MySql`, `PostgreSQL`, `Custom`,
    /// `RedisCache`, `ApiHub`, `DocDb`, `EventHub`, `NotificationHub` or `ServiceBus`. It decides the
    /// prefix of the app's environment variable (`SQLAZURECONNSTR_`, `CUSTOMCONNSTR_`, …).
    #[serde(rename = "type")]
    pub kind: ConnectionStringType,
    /// Whether it stays with its slot in a swap. Left out, the rule of `settings` decides: the same
    /// value in production's environment and in the environment of the slot production swaps from
    /// travels with the swap, anything else stays. `true` keeps it with its slot even then; `false`
    /// asks for it to travel, which the plan refuses when the two environments disagree on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticky: Option<bool>,
}

/// App Service's connection string types (ARM's `ConnectionStringType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ConnectionStringType {
    /// Azure SQL Database.
    SqlAzure,
    /// SQL Server.
    SqlServer,
    /// Azure Database for MySQL.
    MySql,
    /// Azure Database for PostgreSQL.
    PostgreSql,
    /// Anything else.
    Custom,
    /// Azure Cache for Redis.
    RedisCache,
    /// API Hub.
    ApiHub,
    /// Cosmos DB.
    DocDb,
    /// Event Hubs.
    EventHub,
    /// Notification Hubs.
    NotificationHub,
    /// Service Bus.
    ServiceBus,
}

impl ConnectionStringType {
    /// Every type, in the order messages list them.
    pub const ALL: [ConnectionStringType; 11] = [
        ConnectionStringType::SqlAzure,
        ConnectionStringType::SqlServer,
        ConnectionStringType::MySql,
        ConnectionStringType::PostgreSql,
        ConnectionStringType::Custom,
        ConnectionStringType::RedisCache,
        ConnectionStringType::ApiHub,
        ConnectionStringType::DocDb,
        ConnectionStringType::EventHub,
        ConnectionStringType::NotificationHub,
        ConnectionStringType::ServiceBus,
    ];

    /// The type as ARM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStringType::SqlAzure => "SQLAzure",
            ConnectionStringType::SqlServer => "SQLServer",
            ConnectionStringType::MySql => "MySql",
            ConnectionStringType::PostgreSql => "PostgreSQL",
            ConnectionStringType::Custom => "Custom",
            ConnectionStringType::RedisCache => "RedisCache",
            ConnectionStringType::ApiHub => "ApiHub",
            ConnectionStringType::DocDb => "DocDb",
            ConnectionStringType::EventHub => "EventHub",
            ConnectionStringType::NotificationHub => "NotificationHub",
            ConnectionStringType::ServiceBus => "ServiceBus",
        }
    }

    /// The prefix App Service gives the app's environment variable for a connection string of this type
    /// (`SQLAZURECONNSTR_Db` for `Db`).
    pub fn env_prefix(self) -> &'static str {
        match self {
            ConnectionStringType::SqlAzure => "SQLAZURECONNSTR_",
            ConnectionStringType::SqlServer => "SQLCONNSTR_",
            ConnectionStringType::MySql => "MYSQLCONNSTR_",
            ConnectionStringType::PostgreSql => "POSTGRESQLCONNSTR_",
            ConnectionStringType::Custom => "CUSTOMCONNSTR_",
            ConnectionStringType::RedisCache => "REDISCACHECONNSTR_",
            ConnectionStringType::ApiHub => "APIHUBCONNSTR_",
            ConnectionStringType::DocDb => "DOCDBCONNSTR_",
            ConnectionStringType::EventHub => "EVENTHUBCONNSTR_",
            ConnectionStringType::NotificationHub => "NOTIFICATIONHUBCONNSTR_",
            ConnectionStringType::ServiceBus => "SERVICEBUSCONNSTR_",
        }
    }

    /// What the type is for, and the prefix of the app's environment variable.
    fn meaning(self) -> String {
        let what = match self {
            ConnectionStringType::SqlAzure => "Azure SQL Database",
            ConnectionStringType::SqlServer => "SQL Server",
            ConnectionStringType::MySql => "Azure Database for MySQL",
            ConnectionStringType::PostgreSql => "Azure Database for PostgreSQL",
            ConnectionStringType::Custom => "Anything else",
            ConnectionStringType::RedisCache => "Azure Cache for Redis",
            ConnectionStringType::ApiHub => "API Hub",
            ConnectionStringType::DocDb => "Cosmos DB",
            ConnectionStringType::EventHub => "Event Hubs",
            ConnectionStringType::NotificationHub => "Notification Hubs",
            ConnectionStringType::ServiceBus => "Service Bus",
        };
        format!("{what} (`{}`).", self.env_prefix())
    }

    /// The allowed spellings, for messages.
    pub fn allowed() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|t| t.as_str()).collect();
        names.join(", ")
    }
}

impl std::fmt::Display for ConnectionStringType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for ConnectionStringType {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        if let Some(found) = Self::ALL.into_iter().find(|t| t.as_str() == value) {
            return Ok(found);
        }
        // One spelling in release.yml, ARM's; a difference of case only gets the right one.
        let hint = Self::ALL
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value.trim()))
            .map_or(String::new(), |t| format!(" (did you mean `{t}`?)"));
        Err(format!(
            "invalid connection string type `{value}`{hint}: App Service's types are {}",
            Self::allowed()
        ))
    }
}

impl From<ConnectionStringType> for String {
    fn from(value: ConnectionStringType) -> Self {
        value.as_str().to_owned()
    }
}

impl JsonSchema for ConnectionStringType {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ConnectionStringType")
    }

    // Written by hand because the type is read from text (for the message naming every type), and the
    // reference page lists each with what it is for, as it does for derived enums.
    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let variants: Vec<serde_json::Value> = Self::ALL
            .iter()
            .map(|t| {
                serde_json::json!({
                    "const": t.as_str(),
                    "type": "string",
                    "description": t.meaning(),
                })
            })
            .collect();
        schemars::json_schema!({
            "description": "App Service's connection string type (ARM's `ConnectionStringType`).",
            "oneOf": variants,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_keep_arm_spelling_and_a_wrong_case_gets_a_suggestion() {
        for t in ConnectionStringType::ALL {
            assert_eq!(ConnectionStringType::try_from(String::from(t)), Ok(t));
        }
        let err = ConnectionStringType::try_from("sqlazure".to_owned()).unwrap_err();
        assert!(err.contains("did you mean `SQLAzure`?"), "{err}");
        let err = ConnectionStringType::try_from("Oracle".to_owned()).unwrap_err();
        assert!(!err.contains("did you mean"), "{err}");
        assert!(err.contains("SQLAzure, SQLServer, MySql"), "{err}");
        assert!(err.ends_with("NotificationHub, ServiceBus"), "{err}");
    }
}
