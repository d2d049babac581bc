//! A hostile HTTPS server for the hostile-answer tests: a CA the client trusts, a server playing Azure
//! with whatever answer the test gives it, and a log of where each request went and whether it carried
//! the token.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use slot_release_azure::{
    Azure, ClientSettings, Cloud, CredentialSource, HttpOptions, KeyVaultSettings, PollSettings,
    RetrySettings, Secret,
};

/// A request the server saw: host, path, whether it carried the bearer token.
pub type Seen = Arc<Mutex<Vec<(String, String, bool)>>>;

/// A running hostile server; shut down when dropped.
pub struct Hostile {
    pub port: u16,
    pub ca_pem: String,
    pub seen: Seen,
    handle: axum_server::Handle<SocketAddr>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.handle.shutdown();
    }
}

/// A CA the client trusts and a server certificate it signs for `names`.
fn tls(names: &[&str]) -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("leaf params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

/// Starts a server with a certificate for `names`; `respond(bearer, port, path)` answers each request,
/// `bearer` saying whether it carried `token`.
pub fn start<F>(names: &[&str], token: &'static str, respond: F) -> Hostile
where
    F: Fn(bool, u16, &str) -> Response<Body> + Clone + Send + Sync + 'static,
{
    let (ca_pem, config) = tls(names);
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |headers: HeaderMap, uri: axum::http::Uri| {
        let log = log.clone();
        let respond = respond.clone();
        async move {
            let host = headers
                .get("host")
                .and_then(|h| h.to_str().ok())
                .unwrap_or_default()
                .split(':')
                .next()
                .unwrap_or_default()
                .to_owned();
            let bearer = headers
                .get("authorization")
                .and_then(|h| h.to_str().ok())
                .is_some_and(|v| v.contains(token));
            if let Ok(mut seen) = log.lock() {
                seen.push((host, uri.path().to_owned(), bearer));
            }
            respond(bearer, port, uri.path())
        }
    });
    let handle = axum_server::Handle::<SocketAddr>::new();
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .expect("server")
    .handle(handle.clone());
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    Hostile {
        port,
        ca_pem,
        seen,
        handle,
    }
}

/// A client of the hostile server holding `token`, with short retries and polls so refusals are quick.
pub fn client(server: &Hostile, token: &'static str) -> Azure {
    let settings = ClientSettings {
        retry: RetrySettings {
            max_retries: 3,
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_secs(1),
            max_elapsed: Duration::from_secs(5),
        },
        poll: PollSettings {
            initial_interval: Duration::from_millis(100),
            max_interval: Duration::from_secs(1),
        },
        keyvault: KeyVaultSettings {
            initial_backoff: Duration::from_millis(50),
            ..KeyVaultSettings::default()
        },
        ..ClientSettings::default()
    };
    Azure::with_settings(
        CredentialSource::StaticToken {
            token: Secret::new(token),
        },
        Cloud::emulator(server.port),
        HttpOptions::emulator(server.ca_pem.clone()),
        settings,
    )
    .expect("client builds")
}

/// An error and every link of its source chain, as the binary reports it.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    slot_release_azure::causes(e)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(": ")
}
