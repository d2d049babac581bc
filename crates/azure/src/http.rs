//! The one `reqwest` client every Azure call (and the engine's health probes) goes through: timeouts,
//! the agent's proxy and CA, no redirects, and in emulator mode a resolver that sends `*.emulator.test`
//! to loopback.

use crate::cloud::EMULATOR_DOMAIN;
use crate::connection::Secret;
use crate::error::{AzureError, Result};
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;
use url::Url;

/// Proxy settings.
#[derive(Debug, Clone, Default)]
pub struct ProxyOptions {
    /// Proxy URL for every request (the agent's `AGENT_PROXYURL`).
    pub url: Option<Url>,
    /// Proxy user name.
    pub username: Option<String>,
    /// Proxy password.
    pub password: Option<Secret>,
    /// Hosts that bypass the proxy: the agent's regular expressions (`AGENT_PROXYBYPASSLIST`), matched
    /// against the host name; `.*` is a wildcard, `\.` a dot, `^`/`$` anchors are implied.
    pub bypass: Vec<String>,
    /// Also honour `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY` when no explicit URL is set.
    pub use_environment: bool,
}

/// HTTP client settings.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Extra trusted CA certificates (PEM bundle), added to the platform's roots.
    pub extra_ca_pem: Option<String>,
    /// Proxy settings.
    pub proxy: ProxyOptions,
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Longest silence while reading a response.
    pub read_timeout: Duration,
    /// Resolve every `*.emulator.test` name to 127.0.0.1 (emulator mode only).
    pub emulator_loopback: bool,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            extra_ca_pem: None,
            proxy: ProxyOptions {
                use_environment: true,
                ..ProxyOptions::default()
            },
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(120),
            emulator_loopback: false,
        }
    }
}

impl HttpOptions {
    /// Options for talking to the emulator: its CA trusted, `*.emulator.test` on loopback, no proxy.
    pub fn emulator(ca_pem: impl Into<String>) -> Self {
        Self {
            extra_ca_pem: Some(ca_pem.into()),
            proxy: ProxyOptions::default(),
            emulator_loopback: true,
            ..Self::default()
        }
    }

    /// Options from the agent's variables: `AGENT_PROXYURL`, `AGENT_PROXYUSERNAME`,
    /// `AGENT_PROXYPASSWORD` (secret), `AGENT_PROXYBYPASSLIST` (JSON list), `AGENT_CAINFO` and
    /// `NODE_EXTRA_CA_CERTS` (PEM files, both trusted in addition to the platform's roots).
    pub fn from_agent_env(env: &dyn Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut o = Self::default();
        if let Some(p) = get("AGENT_PROXYURL") {
            o.proxy.url = Some(
                Url::parse(&p)
                    .map_err(|e| AzureError::invalid("AGENT_PROXYURL", p, e.to_string()))?,
            );
            o.proxy.username = get("AGENT_PROXYUSERNAME");
            o.proxy.password = get("AGENT_PROXYPASSWORD")
                .or_else(|| get("SECRET_AGENT_PROXYPASSWORD"))
                .map(Secret::new);
            if let Some(list) = get("AGENT_PROXYBYPASSLIST") {
                o.proxy.bypass = serde_json::from_str::<Vec<String>>(&list).map_err(|e| {
                    AzureError::invalid("AGENT_PROXYBYPASSLIST", list.clone(), e.to_string())
                })?;
            }
        }
        // Agents behind TLS inspection set one or the other (Node tasks only see
        // NODE_EXTRA_CA_CERTS); both are trusted when both are set.
        let mut bundle = String::new();
        for var in ["AGENT_CAINFO", "NODE_EXTRA_CA_CERTS"] {
            if let Some(path) = get(var) {
                let pem = std::fs::read_to_string(&path).map_err(|source| AzureError::Io {
                    operation: format!("read {var}"),
                    path: path.clone(),
                    source,
                })?;
                if !bundle.is_empty() && !bundle.ends_with('\n') {
                    bundle.push('\n');
                }
                bundle.push_str(&pem);
            }
        }
        if !bundle.is_empty() {
            o.extra_ca_pem = Some(bundle);
        }
        Ok(o)
    }
}

/// Build the HTTP client. Redirects are never followed (a redirect from ARM or Kudu would carry the
/// bearer token elsewhere); decompression is left to the transport defaults.
pub fn http_client(opts: &HttpOptions) -> Result<reqwest::Client> {
    let build_err = |message: String, e: Option<reqwest::Error>| AzureError::HttpClient {
        message,
        source: e.map(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>),
    };
    let mut b = reqwest::Client::builder()
        .connect_timeout(opts.connect_timeout)
        .read_timeout(opts.read_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(60));
    if let Some(pem) = &opts.extra_ca_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem.as_bytes()).map_err(|e| {
            build_err(
                "the extra CA is not a PEM certificate bundle".into(),
                Some(e),
            )
        })?;
        if certs.is_empty() {
            return Err(build_err(
                "the extra CA PEM holds no certificate".into(),
                None,
            ));
        }
        b = b.tls_certs_merge(certs);
    }
    if opts.emulator_loopback {
        b = b.dns_resolver(EmulatorResolver).no_proxy();
    } else if let Some(url) = &opts.proxy.url {
        let target = url.clone();
        let bypass: Vec<HostPattern> = opts
            .proxy
            .bypass
            .iter()
            .map(|p| HostPattern::new(p))
            .collect();
        let mut proxy = reqwest::Proxy::custom(move |u| {
            let host = u.host_str().unwrap_or_default();
            if bypass.iter().any(|p| p.matches(host)) {
                None
            } else {
                Some(target.clone())
            }
        });
        if let Some(user) = &opts.proxy.username {
            let pass = opts
                .proxy
                .password
                .as_ref()
                .map(|p| p.secret())
                .unwrap_or_default();
            proxy = proxy.basic_auth(user, pass);
        }
        b = b.proxy(proxy);
    } else if !opts.proxy.use_environment {
        b = b.no_proxy();
    }
    b.build()
        .map_err(|e| build_err("reqwest refused the configuration".into(), Some(e)))
}

