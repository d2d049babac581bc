//! An environment's general settings (`siteConfig:`): the App Service `config/web` fields a release
//! keeps per slot, and the warm-up paths App Service reads from app settings.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// General settings of the environment's slot, as App Service keeps them in `siteConfig`
/// (AzureAppServiceSettings@1's `generalSettings`). A field left out is left as it is on the slot.
/// None of them follows a swap: App Service keeps general settings with their slot, so each is
/// written to the environment's own slot (production's in the production stage).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SiteConfig {
    /// Keep the app loaded when it has no traffic (`alwaysOn`). Off, App Service unloads an idle app
    /// after 20 minutes and the next request waits for it to start; continuous WebJobs need it on.
    /// Only Basic and higher plans offer it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always_on: Option<bool>,
    /// Serve HTTP/2 to clients (`http20Enabled`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http20_enabled: Option<bool>,
    /// The lowest TLS version the slot accepts (`minTlsVersion`): `1.0`, `1.1`, `1.2` or `1.3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_tls_version: Option<MinTlsVersion>,
    /// FTP access to the slot (`ftpsState`): `AllAllowed`, `FtpsOnly` or `Disabled`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ftps_state: Option<FtpsState>,
    /// The path App Service's own health check probes on each instance (`healthCheckPath`), e.g.
    /// `/health`; instances that keep failing it are taken out of the load balancer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_path: Option<String>,
    /// What App Service requests to warm the slot up before a swap and after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warmup: Option<Warmup>,
}

/// The warm-up requests, written as the app settings App Service reads them from, always sticky:
/// `path` as `WEBSITE_SWAP_WARMUP_PING_PATH` (swaps) and `WEBSITE_WARMUP_PATH` (restarts and
/// scale-out), `statuses` as `WEBSITE_SWAP_WARMUP_PING_STATUSES`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Warmup {
    /// The path requested to warm the app up, from the site root, e.g. `/ready` (App Service's
    /// default is `/`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The statuses a warm-up request may answer with; any other stops the swap. Empty: any status.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<u16>,
}

/// The app setting App Service reads the swap's warm-up path from.
pub const SWAP_WARMUP_PATH: &str = "WEBSITE_SWAP_WARMUP_PING_PATH";
/// The app setting App Service reads the swap's accepted warm-up statuses from.
pub const SWAP_WARMUP_STATUSES: &str = "WEBSITE_SWAP_WARMUP_PING_STATUSES";
/// The app setting App Service reads the warm-up path of restarts and scale-out from.
pub const RESTART_WARMUP_PATH: &str = "WEBSITE_WARMUP_PATH";

impl Warmup {
    /// The app settings this warm-up is written as, by name.
    pub fn settings(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(path) = &self.path {
            out.push((SWAP_WARMUP_PATH, path.clone()));
            out.push((RESTART_WARMUP_PATH, path.clone()));
        }
        if !self.statuses.is_empty() {
            let statuses: Vec<String> = self.statuses.iter().map(u16::to_string).collect();
            out.push((SWAP_WARMUP_STATUSES, statuses.join(",")));
        }
        out
    }
}

/// ARM's `minTlsVersion` enum. Read from text so that `1.0` (which YAML would read as the number 1)
/// keeps its spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum MinTlsVersion {
    /// TLS 1.0.
    V1_0,
    /// TLS 1.1.
    V1_1,
    /// TLS 1.2.
    V1_2,
    /// TLS 1.3.
    V1_3,
}

// Written by hand: users write `minTlsVersion: 1.2` unquoted, which a YAML editor sees as a number,
// so the schema accepts the four versions as strings and as numbers, as the loader does.
impl JsonSchema for MinTlsVersion {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("MinTlsVersion")
    }

    fn json_schema(_generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "enum": ["1.0", "1.1", "1.2", "1.3", 1.0, 1.1, 1.2, 1.3],
            "description": "The lowest TLS version: `1.0`, `1.1`, `1.2` or `1.3`.",
        })
    }
}

impl MinTlsVersion {
    /// The value as ARM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            MinTlsVersion::V1_0 => "1.0",
            MinTlsVersion::V1_1 => "1.1",
            MinTlsVersion::V1_2 => "1.2",
            MinTlsVersion::V1_3 => "1.3",
        }
    }
}

impl TryFrom<String> for MinTlsVersion {
    type Error = String;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        match value.trim() {
            "1.0" | "1" => Ok(MinTlsVersion::V1_0),
            "1.1" => Ok(MinTlsVersion::V1_1),
            "1.2" => Ok(MinTlsVersion::V1_2),
            "1.3" => Ok(MinTlsVersion::V1_3),
            other => Err(format!(
                "invalid minTlsVersion `{other}`: App Service accepts `1.0`, `1.1`, `1.2` or `1.3`"
            )),
        }
    }
}

impl From<MinTlsVersion> for String {
    fn from(value: MinTlsVersion) -> Self {
        value.as_str().to_owned()
    }
}

/// ARM's `ftpsState` enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum FtpsState {
    /// FTP and FTPS.
    AllAllowed,
    /// FTPS only.
    FtpsOnly,
    /// No FTP at all.
    Disabled,
}

impl FtpsState {
    /// The value as ARM spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            FtpsState::AllAllowed => "AllAllowed",
            FtpsState::FtpsOnly => "FtpsOnly",
            FtpsState::Disabled => "Disabled",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_versions_keep_their_spelling_and_others_are_refused() {
        assert_eq!(
            MinTlsVersion::try_from("1.3".to_owned()),
            Ok(MinTlsVersion::V1_3)
        );
        assert_eq!(
            MinTlsVersion::try_from("1".to_owned()),
            Ok(MinTlsVersion::V1_0)
        );
        assert_eq!(String::from(MinTlsVersion::V1_0), "1.0");
        let err = MinTlsVersion::try_from("1.4".to_owned()).unwrap_err();
        assert!(err.contains("`1.2` or `1.3`"), "{err}");
    }

    #[test]
    fn warmup_becomes_the_three_app_settings() {
        let warmup = Warmup {
            path: Some("/ready".into()),
            statuses: vec![200, 202],
        };
        assert_eq!(
            warmup.settings(),
            [
                (SWAP_WARMUP_PATH, "/ready".to_owned()),
                (RESTART_WARMUP_PATH, "/ready".to_owned()),
                (SWAP_WARMUP_STATUSES, "200,202".to_owned()),
            ]
        );
        assert!(Warmup::default().settings().is_empty());
    }
}
