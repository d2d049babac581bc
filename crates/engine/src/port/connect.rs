//! Signing a port in: through an agent's service connection, or with the developer's own login.

use slot_release_azure as az;

use super::AzurePort;
use crate::error::Error;

/// Connects to the app through an agent service connection (`ENDPOINT_*` variables read through `env`).
pub fn connect(
    connection_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
    app: &crate::spec::AppSpec,
) -> Result<AzurePort, Error> {
    sign_in(connection_id, env)?.bind(app)
}

/// A service connection with its HTTPS client and credential built, not yet bound to an app. The
/// binary builds it while the config is still loading, so the client's trust roots are read, and the
/// first token asked for ([`SignedIn::prefetch_token`]), in parallel with the config's validation.
#[derive(Debug, Clone)]
pub struct SignedIn {
    subscription: Option<String>,
    azure: az::Azure,
}

/// Builds the client and credential of an agent service connection. Nothing is sent.
pub fn sign_in(
    connection_id: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SignedIn, Error> {
    let failed = |source| Error::ServiceConnection {
        connection: connection_id.to_owned(),
        source: Box::new(source),
    };
    let connection = az::ServiceConnection::from_agent_env(connection_id, env).map_err(failed)?;
    let subscription = connection.subscription_id().map(str::to_owned);
    let mut http = az::HttpOptions::from_agent_env(env).map_err(failed)?;
    if connection.cloud().is_emulator() {
        // The emulator's names live under `.test`: resolve them to loopback and trust its CA
        // (handed over as the agent's extra CA), never through a proxy.
        let ca = http.extra_ca_pem.take().unwrap_or_default();
        http = az::HttpOptions::emulator(ca);
    }
    let (credential, cloud) = connection.into_parts();
    let azure = az::Azure::new(credential, cloud, http).map_err(failed)?;
    Ok(SignedIn {
        subscription,
        azure,
    })
}

impl SignedIn {
    /// Asks for the ARM token in the background, so the first ARM call finds it cached (or waits
    /// for this request instead of sending its own). A failure is dropped here: the first call that
    /// needs the token asks again and reports it. A no-op for credentials without a token cache.
    pub fn prefetch_token(&self, cancel: &tokio_util::sync::CancellationToken) {
        if !self.azure.caches_tokens() {
            return;
        }
        let azure = self.azure.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let _ = azure.check_credentials(&cancel).await;
        });
    }

    /// The port on `app`: its subscription is the app's own, else the service connection's.
    pub fn bind(self, app: &crate::spec::AppSpec) -> Result<AzurePort, Error> {
        let subscription = app
            .subscription
            .clone()
            .or(self.subscription)
            .ok_or(Error::NoSubscription)?;
        AzurePort::new(self.azure, &subscription, &app.resource_group, &app.name)
    }
}

/// A port signed in with the developer's own login (`az login`, then `azd auth login`): a run on a
/// workstation, with no service connection. The cloud is `SLOT_RELEASE_CLOUD` (`AzureCloud`, the
/// default, `AzureChinaCloud`, `AzureUSGovernment`, or `emulator:<port>` for `slot-release emulator`);
/// the subscription is `app.subscription`, else `AZURE_SUBSCRIPTION_ID`; the tenant `AZURE_TENANT_ID`.
pub fn connect_developer(
    env: &dyn Fn(&str) -> Option<String>,
    app: &crate::spec::AppSpec,
) -> Result<AzurePort, Error> {
    let name = env("SLOT_RELEASE_CLOUD")
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "AzureCloud".to_owned());
    let cloud = match name.trim().strip_prefix("emulator:") {
        Some(port) => port.parse().ok().map(az::Cloud::emulator),
        None => az::Cloud::from_environment_name(name.trim()),
    }
    .ok_or_else(|| Error::UnknownCloud { name: name.clone() })?;
    let subscription = app
        .subscription
        .clone()
        .or_else(|| env("AZURE_SUBSCRIPTION_ID").filter(|s| !s.trim().is_empty()))
        .ok_or(Error::NoSubscription)?;
    let connection =
        az::ServiceConnection::developer(cloud, Some(subscription.clone()), env("AZURE_TENANT_ID"));
    let failed = |source| Error::ServiceConnection {
        connection: "az login".to_owned(),
        source: Box::new(source),
    };
    let mut http = az::HttpOptions::from_agent_env(env).map_err(failed)?;
    if connection.cloud().is_emulator() {
        let ca = http.extra_ca_pem.take().unwrap_or_default();
        http = az::HttpOptions::emulator(ca);
    }
    let (credential, cloud) = connection.into_parts();
    let azure = az::Azure::new(credential, cloud, http).map_err(failed)?;
    AzurePort::new(azure, &subscription, &app.resource_group, &app.name)
}
