//! An environment's private container registry (`registry:`): where its slot pulls the image from, and
//! whether it pulls with the app's managed identity or with credentials whose password is in Key Vault.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::types::SecretRef;

/// The private registry the environment's slot pulls the image from. Give `identity` or
/// `credentials`. It is per environment because App Service keeps what the pull needs with the slot
/// (`acrUseManagedIdentityCreds` stays in a swap; `DOCKER_REGISTRY_SERVER_*` settings follow the rule of
/// `settings`), so each slot must be able to pull the image it will run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Registry {
    /// The registry host, as the image reference starts with it, e.g. `contoso.azurecr.io`.
    pub server: String,
    /// Pull with the app's managed identity (`acrUseManagedIdentityCreds`): `system`, or
    /// `{userAssigned: <client id>}` for a user-assigned identity attached to the app. The identity
    /// needs the `AcrPull` role on the registry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<RegistryIdentity>,
    /// Pull with a user name and a password kept in the environment's Key Vault (`secrets.vault`),
    /// written as the `DOCKER_REGISTRY_SERVER_*` app settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<RegistryCredentials>,
}

/// Which managed identity of the app pulls the image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum RegistryIdentity {
    /// The app's system-assigned identity.
    System,
    /// A user-assigned identity attached to the app, by its client ID (`acrUserManagedIdentityID`).
    UserAssigned(String),
}

/// A user name and a Key Vault secret holding the registry's password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RegistryCredentials {
    /// The registry user name (`DOCKER_REGISTRY_SERVER_USERNAME`). May use `$(...)` variables.
    pub username: String,
    /// The secret of the environment's Key Vault holding the password (`secret-name` or
    /// `secret-name/version`). Its value is read by the task, masked at once and written as
    /// `DOCKER_REGISTRY_SERVER_PASSWORD`; it is never printed.
    pub password_secret: SecretRef,
    /// Not accepted: a password written in release.yml would sit in the repository. Read so the
    /// refusal can point at it and say where the password belongs.
    #[serde(default, skip_serializing)]
    #[schemars(skip)]
    pub password: Option<serde::de::IgnoredAny>,
}

/// The app setting naming the registry's URL.
pub const REGISTRY_URL_SETTING: &str = "DOCKER_REGISTRY_SERVER_URL";
/// The app setting naming the registry's user.
pub const REGISTRY_USERNAME_SETTING: &str = "DOCKER_REGISTRY_SERVER_USERNAME";
/// The app setting holding the registry's password.
pub const REGISTRY_PASSWORD_SETTING: &str = "DOCKER_REGISTRY_SERVER_PASSWORD";

impl Registry {
    /// The URL App Service expects in `DOCKER_REGISTRY_SERVER_URL`.
    pub fn url(&self) -> String {
        format!("https://{}", self.server)
    }
}
