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
    /// Where the system's trust roots are read from on Linux and the other Unixes but Apple's and
    /// Android (elsewhere the OS verifies and this is ignored). `None`: as rustls-native-certs decides
    /// when the client is built (`SSL_CERT_FILE`/`SSL_CERT_DIR`, else OpenSSL's locations).
    pub system_roots: Option<SystemRoots>,
}

/// A bundle file and certificate folders holding trusted roots, as OpenSSL reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemRoots {
    /// A PEM bundle (OpenSSL's `SSL_CERT_FILE`).
    pub file: Option<std::path::PathBuf>,
    /// Folders of PEM files, symlinks followed (OpenSSL's `SSL_CERT_DIR`).
    pub dirs: Vec<std::path::PathBuf>,
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
            system_roots: None,
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
    let extra = match &opts.extra_ca_pem {
        Some(pem) => {
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
            Some((pem, certs))
        }
        None => None,
    };
    b = with_trust_roots(b, extra, opts.system_roots.as_ref())
        .map_err(|message| build_err(message, None))?;
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

/// Where rustls-platform-verifier is webpki over the system's PEM files (Linux and the other Unixes but
/// Apple's and Android), the client gets that same verifier built here, with the roots read by
/// [`crate::roots`], which decodes each distinct certificate once (the platform verifier's loading was
/// half of start-up's CPU before the first request). The agent's extra CA is trusted in addition, as
/// `tls_certs_merge` would. Elsewhere the OS verifies, through reqwest's platform verifier.
#[cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]
fn with_trust_roots(
    b: reqwest::ClientBuilder,
    extra: Option<(&String, Vec<reqwest::Certificate>)>,
    system_roots: Option<&SystemRoots>,
) -> std::result::Result<reqwest::ClientBuilder, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    use std::sync::Arc;
    let mut store = rustls::RootCertStore::empty();
    if let Some((pem, _)) = extra {
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let der =
                der.map_err(|e| format!("the extra CA is not a PEM certificate bundle: {e}"))?;
            store
                .add(der)
                .map_err(|e| format!("the extra CA is not a usable root certificate: {e}"))?;
        }
    }
    let paths = system_roots
        .cloned()
        .unwrap_or_else(|| crate::roots::located(&|k| std::env::var_os(k)));
    store.add_parsable_certificates(crate::roots::load(&paths));
    if store.is_empty() {
        return Err("no CA certificates were found on this system (SSL_CERT_FILE, SSL_CERT_DIR or OpenSSL's locations)".into());
    }
    let provider = rustls::crypto::CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
    let mut tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(|e| format!("TLS versions: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth();
    // What reqwest offers by itself: HTTP/2 first (Key Vault multiplexes its reads over one connection).
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(b.tls_backend_preconfigured(tls))
}

#[cfg(not(all(unix, not(target_os = "android"), not(target_vendor = "apple"))))]
fn with_trust_roots(
    b: reqwest::ClientBuilder,
    extra: Option<(&String, Vec<reqwest::Certificate>)>,
    _system_roots: Option<&SystemRoots>,
) -> std::result::Result<reqwest::ClientBuilder, String> {
    Ok(match extra {
        Some((_, certs)) => b.tls_certs_merge(certs),
        None => b,
    })
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
