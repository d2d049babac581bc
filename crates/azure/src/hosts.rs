//! The one rule for where a credential may go: a request carrying the ARM token (or Kudu's publishing
//! credentials) is only sent to a host that credential was issued for. Every request of the ARM and
//! Kudu pipelines passes [`HostGuard`] before the bearer policy adds the token, so a status URL
//! (`Azure-AsyncOperation`, `Location`), a paging `nextLink`, a redirect or a Kudu `Location` that
//! points elsewhere is refused before a token is even fetched. Key Vault's transport applies the same
//! [`same_origin`] rule to its own host.

use std::sync::{Arc, RwLock};

use azure_core::http::policies::{Policy, PolicyResult};
use azure_core::http::{Context, Request};
use url::Url;

/// Whether `url` is an https URL on `host` (case-insensitive) and `port` (the default port when the
/// URL names none).
pub(crate) fn same_origin(url: &Url, host: &str, port: Option<u16>) -> bool {
    url.scheme() == "https"
        && url.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
        && url.port_or_known_default() == port
}

/// `https://host:port` of a URL, for messages (never the path or query, which can carry tokens).
pub(crate) fn origin_of(url: &Url) -> String {
    let host = url.host_str().unwrap_or("(no host)");
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}

/// The hosts the client's credentials were issued for: the ARM endpoint, then each Kudu (SCM) host
/// as ARM names it for a slot.
#[derive(Debug)]
pub(crate) struct TrustedHosts {
    /// What the credential was issued for, for messages (`the ARM endpoint … and its Kudu hosts`).
    issued_for: String,
    origins: RwLock<Vec<(String, Option<u16>)>>,
}

impl TrustedHosts {
    /// Trusts the ARM endpoint.
    pub(crate) fn new(arm: &Url) -> TrustedHosts {
        let hosts = TrustedHosts {
            issued_for: format!("{} and the Kudu hosts ARM names", origin_of(arm)),
            origins: RwLock::new(Vec::new()),
        };
        hosts.trust(arm);
        hosts
    }

    /// Trusts one host and no other: a credential for a single service (the Log Analytics API).
    pub(crate) fn only(url: &Url, service: &str) -> TrustedHosts {
        let hosts = TrustedHosts {
            issued_for: format!("{} ({service})", origin_of(url)),
            origins: RwLock::new(Vec::new()),
        };
        hosts.trust(url);
        hosts
    }

    /// Trusts another host (a Kudu host read from ARM's answer about the slot).
    pub(crate) fn trust(&self, url: &Url) {
        let Some(host) = url.host_str() else {
            return;
        };
        let origin = (host.to_ascii_lowercase(), url.port_or_known_default());
        let mut origins = self
            .origins
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }

    /// Ok when `url` is on a trusted host; otherwise the refusal, naming the host.
    pub(crate) fn check(&self, url: &Url) -> Result<(), ForeignHost> {
        let origins = self
            .origins
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if origins
            .iter()
            .any(|(host, port)| same_origin(url, host, *port))
        {
            Ok(())
        } else {
            Err(ForeignHost {
                origin: origin_of(url),
                issued_for: self.issued_for.clone(),
            })
        }
    }
}

/// A request refused because its URL points outside the hosts the credential was issued for.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "refused to send the request to {origin}: the credential it would carry was issued for {issued_for}"
)]
pub(crate) struct ForeignHost {
    /// `scheme://host[:port]` of the refused URL.
    pub(crate) origin: String,
    /// What the credential was issued for.
    pub(crate) issued_for: String,
}

/// The policy that runs first in the ARM and Kudu pipelines (before the bearer policy) and refuses a
/// request for a host the credential was not issued for.
#[derive(Debug)]
pub(crate) struct HostGuard(pub(crate) Arc<TrustedHosts>);

#[async_trait::async_trait]
impl Policy for HostGuard {
    async fn send(
        &self,
        ctx: &Context,
        request: &mut Request,
        next: &[Arc<dyn Policy>],
    ) -> PolicyResult {
        if let Err(refused) = self.0.check(request.url()) {
            return Err(azure_core::Error::new(
                azure_core::error::ErrorKind::Other,
                refused,
            ));
        }
        match next.split_first() {
            Some((policy, rest)) => policy.send(ctx, request, rest).await,
            None => Err(azure_core::Error::with_message(
                azure_core::error::ErrorKind::Other,
                "the host guard must not be the last policy of a pipeline",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn only_trusted_origins_pass() {
        let hosts = TrustedHosts::new(&url("https://management.azure.com/"));
        assert!(
            hosts
                .check(&url("https://MANAGEMENT.azure.com/x?y"))
                .is_ok()
        );
        assert!(
            hosts
                .check(&url("https://management.azure.com:443/x"))
                .is_ok()
        );
        for bad in [
            "https://management.azure.com:8443/x",
            "http://management.azure.com/x",
            "https://management.azure.com.evil.test/x",
            "https://app.scm.azurewebsites.net/api",
        ] {
            let refused = hosts.check(&url(bad)).err();
            assert!(refused.is_some(), "{bad}");
            let text = refused.map(|r| r.to_string()).unwrap_or_default();
            assert!(!text.contains("/x") && !text.contains("/api"), "{text}");
        }
        hosts.trust(&url("https://app.scm.azurewebsites.net/"));
        assert!(
            hosts
                .check(&url("https://app.scm.azurewebsites.net/api"))
                .is_ok()
        );
        let refused = hosts
            .check(&url("https://collector.evil.test:9/steal?t=1"))
            .err();
        assert_eq!(
            refused.map(|r| r.origin),
            Some("https://collector.evil.test:9".to_owned())
        );
    }
}
