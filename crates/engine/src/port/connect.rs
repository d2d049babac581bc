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
    let failed = |source| Error::ServiceConnection {
        connection: connection_id.to_owned(),
        source: Box::new(source),
    };
    let connection = az::ServiceConnection::from_agent_env(connection_id, env).map_err(failed)?;
    let subscription = app
        .subscription
        .clone()
        .or_else(|| connection.subscription_id().map(str::to_owned))
        .ok_or(Error::NoSubscription)?;
    let mut http = az::HttpOptions::from_agent_env(env).map_err(failed)?;
    if connection.cloud().is_emulator() {
        // The emulator's names live under `.test`: resolve them to loopback and trust its CA
        // (handed over as the agent's extra CA), never through a proxy.
        let ca = http.extra_ca_pem.take().unwrap_or_default();
        http = az::HttpOptions::emulator(ca);
    }
    let (credential, cloud) = connection.into_parts();
    let azure = az::Azure::new(credential, cloud, http).map_err(failed)?;
    AzurePort::new(azure, &subscription, &app.resource_group, &app.name)
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
