//! The HTTPS client trusts the system's roots as rustls-platform-verifier does on Linux, from a bundle
//! and certificate folders (as `SSL_CERT_FILE` and `SSL_CERT_DIR` would name them), trusts the agent's extra CA in addition, refuses a server no root vouches for, and still offers
//! HTTP/2 first.
#![cfg(all(unix, not(target_os = "android"), not(target_vendor = "apple")))]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use slot_release_azure::{HttpOptions, SystemRoots, http_client};

/// A CA and a TLS server config whose certificate it signs for `localhost` and 127.0.0.1, offering h2.
fn tls() -> (String, Arc<rustls::ServerConfig>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().expect("ca key");
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, ca_key);
    let mut leaf = CertificateParams::new(vec!["localhost".to_owned()]).expect("leaf params");
    leaf.subject_alt_names
        .push(SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    let leaf_key = KeyPair::generate().expect("leaf key");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("leaf cert");
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocols")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server config");
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    (ca_cert.pem(), Arc::new(config))
}

fn serve(config: Arc<rustls::ServerConfig>) -> u16 {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let server = axum_server::from_tcp_rustls(
        listener,
        axum_server::tls_rustls::RustlsConfig::from_config(config),
    )
    .expect("server");
    tokio::spawn(async move {
        let _ = server.serve(app.into_make_service()).await;
    });
    port
}

async fn get(opts: &HttpOptions, port: u16) -> Result<reqwest::Version, String> {
    let client = http_client(opts).map_err(|e| e.to_string())?;
    let answer = client
        .get(format!("https://localhost:{port}/"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(answer.version())
}

#[tokio::test]
async fn system_roots_come_from_ssl_cert_file_and_dir_and_the_extra_ca_adds_to_them() {
    let (bundled_ca, bundled) = tls();
    let (foldered_ca, foldered) = tls();
    let (extra_ca, extra) = tls();
    let (bundled, foldered, extra) = (serve(bundled), serve(foldered), serve(extra));
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle.pem");
    std::fs::write(&bundle, &bundled_ca).unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("folder-ca.pem"), &foldered_ca).unwrap();
    let plain = HttpOptions {
        system_roots: Some(SystemRoots {
            file: Some(bundle),
            dirs: vec![certs],
        }),
        ..HttpOptions::default()
    };
    assert_eq!(
        get(&plain, bundled).await,
        Ok(reqwest::Version::HTTP_2),
        "a server the bundle's CA vouches for, over HTTP/2"
    );
    assert_eq!(get(&plain, foldered).await, Ok(reqwest::Version::HTTP_2));
    let refused = get(&plain, extra)
        .await
        .expect_err("no root vouches for it");
    // (The test CAs share rcgen's default name, so webpki finds a namesake and reports its signature.)
    assert!(refused.contains("InvalidCertificate"), "{refused}");

    let with_extra = HttpOptions {
        extra_ca_pem: Some(extra_ca),
        ..plain.clone()
    };
    assert_eq!(get(&with_extra, extra).await, Ok(reqwest::Version::HTTP_2));
    assert_eq!(
        get(&with_extra, bundled).await,
        Ok(reqwest::Version::HTTP_2),
        "the extra CA adds to the system's roots"
    );

    // No root at all is a clear error when the client is built, not a refused handshake later.
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let nothing = HttpOptions {
        system_roots: Some(SystemRoots {
            file: Some(empty),
            dirs: vec![],
        }),
        ..HttpOptions::default()
    };
    let none = http_client(&nothing).expect_err("no roots");
    assert!(none.to_string().contains("no CA certificates"), "{none}");
}
