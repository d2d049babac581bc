//! The emulator's TLS material: a CA generated at start (written to `work_dir/ca.pem` for clients to
//! trust) and a server certificate for every emulator host name.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

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
    "vault.emulator.test",
    "*.vault.emulator.test",
    "azurewebsites.emulator.test",
    "*.azurewebsites.emulator.test",
    "*.scm.azurewebsites.emulator.test",
    "localhost",
];

/// The generated CA (PEM) and the rustls server configuration using the leaf it signed.
pub(crate) struct TlsMaterial {
    pub(crate) ca_pem: String,
    pub(crate) server_config: Arc<rustls::ServerConfig>,
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
    // HTTP/1.1 only: a connection-reset fault then means one request, as with Azure's front ends.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsMaterial {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
    })
}
