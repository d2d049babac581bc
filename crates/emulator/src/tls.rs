//! The emulator's TLS material: a CA generated at start (written to `work_dir/ca.pem` for clients to
//! trust) and a server certificate for every emulator host name, and the acceptor that picks the
//! ALPN offer by the name a client asks for (Key Vault's front door speaks HTTP/2; the rest here
//! HTTP/1.1 only).

use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::net::TcpStream;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::EmulatorError;

/// The DNS names the server certificate covers.
pub(crate) const SERVER_NAMES: &[&str] = &[
    "*.emulator.test",
    "login.emulator.test",
    "management.emulator.test",
    "pipelines.emulator.test",
    "identity.emulator.test",
    "admin.emulator.test",
    "api.loganalytics.emulator.test",
    "vault.emulator.test",
    "*.vault.emulator.test",
    "azurewebsites.emulator.test",
    "*.azurewebsites.emulator.test",
    "*.scm.azurewebsites.emulator.test",
    "localhost",
];

/// The generated CA (PEM) and the rustls server configurations using the leaf it signed.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    /// Every host but the vaults: HTTP/1.1 only.
    pub(crate) server_config: Arc<rustls::ServerConfig>,
    /// `*.vault.emulator.test`: HTTP/2 and HTTP/1.1, as Key Vault offers them.
    pub(crate) vault_config: Arc<rustls::ServerConfig>,
}

/// Generates the CA and a server certificate for [`SERVER_NAMES`] plus `extra_names` (the wildcards
/// of the sites' unique host names).
pub(crate) fn generate(extra_names: &[String]) -> Result<TlsMaterial, EmulatorError> {
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Slot Release Emulator CA");
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);

    let mut leaf = CertificateParams::new(
        SERVER_NAMES
            .iter()
            .map(|s| (*s).to_owned())
            .chain(extra_names.iter().cloned())
            .collect::<Vec<_>>(),
    )?;
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    leaf.distinguished_name
        .push(DnType::CommonName, "emulator.test");
    let leaf_key = KeyPair::generate()?;
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer)?;

    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone(), ca_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    // One crypto provider (aws-lc-rs) chosen explicitly, so a second provider elsewhere in the
    // process cannot make the default ambiguous.
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    // Key Vault's front door negotiates HTTP/2 when the client offers it, so a client can multiplex
    // every read of a release over one connection; HTTP/1.1 stays for clients that offer only that.
    let mut vault = config.clone();
    vault.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // HTTP/1.1 only elsewhere: a connection-reset fault then means one request, as with the ARM and
    // App Service front ends the tests model.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
        vault_config: Arc::new(vault),
    })
}

/// Whether a server name (SNI) is a vault's, which gets the HTTP/2 offer.
pub(crate) fn is_vault_name(name: &str) -> bool {
    name.to_ascii_lowercase()
        .trim_end_matches('.')
        .ends_with(&format!(".vault.{}", crate::DOMAIN))
}

/// How long a client has to finish its TLS handshake (axum-server's own acceptor allows the same).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the ClientHello first, then completes the handshake with the configuration for the name
/// asked for: rustls fixes the ALPN offer per configuration, and only the vaults offer `h2`.
#[derive(Clone)]
pub(crate) struct SniAcceptor {
    pub(crate) default: Arc<rustls::ServerConfig>,
    pub(crate) vault: Arc<rustls::ServerConfig>,
}

impl<S: Send + 'static> axum_server::accept::Accept<TcpStream, S> for SniAcceptor {
    type Stream = tokio_rustls::server::TlsStream<TcpStream>;
    type Service = S;
    type Future = BoxFuture<'static, io::Result<(Self::Stream, S)>>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            // Without it, an HTTP/2 answer (HEADERS, then DATA in a second write) waits for the
            // client's delayed ACK of the first segment, ~40 ms, as Nagle's algorithm holds the
            // second: a stall no Azure front end has. HTTP/1.1 answers went out in one write.
            stream.set_nodelay(true)?;
            let handshake = async move {
                let start = tokio_rustls::LazyConfigAcceptor::new(
                    rustls::server::Acceptor::default(),
                    stream,
                )
                .await?;
                let vault = start
                    .client_hello()
                    .server_name()
                    .is_some_and(is_vault_name);
                let config = if vault { this.vault } else { this.default };
                start.into_stream(config).await
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(tls) => Ok((tls?, service)),
                Err(_) => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "TLS handshake timed out",
                )),
            }
        })
    }
}
