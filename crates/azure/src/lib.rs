//! Slot Release's Azure client: service connections and clouds, tokens, ARM App Service, Kudu and
//! Key Vault, over `azure_core` with one configurable `reqwest` client.
//!
//! Start from [`ServiceConnection::from_agent_env`] (or a [`CredentialSource`] and a [`Cloud`]), build
//! an [`Azure`], then use [`Azure::web_app`], [`WebApp::kudu`] and [`Azure::key_vault`].

mod applog;
mod azure;
mod client;
mod cloud;
mod connection;
mod credential;
mod error;
mod hosts;
mod http;
mod keyvault;
mod kudu;
mod loganalytics;
mod probe;
#[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
mod roots;
mod upload;
mod webapp;

pub use applog::{AppStartReport, DockerLog, StartFailure, app_lines, start_failure};
pub use azure::Azure;
pub use client::{ClientSettings, LroOptions, PollSettings, RetrySettings};
pub use cloud::{Cloud, CustomCloud, EMULATOR_DOMAIN};
pub use connection::{CredentialSource, ManagedIdentityEndpoint, Secret, ServiceConnection};
pub use error::{AzureError, ErrorKind, HttpFailure, Result, SecretFailure, causes, root_cause};
pub use http::{HttpOptions, ProxyOptions, SystemRoots, http_client};
pub use keyvault::{
    KeyVault, KeyVaultSettings, ListedSecrets, SecretFilter, SecretRef, SecretValue, SecretVersion,
    SkippedSecret, VAULT_BUDGET, VAULT_BUDGET_WINDOW,
};
pub use kudu::{
    CommandOutput, DeployOptions, DeployStatus, Deployment, DeploymentRecord, Kudu, KuduAuth,
    LogEntry, SYNC_COMMAND_LIMIT, SitePackages,
};
pub use loganalytics::{LogAnalytics, QueryColumn, QueryTable};
pub use probe::{DEFAULT_PAGE_TITLE, FUNCTION_KEY_HEADER, PAGE_BODY_LIMIT, PageAnswer, PageClient};
pub use tokio_util::sync::CancellationToken;
pub use webapp::{
    AppRef, ConnectionString, ConnectionStringsChange, METRICS_API_VERSION, MapChange, MetricPoint,
    MetricSeries, MetricsQuery, RampUpRule, ResourceId, SettingsChange, SiteConfig,
    SiteConfigPatch, SiteContainer, SlotConfigNames, SlotInfo, SlotName, StickyKind, SwapOptions,
    WebApp,
};

/// Every public async operation must be `Send`, so callers can `tokio::spawn` it.
#[cfg(test)]
mod send_bounds {
    use super::*;
    use std::path::Path;

    fn is_send<T: Send>(_: &T) {}

    #[allow(dead_code, clippy::diverging_sub_expression)]
    async fn futures_are_send(az: Azure, web: WebApp, kudu: Kudu, kv: KeyVault) {
        let slot = SlotName::production();
        let c = CancellationToken::new();
        is_send(&az.check_credentials(&c));
        is_send(&web.get_slot(&slot, &c));
        is_send(&web.list_slots(&c));
        is_send(&web.create_slot(&slot, &LroOptions::default()));
        is_send(&web.update_app_settings(&slot, &SettingsChange::default(), &c));
        is_send(&web.update_connection_strings(&slot, &ConnectionStringsChange::default(), &c));
        is_send(&web.swap(&slot, &slot, &SwapOptions::default()));
        is_send(&web.patch_site_config(&slot, &SiteConfigPatch::default(), &c));
        is_send(&kudu.deploy_zip(Path::new("x"), &DeployOptions::default()));
        is_send(&kudu.command("", "", std::time::Duration::ZERO, &c));
        is_send(&kudu.deployments(&c));
        is_send(&kv.get_secrets(&[], &c));
        is_send(&kv.list_secrets(&SecretFilter::All, &c));
        is_send(&kv.versions("x", &c));
    }
}
