//! Variable substitution in the package's configuration files, per environment, named as
//! `AzureRmWebAppDeployment@4` users know it (`JSONFiles`, `XmlVariableSubstitution`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Which files of the package take the environment's plain settings when the package is deployed to the
/// environment's slot (a copy is changed, never the build's artifact). Only keys already in a file are
/// replaced; Key Vault secrets are never written into a file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Substitute {
    /// JSON files, as glob patterns relative to the package root (`JSONFiles`), e.g.
    /// `**/appsettings.json`. A setting `Logging.LogLevel.Default` (or `Logging__LogLevel__Default`)
    /// replaces that nested key; a pattern that matches no file fails the deploy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<String>,
    /// Substitute in every `*.config` file (`XmlVariableSubstitution`): `appSettings` values by `key`,
    /// `connectionStrings` by `name`, `applicationSettings` settings by `name`.
    #[serde(default)]
    pub xml: bool,
}
