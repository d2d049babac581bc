//! The entry point: one [`Azure`] per service connection, cheap to clone, handing out web app and
//! Key Vault handles that share the HTTP client, the credential and its token caches.

use crate::client::{ClientSettings, Inner, bearer_pipeline, client_options};
use crate::cloud::Cloud;
use crate::connection::CredentialSource;
use crate::credential::build_credential;
use crate::error::{AzureError, Result};
use crate::hosts::{HostGuard, TrustedHosts};
use crate::http::{HttpOptions, http_client};
use crate::keyvault::KeyVault;
use crate::webapp::{AppRef, WebApp};
use azure_core::http::Pipeline;
use azure_core::http::policies::Policy;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Authenticated access to one cloud with one identity.
#[derive(Debug, Clone)]
pub struct Azure {
    inner: Arc<Inner>,
}

impl Azure {
    /// Build a client with default settings. Nothing is sent until the first call.
    pub fn new(cred: CredentialSource, cloud: Cloud, http: HttpOptions) -> Result<Self> {
        Self::with_settings(cred, cloud, http, ClientSettings::default())
    }

    /// Build a client with explicit retry/poll/Key Vault settings.
    pub fn with_settings(
        cred: CredentialSource,
        cloud: Cloud,
        http: HttpOptions,
        settings: ClientSettings,
    ) -> Result<Self> {
        if cloud.is_emulator() && !http.emulator_loopback {
            return Err(AzureError::invalid(
                "HTTP options",
                cloud.name.clone(),
                "the emulator cloud needs HttpOptions::emulator (loopback resolver and its CA)",
            ));
        }
        let client = http_client(&http)?;
        let caches_tokens = cred.cached_by_identity();
        let credential = build_credential(&cred, &cloud, &client)?;
        // Both pipelines refuse a request for a host the credentials were not issued for, before
        // the bearer policy (or Kudu's Basic header, added by the caller) could send them there.
        let trusted = Arc::new(TrustedHosts::new(&cloud.arm_endpoint));
        let guard: Arc<dyn Policy> = Arc::new(HostGuard(trusted.clone()));
        let arm = bearer_pipeline(
            &client,
            &cloud,
            credential.clone(),
            cloud.arm_scope(),
            guard.clone(),
        );
        let plain = Pipeline::new(
            Some("slot-release-azure"),
            Some(env!("CARGO_PKG_VERSION")),
            client_options(&client, &cloud),
            vec![guard],
            vec![],
            None,
        );
        Ok(Self {
            inner: Arc::new(Inner {
                cloud,
                http: client,
                credential,
                arm,
                plain,
                trusted,
                settings,
                vaults: Default::default(),
                caches_tokens,
            }),
        })
    }

    /// The cloud this client talks to.
    pub fn cloud(&self) -> &Cloud {
        &self.inner.cloud
    }

    /// The HTTP client (with proxy, CA and emulator resolver), for health probes.
    pub fn http_client(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// A handle on one web app.
    pub fn web_app(&self, app: &AppRef) -> WebApp {
        WebApp {
            inner: self.inner.clone(),
            app: app.clone(),
        }
    }

    /// A handle on one Key Vault (by name; the URL comes from the cloud's DNS suffix).
    pub fn key_vault(&self, vault: &str) -> Result<KeyVault> {
        KeyVault::new(&self.inner, vault)
    }

    /// Whether the credential keeps the tokens it got, so asking for one ahead of the first call
    /// ([`Azure::check_credentials`]) saves that call a round trip instead of costing one more.
    pub fn caches_tokens(&self) -> bool {
        self.inner.caches_tokens
    }

    /// The cloud's Log Analytics query API, with a token for it alone.
    pub fn log_analytics(&self) -> Result<crate::loganalytics::LogAnalytics> {
        crate::loganalytics::LogAnalytics::new(&self.inner)
    }

    /// Get an ARM token now (to fail fast on bad credentials before any change).
    pub async fn check_credentials(&self, cancel: &CancellationToken) -> Result<()> {
        let scope = self.inner.cloud.arm_scope();
        let scopes = [scope.as_str()];
        let token = self.inner.credential.get_token(&scopes, None);
        crate::client::until_cancelled(cancel, "get an ARM access token", token)
            .await?
            .map(drop)
            .map_err(|e| AzureError::Authentication {
                credential: "token credential",
                scope: scope.clone(),
                message: crate::client::chain_message(&e),
                source: Some(Box::new(e)),
            })
    }
}
