//! App Service platform facts the ARM layer and the runtime share: connection string types (the
//! spec's `ConnectionStringType` enum) and the environment prefixes App Service gives them.

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

#[cfg(test)]
mod tests {
    use super::*;

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
