//! Slot Release's Azure client: service connections and clouds, tokens, ARM App Service, Kudu and
//! Key Vault, over `azure_core` with one configurable `reqwest` client.
//!
//! Start from [`ServiceConnection::from_agent_env`] (or a [`CredentialSource`] and a [`Cloud`]), build
//! an [`Azure`], then use [`Azure::web_app`], [`WebApp::kudu`] and [`Azure::key_vault`].

mod azure;
mod client;
mod cloud;
mod connection;
mod credential;
mod error;
mod http;
mod keyvault;
mod kudu;
mod upload;
mod webapp;

pub use azure::Azure;
pub use client::{ClientSettings, LroOptions, PollSettings, RetrySettings};
pub use cloud::{Cloud, CustomCloud, EMULATOR_DOMAIN};
pub use connection::{CredentialSource, ManagedIdentityEndpoint, Secret, ServiceConnection};
pub use error::{AzureError, ErrorKind, HttpFailure, Result, SecretFailure};
pub use http::{HttpOptions, ProxyOptions, http_client};
pub use keyvault::{
    KeyVault, KeyVaultSettings, ListedSecrets, SecretFilter, SecretRef, SecretValue, SecretVersion,
    SkippedSecret,
};
pub use kudu::{
    CommandOutput, DeployOptions, DeployStatus, Deployment, DeploymentRecord, Kudu, KuduAuth,
    LogEntry, SYNC_COMMAND_LIMIT,
};
pub use tokio_util::sync::CancellationToken;
pub use webapp::{
    AppRef, RampUpRule, ResourceId, SettingsChange, SiteConfig, SiteConfigPatch, SlotConfigNames,
    SlotInfo, SlotName, SwapOptions, WebApp,
};