/// Resolves the emulator's names to loopback and everything else through the system resolver.
#[derive(Debug, Clone, Copy)]
struct EmulatorResolver;

impl reqwest::dns::Resolve for EmulatorResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_ascii_lowercase();
        Box::pin(async move {
            if host == EMULATOR_DOMAIN || host.ends_with(&format!(".{EMULATOR_DOMAIN}")) {
                let addrs: reqwest::dns::Addrs =
                    Box::new(std::iter::once(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))));
                return Ok(addrs);
            }
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: reqwest::dns::Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}

/// One entry of the agent's proxy bypass list. The agent documents these as regular expressions; the
/// ones seen in practice are escaped host names with `.*` wildcards, which is what this supports.
#[derive(Debug, Clone)]
struct HostPattern(Vec<Option<String>>);

impl HostPattern {
    fn new(regex: &str) -> Self {
        let r = regex
            .trim()
            .trim_start_matches('^')
            .trim_end_matches('$')
            .to_ascii_lowercase();
        // Split on ".*" wildcards; unescape "\." inside literal parts.
        let mut parts = Vec::new();
        for (i, lit) in r.split(".*").enumerate() {
            if i > 0 {
                parts.push(None);
            }
            if !lit.is_empty() {
                parts.push(Some(lit.replace("\\.", ".")));
            }
        }
        Self(parts)
    }

    fn matches(&self, host: &str) -> bool {
        fn go(parts: &[Option<String>], s: &str) -> bool {
            match parts.split_first() {
                None => s.is_empty(),
                Some((None, rest)) => {
                    (0..=s.len()).any(|i| s.is_char_boundary(i) && go(rest, &s[i..]))
                }
                Some((Some(lit), rest)) => {
                    s.strip_prefix(lit.as_str()).is_some_and(|r| go(rest, r))
                }
            }
        }
        go(&self.0, &host.to_ascii_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bypass_patterns() {
        let p = HostPattern::new(r"^.*\.internal\.contoso\.com$");
        assert!(p.matches("a.internal.contoso.com"));
        assert!(!p.matches("internal.contoso.com.evil"));
        assert!(HostPattern::new("localhost").matches("LOCALHOST"));
        assert!(!HostPattern::new("localhost").matches("localhost2"));
    }

    #[test]
    fn agent_env_proxy_and_errors() {
        let env = |k: &str| match k {
            "AGENT_PROXYURL" => Some("http://proxy:8080".to_owned()),
            "AGENT_PROXYUSERNAME" => Some("u".to_owned()),
            "AGENT_PROXYBYPASSLIST" => Some(r#"["github\\.com"]"#.to_owned()),
            _ => None,
        };
        let o = HttpOptions::from_agent_env(&env).expect("valid");
        assert_eq!(
            o.proxy.url.as_ref().map(Url::as_str),
            Some("http://proxy:8080/")
        );
        assert_eq!(o.proxy.bypass, vec![r"github\.com".to_owned()]);
        assert!(http_client(&o).is_ok());
        let bad = HttpOptions {
            extra_ca_pem: Some("not pem".into()),
            ..HttpOptions::default()
        };
        assert!(matches!(
            http_client(&bad),
            Err(AzureError::HttpClient { .. })
        ));
    }

    #[test]
    fn agent_cainfo_is_read_and_trusted() {
        let ca = rcgen::generate_simple_self_signed(vec!["ca.test".to_owned()]).expect("cert");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, ca.cert.pem()).expect("write");
        let p = path.display().to_string();
        let env = |k: &str| (k == "AGENT_CAINFO").then(|| p.clone());
        let o = HttpOptions::from_agent_env(&env).expect("valid");
        assert_eq!(o.extra_ca_pem.as_deref(), Some(ca.cert.pem().as_str()));
        assert!(http_client(&o).is_ok());
        let missing = |k: &str| (k == "AGENT_CAINFO").then(|| "/nonexistent/ca.pem".to_owned());
        assert!(matches!(
            HttpOptions::from_agent_env(&missing),
            Err(AzureError::Io { .. })
        ));
        let empty = HttpOptions {
            extra_ca_pem: Some(String::new()),
            ..HttpOptions::default()
        };
        assert!(matches!(
            http_client(&empty),
            Err(AzureError::HttpClient { .. })
        ));
    }
}
